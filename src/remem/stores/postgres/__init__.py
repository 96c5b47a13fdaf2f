"""The PostgreSQL + pgvector store (the ``[postgres]`` extra)."""
