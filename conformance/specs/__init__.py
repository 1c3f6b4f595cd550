"""One module per loss family; each registers its specs on import."""
