"""Calibration, graph prior, domain posterior, per-sample gate and the safe ``kg`` default.

Real graphs (rdflib parsing of graphs/rotated_digits.ttl, plus a domain added in Turtle),
synthetic teacher probabilities whose accuracy falls with the angle gap — the structure
the graph states — so the expected winner is known.
"""

from __future__ import annotations

import math

import pytest
import torch

from kgkd.errors import SignalError
from kgkd.graph import KnowledgeGraph
from kgkd.paths import repo_root
from kgkd.signals import WEIGHTINGS, DomainSimilarity, TeacherCalibration, fit_temperature, temper
from kgkd.signals.calibration import nll
from kgkd.signals.graph_weighting import PriorRule
from kgkd.signals.inner_cv import FoldContext, inner_folds
from kgkd.signals.safe import SafeKGWeighting, bootstrap_gain_quantile

ANGLES = (0, 15, 30, 45, 60, 75)
DOMAINS = [f"rmnist_{a}" for a in ANGLES]
TEACHERS = [f"teacher_{d}" for d in DOMAINS]
TEACHER_DOMAINS = {t: [d] for t, d in zip(TEACHERS, DOMAINS)}


@pytest.fixture(scope="module")
def kg() -> KnowledgeGraph:
    return KnowledgeGraph.from_file(repo_root() / "graphs" / "rotated_digits.ttl")


@pytest.fixture(scope="module")
def sim(kg: KnowledgeGraph) -> DomainSimilarity:
    return DomainSimilarity.from_kg(kg, use_text=False)


def angle_problem(n: int = 240, seed: int = 0, classes: int = 10, sharp: float = 3.0):
    """Teacher t is right on domain d with probability falling with |angle(d) - angle(t)|; over-confident.

    Errors are correlated as under real domain shift: a wrong teacher picks the sample's one
    "confusable" class, and a sample hard for one teacher is hard for the farther ones too.
    """
    gen = torch.Generator().manual_seed(seed)
    probs, labels, feats = {}, {}, {}
    for i, d in enumerate(DOMAINS):
        y = torch.randint(0, classes, (n,), generator=gen)
        confusable = (y + torch.randint(1, classes, (n,), generator=gen)) % classes
        hardness = torch.rand(n, generator=gen)
        by_t = {}
        for j, t in enumerate(TEACHERS):
            acc = 0.97 * math.exp(-abs(ANGLES[i] - ANGLES[j]) / 25.0)
            right = hardness < acc
            pred = torch.where(right, y, confusable)
            logits = torch.randn(n, classes, generator=gen) * 0.5
            logits[torch.arange(n), pred] += sharp
            by_t[t] = torch.softmax(logits * 2.0, -1)  # * 2: over-confident teachers
        probs[d], labels[d] = by_t, y
        centre = torch.zeros(16)
        centre[i] = 3.0
        feats[d] = centre + torch.randn(n, 16, generator=gen)
    return probs, labels, feats


def test_calibration_lowers_nll_on_held_out_samples() -> None:
    probs, labels, _ = angle_problem()
    p, y = probs["rmnist_30"]["teacher_rmnist_15"], labels["rmnist_30"]
    t = fit_temperature(p[:120], y[:120])
    assert t > 1.0  # over-confident teachers are softened
    assert nll(temper(p[120:], t), y[120:]) < nll(p[120:], y[120:]) - 0.05


def test_calibration_is_fitted_only_where_the_teacher_is_a_stranger() -> None:
    probs, labels, _ = angle_problem()
    cal = TeacherCalibration.fit(probs, labels, TEACHERS, TEACHER_DOMAINS, DOMAINS[:3])
    assert cal.fitted_on["teacher_rmnist_0"] == ["rmnist_15", "rmnist_30"]
    assert all(v > 0 for v in cal.temperatures.values())
    out = cal.apply(torch.stack([probs["rmnist_0"][t] for t in TEACHERS], 1), TEACHERS)
    assert torch.allclose(out.sum(-1), torch.ones(out.shape[:2]), atol=1e-5)


def test_graph_prior_at_beta_zero_is_exactly_uniform(sim: DomainSimilarity) -> None:
    ctx = FoldContext(DOMAINS[:5], TEACHERS[:5], TEACHER_DOMAINS, None, sim)
    w = PriorRule(0.0, 0.0).weights(ctx, "rmnist_75", torch.rand(7, 5, 10), None)
    assert torch.allclose(w, torch.full((7, 5), 0.2))


