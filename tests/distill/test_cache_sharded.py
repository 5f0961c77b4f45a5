"""Sharded teacher caches: shard boundaries, lazy reads, resume after a real kill, corrupt shards,
export/import per shard, dynamic padding in dataset order, and every error message."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from test_cache import ToyData, collate, teacher
from torch import nn

from kgkd.distill.cache import INDEX_NAME, CachedTeacher, TeacherCache, default_cache_path
from kgkd.errors import CacheError
from kgkd.models.base import ModelOutput

pytestmark = pytest.mark.usefixtures("one_thread")
TESTS = Path(__file__).parent


def sharded(tmp_path: Path, n: int = 10, shard_size: int = 4, **kw) -> TeacherCache:
    kw.setdefault("path", tmp_path / "toy_teacher__toy")
    kw.setdefault("t", teacher())
    t = kw.pop("t")
    return TeacherCache.build(t, ToyData(n), collate, batch_size=4, features=["hidden"],
                              shard_size=shard_size, show_progress=False, **kw)  # fmt: skip


def test_shard_boundaries_and_index(tmp_path: Path) -> None:
    cache = sharded(tmp_path, dtype="fp32")
    single = TeacherCache.build(teacher(), ToyData(), collate, batch_size=4, features=["hidden"], dtype="fp32",
                                path=tmp_path / "one.safetensors", show_progress=False)  # fmt: skip
    index = json.loads((cache.path / INDEX_NAME).read_text())
    assert index["version"] == 2 and index["layout"] == "sharded" and index["shard_size"] == 4
    assert [(s["file"], s["start"], s["stop"]) for s in index["shards"]] == [
        ("shard-00000.safetensors", 0, 4), ("shard-00001.safetensors", 4, 8), ("shard-00002.safetensors", 8, 10)
    ]  # fmt: skip
    assert all(len(s["sha256"]) == 64 for s in index["shards"])
    # both sides of each boundary, out of order and repeated
    rows = torch.tensor([3, 4, 7, 8, 9, 0, 4])
    opened = TeacherCache.load(cache.path)
    got, want = opened.lookup(rows), single.lookup(rows)
    assert torch.allclose(got.logits, want.logits, rtol=1e-5, atol=1e-6)
    assert torch.allclose(got.features["hidden"], want.features["hidden"], rtol=1e-5, atol=1e-6)
    assert opened._tensors is None and opened._opened == {0, 1, 2}  # read row by row, never loaded whole
    lazy = TeacherCache.load(cache.path)
    lazy.lookup(torch.tensor([9, 8]))
    assert lazy._opened == {2}  # only the shard holding the rows was opened
    assert not list(cache.path.glob(".*.tmp"))


def test_default_layout_is_a_sharded_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KGKD_CACHE_DIR", str(tmp_path))
    cache = TeacherCache.build(teacher(), ToyData(), collate, show_progress=False)
    assert cache.path == default_cache_path("toy_teacher", "toy") and (cache.path / INDEX_NAME).is_file()
    assert cache.is_sharded and len(cache.shards) == 1


def test_single_and_sharded_convert_and_export_per_shard(tmp_path: Path) -> None:
    cache = sharded(tmp_path)
    every = torch.arange(10)
    as_file = cache.export(tmp_path / "out" / "t.safetensors")  # a folder → one file (old format)
    old = TeacherCache.load(as_file)
    assert old.header["version"] == 1 and torch.equal(old.lookup(every).logits, cache.lookup(every).logits)
    back = old.export(tmp_path / "out" / "from_file", shard_size=4)  # one file → shards
    assert len(TeacherCache.load(back).shards) == 3
    shipped = cache.export(tmp_path / "outbox" / "site_a")  # folder → folder, copied shard by shard
    got = TeacherCache.import_(shipped, expected_num_samples=10, dest=tmp_path / "local" / "site_a")
    assert torch.equal(got.lookup(every).logits, cache.lookup(every).logits)
    assert sorted(p.name for p in (tmp_path / "local" / "site_a").glob("shard-*.safetensors")) == [
        "shard-00000.safetensors", "shard-00001.safetensors", "shard-00002.safetensors"
    ]  # fmt: skip
    with pytest.raises(CacheError, match="covers 10 samples but the transfer set has 12"):
        TeacherCache.import_(shipped, expected_num_samples=12)


def test_distill_cli_accepts_a_cache_folder(tmp_path: Path) -> None:
    from kgkd.cli.distill import import_caches

    cache = sharded(tmp_path)
    (got,) = import_caches([cache.path], ToyData())
    assert got.is_sharded and got.teacher_name == "toy_teacher"


def _flip_a_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[-3] ^= 0xFF
    path.write_bytes(bytes(data))


def test_corrupt_shard_is_detected_and_rebuilt_by_name(tmp_path: Path) -> None:
    cache = sharded(tmp_path)
    shard = cache.path / "shard-00001.safetensors"
    _flip_a_byte(shard)
    with pytest.raises(
        CacheError, match=r"shard shard-00001.safetensors \(samples 4..7\) is corrupt \(sha256 differs"
    ):
        TeacherCache.load(cache.path, verify=True)
    t = teacher()
    again = TeacherCache.get_or_build(t, ToyData(), collate, path=cache.path, batch_size=4,
                                      features=["hidden"], shard_size=4, show_progress=False)  # fmt: skip
    assert again.report is not None and again.report.built == ["shard-00001.safetensors"]
    assert sorted(again.report.kept) == ["shard-00000.safetensors", "shard-00002.safetensors"]
    assert t.module.calls == 1  # one batch: only the broken shard was recomputed
    TeacherCache.load(cache.path, verify=True)
    shard.write_bytes(shard.read_bytes()[:100])  # truncated: seen without hashing
    with pytest.raises(CacheError, match=r"shard shard-00001.safetensors is truncated or corrupt \(100 bytes"):
        TeacherCache.load(cache.path)
    shard.unlink()
    with pytest.raises(CacheError, match="shard shard-00001.safetensors is missing; rerun the build"):
        TeacherCache.load(cache.path)
    (cache.path / INDEX_NAME).unlink()
    with pytest.raises(CacheError, match="holds shards but no index.json: its build was interrupted"):
        TeacherCache.load(cache.path)


def test_shard_from_another_build_is_refused_when_read(tmp_path: Path) -> None:
    a = sharded(tmp_path / "a")
    b = sharded(tmp_path / "b", t=teacher(seed=1))
    (a.path / "shard-00002.safetensors").write_bytes((b.path / "shard-00002.safetensors").read_bytes())
    opened = TeacherCache.load(a.path)  # same size, so only reading it (or verify) can tell
    with pytest.raises(CacheError, match="shard shard-00002.safetensors in .* belongs to another build"):
        opened.lookup(torch.tensor([9]))


def test_stale_settings_rebuild_and_errors(tmp_path: Path) -> None:
    cache = sharded(tmp_path)
    t = teacher()
    fp32 = TeacherCache.get_or_build(t, ToyData(), collate, path=cache.path, features=["hidden"], dtype="fp32",
                                     shard_size=4, show_progress=False)  # fmt: skip
    assert fp32.header["dtype"] == "fp32" and fp32.report is not None and len(fp32.report.built) == 3
    with pytest.raises(CacheError, match="shard_size=0 must be a positive number of items"):
        sharded(tmp_path, shard_size=0, path=tmp_path / "z")
    (tmp_path / "afile").write_text("x")
    with pytest.raises(CacheError, match="afile is a file, but a sharded cache is a folder"):
        sharded(tmp_path, path=tmp_path / "afile")
    with pytest.raises(CacheError, match="is not a kgkd teacher cache \\(no index.json\\)"):
        TeacherCache.load(tmp_path)


class TextData(torch.utils.data.Dataset):
    """Texts of very different lengths (items carry ``text`` and ``index``)."""

    name = "texts"

    def __init__(self) -> None:
        self.texts = ["a" * (1 + (i * 7) % 23) for i in range(20)]

    def __len__(self) -> int:
        return len(self.texts)

    def __getitem__(self, i: int) -> dict:
        return {"text": self.texts[i], "index": i}

    def fingerprint(self) -> str:
        return "texts-20"


class MeanOfChars(nn.Module):
    """A padding-invariant 'text model': logits from the mean and count of real characters."""

    name, label_names = "chars", ("x", "y")

    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Linear(2, 2)
        self.widths: list[int] = []

    def fingerprint(self) -> str:
        return "chars-v1"

    def forward(self, batch: dict) -> ModelOutput:
        mask = batch["attention_mask"].float()
        self.widths.append(mask.shape[1])
        n = mask.sum(1)
        mean = (batch["input_ids"].float() * mask).sum(1) / n
        return ModelOutput(self.w(torch.stack([mean / 100, n / 10], 1)), {})


def pad_per_batch(items: list[dict]) -> dict:
    width = max(len(it["text"]) for it in items)
    ids = torch.zeros(len(items), width, dtype=torch.long)
    mask = torch.zeros(len(items), width, dtype=torch.long)
    for row, it in enumerate(items):
        ids[row, : len(it["text"])] = torch.tensor([ord(c) for c in it["text"]])
        mask[row, : len(it["text"])] = 1
    return {"input_ids": ids, "attention_mask": mask, "index": torch.tensor([it["index"] for it in items])}


def test_sort_by_length_pads_less_and_keeps_dataset_order(tmp_path: Path) -> None:
    data = TextData()
    model = MeanOfChars()
    cache = TeacherCache.build(model, data, pad_per_batch, batch_size=4, shard_size=8, dtype="fp32",
                               path=tmp_path / "sorted", show_progress=False)  # fmt: skip
    sorted_width = sum(model.widths)
    model.widths.clear()
    TeacherCache.build(model, data, pad_per_batch, batch_size=4, shard_size=8, dtype="fp32",
                       path=tmp_path / "plain", sort_by_length=False, show_progress=False)  # fmt: skip
    assert sorted_width < sum(model.widths)  # less padding
    with torch.no_grad():
        one_by_one = torch.cat([model(pad_per_batch([data[i]])).logits for i in range(len(data))])
    assert torch.allclose(cache.lookup(torch.arange(len(data))).logits, one_by_one, rtol=1e-5, atol=1e-6)


KILLED_BUILD = textwrap.dedent(
    """
    import os, signal, sys
    sys.path.insert(0, {tests!r})
    import torch
    torch.set_num_threads(1)
    from test_cache import ToyData, collate, teacher
    from kgkd.distill.cache import TeacherCache

    t = teacher()
    forward = t.module.forward

    def dying(x):
        if t.module.calls == {kill_at}:
            os.kill(os.getpid(), signal.SIGKILL)  # a real kill: no cleanup, no exception handlers
        return forward(x)

    t.module.forward = dying
    TeacherCache.build(t, ToyData(40), collate, batch_size=4, features=["hidden"], shard_size=8,
                       path={path!r}, show_progress=False)
    """
)


def test_resume_after_a_killed_build_keeps_finished_shards(tmp_path: Path) -> None:
    path = tmp_path / "toy_teacher__toy40"
    script = KILLED_BUILD.format(tests=str(TESTS), kill_at=5, path=str(path))  # dies in batch 6: inside shard 2
    proc = subprocess.run(
        [sys.executable, "-c", script], check=False, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == -9, proc.stderr
    assert sorted(p.name for p in path.glob("shard-*.safetensors")) == [
        "shard-00000.safetensors", "shard-00001.safetensors"
    ]  # fmt: skip
    with pytest.raises(CacheError, match="its build was interrupted; rerun the same build command"):
        TeacherCache.load(path)
    t = teacher()
    resumed = TeacherCache.get_or_build(t, ToyData(40), collate, path=path, batch_size=4, features=["hidden"],
                                        shard_size=8, show_progress=False)  # fmt: skip
    assert resumed.report is not None and resumed.report.kept == ["shard-00000.safetensors", "shard-00001.safetensors"]
    assert len(resumed.report.built) == 3 and t.module.calls == 6  # 3 shards x 2 batches, nothing redone
    clean = sharded(tmp_path, n=40, shard_size=8, path=tmp_path / "clean")
    every = torch.arange(40)  # same batches replayed: identical values
    assert torch.equal(resumed.lookup(every).logits, clean.lookup(every).logits)


def test_a_sharded_cache_pickles_for_worker_processes(tmp_path: Path) -> None:
    import pickle

    cache = sharded(tmp_path)
    cache.lookup(torch.tensor([0, 9]))  # opens shards
    copy = pickle.loads(pickle.dumps(CachedTeacher(cache)))
    assert torch.equal(copy({"index": torch.tensor([9, 4])}).logits, cache.lookup(torch.tensor([9, 4])).logits)
