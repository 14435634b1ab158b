"""A lead's timeline: activities, stage changes and overrides, newest first, a page at a time.

Each kind is read from its own table through an index on (lead_id, occurred_at, id), at most a
page after the cursor, then merged. The cursor is the (occurred_at, id) of the last item shown:
what is inserted meanwhile never shifts a page, it appears where it belongs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from activity.models import Activity, Override, StageChange
from salesrail.db.types import UtcDateTime
from salesrail.http.cursors import Position, encode_cursor


@dataclass(frozen=True)
class Page:
    items: list[dict[str, Any]]  # each with its "kind"
    next_cursor: str | None


KINDS = ("activity", "stage_change", "override")

# Each kind's columns, as a timeline item names them (plain rows: no ORM objects to build).
_SOURCES: tuple[tuple[str, Any, Any, dict[str, Any]], ...] = (
    (
        "activity",
        Activity,
        Activity.activity_id,
        {
            "type": Activity.type,
            "rep_id": Activity.rep_id,
            "logged_at": Activity.logged_at,
            "on_time": Activity.on_time,
            "summary": Activity.summary,
            "transcript": Activity.transcript,
            "tech_env_change": Activity.tech_env_change,
            "overridden": Activity.overridden,
            "record": Activity.record,
        },
    ),
    (
        "stage_change",
        StageChange,
        StageChange.change_id,
        {
            "from": StageChange.from_stage,
            "to": StageChange.to_stage,
            "by": StageChange.by,
            "reason": StageChange.reason,
            "overridden": StageChange.overridden,
        },
    ),
    (
        "override",
        Override,
        Override.override_id,
        {
            "scope": Override.scope,
            "subject_id": Override.subject_id,
            "missing": Override.missing,
            "reason": Override.reason,
            "by": Override.by,
            "role": Override.role,
        },
    ),
)


def _page_query(model: Any, id_column: Any, columns: dict[str, Any], *, after: bool) -> Any:
    query = select(
        id_column.label("id"),
        model.occurred_at.label("occurred_at"),
        *(column.label(name) for name, column in columns.items()),
    ).where(model.lead_id == bindparam("lead_id"))
    if after:
        position = tuple_(bindparam("after_at", type_=UtcDateTime()), bindparam("after_id"))
        query = query.where(tuple_(model.occurred_at, id_column) < position)
    return query.order_by(model.occurred_at.desc(), id_column.desc()).limit(bindparam("limit"))


# Built once: each request only binds its values (the compiled form is cached).
_QUERIES = {
    (kind, after): _page_query(model, id_column, columns, after=after)
    for kind, model, id_column, columns in _SOURCES
    for after in (False, True)
}


async def read_page(
    session: AsyncSession,
    lead_id: str,
    *,
    after: Position | None,
    limit: int,
    kinds: Sequence[str] = KINDS,
) -> Page:
    """Up to `limit` items older than `after`, of the given kinds (a lead without stage
    changes or overrides spares their queries)."""
    params: dict[str, Any] = {"lead_id": lead_id, "limit": limit + 1}
    if after is not None:
        params.update(after_at=after[0], after_id=after[1])
    found: list[dict[str, Any]] = []
    for kind in kinds:
        rows = await session.execute(_QUERIES[kind, after is not None], params)
        for row in rows.mappings():
            item = {"kind": kind, **row}
            item.update(item.pop("record", None) or {})
            found.append(item)
    found.sort(key=lambda item: (item["occurred_at"], item["id"]), reverse=True)
    page = found[:limit]
    last = page[-1] if len(found) > limit else None
    return Page(page, encode_cursor((last["occurred_at"], last["id"])) if last else None)
