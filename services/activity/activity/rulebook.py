"""activity's rule files, read and compiled once at start-up: a bad file stops the service."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from activity.gates import CompiledGates, GatesDocument, lead_fact_kinds
from activity.requirements import CompiledRequirements, RequirementsDocument
from salesrail.http.problems import field_name
from salesrail.rules_engine import RuleEngine

DEFAULT_DIR = Path(__file__).parent / "rules"
REQUIREMENTS_FILE = "activity_requirements.yaml"
GATES_FILE = "stage_gates.yaml"

Document = TypeVar("Document", bound=BaseModel)


class RulesInvalid(ValueError):
    pass


@dataclass(frozen=True)
class Rulebook:
    requirements: CompiledRequirements
    gates: CompiledGates


def parse(source: str, model: type[Document], *, name: str = "rules") -> Document:
    """YAML text -> validated document, or RulesInvalid naming each bad field."""
    try:
        raw = yaml.safe_load(source)
    except yaml.YAMLError as exc:
        raise RulesInvalid(f"{name}: not YAML: {exc}") from exc
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(f"{field_name(e['loc'])}: {e['msg']}" for e in exc.errors())
        raise RulesInvalid(f"{name}: {problems}") from exc


def compile_rulebook(
    requirements_source: str, gates_source: str, *, engine: RuleEngine
) -> Rulebook:
    requirements = parse(requirements_source, RequirementsDocument, name=REQUIREMENTS_FILE)
    gates = parse(gates_source, GatesDocument, name=GATES_FILE)
    kinds = lead_fact_kinds(requirements.types, requirements.deliverables())
    try:
        compiled_gates = CompiledGates(gates, engine, kinds)
    except ValueError as exc:
        raise RulesInvalid(f"{GATES_FILE}: {exc}") from exc
    return Rulebook(CompiledRequirements(requirements, engine), compiled_gates)


def load_rulebook(directory: Path, *, engine: RuleEngine) -> Rulebook:
    return compile_rulebook(
        (directory / REQUIREMENTS_FILE).read_text(encoding="utf-8"),
        (directory / GATES_FILE).read_text(encoding="utf-8"),
        engine=engine,
    )
