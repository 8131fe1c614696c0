"""Out-of-core input: Dask arrays and memory-mapped arrays, fit block by block and lazy inference."""

import subprocess
import sys
import warnings

import numpy as np
import pytest
import torch
from sklearn.exceptions import ConvergenceWarning
from numpy.testing import assert_allclose, assert_array_equal

import skae
from skae import _blocks
from skae._blocks import BlockReader, BlockRows

da = pytest.importorskip("dask.array")
dask = pytest.importorskip("dask")


@pytest.fixture(scope="module")
def data():
    rng = np.random.RandomState(0)
    latent = rng.normal(size=(360, 3))
    X = np.tanh(latent @ rng.normal(size=(3, 16))) + 0.05 * rng.normal(size=(360, 16))
    X[:6] += 4.0  # a few outliers
    return X


def _fit_quietly(est, X, y=None):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=ConvergenceWarning)
        return est.fit(X) if y is None else est.fit(X, y)


KINDS = {
    "mlp": dict(hidden_layer_sizes=(12,)),
    "early_stopping": dict(hidden_layer_sizes=(12,), early_stopping=True, n_iter_no_change=2),
    "variational": dict(hidden_layer_sizes=(12,), variational=True, n_components=2),
    "conv": dict(architecture="conv", image_shape=(4, 4, 1), conv_channels=(4,), kernel_size=3),
    "denoising_sparse": dict(hidden_layer_sizes=(12,), noise="gaussian", noise_level=0.1,
                             sparsity="l1", sparsity_weight=1e-3),
}


def _check_same_fit(X, X_blocks, params):
    for cls in (skae.AutoencoderTransformer, skae.AutoencoderAnomalyDetector):
        memory = _fit_quietly(cls(**params), X)
        blocks = _fit_quietly(cls(**params), X_blocks)
        assert blocks.n_features_in_ == X.shape[1]
        assert blocks.n_iter_ == memory.n_iter_
        assert_allclose(blocks.loss_curve_, memory.loss_curve_, rtol=1e-6)
        assert_allclose(blocks.score_samples(X), memory.score_samples(X), rtol=1e-5, atol=1e-7)
        if cls is skae.AutoencoderAnomalyDetector:
            assert blocks.offset_ == pytest.approx(memory.offset_, rel=1e-6)
        else:
            assert_allclose(blocks.code_range_, memory.code_range_, rtol=1e-5, atol=1e-7)


def test_fit_on_dask_array_on_the_cluster_equals_fit_in_memory(data, dask_client):
    """Same random_state, same rows: the same model, with the blocks computed on the cluster."""
    X_dask = da.from_array(data, chunks=(50, 8))  # blocks across columns too: joined per block
    _check_same_fit(data, X_dask, dict(n_components=3, max_iter=6, random_state=0,
                                       batch_size=32, hidden_layer_sizes=(12,)))


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_fit_on_dask_array_equals_fit_in_memory(kind, data):
    """Every network kind and training option: the same model from a Dask array."""
    X_dask = da.from_array(data, chunks=(50, 16))
    params = {**dict(n_components=3, max_iter=4, random_state=0, batch_size=32), **KINDS[kind]}
    with dask.config.set(scheduler="synchronous"):
        _check_same_fit(data, X_dask, params)


