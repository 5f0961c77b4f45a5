"""``kgkd demo``: the main job in one command.

Runs the quick cross-domain sentiment recipe on the shipped data: four domain
teachers are distilled into one small student under teacher weights fitted from
the knowledge graph, and the student is evaluated on every domain, including
three held out from training. Prints the per-domain table and the time taken.
"""

from __future__ import annotations

import argparse
import time

from kgkd.cli.run import add_recipe_options, config_from_args
from kgkd.recipes.catalog import shipped_recipe

#: The config the demo runs: the sentiment recipe's quick config.
DEMO_CONFIG = shipped_recipe("sentiment_transfer").quick_config


def _demo(args: argparse.Namespace) -> int:
    from kgkd.recipes import run

    cfg = config_from_args(DEMO_CONFIG, args)
    start = time.perf_counter()
    result = run(cfg)
    elapsed = time.perf_counter() - start
    print(result.table())
    steps = ", ".join(f"{k} {v:.1f}s" for k, v in result.timings.items() if k != "total")
    print(f"\ndemo finished in {elapsed:.1f}s ({steps})")
    print(f"outputs in {result.output_dir}: student/, metrics.json, per_domain.png, teacher_weights.png, graph.png")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``demo`` subcommand."""
    parser = subparsers.add_parser(
        "demo",
        help="run the quick cross-domain sentiment distillation and print a per-domain table",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_recipe_options(parser)
    parser.set_defaults(func=_demo)