def test_graph_prior_trusts_the_nearest_angles(sim: DomainSimilarity) -> None:
    ctx = FoldContext(DOMAINS, TEACHERS, TEACHER_DOMAINS, None, sim)
    teachers = [t for t in TEACHERS if t != "teacher_rmnist_30"]
    ctx.teachers = teachers
    w = PriorRule(10.0, 0.0).weights(ctx, "rmnist_30", torch.rand(1, 5, 10), None)[0]
    order = [teachers[i] for i in w.argsort(descending=True).tolist()]
    assert set(order[:2]) == {"teacher_rmnist_15", "teacher_rmnist_45"}
    assert order[-1] == "teacher_rmnist_75"


def test_inner_folds_leave_the_pseudo_targets_own_teacher_out() -> None:
    folds = inner_folds(DOMAINS[:4], TEACHERS[:4], TEACHER_DOMAINS)
    assert [f[0] for f in folds] == DOMAINS[:4]
    for target, rest, kept in folds:
        assert target not in rest
        assert f"teacher_{target}" not in kept and len(kept) == 3


def test_gnn_fit_excludes_the_in_domain_teacher(kg: KnowledgeGraph) -> None:
    from kgkd.signals import fit_signals

    probs, labels, _ = angle_problem(n=60)
    sources = DOMAINS[:3]
    teachers = TEACHERS[:3]
    sub = {d: {t: probs[d][t] for t in teachers} for d in sources}
    fitted = fit_signals(kg, sub, {d: labels[d] for d in sources}, sources, teachers=teachers, epochs=5,
                         use_text=False, shrinkage=0.0, exclude_own_teacher=True)
    w = fitted.weights(sources)
    assert w.shape == (3, 3) and torch.allclose(w.sum(1), torch.ones(3), atol=1e-5)


def test_kg_picks_a_graph_variant_and_beats_uniform_on_a_held_out_angle(kg: KnowledgeGraph, sim) -> None:
    probs, labels, feats = angle_problem()
    target = "rmnist_30"
    sources = [d for d in DOMAINS if d != target]
    teachers = [t for t in TEACHERS if t != "teacher_rmnist_30"]
    sub = {d: {t: probs[d][t] for t in teachers} for d in DOMAINS}
    kgw = WEIGHTINGS.get("kg")(similarity=sim).fit(kg, sub, {d: labels[d] for d in sources}, sources, teachers,
                                                   features={d: feats[d] for d in sources})
    assert kgw.decision["chosen"] not in ("uniform", "calibrated_uniform"), kgw.decision
    p = torch.stack([sub[target][t] for t in teachers], 1)
    acc = float((kgw.mixture(target, p, feats[target]).argmax(-1) == labels[target]).float().mean())
    uni = float((p.mean(1).argmax(-1) == labels[target]).float().mean())
    assert acc >= uni + 0.05, (acc, uni)
    # the decision for 30° rests on the inner folds of the angles nearest to it
    near = kgw.local_evidence(target)
    assert len(near) == 3 and set(near[:2]) == {"rmnist_15", "rmnist_45"}, near
    assert kgw.decision_for(target)["evidence"] == "nearest inner folds: " + ", ".join(near)
    assert kgw.decision_for("not_in_graph") is kgw.decision  # unknown domains: the all-folds decision


def test_kg_falls_back_to_its_base_when_every_candidate_loses(kg: KnowledgeGraph, sim) -> None:
    """Teachers right on complementary halves, confidently: averaging is best and no prior helps."""
    gen = torch.Generator().manual_seed(1)
    probs, labels = {}, {}
    for d in DOMAINS:
        y = torch.randint(0, 2, (200,), generator=gen)
        by_t = {}
        for j, t in enumerate(TEACHERS):
            right = (torch.arange(200) % len(TEACHERS)) != j  # each teacher wrong on its own sixth
            p = torch.where(right, y, 1 - y)
            conf = torch.where(right, torch.full((200,), 0.7), torch.full((200,), 0.55))
            by_t[t] = torch.stack([torch.where(p == 0, conf, 1 - conf), torch.where(p == 1, conf, 1 - conf)], 1)
        probs[d], labels[d] = by_t, y
    sources = DOMAINS[1:]
    teachers = TEACHERS[1:]
    method = SafeKGWeighting(similarity=sim).fit(kg, probs, {d: labels[d] for d in sources}, sources, teachers)
    base = method.decision["chosen"]
    assert base in ("uniform", "calibrated_uniform"), method.decision
    p = torch.stack([probs["rmnist_0"][t] for t in teachers], 1)
    expected = method.calibrated(p).mean(1) if base == "calibrated_uniform" else p.mean(1)
    assert torch.allclose(method.mixture("rmnist_0", p), expected, atol=1e-6)