def test_inference_on_dask_array_is_lazy_and_equal(data, dask_client):
    """Every inference method returns a lazy Dask array, equal to in-memory inference."""
    X = data
    X_dask = da.from_array(X, chunks=(100, 16))
    det = _fit_quietly(skae.AutoencoderAnomalyDetector(n_components=3, max_iter=5,
                                                       random_state=0), X)
    tr = _fit_quietly(skae.AutoencoderTransformer(n_components=3, max_iter=5, random_state=0), X)
    calls = [(det, m) for m in ("score_samples", "decision_function", "predict",
                                "feature_errors", "reconstruct")]
    calls += [(tr, m) for m in ("transform", "reconstruct", "score_samples")]
    lazy = {(id(est), method): getattr(est, method)(X_dask) for est, method in calls}
    computed = dict(zip(lazy, dask_client.gather(dask_client.compute(list(lazy.values())))))
    for est, method in calls:
        result = lazy[id(est), method]
        assert isinstance(result, da.Array), method
        assert result.chunks[0] == X_dask.chunks[0], method
        expected = getattr(est, method)(X)
        result = computed[id(est), method]  # on the cluster's workers
        assert result.dtype == expected.dtype, method
        # workers run torch on one thread: sums may round differently
        assert_allclose(result, expected, rtol=1e-12, atol=1e-14)
    codes = tr.transform(X_dask)
    assert_allclose(tr.inverse_transform(codes).compute(), tr.inverse_transform(tr.transform(X)),
                    rtol=1e-12, atol=1e-14)
    assert tr.score(X_dask) == pytest.approx(tr.score(X), rel=1e-12)
    X32 = X_dask.astype(np.float32)
    assert tr.transform(X32).dtype == np.float32
    assert_allclose(tr.transform(X32).compute(), tr.transform(X.astype(np.float32)), rtol=1e-5)


def test_model_enters_the_graph_once(data):
    """The fitted model is one task that every block depends on: sent once to each worker."""
    det = _fit_quietly(skae.AutoencoderAnomalyDetector(n_components=3, max_iter=2,
                                                       random_state=0), data)
    lazy = det.score_samples(da.from_array(data, chunks=(40, 16)))
    graph = dict(lazy.__dask_graph__())
    models = [k for k in graph if isinstance(k, str) and "-model-" in k]
    assert len(models) == 1
    outputs = [k for k in graph if isinstance(k, tuple) and k[0] == lazy.name]
    assert len(outputs) == 9
    for key in outputs:
        assert models[0] in dask.core.get_dependencies(graph, key)
    # the model was copied: refitting the estimator does not change the pending result
    before = lazy.compute(scheduler="synchronous")
    _fit_quietly(det.set_params(max_iter=4), data)
    assert_array_equal(lazy.compute(scheduler="synchronous"), before)


def test_nan_block_is_named(data, dask_client):
    """A NaN in a block: fit and inference name the block and its rows."""
    X = data.copy()
    X[130, 3] = np.nan
    X_dask = da.from_array(X, chunks=(50, 16))
    det = skae.AutoencoderAnomalyDetector(n_components=3, max_iter=2, random_state=0)
    with pytest.raises(ValueError, match=r"NaN in block 2 of 8 \(rows 100 to 149\)"):
        det.fit(X_dask)
    assert not hasattr(det, "module_")  # a failed fit leaves the estimator as it was
    X_inf = data.copy()
    X_inf[7, 0] = np.inf
    with pytest.raises(ValueError, match=r"infinity .* in block 0 of 8 \(rows 0 to 49\)"):
        det.fit(da.from_array(X_inf, chunks=(50, 16)))
    _fit_quietly(det, data)
    lazy = det.predict(X_dask)
    with pytest.raises(ValueError, match=r"contains NaN: in block 2 of 8 of the Dask array X "
                                         r"\(rows 100 to 149\)"):
        dask_client.compute(lazy).result()


