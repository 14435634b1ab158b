"""SLA policies as data: the YAML document, its validation, and the compiled triggers.

A policy says which events start, restart, stop, pause and resume its clock on an entity
(a lead, a ticket or a rep), how long the clock runs and on which calendar, when it warns,
who is told at breach, and who is told next if the breach stays unanswered. The conditions
on events are evaluated statelessly by durable-rules (`salesrail.rules_engine`); the clocks
themselves live in the database.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from datetime import datetime, time, timedelta
from functools import cached_property
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from salesrail import rules_engine as re_
from salesrail.http.problems import field_name
from sla_monitor.calendars import Calendar, CalendarSpec, build_calendar

ACTIONS = ("start", "restart", "stop", "pause", "resume")
Action = Literal["start", "restart", "stop", "pause", "resume"]
EntityType = Literal["lead", "ticket", "rep"]
# Where the entity's id is read in an event's data, unless a trigger names another field.
ENTITY_KEYS: dict[str, str] = {"lead": "lead_id", "ticket": "ticket_id", "rep": "rep_id"}
TYPE_FACT = "_type"  # the event type, as a fact the conditions can test

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|min|m|h|d|w)\s*$")
_UNITS = {"s": 1, "min": 60, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_NAME = r"^[a-z][a-z0-9_]{0,62}$"
_RECIPIENT = re.compile(r"^(owner|supervisor|team|(role|rep|team):[A-Za-z0-9_.\-]+)$")


class PoliciesInvalid(Exception):
    """A policy document that cannot be used; `problems` name the policy and field of each."""

    def __init__(self, problems: list[dict[str, str]]) -> None:
        super().__init__(
            "; ".join(f"{p['policy']}: {p['field']}: {p['message']}" for p in problems)
        )
        self.problems = problems


def parse_duration(value: Any) -> timedelta:
    """'48h', '5d', '30min', '90s', '1.5h' (or a number of seconds) -> timedelta."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return timedelta(seconds=value)
    match = _DURATION.match(str(value))
    if not match:
        raise ValueError(f"a duration is written like '48h', '5d', '30min', got {value!r}")
    return timedelta(seconds=float(match.group(1)) * _UNITS[match.group(2)])


Duration = Annotated[timedelta, BeforeValidator(parse_duration)]
Scalar = str | int | float | bool
Recipients = list[Annotated[str, Field(pattern=_RECIPIENT.pattern)]]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Condition(_Strict):
    """One test on one field of the event's data; exactly one operator."""

    field: str = Field(min_length=1)
    equals: Scalar | None = None
    any_of: list[Scalar] | None = Field(default=None, min_length=1)
    not_any_of: list[Scalar] | None = Field(default=None, min_length=1)
    at_least: float | None = None
    at_most: float | None = None
    below: float | None = None
    above: float | None = None
    present: bool | None = None

    @model_validator(mode="after")
    def _one_operator(self) -> Condition:
        given = [name for name in _OPERATORS if getattr(self, name) is not None]
        if len(given) != 1:
            raise ValueError(f"give exactly one of {', '.join(_OPERATORS)} (got {given or 'none'})")
        return self

    def compile(self) -> re_.Condition:
        f = self.field
        if self.equals is not None:
            return re_.equals(f, self.equals)
        if self.any_of is not None:
            return re_.any_of(f, self.any_of)
        if self.not_any_of is not None:
            return {"$and": [{"$neq": {f: v}} for v in self.not_any_of] + [re_.present(f)]}
        if self.at_least is not None:
            return re_.at_least(f, self.at_least)
        if self.at_most is not None:
            return re_.at_most(f, self.at_most)
        if self.below is not None:
            return {"$lt": {f: self.below}}
        if self.above is not None:
            return {"$gt": {f: self.above}}
        return re_.present(f) if self.present else re_.absent(f)


_OPERATORS = ("equals", "any_of", "not_any_of", "at_least", "at_most", "below", "above", "present")


class Trigger(_Strict):
    """An event (by type) and the conditions its data must meet."""

    event: str = Field(min_length=1, pattern=r"^[a-z0-9_.]+$")
    when: list[Condition] = Field(default_factory=list)
    # The data field holding the entity's id, when not the entity's usual one.
    entity_key: str | None = None
    # Only when the event's rep_id is the entity's owner (or no owner is known yet).
    owner_only: bool = False


class Warning(_Strict):
    after: Duration  # working time after the start
    severity: str = "warning"
    notify: Recipients = Field(default_factory=lambda: ["owner"])


class Breach(_Strict):
    severity: str
    notify: Recipients


class Escalation(_Strict):
    # Working time after the breach (elapsed time after a daily deadline's cut-off).
    after: Duration
    notify: Recipients = Field(default_factory=list)
    severity: str = "high"
    # "alert": sla.escalation.<rule>; "ops_followup": sla.followup_requested for `group`.
    publish: Literal["alert", "ops_followup"] = "alert"
    group: str | None = None
    # Skipped if the breach alert was acknowledged by then.
    unless_acknowledged: bool = False


