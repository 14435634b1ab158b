"""The `salesrail` command."""
