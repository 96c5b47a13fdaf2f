"""How memories change after they are formed: retention and reinforcement on recall,
buffered recall records, and forgetting policies that archive (never delete)."""
