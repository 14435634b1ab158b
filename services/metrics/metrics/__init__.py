"""metrics: KPIs, funnels, role dashboards, the dashboard web page."""
