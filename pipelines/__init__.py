"""KFP v2 components and pipelines (training, evaluation, gating, registration, export)."""
