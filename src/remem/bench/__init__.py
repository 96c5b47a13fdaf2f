"""Benchmarks: LoCoMo and LongMemEval retrieval evaluation."""
