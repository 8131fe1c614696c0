"""CUDA training and GPU-to-CPU persistence; skipped without CUDA."""

import pickle

import numpy as np
import pytest
import torch

from skae import AutoencoderAnomalyDetector, AutoencoderTransformer

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA is not available"),
    pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning"),
]


@pytest.fixture
def X():
    return np.random.RandomState(0).normal(size=(500, 10)).astype(np.float32)


def test_auto_device_trains_on_cuda(X):
    ae = AutoencoderTransformer(3, max_iter=3, random_state=0).fit(X)
    assert next(ae.module_.parameters()).device.type == "cuda"
    assert ae.transform(X).dtype == np.float32


def test_cuda_model_pickles_to_cpu_tensors(X):
    det = AutoencoderAnomalyDetector(3, max_iter=3, device="cuda", random_state=0).fit(X)
    assert all(t.device.type == "cuda" for t in det.module_.state_dict().values())
    arrays = det.__getstate__()["__skae_arrays__"]  # numpy arrays only, on the host
    assert all(type(a) is np.ndarray for a in arrays.values())
    assert any(name.startswith("optimizer/state/") for name in arrays)  # Adam's moments
    assert next(det.module_.parameters()).device.type == "cuda"  # the estimator is untouched
    restored = pickle.loads(pickle.dumps(det))
    np.testing.assert_allclose(restored.score_samples(X), det.score_samples(X), rtol=1e-4)


def test_cpu_and_cuda_fits_agree_closely(X):
    cpu = AutoencoderTransformer(3, max_iter=5, shuffle=False, device="cpu", random_state=0)
    gpu = AutoencoderTransformer(3, max_iter=5, shuffle=False, device="cuda", random_state=0)
    np.testing.assert_allclose(cpu.fit(X).score(X), gpu.fit(X).score(X), rtol=1e-2)


def test_streamed_cuda_fit_matches_staged(X, monkeypatch):
    import skae._data
    from skae._device import device_policy

    kwargs = dict(max_iter=4, batch_size=64, device="cuda", random_state=0, shuffle=False)
    staged = AutoencoderTransformer(3, **kwargs).fit(X)
    answers = []
    stage_on_device = skae._data.stage_on_device

    def spy(n_bytes, device):
        answers.append(stage_on_device(n_bytes, device))
        return answers[-1]

    monkeypatch.setattr(skae._data, "stage_on_device", spy)
    with device_policy(data_fraction=0.0):  # stream everything
        streamed = AutoencoderTransformer(3, **kwargs).fit(X)
        early = AutoencoderTransformer(3, early_stopping=True, **kwargs).fit(X)
    assert answers == [False, False]  # both fits streamed
    np.testing.assert_allclose(streamed.loss_curve_, staged.loss_curve_, rtol=1e-4)
    assert len(early.validation_scores_) == early.n_iter_
    AutoencoderTransformer(3, **kwargs).fit(X)  # the policy is back: staged again
    assert answers[-1] is True


@pytest.mark.parametrize("precision", ["tf32", "bfloat16"])
def test_cuda_precision_trains_and_restores_settings(X, precision):
    before = torch.get_float32_matmul_precision()
    ae = AutoencoderTransformer(3, max_iter=10, device="cuda", precision=precision,
                                random_state=0).fit(X)
    assert torch.get_float32_matmul_precision() == before
    assert not torch.is_autocast_enabled("cuda")
    assert ae.loss_curve_[-1] < ae.loss_curve_[0]


def test_direct_gradients_on_cuda(X):
    from skae._fastpath import DirectGradient, covers
    from skae._objective import Objective, reconstruction_loss

    det = AutoencoderAnomalyDetector(3, hidden_layer_sizes=(8,), max_iter=2, device="cuda",
                                     random_state=0).fit(X)
    module = det.module_
    with torch.no_grad():  # training rows are standardized
        xb = module.standardizer(torch.from_numpy(X[:64]).cuda())
    objective = Objective("mse", (), None, 0.3)
    assert covers(objective, module, "float32")
    direct = DirectGradient(objective, module, batch_size=64)
    loss, _ = direct(module, xb)
    grads = [p.grad.clone() for p in module.parameters()]
    for p in module.parameters():
        p.grad = None
    reference = reconstruction_loss(module.forward_standardized(xb).reconstruction, xb, "mse", 0.3)
    reference.backward()
    assert float(loss) == pytest.approx(float(reference.detach()), rel=1e-4)
    for g, p in zip(grads, module.parameters()):
        torch.testing.assert_close(g, p.grad, rtol=1e-3, atol=1e-5)