def confident_problem(confidence: float, seed: int = 2) -> tuple[dict, dict]:
    """All teachers right on the same random 75 % of each domain (correlated), always with ``confidence``."""
    gen = torch.Generator().manual_seed(seed)
    probs, labels = {}, {}
    for d in DOMAINS:
        y = torch.randint(0, 2, (300,), generator=gen)
        by_t = {}
        right = torch.rand(300, generator=gen) < 0.75
        for t in TEACHERS:
            pred = torch.where(right, y, 1 - y)
            by_t[t] = torch.stack([torch.where(pred == 0, confidence, 1 - confidence),
                                   torch.where(pred == 1, confidence, 1 - confidence)], 1)
        probs[d], labels[d] = by_t, y
    return probs, labels


@pytest.mark.parametrize(("confidence", "base"), [(0.995, "calibrated_uniform"), (0.75, "uniform")])
def test_kg_base_is_the_uniform_with_the_lower_inner_cv_log_loss(kg: KnowledgeGraph, sim, confidence: float,
                                                                  base: str) -> None:
    """Correlated teachers 99.5 % sure but 75 % right → calibrated base; honest 75 % teachers → plain."""
    probs, labels = confident_problem(confidence)
    sources, teachers = DOMAINS[1:], TEACHERS[1:]
    method = SafeKGWeighting(similarity=sim).fit(kg, probs, {d: labels[d] for d in sources}, sources, teachers)
    nll = method.decision["cv_nll"]
    assert method.decision["chosen"] == base, method.decision
    if base == "calibrated_uniform":
        assert nll["calibrated_uniform"] < nll["uniform"]


def test_kg_with_one_labelled_source_does_not_guess(kg: KnowledgeGraph, sim) -> None:
    probs, labels, _ = angle_problem(n=50)
    method = SafeKGWeighting(similarity=sim).fit(kg, probs, {"rmnist_0": labels["rmnist_0"]}, ["rmnist_0"],
                                                 TEACHERS[1:])
    assert method.decision["chosen"] == "uniform"
    assert "1 labelled source" in method.decision["why"]


def test_domain_posterior_routes_samples_to_their_sources_teacher(kg: KnowledgeGraph) -> None:
    probs, labels, feats = angle_problem(n=120)
    sources = DOMAINS[:4]
    teachers = TEACHERS[:4]
    method = WEIGHTINGS.get("domain_posterior")().fit(kg, probs, {d: labels[d] for d in sources}, sources,
                                                      teachers, features={d: feats[d] for d in sources})
    p = torch.stack([probs["rmnist_15"][t] for t in teachers], 1)
    w = method.sample_weights("rmnist_15", method.calibrated(p), feats["rmnist_15"])
    assert w.argmax(1).eq(1).float().mean() > 0.8


def test_feature_methods_say_they_need_features(kg: KnowledgeGraph) -> None:
    probs, labels, _ = angle_problem(n=30)
    with pytest.raises(SignalError, match="needs the sources' sample features"):
        WEIGHTINGS.get("domain_posterior")().fit(kg, probs, labels, DOMAINS[:2], TEACHERS[:2])


def test_a_domain_written_in_turtle_gets_weights_without_labels(kg: KnowledgeGraph) -> None:
    """A new 37° domain added as Turtle only: the fitted prior weights it toward the 30°/45° teachers."""
    text = (repo_root() / "graphs" / "rotated_digits.ttl").read_text(encoding="utf-8")
    text += """
:rmnist_37 a kgkd:Domain ; rdfs:label "Rotated MNIST 37" ;
    rdfs:comment "MNIST digits rotated by 37 degrees counter-clockwise." ;
    kgkd:modality "image" ; kgkd:hasTask :digit_classification ; kgkd:hasLabelSet :digits10 ;
    kgkd:rotationAngle 37 ;
    kgkd:similarTo [ kgkd:target :rmnist_30 ; kgkd:weight 0.9 ] , [ kgkd:target :rmnist_45 ; kgkd:weight 0.9 ] .
"""
    new_kg = KnowledgeGraph.from_string(text, format="turtle")
    probs, labels, _ = angle_problem()
    method = WEIGHTINGS.get("graph_prior")(use_text=False).fit(new_kg, probs, labels, DOMAINS, TEACHERS)
    p = torch.full((1, len(TEACHERS), 10), 0.1)
    w = method.sample_weights("rmnist_37", p)[0]
    top = {TEACHERS[i] for i in w.argsort(descending=True)[:2].tolist()}
    assert top == {"teacher_rmnist_30", "teacher_rmnist_45"}, w


