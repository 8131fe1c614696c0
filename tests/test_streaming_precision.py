"""Host-to-device streaming of large data and the training precision option.

On a CPU-only machine the streaming path is forced, so that its batching,
shuffling and validation are checked against the data-on-device path.
"""

import warnings

import numpy as np
import pytest
import torch

import skae._data
from skae import AutoencoderAnomalyDetector, AutoencoderTransformer
from skae._data import OnDevice, Streamed, row_source
from skae._device import device_policy

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


def test_streamed_rows_gathers_requested_rows():
    X = torch.arange(60, dtype=torch.float32).reshape(20, 3)
    rows = Streamed(X, "cpu", batch_size=4)
    assert rows.n_rows == 20 and rows.index_device == X.device
    batches = [rows.take(torch.tensor(r)) for r in ([3, 1, 7, 0], [19, 2], [5, 6, 8, 9])]
    for got, r in zip(batches, ([3, 1, 7, 0], [19, 2], [5, 6, 8, 9])):
        torch.testing.assert_close(got, X[r])  # earlier batches are not overwritten
    torch.testing.assert_close(rows.slice(10, 13), X[10:13])
    torch.testing.assert_close(X, torch.arange(60, dtype=torch.float32).reshape(20, 3))



def test_streamed_rows_take_more_rows_than_a_batch_without_warning():
    X = torch.arange(600, dtype=torch.float32).reshape(100, 6)
    rows = Streamed(X, "cpu", batch_size=64)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = rows.take(torch.arange(100))
    torch.testing.assert_close(got, X)


def _never(calls):
    """A ``stage_on_device`` that records its calls and never stages."""

    def never(n_bytes, device):
        calls.append((n_bytes, torch.device(device)))
        return False

    return never


def test_row_source_streams_what_is_not_staged(monkeypatch):
    X = torch.zeros(10, 3)
    assert isinstance(row_source(X, torch.device("cpu"), 4), OnDevice)
    calls = []
    monkeypatch.setattr(skae._data, "stage_on_device", _never(calls))
    rows = row_source(X, torch.device("cpu"), 4)
    assert isinstance(rows, Streamed) and calls == [(X.numel() * 4, torch.device("cpu"))]


@pytest.mark.parametrize(
    "params",
    [
        dict(),
        dict(early_stopping=True, validation_fraction=0.2),
        dict(pretraining="greedy", pretraining_max_iter=2),
        dict(shuffle=False, standardize=True),
    ],
)
def test_streamed_fit_matches_staged_fit(params, digits, monkeypatch):
    X = digits[0][:500].astype(np.float32)
    kwargs = dict(hidden_layer_sizes=(24, 12), max_iter=4, batch_size=64, random_state=0, **params)
    staged = AutoencoderTransformer(4, **kwargs).fit(X)
    calls = []
    # device_policy(data_fraction=0.0) streams everything from a GPU; on the CPU
    # stage_on_device always stages, so the streamed path is forced here as well
    monkeypatch.setattr(skae._data, "stage_on_device", _never(calls))
    with device_policy(data_fraction=0.0):
        streamed = AutoencoderTransformer(4, **kwargs).fit(X)
    assert calls, "the streaming path was not taken"
    stages = 1 + (len(kwargs["hidden_layer_sizes"]) + 1 if params.get("pretraining") else 0)
    assert len(calls) == stages  # the fit and each pretraining stage
    np.testing.assert_allclose(streamed.loss_curve_, staged.loss_curve_, rtol=1e-5)
    np.testing.assert_allclose(streamed.transform(X), staged.transform(X), rtol=1e-4, atol=1e-5)
    if params.get("early_stopping"):
        np.testing.assert_allclose(streamed.validation_scores_, staged.validation_scores_,
                                   rtol=1e-5)


def test_tf32_is_float32_on_cpu(digits):
    X = digits[0][:300]
    kwargs = dict(max_iter=3, random_state=0)
    a = AutoencoderTransformer(4, **kwargs).fit(X)
    b = AutoencoderTransformer(4, precision="tf32", **kwargs).fit(X)
    np.testing.assert_array_equal(a.loss_curve_, b.loss_curve_)


@pytest.mark.parametrize("Estimator", [AutoencoderTransformer, AutoencoderAnomalyDetector])
def test_bfloat16_training(Estimator, digits):
    X = digits[0][:600].astype(np.float32)
    kwargs = dict(hidden_layer_sizes=(32,), max_iter=15, random_state=0)
    full = Estimator(4, **kwargs).fit(X)
    mixed = Estimator(4, precision="bfloat16", **kwargs).fit(X)
    assert all(p.dtype == torch.float32 for p in mixed.module_.parameters())
    assert mixed.loss_curve_[-1] < 0.85 * mixed.loss_curve_[0]
    # bfloat16 keeps 8 bits of mantissa: close to, not equal to, float32
    assert mixed.loss_curve_[-1] == pytest.approx(full.loss_curve_[-1], rel=0.1)
    assert mixed.reconstruct(X).dtype == np.float32
