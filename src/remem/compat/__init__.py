"""Compatibility surfaces for people moving to remem from other memory libraries (mem0)."""