def test_bootstrap_gain_quantile_is_positive_only_for_a_real_gain() -> None:
    better = [torch.ones(100, dtype=torch.bool)]
    worse = [torch.arange(100) % 2 == 0]
    assert bootstrap_gain_quantile(better, worse) > 0.4
    assert bootstrap_gain_quantile(worse, worse) == 0.0


def test_similarity_names_an_unknown_domain(sim: DomainSimilarity) -> None:
    with pytest.raises(SignalError, match="'hotel_reviews' is not a kgkd:Domain node"):
        sim.row("relations", "hotel_reviews", DOMAINS)


def test_a_saved_kg_choice_gives_domain_weights_on_any_graph(kg: KnowledgeGraph) -> None:
    from kgkd.signals.safe import domain_weights_from_choice

    choice = {"rule": {"rule": "graph_prior", "beta_graph": 10.0, "beta_text": 0.0},
              "teachers": TEACHERS[:2] + TEACHERS[3:], "teacher_domains": TEACHER_DOMAINS,
              "sources": DOMAINS[:2] + DOMAINS[3:]}
    table = domain_weights_from_choice(kg, choice, ["rmnist_30", "rmnist_75"])
    assert table.shape == (2, 5) and torch.allclose(table.sum(1), torch.ones(2), atol=1e-5)
    assert int(table[1].argmax()) == 4  # 75° trusts its own teacher most
    uniform = domain_weights_from_choice(kg, {**choice, "rule": {"rule": "uniform"}}, ["rmnist_30"])
    assert torch.allclose(uniform, torch.full((1, 5), 0.2))
    assert domain_weights_from_choice(kg, {**choice, "rule": {"rule": "kg_gate"}}, ["rmnist_30"]) is None


def test_transductive_rule_at_infinite_lambda_is_the_prior(sim: DomainSimilarity) -> None:
    from kgkd.signals.transductive import AdaptRule

    probs, _, _ = angle_problem(n=60)
    teachers = TEACHERS[1:]
    ctx = FoldContext(DOMAINS[1:], teachers, {t: TEACHER_DOMAINS[t] for t in teachers}, None, sim)
    p = torch.stack([probs["rmnist_0"][t] for t in teachers], 1)
    prior = PriorRule(5.0, 0.0).weights(ctx, "rmnist_0", p, None)
    exact = AdaptRule(PriorRule(5.0, 0.0), math.inf).weights(ctx, "rmnist_0", p, None)
    assert torch.allclose(exact, prior, rtol=0.0, atol=1e-7)  # λ = inf returns the prior's own weights
    near = AdaptRule(PriorRule(5.0, 0.0), 1e6).weights(ctx, "rmnist_0", p, None)
    assert torch.allclose(near, prior, atol=1e-3), (near[0], prior[0])


def test_transductive_rule_moves_toward_the_teacher_that_is_right_on_the_target() -> None:
    """One teacher confident and right, the others diffuse noise: label-free refinement finds it."""
    from kgkd.signals.transductive import refine_weights

    gen = torch.Generator().manual_seed(0)
    n, t, c = 300, 4, 10
    y = torch.randint(0, c, (n,), generator=gen)
    logits = torch.randn(n, t, c, generator=gen)
    logits[torch.arange(n), 0, y] += 4.0  # teacher 0 is right, the rest are noise
    p = torch.softmax(logits, -1)
    prior = torch.full((n, t), 1.0 / t)
    w = refine_weights(prior, p, lam=0.3)
    assert torch.allclose(w.sum(-1), torch.ones(n))
    assert float(w[0, 0]) > 0.5 > float(prior[0, 0]), w[0]
    weaker = refine_weights(prior, p, lam=3.0)  # a stronger pull to the prior moves less
    assert float(prior[0, 0]) < float(weaker[0, 0]) < float(w[0, 0])
    acc = lambda ws: float(((ws.unsqueeze(-1) * p).sum(1).argmax(-1) == y).float().mean())
    assert acc(w) > acc(prior)