class DailyDeadline(_Strict):
    """A clock per working day of the policy's calendar, due at a local wall time that day
    (in the calendar's time zone): `{daily_at: "18:00"}`. Instead of a duration."""

    daily_at: time

    @field_validator("daily_at", mode="before")
    @classmethod
    def _wall_time(cls, value: Any) -> Any:
        # Unquoted, YAML 1.1 reads 18:00 as the sexagesimal number 1080.
        if not isinstance(value, str | time):
            raise ValueError(f'a wall time is written in quotes, like "18:00", got {value!r}')
        if isinstance(value, str) and not re.fullmatch(r"\d{2}:\d{2}(:\d{2})?", value.strip()):
            raise ValueError(f'a wall time is written like "18:00", got {value!r}')
        return value.strip() if isinstance(value, str) else value

    @field_validator("daily_at")
    @classmethod
    def _local(cls, value: time) -> time:
        if value.tzinfo is not None:
            raise ValueError("daily_at is a local wall time: the calendar names the zone")
        return value


class Policy(_Strict):
    name: str = Field(pattern=_NAME)
    description: str = ""
    entity: EntityType
    start: list[Trigger] = Field(default_factory=list)  # starts a first clock, if none yet
    restart: list[Trigger] = Field(default_factory=list)  # ends the current cycle, starts anew
    stop: list[Trigger] = Field(default_factory=list)
    pause: list[Trigger] = Field(default_factory=list)
    resume: list[Trigger] = Field(default_factory=list)
    # Where the clock starts: the event's time, or the lead's `received_at`.
    start_at: Literal["occurred_at", "received_at"] = "occurred_at"
    # How long each clock runs, counted on the calendar ...
    duration: Duration | None = None
    # ... or, instead, one clock per working day, due at a wall time of that day.
    deadline: DailyDeadline | None = None
    # A rep's clock that exists only while the rep owns an open lead (one not won, lost or
    # pooled): started and restarted only then, and stopped unfired if it comes due without.
    applies_while: Literal["owns_open_leads"] | None = None
    calendar: str | CalendarSpec = "always"
    warning: Warning | None = None
    breach: Breach
    escalations: list[Escalation] = Field(default_factory=list)

    @model_validator(mode="after")
    def _coherent(self) -> Policy:
        if not (self.start or self.restart):
            raise ValueError("a policy needs at least one start or restart trigger")
        if (self.duration is None) == (self.deadline is None):
            raise ValueError("give either a duration or a deadline (daily_at), not both")
        if self.deadline is not None:
            if self.warning is not None:
                raise ValueError("a daily deadline has no warning")
            if self.pause or self.resume:
                raise ValueError("a daily deadline is not paused: give no pause/resume triggers")
            if self.start_at != "occurred_at":
                raise ValueError("a daily deadline's clocks start at the event (occurred_at)")
        if self.duration is not None and self.duration <= timedelta(0):
            raise ValueError("duration must be positive")
        if (
            self.warning is not None
            and self.duration is not None
            and not timedelta(0) < self.warning.after < self.duration
        ):
            raise ValueError("warning.after must fall inside the duration")
        if self.applies_while is not None and self.entity != "rep":
            raise ValueError("applies_while: owns_open_leads is for rep policies")
        for escalation in self.escalations:
            if escalation.publish == "ops_followup" and not escalation.group:
                raise ValueError("an ops_followup escalation names its group")
        return self

    def triggers(self) -> list[tuple[Action, int, Trigger]]:
        return [(a, i, t) for a in ACTIONS for i, t in enumerate(getattr(self, a))]

    def steps(self) -> list[str]:
        """What fires, in order: 'warning'?, 'alert', 'escalation_1'..."""
        kinds = ["warning"] if self.warning else []
        kinds.append("alert")
        kinds += [f"escalation_{n}" for n in range(1, len(self.escalations) + 1)]
        return kinds

    @cached_property
    def escalations_in_order(self) -> tuple[Escalation, ...]:
        # Read for every clock started and fired: sorted once per policy version.
        return tuple(sorted(self.escalations, key=lambda e: e.after))


class PolicyDocument(_Strict):
    calendars: dict[str, CalendarSpec] = Field(default_factory=dict)
    policies: list[Policy] = Field(min_length=1)

    @model_validator(mode="after")
    def _references(self) -> PolicyDocument:
        names = [p.name for p in self.policies]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"policy names must be unique: {duplicates}")
        return self


# --- compiled -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Match:
    policy: str
    action: Action
    trigger: Trigger


