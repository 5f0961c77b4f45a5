"""User domains: ``kgkd data add`` imports a user's own file, kgkd loads it like a shipped domain,
and an unlabelled user domain runs through a whole recipe as a target with honest "unlabelled" metrics.

The user data folder is a tmp dir (``KGKD_USER_DATA_DIR``), so nothing is written into the repo.
"""

from __future__ import annotations

import csv
import dataclasses
import gzip
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from kgkd.cli import main as kgkd_main
from kgkd.data import MultiDomainDataset, get_spec, list_domains, load_domain
from kgkd.data.storage import sha256_file
from kgkd.data.user import USER_DATA_ENV, add_user_domain, remove_user_domain, user_data_dir
from kgkd.errors import DataError, UnknownDatasetError

#: The new domain's graph node, merged into graphs/sentiment.ttl (same namespace as :yelp).
HOTEL_TTL = """@prefix : <https://w3id.org/kgkd/graphs/sentiment#> .
@prefix kgkd: <https://w3id.org/kgkd/vocab#> .
@prefix rdfs: <http://www.w3.org/2000/01/rdf-schema#> .
:hotel_reviews a kgkd:Domain ;
    rdfs:label "Hotel reviews" ;
    rdfs:comment "Unlabelled single sentences from hotel reviews, brought by the user." ;
    kgkd:modality "text" ;
    kgkd:hasTask :sentiment_classification ;
    kgkd:hasLabelSet :sentiment_binary ;
    kgkd:similarTo [ kgkd:target :yelp ; kgkd:weight 0.7 ] .
"""


