"""The benchmarks of ``signals_suite.py``: teachers' probabilities, labels and sample features per domain.

A :class:`Problem` holds, for every domain and split, each teacher's probabilities in
the domain's label space, the labels and frozen sample features (MiniLM embeddings for
text, pooled pixels for images), plus what is needed to distil a student from a table
of per-sample teacher mixtures. Teachers are kgkd's own: for ``text11`` one MiniLM
probe (frozen MiniLM-L6 + logistic head) and one TF-IDF + logistic-regression teacher
per domain; for ``rotated_digits`` one DigitCNN per angle trained with kgkd's teacher
trainer (through the recipe pipeline); for ``digits_ccexam`` the pretrained ccexam nets.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import _common as C
import numpy as np
import torch
from torch import Tensor

from kgkd.data import MultiDomainDataset, load_domain
from kgkd.data.specs import SENTIMENT_LABELS
from kgkd.graph import KnowledgeGraph
from kgkd.paths import repo_root
from kgkd.recipes import pipeline as P
from kgkd.signals.sample_features import SentenceEncoder, image_features

SPLITS = ("train", "val", "test")
TEXT11 = ("amazon", "imdb", "yelp", "tweets", "movie_reviews", "product_reviews", "nyt_editorials",
          "books", "dvd", "electronics", "kitchen")
ROTATED = tuple(f"rmnist_{a}" for a in (0, 15, 30, 45, 60, 75))

ByDomain = dict[str, dict[str, Tensor]]


class BenchmarkSkipped(Exception):
    """A benchmark whose data cannot be had on this machine (the suite records why and goes on)."""


@dataclass
class Problem:
    """Everything the suite needs about one benchmark at one seed."""

    name: str
    kg: Any
    domains: list[str]
    targets: list[str]
    teachers: list[str]
    teacher_domains: dict[str, list[str]]
    label_names: tuple[str, ...]
    probs: dict[str, ByDomain]  # split → domain → teacher → [N, C]
    labels: dict[str, dict[str, Tensor]]  # split → domain → [N]
    features: dict[str, dict[str, Tensor]]  # split → domain → [N, F]
    train_dataset: Any = None  # items in the order of probs["train"] (domain by domain)
    test_items: dict[str, Any] = field(default_factory=dict)  # domain → its test dataset (student scoring)
    make_student: Callable[[], Any] | None = None
    collate_options: dict[str, Any] = field(default_factory=dict)  # max_length / image_size of student.collator()
    engine: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    #: None: leave-one-domain-out (each fold fits on the other domains, without the target's teachers).
    #: Set (amalgamation): every fold fits on these labelled domains with all teachers; the other
    #: domains are held out, these are served in-domain (their test split is never fitted on).
    fit_domains: list[str] | None = None


# --- text11 -----------------------------------------------------------------------------
TEXT_LIMITS = {"train": 400, "val": 200, "test": 400}


def _text_split(domain: str, split: str, limit: int) -> Any:
    return load_domain(domain, split, limit=limit, seed=0)  # fixed subsets: embeddings are computed once


def text11_graph(domains: Sequence[str]) -> Any:
    """graphs/sentiment.ttl plus, written in Turtle, the suite's two teacher nodes per domain."""
    base = (repo_root() / "graphs" / "sentiment.ttl").read_text(encoding="utf-8")
    nodes = []
    for d in domains:
        for kind, arch, what in (("probe", "minilm_probe", "linear probe on frozen MiniLM-L6 embeddings"),
                                 ("tfidf", "tfidf_logreg", "TF-IDF + logistic regression")):
            nodes.append(f':teacher_{kind}_{d} a kgkd:Teacher ; rdfs:label "{d} {kind} teacher" ;\n'
                         f'    rdfs:comment "{what}, trained on the {d} domain." ;\n'
                         f'    kgkd:architecture "{arch}" ; kgkd:trainedOn :{d} ; kgkd:predicts :sentiment_binary .\n')
    return KnowledgeGraph.from_string(base + "\n" + "\n".join(nodes), format="turtle")


