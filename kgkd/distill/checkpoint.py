"""Training checkpoints as safetensors + JSON: nothing is ever unpickled.

A checkpoint of step ``k`` is two files in the checkpoint folder:

- ``ckpt-<k>.safetensors`` — every tensor: student and loss parameters,
  optimiser state (flattened: ``optim/state/<param>/<key>``), torch RNG states;
- ``ckpt-<k>.json`` — everything else: step, epoch, position in the epoch,
  sampler seed, config, optimiser hyper-parameters, scheduler state, Python and
  NumPy RNG states, and the sha256 of the tensor file.

Both are written atomically (temp file + rename), tensors first; the JSON is
the commit marker, so a crash between the two leaves no visible checkpoint.
Loading checks the hash, so a truncated or edited tensor file raises
:class:`~kgkd.errors.CheckpointError` naming it instead of loading garbage.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from kgkd.errors import CheckpointError
from kgkd.utils.io import atomic_path, atomic_write_json

FORMAT_VERSION = 1
_NAME = re.compile(r"^ckpt-(\d+)\.json$")


@dataclass
class TrainingState:
    """What a checkpoint restores: tensors by prefix plus JSON metadata."""

    step: int
    epoch: int
    position: int
    tensors: dict[str, torch.Tensor]
    meta: dict[str, Any] = field(default_factory=dict)

    def module_state(self, prefix: str) -> dict[str, torch.Tensor]:
        """The state dict saved under ``prefix/`` (e.g. ``student``)."""
        head = prefix + "/"
        return {k[len(head) :]: v for k, v in self.tensors.items() if k.startswith(head)}


# ------------------------------------------------------------------- optimiser
def flatten_optimizer(state: dict[str, Any]) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Split ``optimizer.state_dict()`` into tensors and a JSON-safe remainder."""
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for pid, pstate in state["state"].items():
        for key, value in pstate.items():
            if isinstance(value, torch.Tensor):
                tensors[f"optim/state/{pid}/{key}"] = value
            else:
                scalars.setdefault(str(pid), {})[key] = value
    return tensors, {"param_groups": _jsonable(state["param_groups"]), "scalars": scalars}


