"""``kgkd distill``: train a student from teacher-output files that other sites handed over.

The federated hand-over: each site runs its own teacher once over a shared transfer set
and exports only the outputs (``kgkd teachers cache --teacher T --domain D --out site.safetensors``);
no data or weights leave the site. The distilling site rebuilds the same transfer set
(``--domain/--split/--limit/--seed``), checks every file against it (sample count and data
fingerprint), and distils the files' teachers into a compact student::

    kgkd distill --cache site_a.safetensors --cache site_b.safetensors --domain mnist \\
        --limit 256 --student digit --weights uniform --epochs 5 --out runs/handover \\
        --eval-domain mnist --eval-domain uci_digits

The student is saved with ``save_pretrained`` in ``OUT/student`` (load it with
``kgkd.models.load_student``); ``OUT/metrics.json`` holds the per-domain accuracy and
macro-F1 printed at the end, ``OUT/history.json`` and ``OUT/logs/*.csv`` the training curves.
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kgkd.errors import CacheError, ConfigError
from kgkd.utils.suggest import suggestion

if TYPE_CHECKING:
    from kgkd.distill.config import EngineConfig

EPILOG = """\
teacher weights (--weights):
  uniform          every teacher weighs 1/T (default)
  FILE.json        {"teacher_mnist": 0.7, "teacher_usps": 0.3}: one non-negative weight per
                   teacher name of the cache files (normalised to sum 1), e.g. from `kgkd signals`

engine options beyond the flags below: --engine-config FILE.yaml with any EngineConfig keys
(optimizer, scheduler, warmup_steps, grad_clip, temperature_end, ...); flags override it.

example (two sites, digits):
  kgkd teachers cache --teacher teacher_mnist --domain mnist --limit 256 --out a.safetensors
  kgkd teachers cache --teacher teacher_usps  --domain mnist --limit 256 --out b.safetensors
  kgkd distill --cache a.safetensors --cache b.safetensors --domain mnist --limit 256 \\
      --student digit --epochs 5 --out runs/handover --eval-domain mnist --eval-domain uci_digits
