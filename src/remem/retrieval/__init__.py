"""Retrieval: query analysis, candidate channels, fusion and named recipes."""
