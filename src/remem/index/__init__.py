"""Backend-neutral indexes: BM25, derivation rules, and live per-scope search indexes."""
