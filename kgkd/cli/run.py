"""``kgkd run CONFIG``: run a recipe from a shipped config name or a YAML file.

``--set section.key=value`` overrides any config key (values parsed as YAML);
``--out DIR`` moves the output folder; ``--smoke`` shrinks the run to the
config's tiny ``smoke:`` scale (same as env ``KGKD_QUICK=1``).

The output folder must be new or empty: an earlier run is never replaced.
``--overwrite`` replaces kgkd's own outputs there (student/, metrics.json,
plots, graph_with_weights.ttl) and keeps every other file. Outputs are written
to a hidden folder next to it and moved in only when the run is complete, so a
failed or interrupted run leaves nothing behind.
"""

from __future__ import annotations

import argparse

from kgkd.recipes.config import list_configs, load_config


def add_recipe_options(parser: argparse.ArgumentParser) -> None:
    """Options shared by ``run`` and ``demo``."""
    parser.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
        help="override a config key, e.g. --set distill.engine.epochs=2 (repeatable; value is YAML)",
    )  # fmt: skip
    parser.add_argument("--out", default=None, metavar="DIR",
                        help="output folder, new or empty (default: output.dir of the config)")  # fmt: skip
    parser.add_argument(
        "--overwrite", action="store_true",
        help="replace kgkd's outputs in an existing output folder, keeping its other files "
        "(same as --set output.overwrite=true); without it a non-empty folder is refused",
    )  # fmt: skip
    parser.add_argument("--smoke", action="store_true", default=None, help="tiny smoke-test scale (as KGKD_QUICK=1)")
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")


def config_from_args(name: str, args: argparse.Namespace):
    """Load ``name`` with the ``--set``/``--out``/``--no-progress`` options applied."""
    overrides = list(args.overrides)
    if args.out:
        overrides.append(f"output.dir={args.out}")
    if args.no_progress:
        overrides.append("output.show_progress=false")
    if args.overwrite:
        overrides.append("output.overwrite=true")
    return load_config(name, overrides, smoke=args.smoke)


def _run(args: argparse.Namespace) -> int:
    from kgkd.recipes import run

    cfg = config_from_args(args.config, args)
    result = run(cfg)
    print(result.table())
    print(f"\noutputs in {result.output_dir}  (student: {result.student_dir})")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``run`` subcommand."""
    parser = subparsers.add_parser(
        "run",
        help="run a recipe (graph → teachers → signals → distillation → report)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="shipped configs: " + ", ".join(list_configs()),
    )
    parser.add_argument("config", metavar="CONFIG", help="shipped config name or path to a YAML file")
    add_recipe_options(parser)
    parser.set_defaults(func=_run)
