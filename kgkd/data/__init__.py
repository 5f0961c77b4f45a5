"""Domain-tagged datasets over the real data kgkd ships (``data/``), builds on demand, or a user adds
(``add_user_domain`` / ``kgkd data add``).

>>> from kgkd.data import load_domain, MultiDomainDataset, list_domains
>>> list_domains("image")
['fashion_mnist', 'mnist', 'uci_digits']
"""

from kgkd.data.augment import (
    ImageAugment,
    TextAugment,
    blur,
    gaussian_noise,
    random_shift,
    token_dropout,
    typos,
    word_swap,
)
from kgkd.data.collate import ImageCollator, TextCollator
from kgkd.data.datasets import DomainDataset, MultiDomainDataset, data_file, load_domain
from kgkd.data.domains import get_spec, list_domains
from kgkd.data.specs import DOMAINS, DomainSpec
from kgkd.data.splits import SPLITS, stratified_split
from kgkd.data.tokenizer import load_minilm_tokenizer
from kgkd.data.transforms import normalize, resize_digits, to_channels
from kgkd.data.user import add_user_domain, remove_user_domain, user_data_dir

__all__ = [
    "DOMAINS",
    "SPLITS",
    "DomainDataset",
    "DomainSpec",
    "ImageAugment",
    "ImageCollator",
    "MultiDomainDataset",
    "TextAugment",
    "TextCollator",
    "add_user_domain",
    "blur",
    "data_file",
    "gaussian_noise",
    "get_spec",
    "list_domains",
    "load_domain",
    "load_minilm_tokenizer",
    "normalize",
    "random_shift",
    "remove_user_domain",
    "resize_digits",
    "stratified_split",
    "to_channels",
    "token_dropout",
    "typos",
    "user_data_dir",
    "word_swap",
]
