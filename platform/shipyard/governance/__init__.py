"""Governance: audit queries over the prediction log and the deployment history, and the lineage
behind every prediction."""
