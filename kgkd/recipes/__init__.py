"""Graph-aware recipes: a YAML config + one function wiring graph, data, teachers, signals and engine.

>>> from kgkd.recipes import sentiment_transfer, load_config
>>> cfg = load_config("sentiment_transfer_quick", ["distill.engine.epochs=2"])
>>> result = sentiment_transfer.run(cfg)        # doctest: +SKIP

Recipes: ``sentiment_transfer``, ``digits_transfer``, ``digits_fashion_amalgamation`` — rows
of one table (:mod:`~kgkd.recipes.catalog`), each a :class:`~kgkd.recipes.catalog.Recipe`
with ``run``, reachable as ``kgkd.recipes.<name>`` and registered in :data:`RECIPES`.

Names resolve lazily (PEP 562): reading configs (``kgkd run --help``) does not import
torch; the pipeline loads on first use of a recipe.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from kgkd.recipes.config import RecipeConfig
    from kgkd.recipes.pipeline import RecipeResult

#: Names of the shipped recipes (``kgkd.recipes.<name>`` is its :class:`~kgkd.recipes.catalog.Recipe`).
RECIPE_MODULES: tuple[str, ...] = (
    "sentiment_transfer",
    "digits_transfer",
    "digits_fashion_amalgamation",
)

_EXPORTS = {
    "RecipeConfig": "kgkd.recipes.config",
    "config_to_dict": "kgkd.recipes.config",
    "list_configs": "kgkd.recipes.config",
    "load_config": "kgkd.recipes.config",
    "RecipeResult": "kgkd.recipes.pipeline",
    "prepare": "kgkd.recipes.pipeline",
    "run_config": "kgkd.recipes.pipeline",
}


def _registry() -> Any:
    """The recipe registry (the pipeline registers every shipped recipe on import)."""
    return importlib.import_module("kgkd.recipes.pipeline").RECIPES


def __getattr__(name: str) -> Any:
    if name in RECIPE_MODULES:
        from kgkd.recipes.catalog import shipped_recipe

        return shipped_recipe(name)
    if name == "RECIPES":
        return _registry()
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'kgkd.recipes' has no attribute '{name}'")


def run(
    config: RecipeConfig | str | Mapping[str, Any],
    overrides: Sequence[str] = (),
    *,
    smoke: bool | None = None,
) -> RecipeResult:
    """Run any config with the recipe its ``recipe:`` key names (what ``kgkd run`` does)."""
    from kgkd.recipes.config import RecipeConfig, config_to_dict, load_config

    if isinstance(config, RecipeConfig):
        config, smoke = config_to_dict(config), False
    cfg = load_config(config, overrides, smoke=smoke)
    return _registry().get(cfg.recipe)(cfg)


__all__ = [
    "RECIPES",
    "RECIPE_MODULES",
    "RecipeConfig",
    "RecipeResult",
    "digits_fashion_amalgamation",
    "digits_transfer",
    "list_configs",
    "load_config",
    "prepare",
    "run",
    "run_config",
    "sentiment_transfer",
]
