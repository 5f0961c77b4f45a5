"""Bad inputs of the KG signals: unmeasured teachers, disconnected domains, unresolvable label maps.

Each path is either a :class:`SignalError` whose message names the teacher / domain and
the fix, or a documented fallback (uniform weights + a warning). Teacher probabilities
are small constructed tensors (a teacher right with a stated probability) on the real
shipped digits graph; text features are off so no sentence encoder is loaded.
"""

from __future__ import annotations

import logging

import pytest
import torch

from kgkd.errors import SignalError
from kgkd.graph import KnowledgeGraph
from kgkd.paths import graphs_dir
from kgkd.signals import fit_signals
from kgkd.signals.collect import collect_domain_probs

TEACHERS = ["teacher_mnist", "teacher_usps", "teacher_svhn"]
ISLAND = """
:island a kgkd:Domain ;
    rdfs:label "Island" ;
    rdfs:comment "A domain nothing links to." ;
    kgkd:modality "image" .
"""


def teacher_probs(labels: torch.Tensor, accuracy: float, seed: int) -> torch.Tensor:
    """Probabilities [N, 10] of a teacher that predicts the true label with probability ``accuracy``."""
    g = torch.Generator().manual_seed(seed)
    wrong = (labels + torch.randint(1, 10, labels.shape, generator=g)) % 10
    pred = torch.where(torch.rand(labels.shape, generator=g) < accuracy, labels, wrong)
    return torch.softmax(3.0 * torch.nn.functional.one_hot(pred, 10).float(), dim=-1)


@pytest.fixture(scope="module")
def kg() -> KnowledgeGraph:
    return KnowledgeGraph.from_file(graphs_dir() / "digits.ttl")


@pytest.fixture(scope="module")
def data() -> tuple[dict, dict]:
    labels = {
        d: torch.randint(0, 10, (60,), generator=torch.Generator().manual_seed(i))
        for i, d in enumerate(["mnist", "uci_digits"])
    }
    accs = {"mnist": (0.95, 0.6, 0.3), "uci_digits": (0.4, 0.8, 0.5)}
    probs = {
        d: {
            t: teacher_probs(labels[d], a, seed=10 * i + j)
            for j, (t, a) in enumerate(zip(TEACHERS, accs[d]))
        }
        for i, d in enumerate(labels)
    }
    return probs, labels


def _fit(kg: KnowledgeGraph, probs: dict, labels: dict, sources: list[str], **kw):
    return fit_signals(kg, probs, labels, sources, epochs=5, seed=0, use_text=False, **kw)


def test_teacher_with_no_measured_reliability_anywhere_is_an_error(kg, data) -> None:
    probs, labels = data
    with pytest.raises(
        SignalError,
        match=r"teacher\(s\) \['teacher_fashion'\] have no measured reliability on any "
        r"source domain \['mnist', 'uci_digits'\]; collect their probabilities",
    ):
        _fit(kg, probs, labels, ["mnist", "uci_digits"], teachers=[*TEACHERS, "teacher_fashion"])
    # probabilities that put no mass on any of the domain's labels are no measurement either
    zero = {"mnist": {**probs["mnist"], "teacher_svhn": torch.zeros(60, 10)}}
    with pytest.raises(
        SignalError,
        match="teacher 'teacher_svhn' on domain 'mnist': 60 of 60 rows put no probability",
    ):
        _fit(kg, zero, labels, ["mnist"])


def test_source_domain_without_any_listed_teacher_is_an_error(kg, data) -> None:
    probs, labels = data
    only = {
        "mnist": probs["mnist"],
        "uci_digits": {"teacher_fashion": probs["uci_digits"]["teacher_svhn"]},
    }
    with pytest.raises(
        SignalError, match="source domain 'uci_digits' has probabilities for none of the teachers"
    ):
        _fit(kg, only, labels, ["mnist", "uci_digits"], teachers=TEACHERS)


def test_cv_fold_that_cannot_be_refitted_is_skipped_with_a_warning(kg, data, caplog) -> None:
    probs, labels = data
    partial = {
        "mnist": {t: p for t, p in probs["mnist"].items() if t != "teacher_svhn"},
        "uci_digits": probs["uci_digits"],
    }
    with caplog.at_level(logging.WARNING, logger="kgkd"):
        fitted = _fit(kg, partial, labels, ["mnist", "uci_digits"], teachers=TEACHERS)
    choice = fitted.history["shrinkage"]
    # holding out uci_digits leaves teacher_svhn unmeasured: that fold is skipped, the other decides λ
    assert choice["rule"] == "cv" and choice["folds"] == ["mnist"]
    assert "skipping fold 'uci_digits'" in caplog.text and "teacher_svhn" in caplog.text
    assert torch.allclose(fitted.weights(["mnist"]).sum(), torch.tensor(1.0))


def test_disconnected_domain_gets_uniform_weights_with_a_warning_everywhere(kg, data) -> None:
    probs, labels = data
    fitted = _fit(kg, probs, labels, ["mnist"], shrinkage=0.0)
    bound = fitted.with_graph(_with_island())
    for call in (
        lambda: bound.weights(["island"]),
        lambda: bound.sample_weights("island", torch.rand(4, 3, 10)),
        lambda: bound.as_weighting(["mnist", "island"])(torch.tensor([1, 1])),
    ):
        with pytest.warns(
            UserWarning,
            match="domain 'island' is not connected to any teacher in the graph; link it",
        ):
            w = call()
        assert torch.allclose(w[-1], torch.full((3,), 1 / 3))
    with pytest.raises(SignalError, match="'island' is not connected to any teacher"):
        bound.weights(["island"], strict=True)


def test_domain_whose_labels_cannot_be_mapped_is_an_error(kg) -> None:
    kg2 = _with_island()
    with pytest.raises(
        SignalError, match="domain 'island' states no kgkd:hasLabelSet in the graph; add one"
    ):
        collect_domain_probs(kg2, TEACHERS, ["island"], teachers=[torch.nn.Identity()] * 3)
    with pytest.raises(
        SignalError,
        match="teacher 'teacher_fashion' cannot be mapped into label set 'digits10'.*"
        "unmapped labels: t_shirt",
    ):
        collect_domain_probs(
            kg, ["teacher_mnist", "teacher_fashion"], ["mnist"], teachers=[torch.nn.Identity()] * 2
        )


def _with_island() -> KnowledgeGraph:
    """The shipped digits graph plus the unlinked ``island`` domain."""
    kg = KnowledgeGraph.from_file(graphs_dir() / "digits.ttl")
    kg.merge(
        KnowledgeGraph.from_string(
            "@prefix : <https://w3id.org/kgkd/graphs/digits#> .\n@prefix kgkd: <https://w3id.org/kgkd/vocab#> .\n"
            "@prefix rdfs: <http://www.w3.org/2000/01/rdf-schema#> .\n" + ISLAND
        )
    )
    return kg
