"""Fixtures shared by every test module."""

import pytest
import torch


@pytest.fixture(autouse=True, scope="session")
def one_torch_thread():
    """A 0.9M-parameter model runs fastest on one thread: on a busy 2-core machine, two threads
    spend ~10x the CPU fighting each other (measured: evaluate add2, 1.7 s vs 22 s). The root
    conftest sets OMP_NUM_THREADS=1 unless the caller chose otherwise; this holds either way."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
