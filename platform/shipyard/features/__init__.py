"""Features of the fraud-scoring use case: catalog, feature job, Feast store, retrieval."""