@pytest.mark.filterwarnings("ignore::skae.PosteriorCollapseWarning")
def test_variational_model_trains_on_cuda_and_scores_on_the_cpu(X):
    vae = AutoencoderTransformer(3, variational=True, standardize=True, max_iter=5,
                                 device="cuda", random_state=0).fit(X)
    assert next(vae.module_.parameters()).device.type == "cuda"
    scores = vae.score_samples(X)
    assert np.isfinite(scores).all()
    assert all(type(a) is np.ndarray for a in vae.__getstate__()["__skae_arrays__"].values())
    cpu = AutoencoderTransformer(3, variational=True, standardize=True, max_iter=5,
                                 device="cpu", random_state=0).fit(X)
    np.testing.assert_allclose(scores.mean(), cpu.score_samples(X).mean(), rtol=5e-2)
    assert vae.sample(4, random_state=0).shape == (4, 10)


def test_convolutional_models_train_on_cuda_and_load_on_the_cpu():
    from skae import AutoencoderRegressor

    images = np.random.RandomState(0).rand(300, 12 * 10 * 3).astype(np.float32)
    conv = dict(architecture="conv", image_shape=(12, 10, 3), conv_channels=(8, 16))
    cuda = AutoencoderTransformer(8, max_iter=5, device="cuda", random_state=0, **conv).fit(images)
    cpu = AutoencoderTransformer(8, max_iter=5, device="cpu", random_state=0, **conv).fit(images)
    assert next(cuda.module_.parameters()).device.type == "cuda"
    np.testing.assert_allclose(cuda.loss_curve_, cpu.loss_curve_, rtol=1e-2)
    loaded = pickle.loads(pickle.dumps(cuda))
    assert next(loaded.module_.parameters()).device.type == "cuda"  # device="cuda" is available
    np.testing.assert_allclose(loaded.transform(images), cuda.transform(images), rtol=1e-4, atol=1e-4)
    reg = AutoencoderRegressor(n_components=None, hidden_layer_sizes=(), skip_connections=True,
                               max_iter=5, device="cuda", random_state=0, **conv)
    reg.fit(images, images)
    assert reg.predict(images.astype(np.float64)).dtype == np.float64


def test_saved_cuda_model_loads_on_the_cpu(X, tmp_path):
    import skae
    from skae._serialization import _read

    det = AutoencoderAnomalyDetector(3, max_iter=3, device="cuda", random_state=0).fit(X)
    skae.save(det, tmp_path / "det.safetensors", include_optimizer=True)
    header, arrays = _read((tmp_path / "det.safetensors").read_bytes())
    assert header["network"]["device"].startswith("cuda") and header["params"]["device"] == "cuda"
    cpu = skae.load(tmp_path / "det.safetensors", device="cpu")
    assert all(t.device.type == "cpu" for t in cpu.module_.state_dict().values())
    assert cpu._spec.device.type == "cpu"
    for name, t in det.module_.state_dict().items():
        assert torch.equal(t.cpu(), cpu.module_.state_dict()[name])
    assert cpu.offset_ == det.offset_
    np.testing.assert_allclose(cpu.score_samples(X), det.score_samples(X), rtol=1e-4)
    gpu = skae.load(tmp_path / "det.safetensors")  # device=None follows device="cuda"
    assert next(gpu.module_.parameters()).device.type == "cuda"
    np.testing.assert_allclose(gpu.score_samples(X), det.score_samples(X), rtol=1e-6)
    cpu.partial_fit(X)  # the optimizer state moved with the network
    assert cpu.n_iter_ == det.n_iter_ + 1


