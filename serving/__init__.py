"""Online serving: the gateway (FastAPI), its backends and the Triton model repository."""
