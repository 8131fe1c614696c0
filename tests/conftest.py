import os

import numpy as np
import pytest
from sklearn.datasets import load_digits


def pytest_configure(config):
    """Run every test on the CPU unless the GPU tests are selected (``-m gpu``).

    Most tests compare fits bit for bit (in memory against memory-mapped,
    sparse, Dask or several processes) and were written for the CPU's
    arithmetic; ``device="auto"`` would move them to a GPU where there is
    one. Hiding CUDA here, before torch first looks for it, keeps those
    results the CPU's on any machine, in worker processes too;
    ``pytest -m gpu`` runs ``tests/test_gpu.py`` on the GPU instead.
    """
    if "gpu" not in (config.option.markexpr or "").replace("not gpu", ""):
        os.environ["CUDA_VISIBLE_DEVICES"] = ""


@pytest.fixture(scope="session")
def digits():
    """Digits scaled to [0, 1], split into train and held-out parts."""
    X, y = load_digits(return_X_y=True)
    X = X / 16.0
    rng = np.random.RandomState(0)
    order = rng.permutation(len(X))
    train, test = order[:1300], order[1300:]
    return X[train], X[test], y[train], y[test]


@pytest.fixture
def small_X():
    """A small nonlinear data set: 120 samples on a curved 2-D manifold in 6-D."""
    rng = np.random.RandomState(42)
    t = rng.uniform(-1, 1, size=(120, 2))
    return np.column_stack(
        [t[:, 0], t[:, 1], t[:, 0] ** 2, np.sin(3 * t[:, 1]), t[:, 0] * t[:, 1], np.cos(2 * t[:, 0])]
    ) + 0.01 * rng.normal(size=(120, 6))


@pytest.fixture
def one_thread():
    """Run a test's tiny tensor products on one intra-op thread, then restore.

    skae's own fits of such sizes train on one thread; tests that call torch
    directly on tiny tensors do the same, since spinning threads can cost
    milliseconds per product of a few dozen elements on a busy machine.
    """
    import torch

    n_threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n_threads)


@pytest.fixture(scope="session")
def dask_client():
    """A ``distributed.LocalCluster`` of 2 single-threaded worker processes, shared by the session.

    Starting workers (each imports torch and skae on its first task) takes
    seconds, so every Dask test uses this one cluster. The scheduler's HTTP
    server (it runs even without a dashboard) listens on a free local port:
    its default, 8787, may be taken by another cluster, and the warning that
    says so would be an error here.
    """
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
        scheduler_kwargs={"dashboard_address": "127.0.0.1:0"}, silence_logs=40,
    ) as cluster, distributed.Client(cluster) as client:
        yield client