def test_memmap_fit_reads_blocks_and_equals_in_memory(data, tmp_path, monkeypatch):
    """A memory-mapped .npy file: the same fit as in memory; several windows, same rows."""
    path = tmp_path / "X.npy"
    np.save(path, data.astype(np.float32))
    X_map = np.load(path, mmap_mode="r")
    params = dict(n_components=3, max_iter=4, random_state=0, batch_size=32)
    memory = _fit_quietly(skae.AutoencoderTransformer(**params), data.astype(np.float32))
    mapped = _fit_quietly(skae.AutoencoderTransformer(**params), X_map)
    assert_array_equal(mapped.loss_curve_, memory.loss_curve_)
    assert_array_equal(mapped.transform(data), memory.transform(data))

    # blocks of 20 rows, windows of 3 blocks: 6 windows per epoch
    monkeypatch.setattr(_blocks, "MEMMAP_BLOCK_BYTES", 20 * 16 * 4)
    monkeypatch.setattr(_blocks, "WINDOW_BYTES", 3 * 20 * 16 * 4)
    reads = []
    real_read = BlockReader.read_block
    monkeypatch.setattr(BlockReader, "read_block",
                        lambda self, i: reads.append(i) or real_read(self, i))
    in_order = dict(params, shuffle=False)
    memory = _fit_quietly(skae.AutoencoderTransformer(**in_order), data.astype(np.float32))
    reads.clear()
    mapped = _fit_quietly(skae.AutoencoderTransformer(**in_order), X_map)
    assert_array_equal(mapped.loss_curve_, memory.loss_curve_)  # without shuffling: identical
    assert_array_equal(mapped.transform(data), memory.transform(data))
    reads.clear()
    shuffled = _fit_quietly(skae.AutoencoderTransformer(**params), X_map)
    n_blocks = 18
    # 1 finiteness pass, 4 epochs, 1 pass for the code range: each block at most once per
    # pass (a block still held when an epoch ends may serve the next one)
    assert np.bincount(reads, minlength=n_blocks).max() <= 6
    assert len(reads) >= n_blocks * 6 - 3 * 4
    assert shuffled.loss_curve_[-1] < shuffled.loss_curve_[0]
    reads.clear()
    _fit_quietly(skae.AutoencoderAnomalyDetector(n_components=3, max_iter=1, standardize=True,
                                                 batch_size=32, random_state=0), X_map)
    # check (which finds each column's range, so its largest magnitude), mean, variance,
    # 1 epoch, errors and codes, the residuals' moments (residual_covariance="full"),
    # scores for the threshold: each block at most once per pass
    assert np.bincount(reads, minlength=n_blocks).max() <= 7


@pytest.mark.parametrize("scoring", [dict(relative_errors=True), dict(code_distance="add"),
                                     dict(n_neighbors=2)])
def test_score_statistics_from_blocks_equal_those_in_memory(data, tmp_path, monkeypatch,
                                                            scoring):
    """The training errors and codes are read block by block, with the results in memory."""
    path = tmp_path / "X.npy"
    np.save(path, data)
    monkeypatch.setattr(_blocks, "MEMMAP_BLOCK_BYTES", 40 * 16 * 8)  # 9 blocks
    params = dict(n_components=3, max_iter=2, random_state=0, batch_size=32, **scoring)
    memory = _fit_quietly(skae.AutoencoderAnomalyDetector(**params), data)
    sources = [np.load(path, mmap_mode="r"), da.from_array(data, chunks=(50, 16))]
    with dask.config.set(scheduler="synchronous"):
        for X in sources:
            blocks = _fit_quietly(skae.AutoencoderAnomalyDetector(**params), X)
            for attr in ("feature_error_scale_", "error_scale_", "code_mean_",
                         "code_whitening_", "residual_mean_", "residual_whitening_",
                         "residual_shrinkage_", "reference_embedding_"):
                if getattr(memory, attr) is None:
                    assert getattr(blocks, attr) is None
                else:
                    assert_allclose(getattr(blocks, attr), getattr(memory, attr), rtol=1e-12)
            assert blocks.offset_ == pytest.approx(memory.offset_, rel=1e-12)
            assert_allclose(blocks.score_samples(data), memory.score_samples(data), rtol=1e-12)


def test_window_order_visits_each_row_once():
    """Shuffling by windows: a permutation of the training rows, block-local per window."""
    rng = np.random.RandomState(1)
    X = rng.normal(size=(100, 4))
    reader = BlockReader(da.from_array(X, chunks=(10, 4)), "test").check()
    rows = BlockRows(reader)
    rows.window = 3
    assert rows.n_windows == 4 and rows.sequential
    g = torch.Generator().manual_seed(0)
    order = rows.order(None, g, shuffle=True)
    assert sorted(order.tolist()) == list(range(100))
    blocks = np.searchsorted(reader.bounds, order.numpy(), side="right") - 1
    windows = [set(blocks[i:i + 30].tolist()) for i in range(0, 90, 30)]
    assert all(len(w) == 3 for w in windows)  # 30 consecutive rows come from 3 blocks
    index = torch.tensor([5, 17, 18, 40, 97, 99])
    assert sorted(rows.order(index, g, shuffle=True).tolist()) == index.tolist()
    assert rows.order(index, g, shuffle=False) is index
    assert_array_equal(rows.take(torch.tensor([99, 0, 55])).numpy(),
                       X[[99, 0, 55]].astype(np.float32))