"""


# --------------------------------------------------------------------------- helpers
#: Names kgkd would accept back on a command line (ASCII letters, digits, ``_.-``).
_SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


def read_cache_header(path: Path) -> tuple[dict[str, Any] | None, int | None]:
    """``(kgkd header, expected file size)`` of a cache file, from its safetensors JSON header alone.

    Works on a file whose tensor data is cut off (the size then exceeds the file's); each is
    None when the header is unreadable.
    """
    try:
        with open(path, "rb") as fh:
            size = int.from_bytes(fh.read(8), "little")
            if not 0 < size <= 100_000_000:
                return None, None
            raw = json.loads(fh.read(size).decode("utf-8"))
        ends = [int(v["data_offsets"][1]) for k, v in raw.items() if k != "__metadata__"]
        expected = 8 + size + max(ends, default=0)
    except (OSError, ValueError, KeyError, TypeError, AttributeError, IndexError):
        return None, None
    try:
        header = json.loads((raw.get("__metadata__") or {})["kgkd_cache"])
    except (ValueError, KeyError, TypeError):
        return None, expected
    return (header if isinstance(header, dict) else None), expected


def recreate_command(path: Path, args: argparse.Namespace, header: dict[str, Any] | None) -> str:
    """The `kgkd teachers cache` command that recreates ``path`` on this transfer set.

    The teacher comes from the file's own header, never guessed from its name; a name
    kgkd would refuse (non-ASCII, spaces) is never suggested back: TEACHER stands in.
    """
    teacher = str((header or {}).get("teacher", ""))
    known = bool(_SAFE_NAME.fullmatch(teacher))
    domain = args.domain if _SAFE_NAME.fullmatch(str(args.domain)) else "DOMAIN"
    parts = ["kgkd teachers cache", f"--teacher {teacher if known else 'TEACHER'}", f"--domain {domain}"]
    if args.split != "train":
        parts.append(f"--split {args.split}")
    if args.limit is not None:
        parts.append(f"--limit {args.limit}")
    if header:
        length = re.search(r"max_length=(\d+)", str(header.get("preprocessing", "")))
        if length and length.group(1) != "64":
            parts.append(f"--max-length {length.group(1)}")
        if header.get("dtype") == "fp32":
            parts.append("--dtype fp32")
        if header.get("top_k"):
            parts.append(f"--top-k {int(header['top_k'])}")
        features = [f for f in header.get("feature_shapes") or {} if _SAFE_NAME.fullmatch(str(f))]
        if features:
            parts.append("--features " + " ".join(features))
    parts.append(f"--out {path}")
    command = " ".join(parts)
    if not known:
        command += " (TEACHER: the file's header does not name a usable teacher; ask the exporting site)"
    if args.data_seed != 0:
        command += f" (the exporting site must use data seed {args.data_seed}, as this distil run does)"
    return command


def _open_export(path: Path, transfer: Any, args: argparse.Namespace) -> Any:
    """``TeacherCache.import_`` with a damaged file's error naming the command that recreates it."""
    from kgkd.distill.cache import TeacherCache

    if not path.is_file():  # TeacherCache says what is wrong with a missing path
        return TeacherCache.import_(path, expected_num_samples=len(transfer))
    header, expected = read_cache_header(path)
    size = path.stat().st_size
    if expected is None or size < expected:
        detail = "unreadable header" if expected is None else f"{size} of {expected} bytes"
        raise CacheError(
            f"--cache {path} is truncated or corrupt ({detail}); recreate it at the exporting site with: "
            f"{recreate_command(path, args, header)}"
        )
    if header is None:
        raise CacheError(
            f"--cache {path} is a safetensors file without a kgkd cache header; recreate it with: "
            f"{recreate_command(path, args, None)}"
        )
    try:
        return TeacherCache.import_(path, expected_num_samples=len(transfer))
    except CacheError as exc:
        raise CacheError(f"{exc}; to recreate {path} on this transfer set: {recreate_command(path, args, header)}") from None


def import_caches(paths: list[Path], transfer: Any, args: argparse.Namespace | None = None) -> list[Any]:
    """Open each exported cache and check it was made on ``transfer`` (count and fingerprint)."""
    from kgkd.distill.cache import TeacherCache

    caches, seen = [], {}
    fingerprint = transfer.fingerprint()
    for path in paths:
        if args is not None:
            cache = _open_export(Path(path), transfer, args)
        else:
            cache = TeacherCache.import_(path, expected_num_samples=len(transfer))
        made_on = cache.header.get("dataset_fingerprint")
        if made_on is not None and made_on != fingerprint:
            raise CacheError(
                f"{path} (teacher '{cache.teacher_name}') was exported on another transfer set than "
                f"{transfer!r} (data fingerprint {str(made_on)[:12]}… vs {fingerprint[:12]}…); use the same "
                "--domain/--split/--limit/--seed the exporting site passed to `kgkd teachers cache`"
            )
        if cache.teacher_name in seen:
            raise CacheError(
                f"{path} and {seen[cache.teacher_name]} both hold teacher '{cache.teacher_name}'; "
                "pass each teacher's cache file once"
            )
        seen[cache.teacher_name] = path
        caches.append(cache)
    return caches


def teacher_weights(spec: str, names: list[str]) -> Any:
    """``uniform`` or a JSON file ``{teacher: weight}`` → a one-domain ``TeacherWeighting``."""
    import torch

    from kgkd.distill.weighting import DomainTableWeighting, UniformWeighting

    if spec == "uniform":
        return UniformWeighting(len(names))
    path = Path(spec)
    if not path.is_file():
        raise ConfigError(
            f"--weights {spec}: no such file; give 'uniform' or a JSON file {{teacher: weight}}"
        )
    try:
        values = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(
            f'--weights {path}: not valid JSON ({exc}); write {{"teacher_name": weight, ...}}'
        ) from None
    if not isinstance(values, dict):
        raise ConfigError(
            f"--weights {path}: expected a JSON object {{teacher: weight}}, got {type(values).__name__}"
        )
    for key in values:
        if key not in names:
            hint = suggestion(key, names)
            raise ConfigError(
                f"--weights {path}: '{key}' is not a teacher of the cache files {names}.{hint}"
            )
    missing = [n for n in names if n not in values]
    if missing:
        raise ConfigError(
            f"--weights {path}: no weight for teacher(s) {missing}; give one per cache file"
        )
    bad = {n: values[n] for n in names if not isinstance(values[n], (int, float)) or values[n] < 0}
    if bad or not sum(values[n] for n in names) > 0:
        raise ConfigError(
            f"--weights {path}: weights must be numbers ≥ 0 with a positive sum, got {values}"
        )
    table = torch.tensor([[float(values[n]) for n in names]])
    return DomainTableWeighting(table, domain_names=["transfer"], normalize=True)


#: ``EngineConfig`` keys that have their own flag (``--batch-size`` → ``batch_size``).
_ENGINE_FLAGS = ("epochs", "batch_size", "lr", "temperature", "alpha", "seed", "device")


def engine_config(args: argparse.Namespace) -> EngineConfig:
    """The run's ``EngineConfig``, built once: ``--engine-config`` (YAML) keys overridden by the flags.

    Errors name where the bad value came from: the flag, or the ``--engine-config`` file.
    """
    import yaml

    from kgkd.distill.config import EngineConfig

    source = f"--engine-config {args.engine_config}"
    base: dict[str, Any] = {}
    if args.engine_config is not None:
        if not args.engine_config.is_file():
            raise ConfigError(f"{source}: no such file")
        try:
            base = yaml.safe_load(args.engine_config.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"{source}: not valid YAML ({exc})".replace("\n", " ")) from None
        if not isinstance(base, dict):
            raise ConfigError(
                f"{source}: must hold a mapping of engine options (lr: 0.01, ...), got {type(base).__name__}"
            )
    flags = {k: getattr(args, k) for k in _ENGINE_FLAGS if getattr(args, k) is not None}
    values = {**base, **flags}
    values.setdefault("show_progress", not args.no_progress)
    try:
        return EngineConfig.from_dict(values)
    except ConfigError as exc:
        key = getattr(exc, "key", None)
        where = f"--{key.replace('_', '-')}" if key in flags else source if key in base else None
        raise ConfigError(f"{where}: {exc}" if where else str(exc)) from None


def build_student(
    kind: str, modality: str, labels: tuple[str, ...], transfer: Any, max_length: int
) -> Any:
    """A fresh student (preset or architecture ``kind``) over ``labels``; text: vocabulary of the transfer set."""
    from kgkd.models.students import build_student as build

    texts = transfer.texts if modality == "text" else None
    try:
        return build(kind, texts, labels, modality, {"max_length": max_length})
    except ConfigError as exc:
        raise ConfigError(f"--student {kind}: {exc}") from None


class Unlabelled:
    """A view of a dataset with every label hidden (−1): distil from the teachers alone."""

    def __init__(self, dataset: Any) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, i: int) -> dict[str, Any]:
        return {**self.dataset[i], "label": -1}

    def __getattr__(self, name: str) -> Any:  # name, domain_names, fingerprint, ...
        if name == "dataset":  # not set yet (copy/pickle): no recursion
            raise AttributeError(name)
        return getattr(self.dataset, name)


