"""Fit the signal model so the weighted teacher ensemble is reliable on labelled source domains.

Objective, full-batch over the source domains' training slices::

    L = mean_d NLL( Σ_t w(d, t) · p_t(x) , y )  +  a · MSE( â(d, t), acc(d, t) )  −  β · H(w(d, ·))

where ``w`` is the head's softmax over teachers, ``p_t`` teacher probabilities in
the domain's label space, ``acc`` the measured accuracy (auxiliary target, weight
``aux_weight``) and ``H`` the normalised entropy of the weights (``entropy_weight``
β, default 0: an optional brake on collapsing onto one teacher).

After fitting, the weights are shrunk toward uniform, ``(1 − λ)·w + λ/T``, with λ
chosen by inner leave-one-source-domain-out CV (or the single-source prior) — see
:mod:`kgkd.signals.shrinkage`; λ is stored in :class:`FittedSignals`.
A held-out slice of every source domain drives early stopping (its NLL is read from the
same full-batch forward pass, exact with the default ``dropout=0``); the best state is
kept. Labels of domains not in ``source_domains`` are never read.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from kgkd.errors import SignalError
from kgkd.signals.features import NodeFeaturizer, TextEmbedder
from kgkd.signals.fitted import FittedSignals, prepare_inputs
from kgkd.signals.graph_view import PATH_FEATURES, SignalGraph, signal_graph_from_kg
from kgkd.signals.heads import sample_evidence
from kgkd.signals.mixture import ensemble_nll  # re-exported: kgkd.signals.fit.ensemble_nll
from kgkd.signals.model import SignalModel, SignalModelConfig, single_thread
from kgkd.signals.reliability import LabelsByDomain, ProbsByDomain, check_probs, measure_reliability
from kgkd.signals.shrinkage import (
    SHRINKAGE_GRID,
    SINGLE_SOURCE_PRIOR,
    ShrinkageChoice,
    check_lambda,
    check_metric,
    choose_shrinkage,
)
from kgkd.utils.logging import get_logger
from kgkd.utils.seed import seed_everything

log = get_logger(__name__)


@dataclass
class DomainBatch:
    """One source domain's stacked teacher probabilities and labels, split train/val."""

    name: str
    probs: Tensor  # [N, T, C]
    labels: Tensor  # [N]
    mask: Tensor  # [T] teachers measured here
    train: Tensor  # indices
    val: Tensor  # indices


def teachers_of(probs_by_domain: ProbsByDomain, domains: Sequence[str]) -> list[str]:
    """Teachers with probabilities on any of ``domains``, in first-seen order."""
    seen: dict[str, None] = {}
    for d in domains:
        for t in probs_by_domain.get(d, {}):
            seen.setdefault(t, None)
    return list(seen)


def stack_domain(name: str, by_teacher: dict[str, Tensor], teachers: Sequence[str], labels: Tensor,
                 val_fraction: float, generator: torch.Generator) -> DomainBatch:
    """Stack one domain's probabilities [N, T, C] (zeros for unmeasured teachers) and split it."""
    ref = next(iter(by_teacher.values()))
    probs = torch.stack([by_teacher.get(t, torch.zeros_like(ref)).float() for t in teachers], dim=1)
    mask = torch.tensor([t in by_teacher for t in teachers])
    perm = torch.randperm(ref.size(0), generator=generator)
    n_val = round(val_fraction * ref.size(0)) if ref.size(0) > 1 else 0
    return DomainBatch(name, probs, labels.long(), mask, perm[n_val:], perm[:n_val])


def _domain_weights(model: SignalModel, scores: Tensor, h_d: Tensor, batch: DomainBatch, row: int,
                    idx: Tensor) -> Tensor:
    w = model.head.weights(scores[row : row + 1], batch.mask.unsqueeze(0))[0]
    if model.gate is None:
        return w
    probs = batch.probs[idx]
    return model.gate(w.expand(len(idx), -1), sample_evidence(probs), h_d[row].expand(len(idx), -1))


