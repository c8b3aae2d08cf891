"""Shared fixtures: random-init model directories (tiny for plumbing, base-size for the real architectures)."""
import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # tests never touch the network


@pytest.fixture(scope="session")
def model_dirs(tmp_path_factory):
    """A function (family, size) -> directory of a random-init model, built once per session."""
    from mmkit.testing import random_model_dir

    made = {}

    def get(family: str, size: str = "tiny"):
        if (family, size) not in made:
            made[family, size] = random_model_dir(family, size, tmp_path_factory.mktemp(f"{family}-{size}"))
        return str(made[family, size])

    return get


@pytest.fixture(scope="session")
def scenes():
    from mmkit.data import ShapesWorld

    return ShapesWorld(4, seed=0)


@pytest.fixture(scope="module")
def one_thread():
    """Run a module's tests on one torch thread (tiny models: as fast, and it shares the CPU better)."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
