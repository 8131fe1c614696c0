"""Smoke tests of the benchmark scripts' quick modes (they never assert speed)."""

import importlib.util
import math
from pathlib import Path

import pytest

pytestmark = pytest.mark.filterwarnings("ignore")

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def load(name):
    spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_speed_benchmark_quick_mode_reports_a_ratio(capsys):
    results = load("bench_speed").main(["--quick"])
    ratio = results[256]["skae"]
    assert math.isfinite(ratio) and ratio > 0
    assert "ratio" in capsys.readouterr().out


def test_speed_benchmark_gpu_rows_run(capsys):
    """The rows of the GPU table (``--device cuda``) run, here on the CPU."""
    bench = load("bench_speed")
    X = bench.make_data(600, 32)
    for name, run in bench.GPU_IMPLEMENTATIONS.items():
        predict = run(X, 128, 1)
        assert math.isfinite(bench.final_mse(predict, X)), name


def test_vae_benchmark_peers_agree_on_the_same_weights():
    """The minimal VAE's hand-written likelihood estimate agrees with skae's on one network."""
    import numpy as np
    import torch

    from skae import AutoencoderTransformer

    bench = load("bench_vae")
    rng = np.random.RandomState(0)
    X = (rng.uniform(size=(300, 12)) < 0.3).astype(np.float32)
    vae = AutoencoderTransformer(
        n_components=3, hidden_layer_sizes=(8, 8), activation="tanh", variational=True,
        loss="bce", output_activation="sigmoid", max_iter=5, n_importance_samples=50000,
        random_state=0,
    ).fit(X)
    minimal = bench.MinimalVAE(12, (8, 8), 3)
    net = vae.module_
    linears = [layer.linear for layer in net.hidden_layers] + [net.posterior]
    mins = [m for m in minimal.enc if isinstance(m, torch.nn.Linear)]
    mins += [m for m in minimal.dec if isinstance(m, torch.nn.Linear)]
    linears += [layer.linear for layer in net.decoder_layers]
    with torch.no_grad():
        for theirs, ours in zip(mins, linears):
            theirs.weight.copy_(ours.weight)
            theirs.bias.copy_(ours.bias)
    ours = vae.score_samples(X[:20])
    theirs = bench.minimal_log_likelihood(minimal, X[:20], 50000)
    # independent draws: equal up to the estimates' noise (about 0.02 nats here)
    np.testing.assert_allclose(theirs, ours, atol=0.05)
    trained = bench.train_minimal(X, (8, 8), 3, epochs=1, batch_size=50, lr=1e-3, seed=0)
    assert np.isfinite(bench.minimal_log_likelihood(trained, X[:5], 10)).all()


def test_sparse_benchmark_corpus():
    """The synthetic TF-IDF corpus: CSR of the asked shape, l2-normalized rows, fixed seed."""
    import numpy as np
    import scipy.sparse as sp

    bench = load("bench_sparse")
    X = bench.tfidf_corpus(300, 400, doc_length=20, zipf=1.1)
    assert sp.issparse(X) and X.format == "csr" and X.shape == (300, 400)
    np.testing.assert_allclose(sp.linalg.norm(X, axis=1), 1.0)
    assert bench.csr_bytes(X) == X.data.nbytes + X.indices.nbytes + X.indptr.nbytes
    assert (bench.tfidf_corpus(300, 400, doc_length=20, zipf=1.1) != X).nnz == 0
