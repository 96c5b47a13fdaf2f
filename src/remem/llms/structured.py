"""Structured output without I/O: response formats, schema instructions, JSON extraction,
validation and the re-ask message, shared by every chat transport."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError

from remem.llms.base import ChatMessage, Mode, Reply

MAX_ECHO_CHARS = 4000  # how much of an invalid answer is sent back when re-asking


@dataclass(frozen=True)
class Invalid:
    """Why an answer is not a valid instance. ``no_json``: there was text but no JSON
    object in it, the sign of a server that ignored ``response_format``."""

    reason: str
    no_json: bool = False


def schema_dict(schema: type[BaseModel]) -> tuple[dict[str, Any], bool]:
    """The JSON schema of ``schema`` with ``additionalProperties: false`` on every object,
    and whether it qualifies for OpenAI's strict mode (every property required)."""
    tree = schema.model_json_schema()
    strict = True

    def visit(node: Any) -> None:
        nonlocal strict
        if isinstance(node, dict):
            if node.get("type") == "object" and "properties" in node:
                node.setdefault("additionalProperties", False)
                if set(node.get("required", ())) != set(node["properties"]):
                    strict = False
            for child in node.values():
                visit(child)
        elif isinstance(node, list):
            for child in node:
                visit(child)

    visit(tree)
    return tree, strict


def response_format(mode: Mode, schema: type[BaseModel]) -> dict[str, Any] | None:
    """The ``response_format`` to send in ``mode`` (``None`` for plain text)."""
    if mode is Mode.TEXT:
        return None
    tree, strict = schema_dict(schema)
    if mode is Mode.JSON_OBJECT:
        # "schema" lets llama-cpp-python (and some hosted APIs) constrain the JSON to it;
        # others ignore it, and one that rejects it sends us on to text mode
        return {"type": "json_object", "schema": tree}
    return {
        "type": "json_schema",
        "json_schema": {"name": _schema_name(schema), "schema": tree, "strict": strict},
    }


def _schema_name(schema: type[BaseModel]) -> str:
    # OpenAI accepts [a-zA-Z0-9_-]{1,64}
    name = "".join(c if c.isalnum() or c in "_-" else "_" for c in schema.__name__)
    return name[:64] or "answer"


def instructions(schema: type[BaseModel]) -> str:
    """What a prompt says when the server does not enforce the schema itself."""
    tree, _ = schema_dict(schema)
    return (
        "Answer with one JSON object only, no other text. "
        f"It must match this JSON schema:\n{json.dumps(tree, separators=(',', ':'))}"
    )


def prepare(
    messages: Sequence[ChatMessage], mode: Mode, schema: type[BaseModel]
) -> list[ChatMessage]:
    """The messages to send in ``mode``: in ``json_object`` and ``text`` modes the schema
    instructions are appended to the last user message (where small models heed them,
    and which every chat template accepts)."""
    out: list[ChatMessage] = [{"role": m["role"], "content": m["content"]} for m in messages]
    if mode is Mode.JSON_SCHEMA:
        return out
    extra = instructions(schema)
    for message in reversed(out):
        if message["role"] == "user":
            message["content"] = f"{message['content']}\n\n{extra}"
            return out
    out.append({"role": "user", "content": extra})
    return out


def extract_json(text: str) -> dict[str, Any] | None:
    """The whole text as a JSON object, else the first JSON object inside it (models wrap
    answers in prose or code fences), else ``None``."""
    try:
        value = json.loads(text)
    except ValueError:
        value = None
    if isinstance(value, dict):
        return value
    decoder = json.JSONDecoder()
    start = text.find("{")
    while start != -1:
        try:
            value, _ = decoder.raw_decode(text, start)
        except ValueError:
            value = None
        if isinstance(value, dict):
            return value
        start = text.find("{", start + 1)
    return None


def parse(reply: Reply, schema: type[BaseModel]) -> BaseModel | Invalid:
    """``reply`` validated into ``schema``, or why it is not valid."""
    text = reply.text or ""
    if not text.strip():
        if reply.refusal:
            return Invalid(f"the model refused: {reply.refusal}")
        return Invalid("the answer was empty")
    data = extract_json(text)
    truncated = reply.finish_reason == "length"
    if data is None:
        if truncated:
            return Invalid("the answer was cut off at max_tokens before its JSON was complete")
        return Invalid("the answer contains no JSON object", no_json=True)
    try:
        return schema.model_validate(data)
    except ValidationError as exc:
        return Invalid(f"the JSON does not match the schema: {describe(exc)}")


def describe(exc: ValidationError, limit: int = 5) -> str:
    """A validation error in one line: ``field: message; ...``."""
    errors = exc.errors()
    parts = [
        f"{'.'.join(str(p) for p in e['loc']) or '(root)'}: {e['msg']}" for e in errors[:limit]
    ]
    more = f"; and {len(errors) - limit} more" if len(errors) > limit else ""
    return "; ".join(parts) + more


def reask(
    history: Sequence[ChatMessage], raw: str, reason: str, schema: type[BaseModel]
) -> list[ChatMessage]:
    """``history`` plus the invalid answer and a request to answer again, saying why and
    repeating the schema (a server that silently ignored ``response_format`` never showed
    it to the model)."""
    correction = f"That answer is invalid: {reason}. {instructions(schema)}"
    return [
        *history,
        {"role": "assistant", "content": raw[:MAX_ECHO_CHARS]},
        {"role": "user", "content": correction},
    ]


def preview(text: str | None, limit: int = 200) -> str:
    """The start of an answer, for log lines and error messages."""
    if text is None:
        return "(no content)"
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[:limit] + "..."
