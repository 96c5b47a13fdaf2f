"""LLM clients: the contract (``base``), the OpenAI-compatible client (``openai_compat``),
a scripted fake for tests (``scripted``) and the prompt convention (``prompts``).

Only the contract is imported here, so ``import remem.llms`` needs no optional extra;
build clients with ``remem.registry.create_llm``.
"""

from __future__ import annotations

from remem.llms.base import LLM, ChatMessage, Completion, Mode, Usage

__all__ = ["LLM", "ChatMessage", "Completion", "Mode", "Usage"]
