"""Salesrail's shared contracts and plumbing. No business rules live here."""
