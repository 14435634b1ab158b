"""sla-monitor: durable SLA clocks kept in the database; alerts and escalations when they expire."""
