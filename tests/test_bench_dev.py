"""The issue's quality bar on the LoCoMo dev split (skipped when the dev data is absent)."""

from __future__ import annotations

from pathlib import Path

import pytest

from remem.bench.runner import run
from remem.embedders.base import Embedder

DEV = Path(__file__).resolve().parents[2] / "shared" / "data" / "locomo" / "locomo-dev.json"
KEYS = ("turn_recall_all@10", "turn_recall_any@5", "session_recall_any@5")


@pytest.mark.slow
def test_default_beats_bm25_on_the_dev_split(embedder: Embedder) -> None:
    if not DEV.is_file():
        pytest.skip(f"LoCoMo dev split not found at {DEV} (it lives in the team's shared/ folder)")
    reports = {r["recipe"]: r for r in run(DEV, ("default", "bm25"), embedder, progress=False)}
    default = reports["default"]["retrieval"]["overall"]
    bm25 = reports["bm25"]["retrieval"]["overall"]
    for key in KEYS:
        assert default[key] > bm25[key], key
    assert default["turn_recall_all@10"] >= 0.60
    assert default["turn_recall_any@5"] >= 0.58
    assert default["session_recall_any@5"] >= 0.90
    assert reports["default"]["n_questions"] + reports["default"]["skipped_questions"] == 999