@single_thread()
def fit_signals(
    kg: Any,
    probs_by_domain: ProbsByDomain,
    labels_by_domain: LabelsByDomain,
    source_domains: Sequence[str],
    encoder: str = "sage",
    epochs: int = 200,
    seed: int = 0,
    val_fraction: float = 0.25,
    teachers: Sequence[str] | None = None,
    hidden: int = 64,
    num_layers: int = 2,
    dropout: float = 0.0,
    lr: float = 5e-3,
    weight_decay: float = 1e-4,
    aux_weight: float = 0.1,
    patience: int = 30,
    gate: bool = False,
    temperature: float = 1.0,
    use_text: bool = True,
    embedder: TextEmbedder | None = None,
    entropy_weight: float = 0.0,
    shrinkage: float | str = "cv",
    shrinkage_grid: Sequence[float] = SHRINKAGE_GRID,
    shrinkage_prior: float = SINGLE_SOURCE_PRIOR,
    shrinkage_metric: str = "nll",
    exclude_own_teacher: bool = False,
) -> FittedSignals:
    """Fit encoder + heads on the labelled ``source_domains``; see the module docstring.

    ``kg`` is a ``KnowledgeGraph`` (or a prepared :class:`SignalGraph`);
    ``probs_by_domain[d][t]`` are teacher probabilities [N, C] in domain ``d``'s label
    space and ``labels_by_domain[d]`` the labels [N]. Returns :class:`FittedSignals`
    bound to ``kg`` that give weights for every domain of the graph.

    ``shrinkage``: ``"cv"`` (default) picks λ from ``shrinkage_grid`` by inner
    leave-one-source-domain-out CV, or uses ``shrinkage_prior`` (0.5) when there is a
    single source domain; a number in [0, 1] fixes λ (0 = raw graph weights).
    ``shrinkage_metric``: what the CV scores λ by, ``"nll"`` (default) or ``"accuracy"``.
    ``exclude_own_teacher``: on each source domain, leave out the teachers trained on it —
    fit the way a held-out target is seen (it never has its own teacher).
    """
    if isinstance(shrinkage, str):
        if shrinkage != "cv":
            raise SignalError(f"shrinkage must be 'cv' or a number in [0, 1], got {shrinkage!r}")
    else:
        shrinkage = check_lambda(shrinkage)
    check_metric(shrinkage_metric)
    if entropy_weight < 0:
        raise SignalError(f"entropy_weight must be >= 0 (0 = no entropy bonus), got {entropy_weight}")
    if not source_domains:
        raise SignalError("fit_signals needs at least one labelled source domain (source_domains is empty)")
    for d in source_domains:
        if d not in probs_by_domain or d not in labels_by_domain:
            raise SignalError(
                f"source domain '{d}' has no {'teacher probabilities' if d not in probs_by_domain else 'labels'}; "
                "collect them (collect_teacher_probs) or drop it from source_domains"
            )
    src_probs = {d: probs_by_domain[d] for d in source_domains}
    src_labels = {d: labels_by_domain[d] for d in source_domains}
    check_probs(src_probs, src_labels)
    names = list(teachers) if teachers is not None else teachers_of(src_probs, source_domains)
    unmeasured = [t for t in names if not any(t in src_probs[d] for d in source_domains)]
    if unmeasured:
        raise SignalError(
            f"teacher(s) {unmeasured} have no measured reliability on any source domain {list(source_domains)}; "
            "collect their probabilities on a labelled domain or leave them out of --teachers"
        )
    if len(names) < 1:
        raise SignalError("fit_signals found no teachers in probs_by_domain")
    for d in source_domains:
        if not any(t in src_probs[d] for t in names):
            raise SignalError(
                f"source domain '{d}' has probabilities for none of the teachers {names} "
                f"(only for {sorted(src_probs[d])}); collect them or drop '{d}' from source_domains"
            )
    seed_everything(seed)
    graph = kg if isinstance(kg, SignalGraph) else signal_graph_from_kg(kg)
    featurizer = NodeFeaturizer(embedder, use_text=use_text).fit(graph.records)
    inputs = prepare_inputs(graph, featurizer, list(source_domains), names)
    config = SignalModelConfig(
        encoder=encoder, hidden=hidden, num_layers=num_layers, dropout=dropout, gate=gate, temperature=temperature,
        in_dims={t: int(x.size(1)) for t, x in inputs.x_dict.items()},
        edge_types=[list(e) for e in graph.edge_index], path_dim=len(PATH_FEATURES) + 1,
    )
    model = SignalModel(config)
    gen = torch.Generator().manual_seed(seed)
    own = {t: set(graph.teacher_facts.get(t, {}).get("trained_on", [])) for t in names} if exclude_own_teacher else {}

    def visible(d: str) -> dict[str, Tensor]:
        """Source ``d``'s teacher probabilities, without its own teachers when excluding them."""
        kept = {t: p for t, p in src_probs[d].items() if d not in own.get(t, ())}
        return kept or dict(src_probs[d])

    batches = [stack_domain(d, visible(d), names, src_labels[d], val_fraction, gen) for d in source_domains]
    reliability = measure_reliability(src_probs, src_labels, names)
    acc = reliability.accuracy[[reliability.domains.index(d) for d in source_domains]]
    measured = ~torch.isnan(acc)
    opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)

    def step() -> tuple[Tensor, Tensor, Tensor]:
        """One full-batch forward: train NLL (with grad), auxiliary loss, val NLL (detached)."""
        scores, rel, h_d = model(inputs.x_dict, inputs.edge_index, inputs.edge_weight, inputs.path,
                                 inputs.domain_idx, inputs.teacher_idx)
        nll: dict[str, list[Tensor]] = {"train": [], "val": []}
        for row, b in enumerate(batches):
            for split, idx in (("train", b.train), ("val", b.val)):
                if idx.numel():
                    w = _domain_weights(model, scores, h_d, b, row, idx)
                    nll[split].append(ensemble_nll(w, b.probs[idx], b.labels[idx]))
        train = torch.stack(nll["train"]).mean()
        val = torch.stack(nll["val"]).mean().detach() if nll["val"] else train.detach()
        aux = ((rel - torch.nan_to_num(acc))[measured] ** 2).mean() if measured.any() else torch.zeros(())
        if entropy_weight > 0:
            w_all = model.head.weights(scores)
            ent = -(w_all * w_all.clamp_min(1e-12).log()).sum(-1).mean() / math.log(max(len(names), 2))
            train = train - entropy_weight * ent
        return train, aux, val

    best_val, best_state, best_epoch, bad = math.inf, copy.deepcopy(model.state_dict()), 0, 0
    curve: list[dict[str, float]] = []
    for epoch in range(epochs):
        model.train()
        nll, aux, val = step()
        val_nll = val.item()  # the parameters that produced it are the ones we may keep
        curve.append({"epoch": epoch, "train_nll": round(nll.item(), 6), "aux": round(aux.item(), 6),
                      "val_nll": round(val_nll, 6)})
        if val_nll < best_val - 1e-6:
            best_val, best_state, best_epoch, bad = val_nll, copy.deepcopy(model.state_dict()), epoch, 0
        else:
            bad += 1
            if bad >= patience:
                break
        opt.zero_grad()
        (nll + aux_weight * aux).backward()
        opt.step()
    model.load_state_dict(best_state)
    model.eval()
    with torch.no_grad():
        final_train = step()[0].item()
    has_val = any(b.val.numel() for b in batches)
    uniform = [ensemble_nll(b.mask.float() / b.mask.sum(), b.probs[b.val if has_val else b.train],
                            b.labels[b.val if has_val else b.train]).item() for b in batches]
    history = {"best_epoch": best_epoch, "best_val_nll": round(best_val, 6), "train_nll": round(final_train, 6),
               "uniform_val_nll": round(sum(uniform) / len(uniform), 6), "epochs_run": len(curve), "curve": curve}
    log.info("signals fitted (%s): val NLL %.4f vs uniform %.4f at epoch %d", encoder, best_val,
             history["uniform_val_nll"], best_epoch)
    fitted = FittedSignals(model, featurizer, names, graph, reliability, history, list(source_domains))
    if shrinkage == "cv":
        def fit_fold(rest: list[str]) -> Any:
            sub = fit_signals(graph, src_probs, src_labels, rest, encoder=encoder, epochs=epochs, seed=seed,
                              val_fraction=val_fraction, teachers=names, hidden=hidden, num_layers=num_layers,
                              dropout=dropout, lr=lr, weight_decay=weight_decay, aux_weight=aux_weight,
                              patience=patience, gate=gate, temperature=temperature, use_text=use_text,
                              embedder=embedder, entropy_weight=entropy_weight, shrinkage=0.0,
                              exclude_own_teacher=exclude_own_teacher)
            return sub.sample_weights

        full = {b.name: b for b in (stack_domain(d, visible(d), names, src_labels[d], 0.0, gen)
                                    for d in source_domains)}
        choice = choose_shrinkage(fit_fold, {d: b.probs for d, b in full.items()},
                                  {d: b.labels for d, b in full.items()}, {d: b.mask for d, b in full.items()},
                                  list(source_domains), shrinkage_grid, shrinkage_prior, shrinkage_metric)
    else:
        choice = ShrinkageChoice(float(shrinkage), "fixed", [float(shrinkage)])
    fitted.shrinkage = choice.lam
    history["shrinkage"] = choice.to_dict()
    return fitted
