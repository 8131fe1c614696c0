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
    state = det.__getstate__()
    assert all(t.device.type == "cpu" for t in state["module_"].state_dict().values())
    restored = pickle.loads(pickle.dumps(det))
    np.testing.assert_allclose(restored.score_samples(X), det.score_samples(X), rtol=1e-4)


def test_cpu_and_cuda_fits_agree_closely(X):
    cpu = AutoencoderTransformer(3, max_iter=5, shuffle=False, device="cpu", random_state=0)
    gpu = AutoencoderTransformer(3, max_iter=5, shuffle=False, device="cuda", random_state=0)
    np.testing.assert_allclose(cpu.fit(X).score(X), gpu.fit(X).score(X), rtol=1e-2)
