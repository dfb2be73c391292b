"""Shared fixtures. Tests run on CPU with one thread so the suite behaves the same on 2 cores."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch

torch.set_num_threads(1)
os.environ.setdefault("OMP_NUM_THREADS", "1")


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)


@pytest.fixture(autouse=True)
def _private_cache(tmp_path_factory, monkeypatch):
    """Every test gets its own tribert cache (mixture lists, reference scores), never the user's."""
    monkeypatch.setenv("TRIBERT_CACHE", str(tmp_path_factory.mktemp("cache")))
