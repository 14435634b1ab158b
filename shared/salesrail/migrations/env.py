"""Alembic environment shared by every Salesrail database (run through salesrail.db.migrate)."""

from alembic import context

config = context.config
connection = config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through salesrail.db.migrate or `salesrail db`")

context.configure(
    connection=connection,
    target_metadata=config.attributes.get("target_metadata") or None,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
