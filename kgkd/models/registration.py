"""Register a model the user already has as a kgkd teacher (``kgkd teachers add``).

Two families, both referenced in place (nothing is copied or converted):

- ``hf_local``: a local Hugging Face ``AutoModelForSequenceClassification`` folder. Its own
  tokenizer is used; its ``id2label`` names are mapped onto the graph's label set.
- ``torch_module``: an image classifier given as ``package.module:Class`` or
  ``path/file.py:Class`` (+ JSON constructor arguments), a state dict (``.safetensors``, or a
  ``.pth`` read with ``weights_only=True``) and a transform spec (size, channels, mean, std).

The registration folder ``<cache>/teachers/<name>/kgkd_teacher.json`` records everything
needed to rebuild the teacher and its input pipeline (source, label order, transform);
:func:`kgkd.models.load_teacher` then treats it like a trained one.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from kgkd.errors import CheckpointError, ModelError
from kgkd.models.base import Teacher
from kgkd.models.checkpoint import CONFIG_NAME, atomic_dir, load_weights, read_json, write_json
from kgkd.models.hf_teacher import HFTeacher
from kgkd.models.module_teacher import ModuleTeacher
from kgkd.models.preprocess import ImagePreprocess
from kgkd.models.provenance import META_NAME
from kgkd.utils.logging import get_logger

log = get_logger(__name__)

_MODULE_PATH = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")


def _norm(text: str) -> str:
    return re.sub(r"[\s\-]+", "_", str(text).strip().lower())


def map_labels(
    model_labels: Sequence[str], graph_labels: Sequence[tuple[str, str]], where: str, label_set: str
) -> list[int]:
    """For each graph label (in label-set order), the model output that predicts it.

    ``model_labels`` are the model's names per output; ``graph_labels`` are ``(local name,
    rdfs:label)`` pairs. Names match case-insensitively (spaces/hyphens as ``_``); the map must
    be one-to-one, else ModelError says which name has no partner and how to name them.
    """
    wanted = [", ".join(dict.fromkeys([n, lab])) for n, lab in graph_labels]
    if len(model_labels) != len(graph_labels):
        raise ModelError(
            f"{where}: the model has {len(model_labels)} outputs {list(model_labels)} but label set '{label_set}' "
            f"has {len(graph_labels)} labels ({'; '.join(wanted)}); register a model with one output per label"
        )
    keys = {}
    for i, (name, label) in enumerate(graph_labels):
        for key in {_norm(name), _norm(label)}:
            keys[key] = i
    order: list[int | None] = [None] * len(graph_labels)
    for out, model_name in enumerate(model_labels):
        i = keys.get(_norm(model_name))
        if i is None or order[i] is not None:
            raise ModelError(
                f"{where}: model label '{model_name}' (output {out}) matches no {'other ' if i is not None else ''}label "
                f"of label set '{label_set}' ({'; '.join(wanted)}); name the outputs in order with "
                f"--labels {','.join(n for n, _ in graph_labels)} (or fix id2label in the model's config.json)"
            )
        order[i] = out
    return [int(o) for o in order]  # type: ignore[arg-type]


def hf_label_names(folder: Path) -> list[str]:
    """The ``id2label`` names of a HF model folder, in output order."""
    cfg = read_json(folder / CONFIG_NAME)
    id2label = cfg.get("id2label") or {}
    try:
        return [str(id2label[k]) for k in sorted(id2label, key=int)]
    except (ValueError, TypeError):
        raise CheckpointError(f"{folder / CONFIG_NAME}: id2label keys must be output indices, got {list(id2label)}") from None


def _load_file_module(file: Path, spec: str) -> Any:
    """Execute one ``.py`` file as an isolated module (its package's ``__init__`` is not run)."""
    name = "kgkd_user_module_" + re.sub(r"\W", "_", str(file.with_suffix("")))
    if name in sys.modules:
        return sys.modules[name]
    loader_spec = importlib.util.spec_from_file_location(name, file)
    if loader_spec is None or loader_spec.loader is None:
        raise ModelError(f"--module '{spec}': {file} cannot be loaded as a Python module")
    module = importlib.util.module_from_spec(loader_spec)
    sys.modules[name] = module
    try:
        loader_spec.loader.exec_module(module)
    except Exception as exc:  # noqa: BLE001 - user code: report any failure with its file
        del sys.modules[name]
        raise ModelError(f"--module '{spec}': running {file} failed: {type(exc).__name__}: {exc}") from None
    return module


def _submodule_file(module_name: str) -> Path | None:
    """The file of ``pkg.sub`` found WITHOUT importing ``pkg`` (None when it is not a plain file)."""
    top, _, rest = module_name.partition(".")
    try:
        spec = importlib.util.find_spec(top)
    except (ImportError, ValueError):
        return None
    if not rest or spec is None or not spec.submodule_search_locations:
        return None
    for base in spec.submodule_search_locations:
        file = Path(base, *rest.split(".")).with_suffix(".py")
        if file.is_file():
            return file
    return None


def import_class(spec: str) -> type[nn.Module]:
    """``package.module:Class`` or ``path/to/file.py:Class`` → the class.

    When importing the package fails for a reason outside the named module (say its
    ``__init__`` imports a library that cannot load here), the module's own file is run on
    its own. Raises ModelError naming what could not be imported.
    """
    target, _, cls_name = spec.rpartition(":")
    if target.endswith(".py") and cls_name.isidentifier():
        file = Path(target).expanduser()
        if not file.is_file():
            raise ModelError(f"--module '{spec}': {file} does not exist")
        module = _load_file_module(file.resolve(), spec)
    elif _MODULE_PATH.match(spec):
        try:
            module = importlib.import_module(target)
        except ImportError as exc:
            file = _submodule_file(target)
            if file is None:
                raise ModelError(f"--module '{spec}': cannot import '{target}' ({exc}); install it or fix PYTHONPATH") from None
            log.info("importing %s failed (%s); loading %s on its own", target, exc, file)
            module = _load_file_module(file, spec)
    else:
        raise ModelError(f"--module '{spec}' must look like 'package.module:Class' or 'path/to/file.py:Class'")
    cls = getattr(module, cls_name, None)
    if not (isinstance(cls, type) and issubclass(cls, nn.Module)):
        raise ModelError(f"--module '{spec}': '{cls_name}' in {target} is not a torch.nn.Module class")
    return cls


def load_state(weights: Path) -> dict[str, Tensor]:
    """A state dict from ``.safetensors``, or from a torch ``.pth/.pt`` file with ``weights_only=True``."""
    if weights.suffix not in (".pth", ".pt", ".bin"):
        return load_weights(weights)
    if not weights.is_file():
        raise CheckpointError(f"weights file {weights} does not exist")
    try:
        state = torch.load(weights, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - pickle errors come in many types; weights_only refuses code
        raise CheckpointError(
            f"{weights} cannot be loaded with torch.load(weights_only=True) ({str(exc).splitlines()[0]}); "
            "save a plain state dict (or convert it to .safetensors)"
        ) from None
    if not (isinstance(state, dict) and all(isinstance(v, Tensor) for v in state.values())):
        raise CheckpointError(f"{weights} does not hold a state dict of tensors (found {type(state).__name__})")
    return state


def build_module(spec: str, args: dict[str, Any], weights: Path) -> nn.Module:
    """Instantiate ``spec(**args)`` and load ``weights`` (safetensors or weights-only .pth; strict)."""
    cls = import_class(spec)
    try:
        net = cls(**args)
    except TypeError as exc:
        raise ModelError(f"--module '{spec}' with --module-args {args}: {exc}") from None
    try:
        net.load_state_dict(load_state(weights))
    except RuntimeError as exc:
        raise CheckpointError(f"{weights} does not fit {spec}: {str(exc).splitlines()[0]}") from None
    return net.eval()


def _loaded(meta: dict[str, Any]) -> Teacher:
    """Rebuild a registered teacher from its metadata."""
    source = Path(meta["source"])
    if not source.exists():
        raise CheckpointError(
            f"teacher '{meta['name']}' was registered from {source}, which no longer exists; put it back or "
            f"register it again with `kgkd teachers add {meta['name']} PATH --domain {meta.get('domain')} --graph ...`"
        )
    if meta["kind"] == "hf_local":
        teacher: Teacher = HFTeacher.from_pretrained(source, name=meta["name"], label_names=meta["model_label_names"])
    else:
        prep = ImagePreprocess(**{**meta["preprocess"], "mean": tuple(meta["preprocess"]["mean"]),
                                  "std": tuple(meta["preprocess"]["std"])})  # fmt: skip
        net = build_module(meta["module"], dict(meta.get("module_args") or {}), source)
        teacher = ModuleTeacher(
            net, meta["name"], meta["model_label_names"], meta.get("feature_layers") or {}, preprocess=prep,
            modality="image", preprocess_config={"module": meta["module"], **prep.to_dict()},
        )  # fmt: skip
    teacher.set_label_order(meta["label_order"], meta["label_names"])
    return teacher


def load_registered(folder: Path, meta: dict[str, Any]) -> Teacher:
    """Loader for the ``hf_local`` and ``torch_module`` kinds (see :data:`kgkd.models.TEACHER_KINDS`)."""
    try:
        return _loaded(meta)
    except KeyError as exc:
        raise CheckpointError(f"{folder / META_NAME}: missing key {exc}; register the teacher again") from None


def registration_meta(
    name: str, path: str | os.PathLike[str], domain: str, label_set: str,
    graph_labels: Sequence[tuple[str, str]], *, module: str | None = None, module_args: dict[str, Any] | None = None,
    preprocess: ImagePreprocess | None = None, labels: Sequence[str] | None = None,
    feature_layers: dict[str, str] | None = None,
) -> dict[str, Any]:  # fmt: skip
    """Check a user model and describe it (kind, source, label map, transform) without writing anything.

    Raises:
        ModelError / CheckpointError: the model cannot be loaded, its labels cannot be mapped onto
            ``graph_labels``, or its outputs do not have one column per label.
    """
    source = Path(path).resolve()
    names = [lab or n for n, lab in graph_labels]
    if module is None:
        if not (source / CONFIG_NAME).is_file():
            raise ModelError(
                f"{source} is not a Hugging Face model folder (no {CONFIG_NAME}); for a torch image model pass "
                "--module package.module:Class with PATH = its .safetensors (or .pth) weights"
            )
        model_labels = list(labels) if labels else hf_label_names(source)
        meta = {"kind": "hf_local", "architecture": f"hf:{read_json(source / CONFIG_NAME).get('model_type', 'model')}"}
    else:
        if preprocess is None:
            raise ModelError("a torch image model needs its transform: --size, --mean and --std (and --channels)")
        model_labels = list(labels) if labels else [n for n, _ in graph_labels]
        meta = {"kind": "torch_module", "architecture": f"module:{module}", "module": module,
                "module_args": dict(module_args or {}), "preprocess": preprocess.to_dict(),
                "feature_layers": dict(feature_layers or {})}  # fmt: skip
    order = map_labels(model_labels, graph_labels, str(source), label_set)
    meta.update(
        name=name, registered=True, source=str(source), domain=domain, label_set=label_set,
        model_label_names=model_labels, label_names=names, label_order=order,
    )  # fmt: skip
    teacher = load_registered(source, meta)  # loads once: a model that cannot run fails here, before any write
    if teacher.modality != ("text" if module is None else "image"):
        raise ModelError(f"{source}: a {teacher.modality} model")
    return meta


def write_registration(meta: dict[str, Any], folder: str | os.PathLike[str]) -> Path:
    """Write the registration folder atomically (``kgkd_teacher.json`` only)."""
    with atomic_dir(folder) as tmp:
        write_json(tmp / META_NAME, meta)
    return Path(folder)
