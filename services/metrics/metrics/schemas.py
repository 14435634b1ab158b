"""The HTTP shapes of metrics."""

from __future__ import annotations

import re
from datetime import date
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

_ISO_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def _iso_day(value: Any) -> Any:
    # Only YYYY-MM-DD: pydantic alone would also take datetimes and Unix timestamps.
    if isinstance(value, str) and not _ISO_DAY.match(value):
        raise ValueError("expected a day as YYYY-MM-DD")
    return value


IsoDay = Annotated[date, BeforeValidator(_iso_day)]


class DayCount(BaseModel):
    day: date
    source: str
    count: int


class LeadIntakeOut(BaseModel):
    """Leads received per business day (Asia/Shanghai) and source, both ends included."""

    model_config = ConfigDict(populate_by_name=True)

    from_: date = Field(alias="from")
    to: date
    total: int
    days: list[DayCount]