def print_metrics(metrics: dict[str, Any], names: list[str]) -> None:
    """One line per evaluation domain: accuracy and macro-F1 of the student."""
    print(f"{'domain':16s} {'n':>6s} {'accuracy':>9s} {'macro-F1':>9s}")
    for name in [*names, "overall"]:
        row = metrics.get(name)
        if row:
            print(f"{name:16s} {int(row['n']):6d} {row['accuracy']:9.4f} {row['macro_f1']:9.4f}")


# --------------------------------------------------------------------------- command
def _distill(args: argparse.Namespace) -> int:
    from kgkd.data import (
        MultiDomainDataset,
        get_spec,
        load_domain,
    )
    from kgkd.distill.cache import CachedTeacher
    from kgkd.distill.callbacks import CSVLogger
    from kgkd.distill.engine import DistillationEngine
    from kgkd.distill.losses import build_loss
    from kgkd.labels import LabelMap
    from kgkd.utils.io import atomic_write_json, check_output_dir, staged_output_dir

    cfg = engine_config(args)  # config errors first, before any data is read
    from kgkd.models.students import check_student_kind

    try:
        check_student_kind(args.student)
    except ConfigError as exc:
        raise ConfigError(f"--student: {exc}") from None
    out: Path = check_output_dir(args.out, args.overwrite)  # an earlier student is never replaced silently
    spec = get_spec(args.domain)
    transfer = load_domain(args.domain, args.split, limit=args.limit, seed=args.data_seed)
    caches = import_caches(args.cache, transfer, args)
    names = [c.teacher_name for c in caches]
    labels = tuple(spec.label_names)
    maps = [
        LabelMap.by_name(c.label_names or labels, labels, teacher=c.teacher_name) for c in caches
    ]
    weighting = teacher_weights(args.weights, names)
    student = build_student(args.student, spec.modality, labels, transfer, args.max_length)
    collate = student.collator(max_length=args.max_length)
    eval_domains = args.eval_domain or [args.domain]
    for d in eval_domains:
        if get_spec(d).modality != spec.modality:
            raise ConfigError(
                f"--eval-domain {d} holds {get_spec(d).modality} but the transfer domain '{args.domain}' "
                f"holds {spec.modality}; evaluate on {spec.modality} domains"
            )
    test = MultiDomainDataset(
        eval_domains, args.eval_split, limit=args.eval_limit, seed=args.data_seed
    )
    print(f"distilling {len(caches)} teacher(s) {names} into a {args.student} student "
          f"on {transfer!r}{' without labels' if args.unlabelled else ''}")  # fmt: skip
    # everything goes to a hidden folder next to OUT, moved in only when complete
    with staged_output_dir(out, args.overwrite) as stage:
        engine = DistillationEngine(
            student, [CachedTeacher(c) for c in caches], build_loss("combined"), weighting, cfg, maps,
            callbacks=[CSVLogger(stage / "logs")],
        )  # fmt: skip
        history = engine.fit(Unlabelled(transfer) if args.unlabelled else transfer, collate_fn=collate)
        metrics = engine.evaluate(test, collate, domain_names=eval_domains)["student"]
        engine.student.cpu().eval().save_pretrained(stage / "student")
        history.save(stage / "history.json")
        atomic_write_json(
            stage / "metrics.json", {"split": args.eval_split, "teachers": names, "student": metrics}
        )
    print(f"student accuracy on the {args.eval_split} split:")
    print_metrics(metrics, eval_domains)
    print(
        f"saved {out / 'student'} (load with kgkd.models.load_student), metrics in {out / 'metrics.json'}"
    )
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``kgkd distill`` (torch is imported only when the command runs)."""
    parser = subparsers.add_parser(
        "distill",
        help="distil a student from teacher-output files exported by other sites (kgkd teachers cache)",
        description=(
            "Distil a compact student from teacher outputs that sites exported on a shared\n"
            "transfer set with `kgkd teachers cache`: no site's data or teacher weights are\n"
            "needed. The transfer set is rebuilt here from --domain/--split/--limit/--data-seed\n"
            "and every cache file is checked against it (sample count and data fingerprint)."
        ),
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    src = parser.add_argument_group("teachers and transfer set")
    src.add_argument(
        "--cache",
        type=Path,
        action="append",
        required=True,
        metavar="PATH",
        help="a teacher-output cache folder (or .safetensors file) from `kgkd teachers cache --out PATH` "
        "(repeat per teacher)",
    )
    src.add_argument(
        "--domain", required=True, help="domain of the transfer set the files were made on"
    )
    src.add_argument(
        "--split",
        choices=["train", "val", "test"],
        default="train",
        help="split of the transfer set (default train)",
    )
    src.add_argument(
        "--limit",
        type=int,
        default=None,
        metavar="N",
        help="stratified subset size the files were made with",
    )
    src.add_argument(
        "--data-seed", type=int, default=0, metavar="N", help="seed of that subset (default 0)"
    )
    src.add_argument(
        "--weights",
        default="uniform",
        metavar="uniform|FILE.json",
        help="teacher weights: 'uniform' (default) or a JSON file {teacher: weight}",
    )
    src.add_argument(
        "--unlabelled",
        action="store_true",
        help="ignore the transfer set's labels: distil from the teachers alone",
    )

    stu = parser.add_argument_group("student and training")
    stu.add_argument(
        "--student",
        required=True,
        metavar="NAME",
        help="student preset (text-tiny, text-small, text-base, digit, digit-fast) or architecture "
        "(text, bert, digit)",
    )
    stu.add_argument(
        "--epochs",
        type=int,
        default=None,
        metavar="N",
        help="passes over the transfer set (default 5)",
    )
    stu.add_argument(
        "--batch-size", type=int, default=None, metavar="N", help="batch size (default 64)"
    )
    stu.add_argument(
        "--lr", type=float, default=None, metavar="LR", help="AdamW learning rate (default 1e-3)"
    )
    stu.add_argument(
        "--temperature",
        type=float,
        default=None,
        metavar="T",
        help="distillation temperature T (default 4)",
    )
    stu.add_argument(
        "--alpha",
        type=float,
        default=None,
        metavar="A",
        help="weight of the KD term against CE on labelled samples (default 0.9)",
    )
    stu.add_argument(
        "--max-length", type=int, default=64, metavar="N", help="token limit for text (default 64)"
    )
    stu.add_argument(
        "--engine-config",
        type=Path,
        default=None,
        metavar="FILE.yaml",
        help="YAML mapping of further EngineConfig options",
    )
    stu.add_argument(
        "--seed", type=int, default=None, metavar="N", help="training seed (default 0)"
    )
    stu.add_argument(
        "--device", choices=["auto", "cpu", "cuda"], default=None, help="device (default auto)"
    )
    stu.add_argument("--no-progress", action="store_true", help="no progress bar")

    ev = parser.add_argument_group("output and evaluation")
    ev.add_argument(
        "--out",
        type=Path,
        required=True,
        metavar="DIR",
        help="output folder: student/, metrics.json, history.json, logs/ (must be new or empty)",
    )
    ev.add_argument(
        "--overwrite",
        action="store_true",
        help="replace kgkd's outputs (student/, metrics.json, history.json, logs/) in an existing --out "
        "folder; the folder's other files are kept. Without it a non-empty --out is refused",
    )
    ev.add_argument(
        "--eval-domain",
        action="append",
        default=None,
        metavar="DOMAIN",
        help="domain to report accuracy on (repeatable; default: the transfer domain)",
    )
    ev.add_argument(
        "--eval-split",
        choices=["train", "val", "test"],
        default="test",
        help="split to evaluate on (default test)",
    )
    ev.add_argument(
        "--eval-limit",
        type=int,
        default=None,
        metavar="N",
        help="stratified subset of each evaluation domain",
    )
    parser.set_defaults(func=_distill)