def test_code_distance_statistics_on_cuda(X, tmp_path):
    import skae

    kwargs = dict(max_iter=5, shuffle=False, code_distance="add",
                  residual_covariance="spherical", random_state=0)
    gpu = AutoencoderAnomalyDetector(3, device="cuda", **kwargs).fit(X)
    cpu = AutoencoderAnomalyDetector(3, device="cpu", **kwargs).fit(X)
    assert gpu._code_distance == "add"
    assert type(gpu.code_mean_) is np.ndarray and type(gpu.code_whitening_) is np.ndarray
    # the same network trained on two devices: statistics and scores close, not equal
    np.testing.assert_allclose(gpu.error_scale_, cpu.error_scale_, rtol=1e-2)
    scores = gpu.score_samples(X)
    assert np.corrcoef(scores, cpu.score_samples(X))[0, 1] > 0.999
    # the code distance is part of the score: dropping it changes the ranking
    n_features = X.shape[1]
    errors = gpu.feature_errors(X).mean(axis=1) / gpu.error_scale_
    distance = np.square((gpu._encode(X) - gpu.code_mean_) @ gpu.code_whitening_).sum(1)
    np.testing.assert_allclose(-scores, n_features * errors + gpu.code_weight * distance,
                               rtol=1e-4)
    skae.save(gpu, tmp_path / "det.safetensors")
    loaded = skae.load(tmp_path / "det.safetensors", device="cpu")
    np.testing.assert_allclose(loaded.score_samples(X), scores, rtol=1e-4)
    np.testing.assert_array_equal(loaded.predict(X), gpu.predict(X))


def test_full_residual_covariance_on_cuda(X, tmp_path):
    import skae

    kwargs = dict(max_iter=5, shuffle=False, residual_covariance="full", random_state=0)
    gpu = AutoencoderAnomalyDetector(3, device="cuda", **kwargs).fit(X)
    cpu = AutoencoderAnomalyDetector(3, device="cpu", **kwargs).fit(X)
    assert type(gpu.residual_whitening_) is np.ndarray
    assert gpu.residual_whitening_.shape == (X.shape[1], X.shape[1])
    assert gpu.residual_shrinkage_ == pytest.approx(cpu.residual_shrinkage_, rel=0.1, abs=1e-3)
    scores = gpu.score_samples(X)
    assert np.corrcoef(scores, cpu.score_samples(X))[0, 1] > 0.999
    # the same model scored on the CPU: the residuals' distances agree
    skae.save(gpu, tmp_path / "det.safetensors")
    loaded = skae.load(tmp_path / "det.safetensors", device="cpu")
    np.testing.assert_allclose(loaded.score_samples(X), scores, rtol=1e-4)


def test_onnx_export_of_a_cuda_detector_matches_it(X):
    ort = pytest.importorskip("onnxruntime")
    from skae.onnx import to_onnx

    det = AutoencoderAnomalyDetector(3, max_iter=5, device="cuda", random_state=0).fit(X)
    assert det._code_distance == "add"  # the default: the graph holds the code distance
    model = to_onnx(det, methods="score_samples")
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    (got,) = session.run(None, {"X": X})
    assert next(det.module_.parameters()).device.type == "cuda"  # export leaves it there
    np.testing.assert_allclose(got, det.score_samples(X), rtol=1e-4, atol=1e-5)


def test_batches_do_not_depend_on_where_the_data_is_held(X, tmp_path):
    # the order is drawn on the host: data on the GPU, streamed to it, memory-mapped,
    # sparse or a Dask array, and a fit on the CPU all visit the same batches
    import scipy.sparse
    from skae._device import device_policy

    kwargs = dict(max_iter=4, batch_size=64, device="cuda", random_state=0)
    staged = AutoencoderTransformer(3, **kwargs).fit(X).loss_curve_
    np.save(tmp_path / "X.npy", X)
    fits = {
        "memory map": AutoencoderTransformer(3, **kwargs).fit(np.load(tmp_path / "X.npy",
                                                                      mmap_mode="r")),
        "sparse": AutoencoderTransformer(3, **kwargs).fit(scipy.sparse.csr_matrix(X)),
        "cpu": AutoencoderTransformer(3, **{**kwargs, "device": "cpu"}).fit(X),
    }
    with device_policy(data_fraction=0.0):
        fits["streamed"] = AutoencoderTransformer(3, **kwargs).fit(X)
    da = pytest.importorskip("dask.array")
    import dask

    with dask.config.set(scheduler="synchronous"):
        fits["dask"] = AutoencoderTransformer(3, **kwargs).fit(da.from_array(X, chunks=(100, 10)))
    for name, fit in fits.items():
        gap = np.max(np.abs(np.array(fit.loss_curve_) / staged - 1))
        print(f"{name}: largest relative gap to the staged fit's loss curve {gap:.2e}")
        np.testing.assert_allclose(fit.loss_curve_, staged, rtol=1e-4, err_msg=name)
