"""Prompts: versioned pure functions returning chat messages, each beside its schema.

The convention, for every prompt (the real ones live beside their pipeline step, e.g.
``formation/``):

* a pydantic model, the typed answer (``extra="forbid"``, every field required, so
  servers can enforce it in strict ``json_schema`` mode);
* ``<NAME>_VERSION``, a string changed whenever the prompt's wording or schema changes,
  recorded with whatever the answer produces (a job, a memory's provenance), so a result
  can always be traced to the exact prompt that made it;
* ``<name>_messages(inputs) -> list[ChatMessage]``, a pure function: no I/O, no clock,
  no randomness, so it is tested by comparing messages.

Then ``llm.structured(names_messages(text), Names)`` returns a validated ``Names``.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from remem.llms.base import ChatMessage

NAMES_VERSION = "names/1"


class Names(BaseModel):
    """The people, places and organisations named in a text (the example schema)."""

    model_config = ConfigDict(extra="forbid")

    names: list[str] = Field(description="each name as written in the text, once")


def names_messages(text: str) -> list[ChatMessage]:
    """Ask for the names in ``text`` (the example prompt, used by the tests)."""
    return [
        {
            "role": "system",
            "content": "You extract names of people, places and organisations from text. "
            'Answer in JSON as {"names": [...]}.',
        },
        {"role": "user", "content": f"Text: {text}\n\nList the names in this text."},
    ]
