"""Teacher cache: build/load round trip, reuse, stale rebuild, export/import, top-k, every error."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file
from torch import nn

from kgkd.distill.cache import CachedTeacher, TeacherCache, cache_fingerprint
from kgkd.errors import CacheError
from kgkd.models.module_teacher import ModuleTeacher

N = 10


pytestmark = pytest.mark.usefixtures("one_thread")


class ToyData(torch.utils.data.Dataset):
    """N random 4-d inputs; items carry their position as ``index``."""

    name = "toy"

    def __init__(self, n: int = N, seed: int = 0, nan_row: int | None = None) -> None:
        self.x = torch.randn(n, 4, generator=torch.Generator().manual_seed(seed))
        if nan_row is not None:
            self.x[nan_row, 0] = float(
                "nan"
            )  # a broken input → the teacher's outputs are NaN there
        self.seed = seed

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int) -> dict:
        return {"x": self.x[i], "index": i}

    def fingerprint(self) -> str:
        return f"toy-{len(self)}-{self.seed}"


def collate(items: list[dict]) -> dict:
    return {
        "x": torch.stack([it["x"] for it in items]),
        "index": torch.tensor([it["index"] for it in items]),
    }


class Counting(nn.Module):
    """Linear → ReLU → Linear classifier (logits scaled by ``scale``) that counts its calls."""

    def __init__(self, seed: int = 0, scale: float = 1.0) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.body = nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, 5))
        self.scale, self.calls = scale, 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        return self.body(x) * self.scale


def teacher(seed: int = 0, **kw) -> ModuleTeacher:
    return ModuleTeacher(
        Counting(seed, **kw),
        name="toy_teacher",
        label_names=[f"l{i}" for i in range(5)],
        feature_layers={"hidden": "body.1"},
        preprocess=lambda b: b["x"],
    )


def build(
    tmp_path: Path, t: ModuleTeacher | None = None, data: ToyData | None = None, **kw
) -> TeacherCache:
    kw.setdefault("path", tmp_path / "toy_teacher__toy.safetensors")
    return TeacherCache.build(
        t or teacher(),
        data or ToyData(),
        collate,
        batch_size=4,
        features=["hidden"],
        show_progress=False,
        **kw,
    )


def reference(t: ModuleTeacher) -> tuple[torch.Tensor, torch.Tensor]:
    with torch.no_grad():
        out = t(collate([ToyData()[i] for i in range(N)]))
    return out.logits, out.features["hidden"]


def test_round_trip_fp32_within_tolerance_and_fp16_close(tmp_path: Path) -> None:
    t = teacher()
    logits, hidden = reference(t)
    cache = TeacherCache.load(build(tmp_path, t, dtype="fp32").path)
    got = cache.lookup(torch.tensor([3, 0, 9]))
    # the cache batches 4 at a time, the reference all 10 at once: BLAS may sum in another
    # order, so fp32 agreement is to a stated tolerance (1e-5 relative, 1e-6 absolute)
    assert torch.allclose(got.logits, logits[[3, 0, 9]], rtol=1e-5, atol=1e-6)
    assert torch.allclose(got.features["hidden"], hidden[[3, 0, 9]], rtol=1e-5, atol=1e-6)
    assert (
        cache.num_samples == N
        and cache.num_labels == 5
        and cache.feature_shapes == {"hidden": (6,)}
    )
    assert cache.label_names == tuple(f"l{i}" for i in range(5)) and cache.header["dtype"] == "fp32"
    half = build(tmp_path, t, path=tmp_path / "half.safetensors")
    assert half.tensors["logits"].dtype == torch.float16
    assert torch.allclose(
        TeacherCache.load(half.path).lookup(torch.arange(N)).logits, logits, atol=1e-2
    )
    assert half.path.stat().st_size < cache.path.stat().st_size
    assert not list(tmp_path.glob(".*.tmp"))  # atomic writes leave no temp files


def test_fingerprint_and_reuse_without_running_the_teacher(tmp_path: Path) -> None:
    t = teacher()
    first = TeacherCache.get_or_build(
        t,
        ToyData(),
        collate,
        path=tmp_path / "c.safetensors",
        features=["hidden"],
        show_progress=False,
    )
    calls = t.module.calls
    assert calls == 1  # one batch of 10 at the default batch size
    again = TeacherCache.get_or_build(
        t,
        ToyData(),
        collate,
        path=tmp_path / "c.safetensors",
        features=["hidden"],
        show_progress=False,
    )
    assert t.module.calls == calls and again.fingerprint == first.fingerprint
    assert first.fingerprint == cache_fingerprint(t.fingerprint(), ToyData().fingerprint(), "")


def test_stale_cache_is_rebuilt_and_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "c.safetensors"
    old = TeacherCache.get_or_build(teacher(0), ToyData(), collate, path=path, show_progress=False)
    new_teacher = teacher(1)  # other weights → other fingerprint
    with caplog.at_level(logging.WARNING, logger="kgkd"):
        new = TeacherCache.get_or_build(
            new_teacher, ToyData(), collate, path=path, show_progress=False
        )
    assert new.fingerprint != old.fingerprint and new_teacher.module.calls > 0
    assert "rebuilding teacher cache of 'toy_teacher'" in caplog.text and "is stale" in caplog.text
    with pytest.raises(
        CacheError,
        match=r"teacher 'toy_teacher' cache \(samples 0..9\) in .* is stale: fingerprint",
    ):
        TeacherCache.load(path, expected_fingerprint=old.fingerprint)
    # preprocessing is part of the key too
    assert (
        TeacherCache.get_or_build(
            new_teacher,
            ToyData(),
            collate,
            path=path,
            preprocessing="resize=32",
            show_progress=False,
        ).fingerprint
        != new.fingerprint
    )


def test_export_import_for_another_site(tmp_path: Path) -> None:
    cache = build(tmp_path)
    shipped = cache.export(tmp_path / "outbox" / "toy_teacher__transfer.safetensors")
    got = TeacherCache.import_(
        shipped,
        expected_num_samples=N,
        expected_labels=[f"l{i}" for i in range(5)],
        dest=tmp_path / "local.safetensors",
    )
    assert torch.equal(got.lookup(torch.arange(N)).logits, cache.lookup(torch.arange(N)).logits)
    assert (tmp_path / "local.safetensors").is_file()
    with pytest.raises(CacheError, match="covers 10 samples but the transfer set has 12"):
        TeacherCache.import_(shipped, expected_num_samples=12)
    with pytest.raises(CacheError, match="has 5 labels, expected 3"):
        TeacherCache.import_(shipped, expected_labels=3)
    with pytest.raises(CacheError, match=r"has labels \['l0'.*expected \['a', 'b'\]"):
        TeacherCache.import_(shipped, expected_labels=["a", "b"])


def test_top_k_stores_k_logits_and_reconstructs_the_distribution(tmp_path: Path) -> None:
    t = teacher()
    logits, _ = reference(t)
    cache = TeacherCache.load(build(tmp_path, t, top_k=2, dtype="fp32").path)
    assert cache.tensors["logits.topk_values"].shape == (N, 2) and "logits" not in cache.tensors
    full = cache.lookup(torch.arange(N)).logits
    assert full.shape == (N, 5) and torch.equal(full.argmax(1), logits.argmax(1))
    top = logits.topk(2, dim=1)
    expected = torch.zeros(N, 5).scatter_(1, top.indices, torch.softmax(top.values, 1))
    assert torch.allclose(torch.softmax(full, 1), expected, atol=1e-6)
    with pytest.raises(CacheError, match=r"top_k=9 must be in 1..5"):
        build(tmp_path, top_k=9, path=tmp_path / "k.safetensors")


def test_nan_and_fp16_overflow_name_the_samples(tmp_path: Path) -> None:
    with pytest.raises(
        CacheError,
        match=r"teacher 'toy_teacher' cache \(samples 4..7\): 'logits' holds NaN/inf for samples \[6\]",
    ):
        build(tmp_path, data=ToyData(nan_row=6))
    with pytest.raises(
        CacheError, match=r"overflows torch.float16 for samples \[0, 1, 2.*dtype='fp32'"
    ):
        build(tmp_path, teacher(scale=1e6))
    assert not (tmp_path / "toy_teacher__toy.safetensors").exists()


def test_truncated_and_foreign_files(tmp_path: Path) -> None:
    path = build(tmp_path).path
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(
        CacheError,
        match=r"toy_teacher__toy.safetensors is truncated or corrupt .*kgkd teachers cache --teacher toy_teacher",
    ):
        TeacherCache.load(path)
    # get_or_build recovers from a corrupt cache by rebuilding it
    assert (
        TeacherCache.get_or_build(
            teacher(), ToyData(), collate, path=path, show_progress=False
        ).num_samples
        == N
    )
    foreign = tmp_path / "plain.safetensors"
    save_file({"w": torch.zeros(2)}, str(foreign))
    with pytest.raises(CacheError, match="safetensors file without a kgkd cache header"):
        TeacherCache.load(foreign)
    with pytest.raises(
        CacheError, match="missing.safetensors does not exist; build it with TeacherCache.build"
    ):
        TeacherCache.load(tmp_path / "missing.safetensors")


def test_header_tensor_mismatch_is_reported(tmp_path: Path) -> None:
    cache = build(tmp_path)
    cache.header["num_labels"] = 7
    cache.save(tmp_path / "bad.safetensors")
    with pytest.raises(
        CacheError, match=r"tensor 'logits' has shape \[10, 5\] but the header says \[10, 7\]"
    ):
        TeacherCache.load(tmp_path / "bad.safetensors")


def test_lookup_and_cached_teacher(tmp_path: Path) -> None:
    cache = build(tmp_path, dtype="fp32")
    stand_in = CachedTeacher(cache)
    out = stand_in({"index": torch.tensor([1, 2]), "x": torch.zeros(2, 4)})
    assert torch.equal(out.logits, cache.lookup(torch.tensor([1, 2])).logits)
    assert (
        stand_in.name == "toy_teacher"
        and stand_in.num_labels == 5
        and stand_in.fingerprint() == cache.fingerprint
    )
    with pytest.raises(
        CacheError,
        match=r"teacher 'toy_teacher' cache \(samples 0..9\): sample index \[10, -1\] out of range",
    ):
        cache.lookup(torch.tensor([0, 10, -1]))
    with pytest.raises(CacheError, match=r"CachedTeacher 'toy_teacher' needs batch\['index'\]"):
        stand_in({"x": torch.zeros(1, 4)})


def test_build_input_errors(tmp_path: Path) -> None:
    with pytest.raises(CacheError, match=r"returns no feature 'logits_pre' \(it has: hidden\)"):
        TeacherCache.build(
            teacher(),
            ToyData(),
            collate,
            features=["logits_pre"],
            path=tmp_path / "a.safetensors",
            show_progress=False,
        )
    with pytest.raises(CacheError, match="dtype must be one of \\['fp16', 'fp32'\\], got 'bf16'"):
        build(tmp_path, dtype="bf16")

    class NoFingerprint(torch.utils.data.Dataset):
        def __len__(self) -> int:
            return 2

    with pytest.raises(
        CacheError,
        match="dataset NoFingerprint has no fingerprint\\(\\) method.*dataset_fingerprint=",
    ):
        TeacherCache.build(teacher(), NoFingerprint(), collate, path=tmp_path / "b.safetensors")
    with pytest.raises(CacheError, match="batches have no 'index' key"):
        TeacherCache.build(
            teacher(),
            ToyData(),
            lambda items: {"x": collate(items)["x"]},
            path=tmp_path / "c.safetensors",
            show_progress=False,
        )


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            lambda c: c.header.update(version=99),
            r"not a kgkd teacher cache v1 \(header format 'kgkd-teacher-cache' v99\)",
        ),
        (
            lambda c: c.tensors.pop("feature.hidden"),
            r"tensor 'feature.hidden' is missing; delete it and rebuild",
        ),
        (
            lambda c: c.tensors["logits"].__setitem__((7, 1), float("inf")),
            r"'logits' holds NaN/inf for samples \[7\]",
        ),
    ],
)
def test_damaged_exports_are_rejected(tmp_path: Path, edit, message: str) -> None:
    cache = build(tmp_path)
    edit(cache)
    cache.save(tmp_path / "damaged.safetensors")
    with pytest.raises(CacheError, match=message):
        TeacherCache.import_(tmp_path / "damaged.safetensors")


def test_top_k_indices_out_of_range_are_rejected(tmp_path: Path) -> None:
    cache = build(tmp_path, top_k=2)
    cache.tensors["logits.topk_indices"][0, 0] = 5
    cache.save(tmp_path / "k.safetensors")
    with pytest.raises(CacheError, match=r"top-k label indices outside 0..4"):
        TeacherCache.load(tmp_path / "k.safetensors")


def test_repeated_batch_indices_are_rejected(tmp_path: Path) -> None:
    def wrong_index(items: list[dict]) -> dict:
        batch = collate(items)
        batch["index"] = batch["index"] % 4  # positions within the batch, not within the dataset
        return batch

    with pytest.raises(
        CacheError,
        match=r"batch indices \[0, 1, 2, 3\] are out of range 0..9 or repeat earlier ones",
    ):
        TeacherCache.build(
            teacher(),
            ToyData(),
            wrong_index,
            batch_size=4,
            path=tmp_path / "r.safetensors",
            show_progress=False,
        )
