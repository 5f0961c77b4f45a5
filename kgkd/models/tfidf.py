"""A second text family: TF-IDF features + logistic regression (scikit-learn), as a torch teacher.

Trained in seconds with scikit-learn's ``TfidfVectorizer`` + ``LogisticRegression`` and saved
without pickle: ``model.safetensors`` holds ``idf`` [V], ``coef`` [C, V] and ``intercept`` [C];
``vocab.json`` the token → column map; ``config.json`` the analyser settings. Reloaded, the
teacher is an ``nn.Module`` whose :meth:`~TfidfLogRegTeacher.collator` rebuilds the same
TF-IDF vectors (scikit-learn's ``CountVectorizer`` with the fixed vocabulary, then
``(1 + log tf) · idf``, L2-normalised) and whose forward gives ``coef · x + intercept``.
Its errors are unlike a transformer's, which is what makes teacher weighting matter.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from kgkd.errors import CheckpointError, DataError, ModelError
from kgkd.models.base import ModelOutput, Teacher
from kgkd.models.checkpoint import (
    CONFIG_NAME,
    WEIGHTS_NAME,
    load_weights,
    read_json,
    save_weights,
    write_json,
)

VOCAB_NAME = "vocab.json"
ARCHITECTURE = "tfidf_logreg"


@dataclass(frozen=True)
class TfidfSettings:
    """How text becomes a TF-IDF vector (the analyser half of scikit-learn's TfidfVectorizer)."""

    lowercase: bool = True
    ngram_range: tuple[int, int] = (1, 2)
    token_pattern: str = r"(?u)\b\w\w+\b"
    sublinear_tf: bool = True

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["ngram_range"] = list(self.ngram_range)
        return d


class TfidfCollator:
    """Items with ``"text"`` → ``{"tfidf": [B, V] float32, "labels", "domain", "index"}``."""

    def __init__(self, vocabulary: dict[str, int], idf: Tensor, settings: TfidfSettings) -> None:
        from sklearn.feature_extraction.text import CountVectorizer

        self.settings = settings
        self.idf = idf.detach().double().cpu()
        self.counter = CountVectorizer(
            vocabulary=vocabulary, lowercase=settings.lowercase, ngram_range=tuple(settings.ngram_range),
            token_pattern=settings.token_pattern,
        )  # fmt: skip

    def vectors(self, texts: Sequence[str]) -> Tensor:
        """TF-IDF rows of ``texts`` exactly as the fitted TfidfVectorizer computes them (float32)."""
        counts = torch.from_numpy(self.counter.transform(list(texts)).toarray().astype(np.float64))
        tf = torch.where(counts > 0, 1.0 + torch.log(counts.clamp_min(1.0)), counts) if self.settings.sublinear_tf else counts
        x = tf * self.idf
        return (x / x.norm(dim=1, keepdim=True).clamp_min(1e-12)).float()

    def __call__(self, items: Sequence[dict[str, Any]]) -> dict[str, Tensor]:
        from kgkd.data.collate import batch_tags, check_items

        check_items(items, "text", "TfidfCollator")
        return {"tfidf": self.vectors([it["text"] for it in items]), **batch_tags(items)}


class TfidfLogRegTeacher(Teacher):
    """Logistic regression over TF-IDF vectors; gives logits [B, C] from ``batch["tfidf"]``.

    A binary scikit-learn model (one weight row) becomes two symmetric logit rows ``∓z/2``,
    so the softmax equals its ``predict_proba``.
    """

    def __init__(self, name: str, label_names: Sequence[str], vocabulary: dict[str, int], idf: Tensor,
                 coef: Tensor, intercept: Tensor, settings: TfidfSettings) -> None:  # fmt: skip
        super().__init__(name, label_names, (), modality="text")
        n_vocab = len(vocabulary)
        if idf.shape != (n_vocab,) or coef.shape != (len(label_names), n_vocab) or intercept.shape != (len(label_names),):
            raise ModelError(
                f"teacher '{name}': idf {tuple(idf.shape)}, coef {tuple(coef.shape)}, intercept {tuple(intercept.shape)} "
                f"do not fit {n_vocab} vocabulary entries and {len(label_names)} labels"
            )
        self.vocabulary = dict(vocabulary)
        self.settings = settings
        self.register_buffer("idf", idf.float())
        self.coef = nn.Parameter(coef.float())
        self.intercept = nn.Parameter(intercept.float())

    def config(self) -> dict[str, Any]:
        cfg = super().config()
        cfg["tfidf"] = self.settings.to_dict()
        cfg["vocabulary"] = sorted(self.vocabulary.items(), key=lambda kv: kv[1])
        return cfg

    def collator(self, max_length: int = 64, image_size: int = 28) -> TfidfCollator:
        """This model's own input pipeline (the whole text is used; ``max_length`` does not apply)."""
        return TfidfCollator(self.vocabulary, self.idf, self.settings)

    def forward(self, batch: dict[str, Tensor]) -> ModelOutput:
        if "tfidf" not in batch:
            raise ModelError(
                f"teacher '{self.name}' needs batch['tfidf'] but the batch has keys {sorted(batch)}; "
                "collate with teacher.collator()"
            )
        x = batch["tfidf"].to(self.coef.dtype)
        return ModelOutput(x @ self.coef.T + self.intercept, {})

    def save(self, folder: str | os.PathLike[str]) -> None:
        """Write ``model.safetensors`` (idf, coef, intercept), ``vocab.json`` and ``config.json`` into ``folder``."""
        folder = Path(folder)
        save_weights({"idf": self.idf, "coef": self.coef, "intercept": self.intercept}, folder / WEIGHTS_NAME)
        (folder / VOCAB_NAME).write_text(json.dumps(self.vocabulary, ensure_ascii=False), encoding="utf-8")
        write_json(folder / CONFIG_NAME, {"architecture": ARCHITECTURE, "label_names": list(self.label_names),
                                          **self.settings.to_dict()})  # fmt: skip

    @classmethod
    def from_folder(cls, folder: str | os.PathLike[str], name: str) -> TfidfLogRegTeacher:
        """Rebuild a saved teacher; missing or mismatching files raise CheckpointError naming them."""
        folder = Path(folder)
        cfg = read_json(folder / CONFIG_NAME)
        vocab_file = folder / VOCAB_NAME
        try:
            vocabulary = json.loads(vocab_file.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise CheckpointError(f"{vocab_file} cannot be read ({exc}); re-create the checkpoint {folder}") from None
        weights = load_weights(folder / WEIGHTS_NAME)
        try:
            settings = TfidfSettings(
                lowercase=bool(cfg["lowercase"]), ngram_range=tuple(cfg["ngram_range"]),
                token_pattern=str(cfg["token_pattern"]), sublinear_tf=bool(cfg["sublinear_tf"]),
            )  # fmt: skip
            return cls(name, cfg["label_names"], vocabulary, weights["idf"], weights["coef"], weights["intercept"], settings)
        except (KeyError, TypeError, ModelError) as exc:
            raise CheckpointError(f"{folder}: {CONFIG_NAME}/{WEIGHTS_NAME} do not describe a tfidf_logreg teacher ({exc})") from None


def fit_tfidf_logreg(
    texts: Sequence[str], labels: Sequence[int], label_names: Sequence[str], *, name: str,
    C: float = 4.0, max_features: int = 20000, ngram_max: int = 2, min_df: int = 1, seed: int = 0,
) -> TfidfLogRegTeacher:  # fmt: skip
    """Fit TfidfVectorizer + LogisticRegression on ``texts`` and return the equivalent teacher."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    settings = TfidfSettings(ngram_range=(1, int(ngram_max)))
    present = sorted({int(y) for y in labels})
    if present != list(range(len(label_names))):
        raise DataError(
            f"tfidf_logreg teacher '{name}': the training data has labels {present} but the task has "
            f"{len(label_names)} ({list(label_names)}); train on more data (a larger --limit) so every label occurs"
        )
    vec = TfidfVectorizer(
        lowercase=settings.lowercase, ngram_range=settings.ngram_range, token_pattern=settings.token_pattern,
        sublinear_tf=settings.sublinear_tf, norm="l2", max_features=max_features, min_df=min_df,
    )  # fmt: skip
    x = vec.fit_transform(list(texts))
    clf = LogisticRegression(C=C, max_iter=2000, random_state=seed).fit(x, list(labels))
    coef = torch.from_numpy(clf.coef_.astype(np.float64))
    intercept = torch.from_numpy(clf.intercept_.astype(np.float64))
    if coef.shape[0] == 1:  # binary: softmax([-z/2, z/2]) = [1 - σ(z), σ(z)]
        coef, intercept = torch.cat([-coef / 2, coef / 2]), torch.cat([-intercept / 2, intercept / 2])
    vocabulary = {str(k): int(v) for k, v in vec.vocabulary_.items()}
    return TfidfLogRegTeacher(name, label_names, vocabulary, torch.from_numpy(vec.idf_), coef, intercept, settings)
