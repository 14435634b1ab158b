"""Database plumbing: one engine per service, column types that behave alike on SQLite and
PostgreSQL, and migrations applied at start-up."""

from salesrail.db.database import Database
from salesrail.db.migrate import migrate
from salesrail.db.types import BigIntPK, JsonDoc, UtcDateTime
from salesrail.db.upsert import insert_ignore

__all__ = ["BigIntPK", "Database", "JsonDoc", "UtcDateTime", "insert_ignore", "migrate"]