def test_kg_and_kg_adapt_with_one_labelled_source_stay_uniform(kg: KnowledgeGraph, sim) -> None:
    probs, labels, _ = angle_problem(n=50)
    default = SafeKGWeighting(similarity=sim).fit(kg, probs, {"rmnist_0": labels["rmnist_0"]}, ["rmnist_0"],
                                                  TEACHERS[1:])
    assert not any(n.startswith("adapt(") for n in default.rules)  # off by default (no confirmed gain)
    kgw = SafeKGWeighting(similarity=sim, use_adapt=True).fit(kg, probs, {"rmnist_0": labels["rmnist_0"]},
                                                              ["rmnist_0"], TEACHERS[1:])
    assert any(n.startswith("adapt(") for n in kgw.rules)  # the transductive rules are candidates
    assert kgw.decision["chosen"] == "uniform"
    adapt = WEIGHTINGS.get("kg_adapt")(similarity=sim).fit(kg, probs, {"rmnist_0": labels["rmnist_0"]},
                                                           ["rmnist_0"], TEACHERS[1:])
    p = torch.stack([probs["rmnist_15"][t] for t in TEACHERS[1:]], 1)
    w = adapt.sample_weights("rmnist_15", adapt.calibrated(p))
    assert torch.allclose(w, torch.full_like(w, 1.0 / len(TEACHERS[1:])))


def test_attribute_distance_keeps_the_angle_scale_and_ignores_constant_attributes(sim: DomainSimilarity) -> None:
    """15° is half as far as 30° (no row normalisation); ``channels 1`` on every domain adds nothing."""
    d = sim.row("attribute_distance", "rmnist_30", DOMAINS)
    assert float(d[2]) == 0.0
    assert torch.allclose(d[1], d[3], atol=1e-6) and torch.allclose(d[0], 2 * d[1], atol=1e-5)
    angles = torch.tensor(ANGLES, dtype=torch.float)
    assert torch.allclose(d[1], 15.0 / angles.std(), atol=1e-5)  # only rotationAngle counts


def test_attribute_kernel_prior_halves_per_step_as_beta_says(sim: DomainSimilarity) -> None:
    """``exp(-β_a·|Δz|)``: the 15°-away teacher outweighs the 30°-away one by exactly ``exp(β_a·15/sd)``."""
    ctx = FoldContext(DOMAINS, TEACHERS, TEACHER_DOMAINS, None, sim)
    ctx.teachers = [t for t in TEACHERS if t != "teacher_rmnist_0"]
    w = PriorRule(0.0, 0.0, 2.0).weights(ctx, "rmnist_0", torch.rand(1, 5, 10), None)[0]
    step = 15.0 / torch.tensor(ANGLES, dtype=torch.float).std()
    assert torch.allclose(w[0] / w[1], torch.exp(2.0 * step), rtol=1e-4)
    assert list(w.argsort(descending=True).tolist()) == [0, 1, 2, 3, 4]


def test_a_graph_without_numeric_attributes_has_no_attribute_grid() -> None:
    from kgkd.signals.graph_weighting import attr_grid, prior_rules

    flat = DomainSimilarity(["a", "b"], torch.eye(2), torch.eye(2))
    assert attr_grid(flat) == (0.0,) and not any("ba=" in name for name in prior_rules(flat))
    assert not flat.attribute_distance.any()


def test_a_domain_without_attributes_is_neutral_in_the_attribute_view() -> None:
    from kgkd.signals.features import NodeRecord
    from kgkd.signals.similarity import attribute_distance

    records = [NodeRecord("a", "", {"angle": 0.0}), NodeRecord("b", "", {"angle": 30.0}),
               NodeRecord("c", "", {"angle": 60.0}), NodeRecord("new", "", {})]
    d = attribute_distance(records)
    assert torch.allclose(d[3], torch.zeros(4))  # its own row: every teacher equally far, no preference
    assert torch.allclose(d[0, 3], d[0, 1:3].mean())  # others see it at their mean distance


def test_a_saved_choice_with_an_attribute_kernel_rebuilds_its_weights(kg: KnowledgeGraph) -> None:
    from kgkd.signals.safe import domain_weights_from_choice

    teachers = TEACHERS[:2] + TEACHERS[3:]  # 0°, 15°, 45°, 60°, 75°
    choice = {"rule": {"rule": "graph_prior", "beta_graph": 0.0, "beta_text": 0.0, "beta_attr": 8.0},
              "teachers": teachers, "teacher_domains": TEACHER_DOMAINS, "sources": DOMAINS[:2] + DOMAINS[3:]}
    w = domain_weights_from_choice(kg, choice, ["rmnist_30"])[0]
    assert torch.allclose(w[1], w[2], atol=1e-6) and float(w[1] + w[2]) > 0.95  # 15° and 45°, equally