def unflatten_optimizer(tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> dict[str, Any]:
    """Inverse of :func:`flatten_optimizer`: a dict ``optimizer.load_state_dict`` accepts."""
    state: dict[int, dict[str, Any]] = {}
    for name, value in tensors.items():
        if name.startswith("optim/state/"):
            _, _, pid, key = name.split("/", 3)
            state.setdefault(int(pid), {})[key] = value
    for pid, values in meta.get("scalars", {}).items():
        state.setdefault(int(pid), {}).update(values)
    groups = [dict(g) for g in meta["param_groups"]]
    for g in groups:
        if "betas" in g and isinstance(g["betas"], list):
            g["betas"] = tuple(g["betas"])
    return {"state": state, "param_groups": groups}


# ------------------------------------------------------------------------ RNG
def capture_rng() -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Python, NumPy, torch CPU and CUDA generator states (tensors, JSON)."""
    tensors = {"rng/torch_cpu": torch.get_rng_state()}
    if torch.cuda.is_available():
        for i, s in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"rng/cuda/{i}"] = s
    version, internal, gauss = random.getstate()
    np_state = np.random.get_state()
    meta = {
        "python": [version, list(internal), gauss],
        "numpy": [
            np_state[0],
            np_state[1].tolist(),
            int(np_state[2]),
            int(np_state[3]),
            float(np_state[4]),
        ],
    }
    return tensors, meta


def restore_rng(tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
    """Put back the generator states captured by :func:`capture_rng`."""
    version, internal, gauss = meta["python"]
    random.setstate((version, tuple(internal), gauss))
    name, keys, pos, has_gauss, cached = meta["numpy"]
    np.random.set_state((name, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(tensors["rng/torch_cpu"])
    cuda = sorted(
        (k for k in tensors if k.startswith("rng/cuda/")), key=lambda k: int(k.rsplit("/", 1)[1])
    )
    if cuda and torch.cuda.is_available():
        states = [tensors[k] for k in cuda][: torch.cuda.device_count()]
        torch.cuda.set_rng_state_all(states)


# ------------------------------------------------------------------ save/load
def checkpoint_paths(directory: str | Path, step: int) -> tuple[Path, Path]:
    """``(tensor file, json file)`` of the checkpoint of ``step``."""
    d = Path(directory)
    return d / f"ckpt-{step:08d}.safetensors", d / f"ckpt-{step:08d}.json"


def save_checkpoint(
    directory: str | Path,
    *,
    step: int,
    epoch: int,
    position: int,
    tensors: dict[str, torch.Tensor],
    meta: dict[str, Any],
    keep: int = 2,
) -> Path:
    """Atomically write the checkpoint of ``step``; keep the newest ``keep``; return the JSON path."""
    tensor_path, json_path = checkpoint_paths(directory, step)
    rng_tensors, rng_meta = capture_rng()
    payload = {
        k: v.detach().to("cpu").contiguous().clone() for k, v in {**tensors, **rng_tensors}.items()
    }
    with atomic_path(tensor_path) as tmp:
        save_file(payload, str(tmp))
    record = {
        "format_version": FORMAT_VERSION,
        "step": step,
        "epoch": epoch,
        "position": position,
        "tensor_file": tensor_path.name,
        "sha256": _sha256(tensor_path),
        "rng": rng_meta,
        **_jsonable(meta),
    }
    atomic_write_json(json_path, record)
    _prune(Path(directory), keep)
    return json_path


def latest_checkpoint(directory: str | Path) -> Path | None:
    """The JSON file of the newest checkpoint in ``directory`` (``None`` if there is none)."""
    d = Path(directory)
    if not d.is_dir():
        return None
    found = sorted((int(m.group(1)), p) for p in d.iterdir() if (m := _NAME.match(p.name)))
    return found[-1][1] if found else None


def load_checkpoint(path: str | Path) -> TrainingState:
    """Read a checkpoint (its JSON file or its folder → newest); verify and return it.

    Restores nothing by itself except reading: the engine puts the pieces back.
    Raises CheckpointError naming the file when it is missing, truncated,
    edited or not a kgkd checkpoint.
    """
    p = Path(path)
    if p.is_dir():
        newest = latest_checkpoint(p)
        if newest is None:
            raise CheckpointError(
                f"no checkpoint (ckpt-*.json) in folder '{p}'; train with checkpoint_dir set first"
            )
        p = newest
    if p.suffix == ".safetensors":
        p = p.with_suffix(".json")
    if not p.is_file():
        raise CheckpointError(
            f"checkpoint file '{p}' does not exist; pass a ckpt-*.json file or its folder"
        )
    try:
        record = json.loads(p.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(
            f"checkpoint file '{p}' is corrupt or truncated ({exc}); delete it to resume from an older one"
        ) from None
    required = ("format_version", "step", "epoch", "position", "tensor_file", "sha256", "rng")
    missing = [k for k in required if not isinstance(record, dict) or k not in record]
    if missing:
        raise CheckpointError(
            f"checkpoint file '{p}' lacks {missing}; it is not a kgkd training checkpoint"
        )
    if record["format_version"] != FORMAT_VERSION:
        raise CheckpointError(
            f"checkpoint file '{p}' has format version {record['format_version']}, "
            f"this kgkd reads version {FORMAT_VERSION}"
        )
    tensor_path = p.parent / record["tensor_file"]
    if not tensor_path.is_file():
        raise CheckpointError(f"checkpoint tensor file '{tensor_path}' (named by '{p}') is missing")
    if _sha256(tensor_path) != record["sha256"]:
        raise CheckpointError(
            f"checkpoint tensor file '{tensor_path}' is corrupt or truncated (sha256 does not match '{p}'); "
            "delete both files to resume from an older checkpoint"
        )
    try:
        tensors = load_file(str(tensor_path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(
            f"checkpoint tensor file '{tensor_path}' cannot be read: {exc}"
        ) from None
    return TrainingState(
        step=int(record["step"]),
        epoch=int(record["epoch"]),
        position=int(record["position"]),
        tensors=tensors,
        meta=record,
    )


# --------------------------------------------------------------------- helpers
def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _prune(directory: Path, keep: int) -> None:
    found = sorted((int(m.group(1)), p) for p in directory.iterdir() if (m := _NAME.match(p.name)))
    for _, json_path in found[:-keep]:
        tensor_path = json_path.with_suffix(".safetensors")
        json_path.unlink(missing_ok=True)
        tensor_path.unlink(missing_ok=True)


def _jsonable(obj: Any) -> Any:
    """Tuples → lists, tensors/NumPy scalars → Python numbers, drop callables."""
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items() if not callable(v)}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, torch.Tensor) and obj.numel() == 1:
        return obj.item()
    if isinstance(obj, np.generic):
        return obj.item()
    return obj
