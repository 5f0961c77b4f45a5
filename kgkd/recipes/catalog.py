"""The shipped recipes as one table: name → default config, quick config, modality, summary.

A recipe is the shared pipeline with its own default config; :class:`Recipe` carries the
defaults and its ``run``. ``kgkd.recipes.sentiment_transfer`` (and the others) resolve to
these objects, so ``sentiment_transfer.run("sentiment_transfer_quick")`` keeps working
without one module per recipe. Reading the table imports no torch.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from kgkd.utils.registry import Registry

if TYPE_CHECKING:
    from kgkd.recipes.config import RecipeConfig
    from kgkd.recipes.workspace import RecipeResult

__all__ = ["RECIPES", "SHIPPED_RECIPES", "Recipe", "shipped_recipe"]

#: Recipe name (``recipe:`` key of a config) → its ``run`` function; :mod:`kgkd.recipes.pipeline`
#: registers the shipped ones.
RECIPES: Registry[Callable[..., RecipeResult]] = Registry("recipe")


@dataclass(frozen=True)
class Recipe:
    """One shipped recipe: its registry name, default and quick (``kgkd demo``) configs, modality and summary."""

    name: str
    default_config: str
    quick_config: str
    modality: str
    summary: str

    @property
    def DEFAULT_CONFIG(self) -> str:
        return self.default_config

    @property
    def QUICK_CONFIG(self) -> str:
        return self.quick_config

    def run(
        self,
        config: RecipeConfig | str | Mapping[str, Any] | None = None,
        overrides: Sequence[str] = (),
        *,
        smoke: bool | None = None,
    ) -> RecipeResult:
        """Run the recipe; ``config`` is a RecipeConfig, a shipped name, a YAML path or a mapping (default: its own).

        Dispatches through :data:`RECIPES`, where :mod:`kgkd.recipes.pipeline` registers every
        shipped recipe (importing ``kgkd.recipes`` does so).
        """
        if self.name not in RECIPES:
            import importlib

            importlib.import_module("kgkd.recipes.pipeline")
        return RECIPES.get(self.name)(config, overrides, smoke=smoke)


#: Every shipped recipe (each is registered in ``RECIPES`` under its name).
SHIPPED_RECIPES: tuple[Recipe, ...] = (
    Recipe(
        "sentiment_transfer", "sentiment_transfer", "sentiment_transfer_quick", "text",
        "cross-domain sentiment: four fine-tuned text teachers (Amazon, IMDb, tweets, NYT editorials) into one "
        "small transformer that also serves Yelp, movie and product reviews, whose labels are never used",
    ),
    Recipe(
        "digits_transfer", "digits_transfer", "digits_transfer_quick", "image",
        "cross-domain digits: pretrained MNIST/USPS/SVHN nets into one small CNN that sees MNIST labels and "
        "unlabelled UCI 8x8 digits; the graph's domain attributes decide which teacher those trust",
    ),
    Recipe(
        "digits_fashion_amalgamation", "digits_fashion_amalgamation", "digits_fashion_amalgamation_quick", "image",
        "amalgamation: an MNIST and a Fashion-MNIST teacher with disjoint label sets into one 20-class student "
        "through the graph's kgkd:equivalentLabel links",
    ),
)  # fmt: skip

_BY_NAME = {recipe.name: recipe for recipe in SHIPPED_RECIPES}


def shipped_recipe(name: str) -> Recipe:
    """The shipped recipe called ``name`` (a ConfigError with a did-you-mean otherwise)."""
    if name not in _BY_NAME:
        from kgkd.errors import ConfigError
        from kgkd.utils.suggest import suggestion

        raise ConfigError(f"no shipped recipe '{name}'.{suggestion(name, sorted(_BY_NAME))} Recipes: {', '.join(_BY_NAME)}")
    return _BY_NAME[name]
