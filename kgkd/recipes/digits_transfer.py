"""Recipe: cross-domain digit recognition from pretrained teachers.

Three pretrained digit nets (MNIST, USPS, SVHN — the ``ccexam`` package) are
distilled into one small CNN that sees MNIST labels and unlabelled UCI 8×8 digits.
The graph's domain attributes (resolution, stroke style, photo vs scan) decide,
without UCI labels, which teacher the UCI digits should trust.

>>> from kgkd.recipes import digits_transfer
>>> result = digits_transfer.run("digits_transfer_quick")   # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from kgkd.recipes.config import RecipeConfig
from kgkd.recipes.pipeline import RECIPES, RecipeResult, run_recipe

#: Shipped config used when ``run`` gets none.
DEFAULT_CONFIG = "digits_transfer"
#: A few minutes on 2 CPU cores.
QUICK_CONFIG = "digits_transfer_quick"


@RECIPES.register("digits_transfer")
def run(
    config: RecipeConfig | str | Mapping[str, Any] | None = None,
    overrides: Sequence[str] = (),
    *,
    smoke: bool | None = None,
) -> RecipeResult:
    """Run the recipe; ``config`` is a RecipeConfig, a shipped name, a YAML path or a mapping."""
    return run_recipe(config or DEFAULT_CONFIG, overrides, smoke=smoke, expect_modality="image")
