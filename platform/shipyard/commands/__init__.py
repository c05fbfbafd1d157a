"""Command groups of the `shipyard` CLI, one module per domain (`shipyard data …`, …)."""
