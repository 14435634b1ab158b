"""`salesrail`: run the cluster, manage API keys, mint development tokens."""

from __future__ import annotations

import typer

from salesrail.cli import channels, demo, keys, leads, tokens, up

app = typer.Typer(
    name="salesrail",
    help="Salesrail: a sales process run by rules.",
    no_args_is_help=True,
    add_completion=False,
)
app.command("up", help="Run the whole cluster on this machine (embedded NATS, SQLite).")(up.up)
app.command("status", help="Show the running cluster: NATS URL and each service's state.")(
    up.status
)
app.add_typer(keys.app, name="keys", help="API keys for machine clients.")
app.command("token", help="Mint a JWT for a person (development and tests).")(tokens.token)
app.add_typer(leads.app, name="leads", help="Leads: bulk import from CSV or .xlsx.")
app.add_typer(
    channels.app, name="channels", help="Notification channels: reseal after a key rotation."
)
app.command("demo", help="Sample teams, reps, rules and leads, to see routing work.")(demo.demo)

if __name__ == "__main__":
    app()
