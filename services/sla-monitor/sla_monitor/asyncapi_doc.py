"""sla-monitor's AsyncAPI document, as served at /asyncapi.json, written to docs for
integrators: `python -m sla_monitor.asyncapi_doc docs/asyncapi/sla-monitor.json`."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from salesrail.asyncapi import asyncapi_document
from sla_monitor import publishers, subscribers

TITLE = "Salesrail sla-monitor"
DESCRIPTION = "SLA clocks kept in the database: policies, deadlines, alerts, escalations."
VERSION = "1.0.0"  # the app factory's


def document() -> dict[str, Any]:
    return asyncapi_document(
        title=TITLE,
        version=VERSION,
        description=DESCRIPTION,
        consumers=subscribers.CONSUMERS,
        publishes=publishers.PUBLISHES,
    )


def render() -> str:
    return json.dumps(document(), indent=2, ensure_ascii=False, sort_keys=True) + "\n"


def main(argv: list[str]) -> None:
    Path(argv[0]).write_text(render(), encoding="utf-8")


if __name__ == "__main__":
    main(sys.argv[1:])
