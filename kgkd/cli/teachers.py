"""``kgkd teachers``: train, list and evaluate the per-domain teachers.

* ``kgkd teachers train --domain NAME [--epochs N --max-length L --trainable-layers K --limit N --out DIR]``
  — fine-tune MiniLM (text) or train a DigitCNN (images); saves ``teacher_<NAME>``.
* ``kgkd teachers train --domain NAME --kind tfidf_logreg`` — the TF-IDF + logistic regression family.
* ``kgkd teachers add NAME PATH --domain D --graph G.ttl [--out NEW.ttl]`` — register a model you already
  have (local HF folder, or ``--module pkg.mod:Class`` + safetensors + ``--size/--mean/--std``).
* ``kgkd teachers list`` — every teacher checkpoint with its training settings, and missing ones.
* ``kgkd teachers eval --teacher teacher_amazon [--domain NAME --split val --limit N]`` — accuracy.
* ``kgkd teachers cache --teacher teacher_amazon --domain yelp [--split train --out DIR]`` — run a
  teacher once over a split and store its logits/features in a sharded cache folder: what a site
  hands over instead of its data or weights. Resumable; ``torchrun --nproc_per_node=K -m kgkd
  teachers cache ...`` splits the shards over K ranks.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from kgkd.errors import ConfigError


def _train(args: argparse.Namespace) -> int:
    from kgkd.models.training import train_teacher

    result = train_teacher(
        args.domain, kind=args.kind, epochs=args.epochs, max_length=args.max_length, trainable_layers=args.trainable_layers,
        limit=args.limit, out=args.out, seed=args.seed, batch_size=args.batch_size, lr=args.lr,
        show_progress=not args.no_progress,
    )  # fmt: skip
    print(f"{result.name}: val accuracy {result.val_accuracy:.4f}, trained {result.train_size} samples x "
          f"{result.epochs} epochs in {result.train_time_s:.1f}s -> {result.path}")  # fmt: skip
    return 0


def _list(args: argparse.Namespace) -> int:
    from kgkd.data import list_domains
    from kgkd.models.ccexam import CCEXAM_NETS
    from kgkd.models.loading import TEACHER_PREFIX, teachers_root, train_command
    from kgkd.models.provenance import describe_settings, read_meta

    root = Path(args.root) if args.root is not None else teachers_root()
    folders = sorted(p for p in root.iterdir() if p.is_dir() and p.name.startswith(TEACHER_PREFIX)) if root.is_dir() else []
    for folder in folders:
        try:
            meta = read_meta(folder)
        except Exception as exc:  # noqa: BLE001 - a broken folder is listed, not fatal
            print(f"{folder.name:24s} broken: {exc}")
            continue
        if meta is None:
            print(f"{folder.name:24s} broken: no kgkd_teacher.json in {folder}")
            continue
        status = "registered" if meta.get("registered") else "trained"
        acc = meta.get("val_accuracy")
        acc_text = f", val acc {acc:.4f}" if isinstance(acc, (int, float)) else ""
        print(f"{folder.name:24s} {status} ({meta.get('kind')}{acc_text}) {folder}")
        print(f"{'':24s}   {describe_settings(meta)}")
    present = {f.name for f in folders}
    for domain in dict.fromkeys([*list_domains(), *CCEXAM_NETS]):
        name = f"{TEACHER_PREFIX}{domain}"
        if name in present:
            continue
        status = f"pretrained (ccexam {domain} net)" if domain in CCEXAM_NETS else f"missing — run `{train_command(domain)}`"
        print(f"{name:24s} {status}")
    return 0


def _eval(args: argparse.Namespace) -> int:
    import torch
    from torch.utils.data import DataLoader

    from kgkd.data import load_domain
    from kgkd.models.loading import load_teacher, teacher_dir
    from kgkd.models.provenance import read_meta
    from kgkd.models.training import evaluate_accuracy

    teacher = load_teacher(args.teacher, args.root)
    meta = read_meta(teacher_dir(args.teacher, args.root)) or {}
    domain = args.domain or meta.get("domain") or args.teacher.removeprefix("teacher_")
    dataset = load_domain(domain, args.split, limit=args.limit)
    collate = teacher.collator(max_length=args.max_length, image_size=28)  # the model's own tokenizer/transform
    with torch.inference_mode():
        acc = evaluate_accuracy(teacher, DataLoader(dataset, batch_size=64, collate_fn=collate))
    print(f"{args.teacher} on {domain}/{args.split} ({len(dataset)} samples): accuracy {acc:.4f}")
    return 0


def _add(args: argparse.Namespace) -> int:
    from kgkd.models.preprocess import ImagePreprocess
    from kgkd.recipes.teachers import register_teacher

    prep = None
    if args.module is not None:
        if args.size is None:
            raise ConfigError("a torch image model (--module) needs --size (and --mean/--std for its normalisation)")
        channels = args.channels
        mean = tuple(args.mean) if args.mean else (0.0,) * channels
        std = tuple(args.std) if args.std else (1.0,) * channels
        prep = ImagePreprocess(size=args.size, channels=channels, mean=mean, std=std, invert=args.invert)
    try:
        module_args = json.loads(args.module_args) if args.module_args else {}
    except json.JSONDecodeError as exc:
        raise ConfigError(f"--module-args is not valid JSON ({exc.msg} at column {exc.colno}): {args.module_args}") from None
    if not isinstance(module_args, dict):
        raise ConfigError(f"--module-args must be a JSON object of constructor arguments, got {args.module_args}")
    features = dict(f.split("=", 1) if "=" in f else (f, f) for f in args.features or [])
    folder, graph = register_teacher(
        args.name, args.path, args.domain, args.graph, out=args.out, overwrite=args.overwrite, root=args.root,
        module=args.module, module_args=module_args, preprocess=prep,
        labels=args.labels.split(",") if args.labels else None, feature_layers=features,
    )  # fmt: skip
    print(f"{args.name}: registered {args.path} for domain '{args.domain}' -> {folder}; graph with the teacher "
          f"node written to {graph} (SHACL valid)")  # fmt: skip
    return 0


def _cache(args: argparse.Namespace) -> int:
    """Build (or finish) a teacher cache; under ``torchrun`` every rank builds its share of the shards."""
    from kgkd.data import load_domain
    from kgkd.distill.cache import TeacherCache, default_cache_path
    from kgkd.distill.distributed import cleanup, init_distributed
    from kgkd.models.loading import load_teacher

    ctx = init_distributed("cpu" if args.device == "cpu" else "auto")  # one process unless torchrun started us
    try:
        teacher = load_teacher(args.teacher, args.root)
        dataset = load_domain(args.domain, args.split, limit=args.limit)
        collate = teacher.collator(max_length=args.max_length, image_size=28)  # the model's own tokenizer/transform
        preprocessing = f"own collator max_length={args.max_length}" if teacher.modality == "text" else "digits 28x28"
        out = args.out or default_cache_path(teacher.name, f"{args.domain}_{args.split}")
        cache = TeacherCache.get_or_build(
            teacher, dataset, collate, path=out, preprocessing=preprocessing,
            batch_size=args.batch_size, features=args.features or list(teacher.feature_names),
            dtype=args.dtype, top_k=args.top_k, shard_size=args.shard_size,
            dist_ctx=ctx if ctx.is_distributed else None, device=ctx.device,
        )  # fmt: skip
        if ctx.is_main:
            print(f"{cache!r} -> {out}")
    finally:
        cleanup(ctx)
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``teachers`` command group."""
    parser = subparsers.add_parser(
        "teachers", help="train, list and evaluate the per-domain teachers"
    )
    sub = parser.add_subparsers(dest="teachers_command", metavar="ACTION", required=True)

    train = sub.add_parser(
        "train", help="train teacher_<domain> (MiniLM fine-tune for text, DigitCNN for images)"
    )
    train.add_argument("--domain", required=True, help="domain to train on (see `kgkd data list`)")
    train.add_argument("--kind", default=None,
                       help="teacher family: hf (MiniLM fine-tune, text default), tfidf_logreg (TF-IDF + "
                            "logistic regression, text, seconds), cnn (images, default)")  # fmt: skip
    train.add_argument(
        "--epochs",
        type=int,
        default=None,
        help="passes over the train split (default 2 text, 3 image)",
    )
    train.add_argument(
        "--max-length", type=int, default=64, help="token limit for text (default 64)"
    )
    train.add_argument("--trainable-layers", type=int, default=2,
                       help="unfrozen top MiniLM layers, plus pooler and head (default 2)")  # fmt: skip
    train.add_argument(
        "--limit", type=int, default=None, help="train/validate on a stratified subset of this size"
    )
    train.add_argument("--out", type=Path, default=None,
                       help="checkpoint folder (default <cache>/teachers/teacher_<domain>)")  # fmt: skip
    train.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    train.add_argument(
        "--batch-size", type=int, default=32, help="training batch size (default 32)"
    )
    train.add_argument(
        "--lr", type=float, default=None, help="AdamW learning rate (default 1e-4 text, 1e-3 image)"
    )
    train.add_argument("--no-progress", action="store_true", help="no progress bar")
    train.set_defaults(func=_train)

    lst = sub.add_parser(
        "list", help="list teacher names and whether each is trained/pretrained/missing"
    )
    lst.add_argument(
        "--root",
        type=Path,
        default=None,
        help="teacher checkpoint folder (default <cache>/teachers)",
    )
    lst.set_defaults(func=_list)

    ev = sub.add_parser("eval", help="accuracy of a teacher on a domain split")
    ev.add_argument("--teacher", required=True, help="teacher name, e.g. teacher_amazon")
    ev.add_argument(
        "--domain", default=None, help="domain to evaluate on (default: the teacher's own)"
    )
    ev.add_argument(
        "--split", choices=["train", "val", "test"], default="val", help="split (default val)"
    )
    ev.add_argument("--limit", type=int, default=None, help="stratified subset of this size")
    ev.add_argument("--max-length", type=int, default=64, help="token limit for text (default 64)")
    ev.add_argument(
        "--root",
        type=Path,
        default=None,
        help="teacher checkpoint folder (default <cache>/teachers)",
    )
    ev.set_defaults(func=_eval)

    add = sub.add_parser(
        "add", help="register an existing model (local HF folder, or torch image module + safetensors) as a teacher"
    )
    add.add_argument("name", help="teacher name for the graph node, e.g. teacher_mybert")
    add.add_argument("path", type=Path,
                     help="HF model folder, or the weights (.safetensors, or .pth read weights-only) of a "
                          "--module image model")  # fmt: skip
    add.add_argument("--domain", required=True, help="graph domain the model was trained on")
    add.add_argument("--graph", required=True, type=Path, help="Turtle graph to add the kgkd:Teacher node to")
    add.add_argument("--out", type=Path, default=None,
                     help="where to write the graph (default <graph stem>_<name>.ttl next to it)")  # fmt: skip
    add.add_argument("--overwrite", action="store_true",
                     help="replace an existing --out (also the input graph when it is passed as --out) "
                          "or registration folder")  # fmt: skip
    add.add_argument("--labels", default=None,
                     help="graph label names of the model's outputs in order, comma-separated "
                          "(default: from the model's id2label; image models: the label set's order)")  # fmt: skip
    add.add_argument("--module", default=None,
                     help="image model class as package.module:Class or path/to/file.py:Class")  # fmt: skip
    add.add_argument("--module-args", default=None, help="JSON object of constructor arguments for --module")
    add.add_argument("--size", type=int, default=None, help="input side length the image model expects")
    add.add_argument("--channels", type=int, default=1, choices=[1, 3], help="input channels (default 1)")
    add.add_argument("--mean", type=float, nargs="+", default=None, help="per-channel normalisation mean")
    add.add_argument("--std", type=float, nargs="+", default=None, help="per-channel normalisation std")
    add.add_argument("--invert", action="store_true", help="model expects dark digits on light background")
    add.add_argument("--features", nargs="*", default=None,
                     help="image model feature taps as name=submodule (e.g. pooled=fc1)")  # fmt: skip
    add.add_argument("--root", type=Path, default=None, help="teacher checkpoint folder (default <cache>/teachers)")
    add.set_defaults(func=_add)

    cache = sub.add_parser(
        "cache",
        help="run a teacher once over a domain split and store its outputs (also the export file "
        "a site hands over instead of its data)",
    )
    cache.add_argument("--teacher", required=True, help="teacher name, e.g. teacher_amazon")
    cache.add_argument("--domain", required=True, help="domain whose split is the transfer set")
    cache.add_argument("--split", choices=["train", "val", "test"], default="train",
                       help="split (default train)")  # fmt: skip
    cache.add_argument("--limit", type=int, default=None, help="stratified subset of this size")
    cache.add_argument("--features", nargs="*", default=None,
                       help="feature names to store (default: all the teacher exposes)")  # fmt: skip
    cache.add_argument("--dtype", choices=["fp16", "fp32"], default="fp16", help="storage precision")
    cache.add_argument("--top-k", type=int, default=None,
                       help="store only the k largest logits per sample (large label spaces)")  # fmt: skip
    cache.add_argument("--max-length", type=int, default=64, help="token limit for text (default 64)")
    cache.add_argument("--batch-size", type=int, default=64, help="inference batch size (default 64)")
    cache.add_argument("--out", type=Path, default=None,
                       help="cache folder of shards (default <cache>/teacher_outputs/<teacher>__<domain>_<split>); "
                            "a path ending in .safetensors writes one file instead")  # fmt: skip
    cache.add_argument("--shard-size", type=int, default=4096,
                       help="items per shard (default 4096); under torchrun each rank builds its share of shards")  # fmt: skip
    cache.add_argument("--device", choices=["auto", "cpu"], default="auto",
                       help="where the teacher runs (default: this rank's GPU if any)")  # fmt: skip
    cache.add_argument("--root", type=Path, default=None,
                       help="teacher checkpoint folder (default <cache>/teachers)")  # fmt: skip
    cache.set_defaults(func=_cache)
