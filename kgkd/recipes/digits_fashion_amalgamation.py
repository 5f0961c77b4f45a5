"""Recipe: amalgamate teachers with disjoint label sets (digits + clothing) into one student.

A pretrained MNIST net and a small CNN trained on Fashion-MNIST predict different
label sets. The graph's 20-class label set ``digits_clothing20`` and its
``kgkd:equivalentLabel`` links place both in one student label space, and the
domain → teacher weights route every image's soft labels to the teacher of its task.

>>> from kgkd.recipes import digits_fashion_amalgamation
>>> result = digits_fashion_amalgamation.run("digits_fashion_amalgamation_quick")  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from kgkd.recipes.config import RecipeConfig
from kgkd.recipes.pipeline import RECIPES, RecipeResult, run_recipe

#: Shipped config used when ``run`` gets none.
DEFAULT_CONFIG = "digits_fashion_amalgamation"
#: A few minutes on 2 CPU cores (Fashion-MNIST must be built: ``kgkd data build --fashion``).
QUICK_CONFIG = "digits_fashion_amalgamation_quick"


@RECIPES.register("digits_fashion_amalgamation")
def run(
    config: RecipeConfig | str | Mapping[str, Any] | None = None,
    overrides: Sequence[str] = (),
    *,
    smoke: bool | None = None,
) -> RecipeResult:
    """Run the recipe; ``config`` is a RecipeConfig, a shipped name, a YAML path or a mapping."""
    return run_recipe(config or DEFAULT_CONFIG, overrides, smoke=smoke, expect_modality="image")