def text11(scale: str, seed: int) -> Problem:
    """11 sentiment domains, one MiniLM-probe and one TF-IDF teacher per domain."""
    from kgkd.models.embedding_probe import fit_embedding_probe
    from kgkd.models.tfidf import fit_tfidf_logreg

    limits = {k: (v // 8 if scale == "smoke" else v) for k, v in TEXT_LIMITS.items()}
    domains = list(TEXT11[:4] if scale == "smoke" else TEXT11)
    kg = text11_graph(domains)
    encoder = SentenceEncoder(max_length=128, show_progress=True)
    data = {s: {d: _text_split(d, s, limits[s]) for d in domains} for s in SPLITS}
    feats = {s: {d: encoder.embed(data[s][d].texts) for d in domains} for s in SPLITS}
    labels = {s: {d: torch.as_tensor(data[s][d].labels).long() for d in domains} for s in SPLITS}
    gen = np.random.default_rng(seed)
    models: dict[str, Any] = {}
    teacher_domains: dict[str, list[str]] = {}
    for d in domains:  # each teacher sees a seeded 80% of its domain's training split
        keep = np.sort(gen.permutation(len(data["train"][d]))[: int(0.8 * len(data["train"][d]))])
        texts = [data["train"][d].texts[i] for i in keep]
        y = data["train"][d].labels[keep].tolist()
        probe, tfidf = f"teacher_probe_{d}", f"teacher_tfidf_{d}"
        models[probe] = fit_embedding_probe(feats["train"][d][keep], y, SENTIMENT_LABELS, name=probe, seed=seed)
        models[tfidf] = fit_tfidf_logreg(texts, y, SENTIMENT_LABELS, name=tfidf, seed=seed)
        teacher_domains[probe] = teacher_domains[tfidf] = [d]
    probs: dict[str, ByDomain] = {s: {} for s in SPLITS}
    with torch.inference_mode():
        for s in SPLITS:
            for d in domains:
                texts = data[s][d].texts
                out = {}
                for name, model in models.items():
                    if name.startswith("teacher_probe_"):
                        logits = model({"embedding": feats[s][d]}).logits
                    else:
                        logits = model({"tfidf": model.collator().vectors(texts)}).logits
                    out[name] = torch.softmax(logits.float(), -1)
                probs[s][d] = out
    train = MultiDomainDataset([data["train"][d] for d in domains], split="train")

    def make_student() -> Any:
        from kgkd.models.students import TextStudent
        from kgkd.models.students.base import student_tokenizer

        texts = [t for d in domains for t in data["train"][d].texts]
        return TextStudent.from_texts(texts, student_tokenizer(), label_names=SENTIMENT_LABELS,
                                      max_length=128, init_from_teacher=True)

    return Problem(
        "text11", kg, domains, list(domains), list(models), teacher_domains, SENTIMENT_LABELS, probs, labels,
        feats, train, dict(data["test"]), make_student, {"max_length": 128},
        {"epochs": 1 if scale == "smoke" else 2, "batch_size": 32, "lr": 2e-3, "temperature": 2.0, "alpha": 1.0},
        [(f"per domain: train {limits['train']} (teachers use a seeded 80 %), val {limits['val']}, "
         f"test {limits['test']}; data subsets fixed (seed 0), the seed varies teachers, classifiers and students"),
         ("MiniLM family = frozen MiniLM-L6 (max_length 128) + logistic head per domain (one shared encoder pass); "
         "second family = TF-IDF + logistic regression (kgkd tfidf_logreg)")],
    )


# --- digits through the recipe pipeline ---------------------------------------------------
def resize(image: Tensor, size: int = 28) -> Tensor:
    """One ``[1, H, W]`` image as ``[1, 1, size, size]`` (UCI's 8×8 digits next to MNIST's 28×28)."""
    img = image.unsqueeze(0).float()
    return img if img.shape[-1] == size else torch.nn.functional.interpolate(img, size=size, mode="bilinear")
def _from_workspace(name: str, ws: Any, targets: Sequence[str], engine: dict[str, Any]) -> Problem:
    teachers = [t.name for t in ws.teachers]
    probs: dict[str, ByDomain] = {}
    labels: dict[str, dict[str, Tensor]] = {}
    feats: dict[str, dict[str, Tensor]] = {}
    for s in SPLITS:
        view = ws.views[s]
        mapped = P.mapped_probs(ws.caches[s], ws.label_maps, len(view))
        probs[s], labels[s] = P.split_by_domain(view, mapped, ws.domains, teachers)
        dom = np.asarray(view.domains)
        pooled = torch.cat([image_features(resize(view[i]["image"])) for i in range(len(view))])
        feats[s] = {d: pooled[torch.as_tensor(dom == k)] for k, d in enumerate(ws.domains)}
    t_domains = {t.name: list(t.trained_on) for t in ws.kg.teachers() if t.name in teachers}
    student_labels = ws.student_labels

    def make_student() -> Any:
        from kgkd.models.students import DigitStudent, DigitStudentConfig

        return DigitStudent(DigitStudentConfig(label_names=tuple(student_labels), input_size=ws.cfg.data.image_size))

    test_items = dict(zip(ws.domains, ws.data["test"].datasets))
    return Problem(name, ws.kg, list(ws.domains), list(targets), teachers, t_domains, tuple(student_labels), probs,
                   labels, feats, ws.data["train"], test_items, make_student, {"image_size": ws.cfg.data.image_size}, engine)


def recipe_problem(name: str, config: str, domains: Sequence[str], targets: Sequence[str],
                   teachers: Sequence[str], scale: str, seed: int) -> Problem:
    """A problem built by the recipe pipeline's own stages (graph, data, teachers, caches)."""
    cfg = C.recipe_config(config, "smoke" if scale == "smoke" else "full", seed,
                          [f"data.source_domains=[{','.join(domains)}]", "data.target_domains=[]",
                           f"teachers.names=[{','.join(teachers)}]", "signals.epochs=5", "data.augment=false"])
    ws, _ = C.prepare(cfg)
    e = cfg.distill.engine_config()
    engine = {"epochs": e.epochs, "batch_size": e.batch_size, "lr": e.lr, "temperature": e.temperature, "alpha": 1.0}
    return _from_workspace(name, ws, targets, engine)


def rotated_digits(scale: str, seed: int) -> Problem:
    """Rotated MNIST (DomainBed protocol): one DigitCNN teacher per angle, leave-one-angle-out."""
    return recipe_problem("rotated_digits", "rotated_digits", ROTATED, ROTATED,
                          [f"teacher_{d}" for d in ROTATED], scale, seed)


def digits_ccexam(scale: str, seed: int) -> Problem:
    """MNIST ⇄ UCI 8×8 with the pretrained ccexam MNIST/USPS/SVHN nets (one labelled source per fold)."""
    return recipe_problem("digits_ccexam", "digits_transfer", ("mnist", "uci_digits"), ("uci_digits", "mnist"),
                          ("teacher_mnist", "teacher_usps", "teacher_svhn"), scale, seed)


def amalgamation(scale: str, seed: int) -> Problem:
    """Knowledge amalgamation: an MNIST and a Fashion-MNIST teacher (disjoint label sets) over 20 classes.

    The question is routing, not transfer: each sample's soft label should come from the
    teacher of its task. Methods are fitted on MNIST and Fashion-MNIST validation labels
    with both teachers, served on their test splits, and on UCI 8×8 digits, held out (its
    labels are never read). Fashion-MNIST is built on demand from the Debian package
    ``dataset-fashion-mnist`` (``kgkd data build --fashion``).
    """
    from kgkd.data.build import build_domains
    from kgkd.data.specs import DOMAINS
    from kgkd.errors import DataError

    spec = DOMAINS.get("fashion_mnist")
    if not (spec.root_dir / spec.file).exists():
        C.log.info("amalgamation: building fashion_mnist from the Debian package (kgkd data build --fashion)")
        try:
            build_domains(fashion=True, only=["fashion_mnist"], show_progress=False)
        except DataError as err:
            raise BenchmarkSkipped(f"fashion_mnist could not be built ({err}); run 'kgkd data build --fashion' "
                                   "where the Debian package dataset-fashion-mnist can be fetched") from err
    pb = recipe_problem("amalgamation", "digits_fashion_amalgamation", ("mnist", "fashion_mnist", "uci_digits"),
                        ("mnist", "fashion_mnist", "uci_digits"), ("teacher_mnist", "teacher_fashion"), scale, seed)
    pb.fit_domains = ["mnist", "fashion_mnist"]
    pb.notes.append("amalgamation: methods fitted on mnist + fashion_mnist validation labels with both teachers; "
                    "mnist and fashion_mnist test splits served in-domain, uci_digits held out")
    return pb


BENCHMARKS: dict[str, Callable[[str, int], Problem]] = {
    "text11": text11, "rotated_digits": rotated_digits, "digits_ccexam": digits_ccexam, "amalgamation": amalgamation,
}
