"""Resolve a teacher name (``teacher_amazon``, ``teacher_mnist``) to a ready-to-run teacher.

Trained teachers live in ``<cache_dir>/teachers/teacher_<domain>/`` (written by
:func:`kgkd.models.training.train_teacher`): model weights + config + ``kgkd_teacher.json``
whose ``kind`` picks the loader in :data:`TEACHER_KINDS`. The ccexam digit nets (``mnist``,
``usps``, ``svhn``) need no training; a trained checkpoint of the same name takes precedence.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kgkd.errors import CheckpointError, ConfigError, ModelError
from kgkd.models.base import Teacher
from kgkd.models.ccexam import CCEXAM_NETS, load_ccexam_teacher
from kgkd.models.checkpoint import CONFIG_NAME, WEIGHTS_NAME, load_weights, read_json
from kgkd.models.digit_cnn import DIGIT_CNN_FEATURES, DigitCNN, DigitCNNConfig
from kgkd.models.hf_teacher import HFTeacher
from kgkd.models.module_teacher import ModuleTeacher
from kgkd.models.provenance import META_NAME, VARIANT_SEP
from kgkd.models.registration import load_registered
from kgkd.models.students.base import config_from_dict
from kgkd.models.tfidf import TfidfLogRegTeacher
from kgkd.paths import cache_dir
from kgkd.utils.logging import get_logger
from kgkd.utils.registry import Registry

log = get_logger(__name__)

TEACHER_PREFIX = "teacher_"

#: Checkpoint kind (``kgkd_teacher.json["kind"]``) → loader ``(folder, meta) -> Teacher``.
TEACHER_KINDS: Registry[Callable[[Path, dict[str, Any]], Teacher]] = Registry("teacher kind")


def teachers_root() -> Path:
    """Default folder of trained teacher checkpoints: ``<cache_dir>/teachers``."""
    return cache_dir() / "teachers"


def teacher_dir(name: str, root: str | os.PathLike[str] | None = None) -> Path:
    """Checkpoint folder of teacher ``name`` under ``root`` (default :func:`teachers_root`)."""
    if root is not None and Path(root).name.split(VARIANT_SEP)[0] == name:
        return Path(root)  # the checkpoint folder itself (also a side-by-side ``name@fingerprint`` one)
    return Path(root or teachers_root()) / name


def train_command(domain: str) -> str:
    """The CLI command that creates the checkpoint of ``teacher_<domain>``."""
    return f"kgkd teachers train --domain {domain}"


@TEACHER_KINDS.register("hf")
def _load_hf(folder: Path, meta: dict[str, Any]) -> Teacher:
    return HFTeacher.from_pretrained(folder, name=meta["name"], label_names=meta.get("label_names"))


@TEACHER_KINDS.register("cnn")
def _load_cnn(folder: Path, meta: dict[str, Any]) -> Teacher:
    cfg_file = folder / CONFIG_NAME
    values = read_json(cfg_file)
    values.pop("architecture", None)
    try:
        config = config_from_dict(DigitCNNConfig, values, str(cfg_file))
    except ConfigError as exc:
        raise CheckpointError(str(exc)) from None
    net = DigitCNN(config)
    try:
        net.load_state_dict(load_weights(folder / WEIGHTS_NAME))
    except RuntimeError as exc:
        raise CheckpointError(f"{folder / WEIGHTS_NAME} does not match {cfg_file}: {exc}") from None
    prep = net.preprocess()
    teacher = ModuleTeacher(
        net.eval(), meta["name"], meta["label_names"], DIGIT_CNN_FEATURES,
        preprocess=prep, modality="image", preprocess_config=prep.to_dict(),
    )  # fmt: skip
    return teacher.requires_grad_(False)


@TEACHER_KINDS.register("tfidf_logreg")
def _load_tfidf(folder: Path, meta: dict[str, Any]) -> Teacher:
    return TfidfLogRegTeacher.from_folder(folder, meta["name"])


TEACHER_KINDS.register("hf_local")(load_registered)
TEACHER_KINDS.register("torch_module")(load_registered)


def pretrained_teacher(architecture: str | None, name: str) -> Teacher | None:
    """The packaged pretrained net a graph architecture names (``ccexam:mnist``), or None.

    Such teachers need no training and no checkpoint folder.
    """
    family, _, net = str(architecture or "").partition(":")
    if family == "ccexam" and net in CCEXAM_NETS:
        return load_ccexam_teacher(net, name=name)
    return None


def load_checkpoint(folder: str | os.PathLike[str], name: str | None = None) -> Teacher:
    """Load the teacher checkpoint in ``folder`` (eval mode, gradients off) under graph name ``name``.

    Raises:
        CheckpointError: the folder's ``kgkd_teacher.json`` is missing, incomplete or names an
            unknown kind, or its model files are corrupt (the message names the file).
    """
    folder = Path(folder)
    name = name or folder.name.split(VARIANT_SEP)[0]
    domain = name.removeprefix(TEACHER_PREFIX)
    meta = read_json(folder / META_NAME)
    for key in ("kind", "label_names"):
        if key not in meta:
            raise CheckpointError(
                f"{folder / META_NAME}: missing key '{key}'; re-create it with `{train_command(domain)}`"
            )
    meta = {**meta, "name": name}
    try:
        loader = TEACHER_KINDS.get(str(meta["kind"]))
    except ConfigError as exc:
        raise CheckpointError(f"{folder / META_NAME}: {exc}") from None
    log.info("loading teacher %s from %s", name, folder)
    return loader(folder, meta).eval().requires_grad_(False)


def load_teacher(name: str, root: str | os.PathLike[str] | None = None) -> Teacher:
    """Load teacher ``name`` (``teacher_<domain>``) in eval mode, gradients off.

    Args:
        name: teacher name as in the knowledge graph.
        root: folder holding ``teacher_*`` checkpoint folders (default ``<cache_dir>/teachers``),
            or the checkpoint folder itself.

    Raises:
        ModelError: ``name`` does not start with ``teacher_``.
        CheckpointError: no checkpoint (message names the path and the training command),
            or the checkpoint is incomplete/corrupt (message names the file).
    """
    if not name.startswith(TEACHER_PREFIX) or len(name) == len(TEACHER_PREFIX):
        raise ModelError(
            f"teacher name '{name}' must look like 'teacher_<domain>', e.g. 'teacher_amazon'"
        )
    domain = name[len(TEACHER_PREFIX) :]
    folder = teacher_dir(name, root)
    if folder.is_dir():
        return load_checkpoint(folder, name)
    if domain in CCEXAM_NETS:
        return load_ccexam_teacher(domain, name=name)
    raise CheckpointError(
        f"no checkpoint for teacher '{name}' at {folder}; create it with `{train_command(domain)}` "
        "(or set KGKD_CACHE_DIR to the cache that holds it)"
    )
