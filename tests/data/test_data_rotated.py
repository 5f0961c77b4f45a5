"""Rotated MNIST (rmnist_0 ... rmnist_75): disjoint source digits, real rotations, counts,
reproducible rebuild, and graphs/rotated_digits.ttl (angle attribute, similarTo, teachers)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from kgkd.data import list_domains, load_domain
from kgkd.data.build import build_domains
from kgkd.data.sources import rotate_images, rotation_parts
from kgkd.data.specs import ROTATION_ANGLES
from kgkd.data.storage import read_image_arrays, sha256_file
from kgkd.errors import DataError
from kgkd.graph import KnowledgeGraph
from kgkd.paths import graphs_dir, repo_root

DATA = repo_root() / "data"
MANIFEST = json.loads((DATA / "manifest.json").read_text(encoding="utf-8"))
SPLITS = ("train", "val", "test")
NAMES = [f"rmnist_{a}" for a in ROTATION_ANGLES]


def _arrays(name: str) -> dict[str, np.ndarray]:
    return read_image_arrays(DATA / "digits" / f"{name}.npz", "x")


def _mnist() -> tuple[np.ndarray, np.ndarray]:
    """The shipped MNIST digits, splits concatenated in order (what mnist_index points into)."""
    arrays = _arrays("mnist")
    return (
        np.concatenate([arrays[f"x_{s}"] for s in SPLITS]),
        np.concatenate([arrays[f"y_{s}"] for s in SPLITS]),
    )


def _whole(name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    arrays = _arrays(name)
    return tuple(
        np.concatenate([arrays[f"{k}_{s}"] for s in SPLITS]) for k in ("x", "y", "mnist_index")
    )  # type: ignore[return-value]


def _orientation(images: np.ndarray) -> np.ndarray:
    """Principal-axis angle (degrees, counter-clockwise as displayed) of each image's ink."""
    rows, cols = np.mgrid[0:28, 0:28]
    x, y = cols[None].astype(float), -rows[None].astype(float)
    w = images.astype(float)
    m = w.sum(axis=(1, 2))
    cx, cy = (w * x).sum(axis=(1, 2)) / m, (w * y).sum(axis=(1, 2)) / m
    dx, dy = x - cx[:, None, None], y - cy[:, None, None]
    mu20, mu02, mu11 = (
        (w * dx * dx).sum(axis=(1, 2)),
        (w * dy * dy).sum(axis=(1, 2)),
        (w * dx * dy).sum(axis=(1, 2)),
    )
    return np.degrees(0.5 * np.arctan2(2 * mu11, mu20 - mu02))


@pytest.mark.parametrize("name", NAMES)
def test_counts_manifest_and_stratified_splits(name: str) -> None:
    entry = MANIFEST["domains"][name]
    assert sha256_file(DATA / entry["file"]) == entry["sha256"]
    assert entry["total"] == 1666 and entry["shape"] == [28, 28]
    assert entry["source"]["angle"] == int(name.split("_")[1])
    assert entry["source"]["archive_sha256"] == MANIFEST["domains"]["mnist"]["sha256"]
    per = {s: np.array(load_domain(name, s).class_counts()) for s in SPLITS}
    whole = sum(per.values())
    assert whole.sum() == 1666 and np.all(whole > 100)  # every digit present
    for split, share in (("train", 0.6), ("val", 0.2), ("test", 0.2)):
        assert np.all(np.abs(per[split] - share * whole) <= 1.0)
    item = load_domain(name, "test")[0]
    assert item["image"].shape == (1, 28, 28) and float(item["image"][0, 0, 0]) == 0.0


def test_angles_use_disjoint_mnist_digits() -> None:
    indices = [_whole(n)[2] for n in NAMES]
    assert all(len(i) == len(set(i.tolist())) == 1666 for i in indices)
    union = np.concatenate(indices)
    assert len(set(union.tolist())) == 6 * 1666  # no digit in two domains
    assert set(list_domains("image")) >= set(NAMES)


