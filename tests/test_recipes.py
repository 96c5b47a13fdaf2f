"""Recipes are data: every mechanism switches off by name, and ablations are derived."""

from __future__ import annotations

from dataclasses import replace

import pytest

from remem import InvalidInputError, Recipe
from remem.retrieval.recipes import MECHANISMS, RECIPES, ablations, get_recipe


def test_default_switches_on_the_mechanisms_it_names() -> None:
    default = RECIPES["default"]
    assert default.mechanisms() == ["bm25", "dense", "time", "temporal", "multihop",
                                    "neighbours", "session", "sessions", "diversify",
                                    "derived"]  # fmt: skip
    assert RECIPES["entity-graph"].mechanisms() == [*default.mechanisms()[:5], "graph",
                                                    *default.mechanisms()[5:]]  # fmt: skip
    assert RECIPES["bm25"].mechanisms() == ["bm25"]


@pytest.mark.parametrize("mechanism", MECHANISMS)
def test_every_mechanism_can_be_switched_off(mechanism: str) -> None:
    base = Recipe("all", {"bm25": 0.5, "dense": 0.5}, time=1, temporal=1, multihop=1, graph=1,
                  cites=1, neighbours=1, session=1, sessions=1, diversify=1, derived=1,
                  retention=1, rerank="x")  # fmt: skip
    off = base.without(mechanism)
    assert off.name == f"all-no-{mechanism}"
    assert mechanism not in off.mechanisms()
    assert len(off.mechanisms()) == len(base.mechanisms()) - 1


def test_ablation_names_resolve_and_typos_explain_themselves() -> None:
    assert replace(get_recipe("entity-graph-no-graph"), name="default") == get_recipe("default")
    assert get_recipe("default-no-bm25").channels == {"dense": 0.4}
    assert ablations("default")[:3] == ["default", "default-no-bm25", "default-no-dense"]
    for bad in ("nope", "default-no-nope", "nope-no-graph", "bm25-no-bm25"):
        with pytest.raises(InvalidInputError) as err:
            get_recipe(bad)
        assert "choose one of" in str(err.value) or "no channels" in str(err.value)


def test_the_retention_recipe_is_default_plus_retention() -> None:
    recipe = RECIPES["retention"]
    assert recipe.mechanisms() == [*RECIPES["default"].mechanisms(), "retention"]
    assert replace(get_recipe("retention-no-retention"), name="default") == get_recipe("default")


def test_bad_recipe_fields_are_refused() -> None:
    with pytest.raises(InvalidInputError):
        Recipe("x", {})
    with pytest.raises(InvalidInputError):
        Recipe("x", {"bm25": 1.0}, fusion="magic")
    with pytest.raises(InvalidInputError):
        Recipe("x", {"bm25": 1.0}, normalizer="zscore")
    for weight in (-0.1, 1.5):
        with pytest.raises(InvalidInputError, match="retention weighs scores from 0"):
            Recipe("x", {"bm25": 1.0}, retention=weight)
