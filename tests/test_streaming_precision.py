"""Host-to-device streaming of large data and the training precision option.

On a CPU-only machine the streaming path is forced, so that its batching,
shuffling and validation are checked against the data-on-device path.
"""

import numpy as np
import pytest
import torch

import skae._base
from skae import AutoencoderAnomalyDetector, AutoencoderTransformer
from skae._training import StreamedRows

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


def test_streamed_rows_gathers_requested_rows():
    X = torch.arange(60, dtype=torch.float32).reshape(20, 3)
    rows = StreamedRows(X, "cpu", batch_size=4)
    batches = [rows.take(torch.tensor(r)) for r in ([3, 1, 7, 0], [19, 2], [5, 6, 8, 9])]
    for got, r in zip(batches, ([3, 1, 7, 0], [19, 2], [5, 6, 8, 9])):
        torch.testing.assert_close(got, X[r])  # earlier batches are not overwritten
    torch.testing.assert_close(rows.slice(10, 13), X[10:13])


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

    def never(X_t, device):
        calls.append(X_t.shape)
        return False

    monkeypatch.setattr(skae._base, "stage_on_device", never)
    streamed = AutoencoderTransformer(4, **kwargs).fit(X)
    assert calls, "the streaming path was not taken"
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