@dataclass(frozen=True)
class PolicySet:
    """One stored version: its policies, their calendars, and the compiled triggers."""

    version: int
    document: PolicyDocument
    policies: Mapping[str, Policy]
    calendars: Mapping[str, Calendar]
    calendar_specs: Mapping[str, CalendarSpec]
    _triggers: re_.AllMatches
    _by_rule: Mapping[str, Match]
    # The data fields the conditions on each event type read: the answer depends on nothing
    # else, so it is remembered per (type, those values) and durable-rules is asked once.
    _fields: Mapping[str, tuple[str, ...]]
    _answers: dict[tuple[Any, ...], list[Match]] = dataclass_field(default_factory=dict)

    @property
    def event_types(self) -> frozenset[str]:
        return frozenset(self._fields)

    def matches(self, event_type: str, data: Mapping[str, Any]) -> list[Match]:
        """Every (policy, action) this event triggers, in the document's order."""
        fields = self._fields.get(event_type)
        if fields is None:
            return []
        key = (event_type, *(_hashable(data.get(f)) for f in fields))
        answer = self._answers.get(key)
        if answer is None:
            fired = self._triggers.evaluate(facts_of(event_type, data))
            answer = [self._by_rule[name] for name in fired]
            if len(self._answers) >= _ANSWERS_KEPT:
                self._answers.clear()
            self._answers[key] = answer
        return answer


_ANSWERS_KEPT = 10_000


def _hashable(value: Any) -> Any:
    return value if isinstance(value, str | int | float | bool | None) else repr(value)


def facts_of(event_type: str, data: Mapping[str, Any]) -> dict[str, Scalar]:
    """The scalar fields of an event's data, plus its type (lists and objects are left out)."""
    facts: dict[str, Scalar] = {
        k: v for k, v in data.items() if isinstance(v, str | int | float | bool)
    }
    facts[TYPE_FACT] = event_type
    return facts


def parse(source: str) -> PolicyDocument:
    """YAML text -> validated document, or PoliciesInvalid naming each bad policy and field."""
    try:
        raw = yaml.safe_load(source)
    except yaml.YAMLError as exc:
        raise PoliciesInvalid([_problem("document", "yaml", str(exc))]) from exc
    if not isinstance(raw, dict):
        raise PoliciesInvalid([_problem("document", "yaml", "not a mapping")])
    try:
        document = PolicyDocument.model_validate(raw)
    except ValidationError as exc:
        raise PoliciesInvalid([_error(raw, e) for e in exc.errors()]) from exc
    problems = [
        _problem(p.name, "calendar", f"no calendar named {p.calendar!r}")
        for p in document.policies
        if isinstance(p.calendar, str)
        and p.calendar != "always"
        and p.calendar not in document.calendars
    ]
    if problems:
        raise PoliciesInvalid(problems)
    return document


def compile_policies(
    document: PolicyDocument, *, version: int, engine: re_.RuleEngine
) -> PolicySet:
    rules: list[tuple[str, re_.Condition]] = []
    by_rule: dict[str, Match] = {}
    for policy in document.policies:
        for action, index, trigger in policy.triggers():
            name = f"{policy.name}/{action}/{index}"
            conditions = [
                re_.equals(TYPE_FACT, trigger.event),
                *(c.compile() for c in trigger.when),
            ]
            rules.append((name, re_.all_of(conditions)))
            by_rule[name] = Match(policy.name, action, trigger)
    specs = {p.name: _spec_of(p, document) for p in document.policies}
    return PolicySet(
        version=version,
        document=document,
        policies={p.name: p for p in document.policies},
        calendars={name: build_calendar(spec) for name, spec in specs.items()},
        calendar_specs=specs,
        _triggers=engine.all_matches(f"sla-policies-v{version}", rules),
        _by_rule=by_rule,
        _fields=_condition_fields(document),
    )


def _condition_fields(document: PolicyDocument) -> dict[str, tuple[str, ...]]:
    fields: dict[str, set[str]] = {}
    for policy in document.policies:
        for _, _, trigger in policy.triggers():
            fields.setdefault(trigger.event, set()).update(c.field for c in trigger.when)
    return {event: tuple(sorted(names)) for event, names in fields.items()}


def _spec_of(policy: Policy, document: PolicyDocument) -> CalendarSpec:
    if isinstance(policy.calendar, CalendarSpec):
        return policy.calendar
    if policy.calendar == "always":
        return CalendarSpec()
    return document.calendars[policy.calendar]


def event_time(data: Mapping[str, Any], envelope_time: datetime, *, start_at: str) -> datetime:
    """The instant an event moves a clock: when it happened, not when it reached us."""
    field = "received_at" if start_at == "received_at" else "occurred_at"
    value = data.get(field) or data.get("occurred_at")
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            return envelope_time
        return parsed if parsed.tzinfo else envelope_time
    return envelope_time


def _problem(policy: str, field: str, message: str) -> dict[str, str]:
    return {"policy": policy, "field": field, "message": message}


def _error(raw: dict[str, Any], error: Any) -> dict[str, str]:
    loc = list(error.get("loc", ()))
    policy = "document"
    if len(loc) >= 2 and loc[0] == "policies" and isinstance(loc[1], int):
        items = raw.get("policies") or []
        item = items[loc[1]] if loc[1] < len(items) else None
        name = item.get("name") if isinstance(item, dict) else None
        policy = name if isinstance(name, str) else f"policies[{loc[1]}]"
        loc = loc[2:]
    return _problem(policy, field_name(loc) if loc else "policy", error.get("msg", "invalid"))