@pytest.fixture
def user_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A tmp user data folder."""
    folder = tmp_path / "user_data"
    monkeypatch.setenv(USER_DATA_ENV, str(folder))
    return folder


@pytest.fixture
def yelp_texts() -> tuple[list[str], np.ndarray]:
    """60 real sentences (and their hidden labels) from the shipped yelp test split."""
    ds = load_domain("yelp", "test")
    return ds.texts[:60], ds.labels[:60]


@pytest.fixture
def hotel_csv(tmp_path: Path, yelp_texts: tuple[list[str], np.ndarray]) -> Path:
    path = tmp_path / "hotel.csv"
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["review_id", "text"])
        writer.writerows([i, t] for i, t in enumerate(yelp_texts[0]))
    return path


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


# --------------------------------------------------------------------------- round trips
def test_cli_add_list_load_remove_unlabelled_csv(
    user_dir: Path,
    hotel_csv: Path,
    yelp_texts: tuple[list[str], np.ndarray],
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert kgkd_main(["data", "add", "hotel_reviews", str(hotel_csv)]) == 0
    assert "hotel_reviews" in capsys.readouterr().out and user_data_dir() == user_dir
    # kgkd's own format in the user folder, recorded with its sha256
    manifest = json.loads((user_dir / "manifest.json").read_text())
    entry = manifest["domains"]["hotel_reviews"]
    assert entry["sha256"] == sha256_file(user_dir / "text/hotel_reviews.jsonl.gz")
    assert entry["total"] == 60 and entry["labelled"] == 0
    with gzip.open(user_dir / "text/hotel_reviews.jsonl.gz", "rt", encoding="utf-8") as fh:
        first = json.loads(fh.readline())
    assert set(first) == {"id", "text", "label", "split"} and first["label"] == -1
    # found by the loaders like a shipped domain
    assert "hotel_reviews" in list_domains("text") and "hotel_reviews" not in list_domains("image")
    assert get_spec("hotel_reviews").origin == "user"
    splits = {s: load_domain("hotel_reviews", s) for s in ("train", "val", "test")}
    assert {s: len(d) for s, d in splits.items()} == {"train": 42, "val": 6, "test": 12}
    assert sorted(t for d in splits.values() for t in d.texts) == sorted(yelp_texts[0])
    assert all((d.labels == -1).all() and d.class_counts() == [0, 0] for d in splits.values())
    mixed = MultiDomainDataset(["amazon", "hotel_reviews"], split="test", limit=10)
    assert [mixed[i]["label"] for i in range(10, 20)] == [-1] * 10 and mixed[15]["domain"] == 1
    # listed as a user domain, without labels
    assert kgkd_main(["data", "list", "--modality", "text"]) == 0
    listed = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("hotel_reviews")]
    assert listed and listed[0].split()[-2:] == ["unlabelled", "user"]
    assert kgkd_main(["data", "remove", "hotel_reviews"]) == 0
    assert not (user_dir / "text/hotel_reviews.jsonl.gz").exists()
    with pytest.raises(
        UnknownDatasetError, match=r"unknown data domain 'hotel_reviews'.*kgkd data add"
    ):
        load_domain("hotel_reviews", "test")


def test_labelled_jsonl_names_indices_and_blanks(user_dir: Path, tmp_path: Path) -> None:
    lines = [
        {"body": f"sentence number {i}", "stars": lab}
        for i, lab in enumerate(["bad", "good", 0, 1, None, "", "good", "bad", "-1", 2] * 5)
    ]
    path = _write(tmp_path / "r.jsonl", "".join(json.dumps(x) + "\n" for x in lines))
    entry = add_user_domain(
        "shop",
        path,
        text_column="body",
        label_column="stars",
        labels=["bad", "good", "great"],
        val=0.2,
        test=0.2,
    )
    assert entry["labelled"] == 35 and entry["label_names"] == ["bad", "good", "great"]
    loaded = {s: load_domain("shop", s) for s in ("train", "val", "test")}
    by_text = {t: int(y) for d in loaded.values() for t, y in zip(d.texts, d.labels)}
    expected = {"bad": 0, "good": 1, 0: 0, 1: 1, None: -1, "": -1, "-1": -1, 2: 2}
    assert all(by_text[x["body"]] == expected[x["stars"]] for x in lines)
    # stratified per label (unlabelled rows are one more stratum): 60/20/20 of every class
    for split, share in (("train", 0.6), ("val", 0.2), ("test", 0.2)):
        d = loaded[split]
        assert d.class_counts() == [round(share * 15), round(share * 15), round(share * 5)]
        assert int((d.labels == -1).sum()) == round(share * 15)
    # same file, same seed → same bytes; another seed → another split
    again = add_user_domain("shop", path, text_column="body", label_column="stars",
                            labels=["bad", "good", "great"], val=0.2, test=0.2, force=True)  # fmt: skip
    assert again["sha256"] == entry["sha256"]
    other = add_user_domain("shop", path, text_column="body", label_column="stars",
                            labels=["bad", "good", "great"], val=0.2, test=0.2, seed=1, force=True)  # fmt: skip
    assert other["sha256"] != entry["sha256"] and other["counts"] == entry["counts"]


def test_tsv_txt_and_npz_formats(user_dir: Path, tmp_path: Path) -> None:
    tsv = _write(
        tmp_path / "a.tsv",
        "label\ttext\n" + "".join(f"{i % 2}\tline, with comma {i}\n" for i in range(20)),
    )
    assert add_user_domain("tsv_dom", tsv)["counts"]["train"]["per_class"] == {
        "negative": 7,
        "positive": 7,
    }
    assert load_domain("tsv_dom", "test").texts[0].startswith("line, with comma")
    txt = _write(
        tmp_path / "a.txt",
        "first   text\n\n  second text \n" + "".join(f"t {i}\n" for i in range(18)),
    )
    add_user_domain("txt_dom", txt)
    texts = [t for s in ("train", "val", "test") for t in load_domain("txt_dom", s).texts]
    assert (
        len(texts) == 20 and "first text" in texts and "second text" in texts
    )  # blank line skipped
    rng = np.random.default_rng(0)
    x = rng.random((100, 8, 8)).astype(np.float32)  # floats in 0..1 → uint8 0..255
    y = np.array([0, 1, 2, -1, 4, 5, 6, 7, 8, 9] * 10)
    np.savez(tmp_path / "imgs.npz", x=x, y=y)
    entry = add_user_domain("my_digits", tmp_path / "imgs.npz", val=0.2, test=0.2)
    assert entry["modality"] == "image" and entry["labelled"] == 90 and entry["shape"] == [8, 8]
    assert load_domain("my_digits", "val").class_counts() == [2, 2, 2, 0, 2, 2, 2, 2, 2, 2]
    item = load_domain("my_digits", "train")[0]
    assert (
        item["image"].shape == (1, 8, 8)
        and 0.0 <= float(item["image"].min()) <= float(item["image"].max()) <= 1.0
    )
    shipped = list_domains("image", include_user=False)
    assert {"fashion_mnist", "mnist", "uci_digits"} <= set(shipped) and "my_digits" not in shipped
    assert "my_digits" in list_domains("image")


# --------------------------------------------------------------------------- bad inputs
BAD_FILES = [
    ("empty.csv", "", {}, r"empty\.csv: the file is empty; put at least one sample in it"),
    ("head.csv", "text,label\n", {}, r"head\.csv: the file has no data rows"),
    ("col.csv", "txt,label\nhi,1\n", {}, r"col\.csv: no text column 'text'\. Did you mean 'txt' \(--text-column txt\)"),
    ("lab.csv", "text,label\nhi,1\n", {"label_column": "lable"},
     r"no label column 'lable'\. Did you mean 'label' \(--label-column label\)"),
    ("out.csv", "text,label\nhi,positive\nok,neutral\n", {},
     r"out\.csv, line 3, column 'label': label 'neutral' is not one of the labels \['negative', 'positive'\]"
     + r".*--labels positive,neutral"),
    ("idx.csv", "text,label\nhi,2\n", {}, r"line 2, column 'label': label '2' is not one of the labels"),
    ("blank.csv", "text,label\nhi,1\n  ,0\n", {}, r"blank\.csv, line 3, column 'text': the text is empty"),
    ("wide.csv", "text,label\nhi,1,extra\n", {}, r"wide\.csv, line 2: 3 fields but the header has 2.*quote fields"),
    ("bad.jsonl", '{"text": "a"}\n{"text": \n', {}, r"bad\.jsonl, line 2: not valid JSON"),
    ("list.jsonl", '["a", 1]\n', {}, r"list\.jsonl, line 1: expected a JSON object"),
    ("num.jsonl", '{"text": 5}\n', {}, r"num\.jsonl, line 1, column 'text': expected a string, got 5 \(int\)"),
    ("data.xlsx", "x", {}, r"data\.xlsx: unsupported file type '\.xlsx'; give a .*\.csv"),
    ("t.txt", "hello\n", {"label_column": "label"}, r"t\.txt: plain-text files hold one text per line and no labels"),
    ("b.txt", "\n \n", {}, r"b\.txt: the file holds only blank lines"),
    ("m.csv", "text\nhi\n", {"modality": "image"}, r"--modality image does not fit a \.csv file; images must come as a \.npz"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("name", "content", "kwargs", "pattern"), BAD_FILES, ids=[b[0] for b in BAD_FILES]
)
def test_bad_files_name_file_line_column_and_fix(
    user_dir: Path, tmp_path: Path, name: str, content: str, kwargs: dict, pattern: str
) -> None:
    path = _write(tmp_path / name, content)
    with pytest.raises(DataError, match=pattern):
        add_user_domain("mine", path, **kwargs)
    assert not (user_dir / "manifest.json").exists()  # nothing recorded on failure


def test_bad_bytes_arrays_and_sizes(user_dir: Path, tmp_path: Path) -> None:
    (tmp_path / "latin.csv").write_bytes(b"text\nok\ncaf\xe9\n")
    with pytest.raises(
        DataError, match=r"latin\.csv, line 3: not UTF-8 text.*save the file as UTF-8"
    ):
        add_user_domain("mine", tmp_path / "latin.csv")
    np.savez(tmp_path / "nox.npz", images=np.zeros((3, 4, 4), np.uint8))
    with pytest.raises(
        DataError,
        match=r"nox\.npz: no array 'x' \(arrays: images\); save the images as numpy\.savez",
    ):
        add_user_domain("mine", tmp_path / "nox.npz")
    np.savez(tmp_path / "y.npz", x=np.zeros((3, 4, 4), np.uint8), y=np.array([0, 12, 1]))
    with pytest.raises(
        DataError,
        match=r"y\.npz: y\[1\] = 12 is outside the labels 0\.\.9.*pass --labels listing all 13",
    ):
        add_user_domain("mine", tmp_path / "y.npz")
    np.savez(tmp_path / "flat.npz", x=np.zeros((3, 16), np.uint8))
    with pytest.raises(
        DataError,
        match=r"flat\.npz: array 'x' has shape \[3, 16\]; give grey images as \[N, H, W\]",
    ):
        add_user_domain("mine", tmp_path / "flat.npz")
    tiny = _write(tmp_path / "tiny.csv", "text\na\nb\nc\n")
    with pytest.raises(
        DataError,
        match=r"tiny\.csv: 3 samples are too few for a 10% val split; add samples or change --val",
    ):
        add_user_domain("mine", tiny)
    with pytest.raises(DataError, match=r"tiny\.csv: no such file"):
        add_user_domain("mine", tmp_path / "nested" / "tiny.csv")


def test_bad_names_options_and_removal(
    user_dir: Path, hotel_csv: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(
        DataError,
        match=r"domain name 'yelp' is taken by a shipped kgkd domain; .* e\.g\. 'yelp_user'",
    ):
        add_user_domain("yelp", hotel_csv)
    with pytest.raises(
        DataError,
        match=r"domain name 'hotel reviews' must start with a letter.*use e\.g\. 'hotel_reviews'",
    ):
        add_user_domain("hotel reviews", hotel_csv)
    with pytest.raises(DataError, match=r"--val 0\.5 \+ --test 0\.5 leave nothing to train on"):
        add_user_domain("hotel", hotel_csv, val=0.5, test=0.5)
    with pytest.raises(DataError, match=r"--test -0\.1 must be a share in \[0, 1\)"):
        add_user_domain("hotel", hotel_csv, test=-0.1)
    with pytest.raises(
        DataError, match=r"--labels a,a: label names must be non-empty and distinct"
    ):
        add_user_domain("hotel", hotel_csv, labels=["a", "a"])
    add_user_domain("hotel", hotel_csv)
    with pytest.raises(
        DataError, match=r"user domain 'hotel' already exists \(from .*hotel\.csv\); pass --force"
    ):
        add_user_domain("hotel", hotel_csv)
    with pytest.raises(UnknownDatasetError, match=r"no user domain 'hotl'.*Did you mean 'hotel'\?"):
        remove_user_domain("hotl")
    with pytest.raises(DataError, match=r"'amazon' is a shipped kgkd domain, not a user domain"):
        remove_user_domain("amazon")
    # the CLI turns them into one line on stderr, exit code 2
    assert kgkd_main(["data", "add", "imdb", str(hotel_csv)]) == 2
    assert (
        "kgkd: error: domain name 'imdb' is taken by a shipped kgkd domain"
        in capsys.readouterr().err
    )
    # a corrupted data file is caught by its sha256 and names the re-add command
    target = user_dir / "text" / "hotel.jsonl.gz"
    target.write_bytes(target.read_bytes()[:-8] + b"\0" * 8)
    with pytest.raises(
        DataError, match=r"does not match the sha256.*kgkd data add hotel .*hotel\.csv.*--force"
    ):
        load_domain("hotel", "train")


# --------------------------------------------------------------------------- recipe
def test_unlabelled_user_domain_as_recipe_target(
    user_dir: Path,
    hotel_csv: Path,
    tmp_path: Path,
    shared_cache: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The user domain joins a smoke sentiment recipe as a target: weights, predictions, 'unlabelled' metrics."""
    from kgkd.recipes import load_config, sentiment_transfer
    from kgkd.recipes.pipeline import StudentView, student_predictions
    from kgkd.recipes.report import format_table

    add_user_domain("hotel_reviews", hotel_csv)
    cfg = load_config(
        "sentiment_transfer_quick",
        [f"output.dir={tmp_path / 'run'}", "output.show_progress=false", "signals.baselines=[uniform,confidence]",
         "data.source_domains=[amazon,imdb]", "data.target_domains=[hotel_reviews]",
         "teachers.names=[teacher_amazon,teacher_imdb]", "data.train_limit=32", "data.val_limit=16",
         "data.test_limit=16"],
        smoke=True,
    )  # fmt: skip
    cfg = dataclasses.replace(cfg, graph=dataclasses.replace(cfg.graph, extra_turtle=HOTEL_TTL))
    result = sentiment_transfer.run(cfg)
    metrics = json.loads((result.output_dir / "metrics.json").read_text())
    hotel = metrics["domains"]["hotel_reviews"]
    assert hotel["role"] == "target" and hotel["unlabelled"] is True and hotel["n"] == 12
    assert "accuracy" not in hotel["student"] and all(
        "accuracy" not in e for e in hotel["ensembles"].values()
    )
    assert metrics["domains"]["amazon"]["unlabelled"] is False
    assert 0.0 <= metrics["domains"]["amazon"]["student"]["accuracy"] <= 1.0
    assert metrics["summary"]["student_mean_acc_target"] is None  # no fake accuracy for the target
    # the graph gave the new domain teacher weights, and the student was trained on its texts too
    assert set(metrics["weights"]["hotel_reviews"]) == {"teacher_amazon", "teacher_imdb"}
    assert sum(metrics["weights"]["hotel_reviews"].values()) == pytest.approx(1.0, abs=1e-4)
    hist = metrics["distill_history"]
    assert hist["steps"] > 0 and hist["last_loss"] < hist["first_loss"]
    # the saved student serves the user domain
    view = StudentView(MultiDomainDataset(["hotel_reviews"], split="test"), [np.arange(2)])
    preds = student_predictions(_load(result.student_dir), view, _collate(result))
    assert preds.shape == (12,) and set(preds.tolist()) <= {0, 1}
    assert (view.labels == -1).all()  # unlabelled stays unlabelled in the student's label space
    table = format_table(metrics)
    assert any(
        line.startswith("hotel_reviews") and "target, unlabelled" in line
        for line in table.splitlines()
    )
    assert (result.output_dir / "per_domain.png").stat().st_size > 0
    # `kgkd eval` says so too, instead of scoring against fake labels
    assert kgkd_main(["eval", str(result.student_dir), "--domain", "hotel_reviews"]) == 0
    assert "hotel_reviews (test, n=12): unlabelled, no accuracy" in capsys.readouterr().out


def _load(student_dir: Path) -> torch.nn.Module:
    from kgkd.models import load_student

    return load_student(student_dir)


def _collate(result: Any) -> Any:
    from kgkd.data import TextCollator, load_minilm_tokenizer

    return TextCollator(load_minilm_tokenizer(), result.config.data.max_length)


def test_teacher_training_refuses_an_unlabelled_domain(user_dir: Path, hotel_csv: Path, tmp_path: Path) -> None:
    from kgkd.models.training import train_teacher

    add_user_domain("hotel_reviews", hotel_csv)
    with pytest.raises(DataError, match=r"domain 'hotel_reviews' has unlabelled items.*--label-column"):
        train_teacher("hotel_reviews", out=tmp_path / "teacher", epochs=1)
