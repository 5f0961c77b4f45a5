"""Fitted signals: teacher weights for ANY domain of a graph, saved as safetensors + JSON.

A :class:`FittedSignals` is bound to a knowledge graph. Rebinding it to another
graph (``with_graph`` / ``load(dir, kg)``) — e.g. the shipped graph plus a few
Turtle lines describing a new domain — gives that domain weights with no
retraining and no labels: every parameter is per node/edge *type*, and the new
node's features come from its description and stated attributes.

Every weight it hands out is shrunk toward uniform by the fitted ``shrinkage`` λ
(``(1 − λ)·w_graph + λ/T``, see :mod:`kgkd.signals.shrinkage`); ``raw_weights``
gives the unshrunk graph weights.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from kgkd.errors import CheckpointError, SignalError
from kgkd.signals.features import TEXT_DIM, NodeFeaturizer
from kgkd.signals.graph_view import PATH_FEATURES, SignalGraph, signal_graph_from_kg
from kgkd.signals.heads import AlignmentHead, sample_evidence
from kgkd.signals.model import SignalModel, SignalModelConfig, single_thread
from kgkd.signals.reliability import ReliabilityTable
from kgkd.signals.shrinkage import check_lambda, shrink
from kgkd.utils.io import atomic_path, atomic_write_json
from kgkd.utils.logging import get_logger

log = get_logger(__name__)

WEIGHTS_FILE = "signals.safetensors"
CONFIG_FILE = "signals.json"


@dataclass
class GraphInputs:
    """Tensors the :class:`SignalModel` consumes for one (graph, domains, teachers) triple."""

    x_dict: dict[str, Tensor]
    edge_index: dict[tuple[str, str, str], Tensor]
    edge_weight: dict[tuple[str, str, str], Tensor]
    path: Tensor
    domain_idx: Tensor
    teacher_idx: Tensor


def prepare_inputs(
    graph: SignalGraph, featurizer: NodeFeaturizer, domains: Sequence[str], teachers: Sequence[str]
) -> GraphInputs:
    """Featurise ``graph`` and compute the pair features of ``domains`` × ``teachers``."""
    d_idx = graph.index("domain", domains, "domain")
    t_idx = graph.index("teacher", teachers, "teacher")
    x = featurizer.transform(graph.records)
    text = x["domain"][:, :TEXT_DIM] if featurizer.use_text else None
    path = graph.path_features(domains, teachers, text)
    return GraphInputs(x, graph.edge_index, graph.edge_weight, path, torch.tensor(d_idx), torch.tensor(t_idx))


class FittedSignals:
    """A fitted :class:`SignalModel` plus what it needs to run on any graph."""

    def __init__(
        self,
        model: SignalModel,
        featurizer: NodeFeaturizer,
        teachers: Sequence[str],
        graph: SignalGraph | None = None,
        reliability: ReliabilityTable | None = None,
        history: dict[str, Any] | None = None,
        source_domains: Sequence[str] = (),
        alignment_temperature: float = 2.0,
        shrinkage: float = 0.0,
    ) -> None:
        self.model = model.eval()
        self.shrinkage = check_lambda(shrinkage)
        self.featurizer = featurizer
        self.teachers = list(teachers)
        self.graph = graph
        self.reliability = reliability
        self.history = history or {}
        self.source_domains = list(source_domains)
        self.alignment_head = AlignmentHead(alignment_temperature)

    # --- binding -------------------------------------------------------------
    def with_graph(self, kg: Any) -> FittedSignals:
        """The same fitted model bound to another ``KnowledgeGraph`` (inductive; no retraining)."""
        graph = kg if isinstance(kg, SignalGraph) else signal_graph_from_kg(kg)
        return FittedSignals(self.model, self.featurizer, self.teachers, graph, self.reliability, self.history,
                             self.source_domains, self.alignment_head.temperature, self.shrinkage)

    def _graph(self) -> SignalGraph:
        if self.graph is None:
            raise SignalError("these signals are not bound to a graph; call with_graph(kg) or load(dir, kg)")
        return self.graph

    def domains(self) -> list[str]:
        """Every domain of the bound graph."""
        return self._graph().names("domain")

    @torch.no_grad()
    def _forward(self, domain_names: Sequence[str]) -> tuple[Tensor, Tensor]:
        inputs = prepare_inputs(self._graph(), self.featurizer, domain_names, self.teachers)
        with single_thread():
            scores, _, h_d = self.model(inputs.x_dict, inputs.edge_index, inputs.edge_weight, inputs.path,
                                        inputs.domain_idx, inputs.teacher_idx)
        return scores, h_d

    # --- signals -------------------------------------------------------------
    def weights(self, domain_names: Sequence[str] | None = None, strict: bool = False) -> Tensor:
        """Teacher weights [D, T] (rows sum to 1) for any domain, shrunk toward uniform by λ.

        A domain that no path links to any teacher gets uniform weights and a
        warning (``strict=True``: a :class:`SignalError` instead) — the graph says
        nothing about which teacher fits it.
        """
        return shrink(self.raw_weights(domain_names, strict), self.shrinkage)

    def raw_weights(self, domain_names: Sequence[str] | None = None, strict: bool = False) -> Tensor:
        """The graph head's weights [D, T] before shrinkage (uniform for disconnected domains)."""
        names = list(domain_names) if domain_names is not None else self.domains()
        scores, _ = self._forward(names)
        w = self.model.head.weights(scores)
        for i, d in enumerate(names):
            if not self._graph().reachable_teachers(d) & set(self.teachers):
                msg = (f"domain '{d}' is not connected to any teacher in the graph; link it (e.g. kgkd:similarTo, "
                       "kgkd:subDomainOf, kgkd:hasTask) to domains the teachers were trained on")
                if strict:
                    raise SignalError(msg)
                warnings.warn(msg + "; using uniform teacher weights", stacklevel=2)
                log.warning("%s; using uniform teacher weights", msg)
                w[i] = 1.0 / len(self.teachers)
        return w

    def alignment(self, domain_names: Sequence[str] | None = None) -> Tensor:
        """Feature-alignment weights α [D, T] (softer than the logit weights, tiny teachers dropped),
        shrunk toward uniform by the same λ as the teacher weights."""
        names = list(domain_names) if domain_names is not None else self.domains()
        scores, _ = self._forward(names)
        return shrink(self.alignment_head(scores), self.shrinkage)

    def domain_embeddings(self, domain_names: Sequence[str]) -> Tensor:
        """Encoder embeddings [D, hidden] of the domains (KG condition for gates / FiLM projectors)."""
        return self._forward(list(domain_names))[1]

    @torch.no_grad()
    def sample_weights(self, domain: str, probs: Tensor) -> Tensor:
        """Per-sample weights [N, T] on ``domain`` from teacher probabilities [N, T, C].

        The gate (if fitted) refines the raw graph weights; shrinkage is applied last.
        """
        _, h_d = self._forward([domain])
        w = self.raw_weights([domain]).expand(probs.size(0), -1)
        if self.model.gate is not None:
            w = self.model.gate(w, sample_evidence(probs), h_d.expand(probs.size(0), -1))
        return shrink(w.clone(), self.shrinkage)

    def as_weighting(self, domain_names: Sequence[str], label_maps: Sequence[Any] | None = None) -> Any:
        """A :class:`~kgkd.signals.weighting.KGWeighting` for the engine (domain id i = ``domain_names[i]``)."""
        from kgkd.signals.weighting import KGWeighting

        names = list(domain_names)
        gate = self.model.gate
        emb = self.domain_embeddings(names) if gate is not None else None
        return KGWeighting(self.raw_weights(names), domain_embeddings=emb, gate=gate, label_maps=label_maps,
                           shrinkage=self.shrinkage)

    # --- export --------------------------------------------------------------
    def to_json(self, domain_names: Sequence[str] | None = None) -> dict[str, Any]:
        names = list(domain_names) if domain_names is not None else self.domains()
        w = self.weights(names)
        a = self.alignment(names)
        return {
            "teachers": self.teachers,
            "domains": names,
            "source_domains": self.source_domains,
            "encoder": self.model.config.encoder,
            "shrinkage": self.shrinkage,
            "shrinkage_rule": (self.history.get("shrinkage") or {}).get("rule", "fixed"),
            "weights": {d: {t: round(float(w[i, j]), 6) for j, t in enumerate(self.teachers)} for i, d in enumerate(names)},
            "alignment": {d: {t: round(float(a[i, j]), 6) for j, t in enumerate(self.teachers)} for i, d in enumerate(names)},
        }

    def save(self, directory: str | Path) -> Path:
        """Write ``signals.safetensors`` (parameters) and ``signals.json`` (config, schema, history)."""
        from safetensors.torch import save_file

        out = Path(directory)
        out.mkdir(parents=True, exist_ok=True)
        state = {k: v.detach().contiguous() for k, v in self.model.state_dict().items()}
        with atomic_path(out / WEIGHTS_FILE) as tmp:
            save_file(state, str(tmp))
        atomic_write_json(out / CONFIG_FILE, {
            "format": "kgkd-signals/1",
            "model": self.model.config.to_dict(),
            "featurizer": self.featurizer.to_dict(),
            "teachers": self.teachers,
            "source_domains": self.source_domains,
            "path_features": list(PATH_FEATURES) + ["text_similarity"],
            "alignment_temperature": self.alignment_head.temperature,
            "shrinkage": self.shrinkage,
            "reliability": self.reliability.to_json() if self.reliability else None,
            "history": self.history,
        })
        return out

    @classmethod
    def load(cls, directory: str | Path, kg: Any | None = None) -> FittedSignals:
        """Read signals saved by :meth:`save`; bind them to ``kg`` when given."""
        from safetensors.torch import load_file

        d = Path(directory)
        cfg_path, w_path = d / CONFIG_FILE, d / WEIGHTS_FILE
        for p in (cfg_path, w_path):
            if not p.is_file():
                raise CheckpointError(f"fitted signals folder '{d}' lacks {p.name}; fit them with 'kgkd signals fit'")
        try:
            meta = json.loads(cfg_path.read_text())
            model = SignalModel(SignalModelConfig.from_dict(meta["model"]))
            model.load_state_dict(load_file(str(w_path)))
        except (KeyError, ValueError, RuntimeError, json.JSONDecodeError) as exc:
            raise CheckpointError(f"fitted signals in '{d}' are unreadable or inconsistent ({exc}); refit them") from exc
        rel = ReliabilityTable.from_json(meta["reliability"]) if meta.get("reliability") else None
        fitted = cls(model, NodeFeaturizer.from_dict(meta["featurizer"]), meta["teachers"], None, rel,
                     meta.get("history"), meta.get("source_domains", []), meta.get("alignment_temperature", 2.0),
                     meta.get("shrinkage", 0.0))
        return fitted.with_graph(kg) if kg is not None else fitted
