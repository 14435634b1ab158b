"""lead-router: one intake for every lead source; enrichment, scoring, routing, public pool."""