def test_partial_fit_and_int_dask_array(data):
    """partial_fit streams an epoch; integer arrays are read as float64."""
    X_int = np.round(data * 10).astype(np.int64)
    X_dask = da.from_array(X_int, chunks=(90, 16))
    est = skae.AutoencoderTransformer(n_components=3, random_state=0)
    est.partial_fit(X_dask).partial_fit(X_dask)
    memory = skae.AutoencoderTransformer(n_components=3, random_state=0)
    memory.partial_fit(X_int).partial_fit(X_int)
    assert est.n_iter_ == 2
    assert_allclose(est.loss_curve_, memory.loss_curve_, rtol=1e-6)
    assert est.transform(X_dask).dtype == np.float64


def test_out_of_core_errors(data):
    X_dask = da.from_array(data, chunks=(90, 16))
    with pytest.raises(ValueError, match="does not take sample_weight with a Dask"):
        skae.AutoencoderTransformer().fit(X_dask, sample_weight=np.ones(len(data)))
    with pytest.raises(ValueError, match="pretraining='greedy'.* Dask or memory-mapped"):
        skae.AutoencoderTransformer(pretraining="greedy", hidden_layer_sizes=(8,)).fit(X_dask)
    with pytest.raises(ValueError, match="paired data held in memory; it got a Dask array"):
        skae.AutoencoderRegressor().fit(X_dask, data[:, :2])
    unknown = X_dask[X_dask[:, 0] > 0]
    with pytest.raises(ValueError, match="compute_chunk_sizes"):
        skae.AutoencoderTransformer().fit(unknown)
    est = _fit_quietly(skae.AutoencoderTransformer(n_components=2, max_iter=2), data)
    with pytest.raises(ValueError, match="X has 15 features, but AutoencoderTransformer.transform "
                                         "is expecting 16"):
        est.transform(X_dask[:, :15])
    with pytest.raises(ValueError, match="expecting 16 features"):
        est.partial_fit(X_dask[:, :15])


def test_no_module_of_skae_imports_dask_at_import_time():
    """Dask stays optional: skae imports it only inside the functions that need it."""
    import ast
    from pathlib import Path

    for path in Path(skae.__file__).parent.rglob("*.py"):
        tree = ast.parse(path.read_text())
        for node in tree.body:  # module level only
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            else:
                continue
            assert not any(n.split(".")[0] in ("dask", "distributed") for n in names), path


@pytest.mark.slow
def test_dask_is_not_imported_unless_used():
    code = ("import sys, numpy as np, skae\n"
            "skae.AutoencoderAnomalyDetector(max_iter=2).fit(np.random.rand(40, 3))\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('dask', 'distributed')))")
    out = subprocess.run([sys.executable, "-W", "ignore", "-c", code], capture_output=True,
                         text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_regressor_reads_a_memory_map_into_memory(data, tmp_path):
    """Paired data: a memory-mapped X is read like any array, and fits as the array does."""
    np.save(tmp_path / "X.npy", data)
    X_map = np.load(tmp_path / "X.npy", mmap_mode="r")
    params = dict(n_components=3, max_iter=3, random_state=0)
    mapped = _fit_quietly(skae.AutoencoderRegressor(**params), X_map[:, :12], data[:, 12:])
    memory = _fit_quietly(skae.AutoencoderRegressor(**params), data[:, :12], data[:, 12:])
    assert_array_equal(mapped.predict(data[:, :12]), memory.predict(data[:, :12]))