def test_rmnist_0_is_mnist_and_others_are_rotations_of_it() -> None:
    mx, my = _mnist()
    x0, y0, i0 = _whole("rmnist_0")
    assert np.array_equal(x0, mx[i0]) and np.array_equal(y0, my[i0])
    for angle in ROTATION_ANGLES[1:]:
        x, y, idx = _whole(f"rmnist_{angle}")
        assert np.array_equal(y, my[idx])
        assert np.array_equal(
            x, rotate_images(mx[idx], angle)
        )  # shipped file = documented transform
        assert not np.array_equal(x, mx[idx])
        # independent check: the ink's principal axis turns by the angle (median over digits)
        turn = (_orientation(x) - _orientation(mx[idx]) + 90.0) % 180.0 - 90.0
        assert abs(float(np.median(turn)) - angle) < 1.0, (angle, float(np.median(turn)))
        # rotating back recovers the original up to interpolation blur
        back = rotate_images(x[:200], -angle).astype(float).ravel()
        assert np.corrcoef(back, mx[idx][:200].astype(float).ravel())[0, 1] > 0.95


def test_rotation_direction_and_bad_inputs() -> None:
    img = np.zeros((1, 28, 28), np.uint8)
    img[0, 13:15, 22:24] = 255  # a blob right of the centre (13.5, 13.5)
    turned = rotate_images(img, 90)[0].astype(float)
    rows, cols = np.mgrid[0:28, 0:28]
    r, c = (turned * rows).sum() / turned.sum(), (turned * cols).sum() / turned.sum()
    assert r == pytest.approx(4.5, abs=0.3) and c == pytest.approx(
        13.5, abs=0.3
    )  # now above: counter-clockwise
    assert np.array_equal(rotate_images(img, 0), img) and rotate_images(img, 45).dtype == np.uint8
    with pytest.raises(
        DataError, match=r"rotate_images expects \[N,H,W\] images, got shape \(28, 28\)"
    ):
        rotate_images(img[0], 15)
    parts = rotation_parts(20, 6, seed=0)
    assert [len(p) for p in parts] == [3] * 6 and len(set(np.concatenate(parts).tolist())) == 18
    assert all(np.array_equal(a, b) for a, b in zip(parts, rotation_parts(20, 6, seed=0)))
    with pytest.raises(DataError, match=r"cannot cut 4 images into 6 non-empty parts"):
        rotation_parts(4, 6, seed=0)


def test_rebuild_reproduces_the_shipped_file(tmp_path) -> None:  # type: ignore[no-untyped-def]
    entry = build_domains(only=["rmnist_45"], out_dir=tmp_path, show_progress=False)["rmnist_45"]
    assert entry["sha256"] == MANIFEST["domains"]["rmnist_45"]["sha256"]
    assert "Rotated MNIST" in (tmp_path / "README.md").read_text(encoding="utf-8")


def test_rotated_graph_states_angles_links_and_teachers() -> None:
    kg = KnowledgeGraph.from_file(graphs_dir() / "rotated_digits.ttl").validate()
    assert [d.name for d in kg.domains()] == sorted(NAMES)
    for angle in ROTATION_ANGLES:
        node = kg.domain(f"rmnist_{angle}")
        assert node.attributes["rotationAngle"] == float(angle)
        assert node.modality == "image" and node.label_set == "digits10"
        assert f"rotated by {angle} degrees" in node.description
    g = kg.to_networkx()
    links = {(u, v): d["weight"] for u, v, d in g.edges(data=True) if d["relation"] == "similarTo"}
    expected = {
        (f"rmnist_{a}", f"rmnist_{b}"): 0.8 if b - a == 15 else 0.5
        for a in ROTATION_ANGLES
        for b in ROTATION_ANGLES
        if 0 < b - a <= 30
    }
    assert links == pytest.approx(expected)
    teachers = {t.name: t for t in kg.teachers()}
    assert set(teachers) == {f"teacher_{n}" for n in NAMES}
    assert all(
        t.trained_on == [t.name.removeprefix("teacher_")] and t.architecture == "cnn"
        for t in teachers.values()
    )
    assert kg.label_map("teacher_rmnist_30", "digits10").teacher_labels == tuple(
        f"digit_{d}" for d in range(10)
    )
