"""Rerankers: score (question, memory) pairs jointly to reorder the best candidates."""
