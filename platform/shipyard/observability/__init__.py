"""Observability: metric names, Prometheus configuration and rules, dashboards as code."""
