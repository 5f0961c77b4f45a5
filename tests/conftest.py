"""Shared pytest setup: at most two torch threads (CI has 2 cores), offline Hugging Face."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("MPLBACKEND", "Agg")

import torch

torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))


import pytest


@pytest.fixture(scope="session")
def shared_cache(tmp_path_factory: pytest.TempPathFactory):
    """Session-wide teacher/cache folder exported as ``KGKD_CACHE_DIR``.

    Recipes, CLI and notebook tests share it, so each smoke teacher is trained once per run.
    """
    folder = tmp_path_factory.getbasetemp() / "kgkd_shared_cache"
    folder.mkdir(exist_ok=True)
    old = os.environ.get("KGKD_CACHE_DIR")
    os.environ["KGKD_CACHE_DIR"] = str(folder)
    yield folder
    if old is None:
        os.environ.pop("KGKD_CACHE_DIR", None)
    else:
        os.environ["KGKD_CACHE_DIR"] = old


@pytest.fixture
def one_thread():
    """Tiny tensors: one torch thread (2 threads on a shared 2-core box spin and run ~10x slower)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(autouse=True, scope="session")
def _private_user_data(tmp_path_factory: pytest.TempPathFactory):
    """User domains added by tests (``kgkd data add``) go to a tmp folder, never to data/user/."""
    old = os.environ.get("KGKD_USER_DATA_DIR")
    os.environ["KGKD_USER_DATA_DIR"] = str(tmp_path_factory.mktemp("user_data"))
    yield
    if old is None:
        os.environ.pop("KGKD_USER_DATA_DIR", None)
    else:
        os.environ["KGKD_USER_DATA_DIR"] = old
