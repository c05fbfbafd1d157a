"""Canary rollouts and the loop that runs them: analysis in Prometheus, promotion and rollback,
the deployment history, drift-triggered retraining, and the registry exporter."""
