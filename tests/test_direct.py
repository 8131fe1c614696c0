"""The hand-derived gradients of plain autoencoders against autograd's."""

import numpy as np
import pytest
import torch

import skae._base
from skae import AutoencoderAnomalyDetector, AutoencoderTransformer
from skae._direct import DirectGradient


def _autograd_loss_fn(est, module, X_t, corruption, batch_size, monkeypatch):
    """The estimator's own autograd loss, with ``corruption`` as its noise."""
    with monkeypatch.context() as mp:
        mp.setattr(skae._base.DirectGradient, "build", classmethod(lambda *a, **k: None))
        mp.setattr(est, "_corruption", lambda *a: corruption)
        return est._make_loss_fn(module, X_t, est._hidden_sizes(), torch.Generator(), batch_size)


def _gradients(module, loss_fn, xb):
    for p in module.parameters():
        p.grad = None
    loss, terms = loss_fn(module, xb)
    if not getattr(loss_fn, "sets_gradients", False):
        loss.backward()
    return float(loss.detach()), [p.grad.clone() for p in module.parameters()]


@pytest.mark.parametrize("activation", ["relu", "tanh", "logistic", "identity", "leaky_relu"])
@pytest.mark.parametrize("output_activation", ["identity", "sigmoid"])
@pytest.mark.parametrize("standardize", [False, True])
@pytest.mark.parametrize("trim", [0.0, 0.3])
@pytest.mark.parametrize("noisy", [False, True])
def test_direct_gradients_match_autograd(
    activation, output_activation, standardize, trim, noisy, monkeypatch
):
    rng = np.random.RandomState(0)
    X = (rng.normal(size=(80, 7)) * rng.uniform(0.5, 3, 7) + 2).astype(np.float32)
    est = AutoencoderAnomalyDetector(
        3, hidden_layer_sizes=(6, 5), activation=activation, latent_activation=activation,
        output_activation=output_activation, standardize=standardize, trim_fraction=trim,
        max_iter=2, random_state=0,
    )
    with pytest.warns(Warning):
        est.fit(X)
    module = est.module_
    X_t = torch.from_numpy(X)
    corruption = (lambda xb: xb * 0.7 + 0.3) if noisy else None
    direct = DirectGradient.build(
        module, loss="mse", batch_size=32, trim=trim, corruption=corruption
    )
    assert direct is not None
    reference = _autograd_loss_fn(est, module, X_t, corruption, 32, monkeypatch)
    assert not getattr(reference, "sets_gradients", False)
    for xb in (X_t[:32], X_t[32:45]):  # a full and a short last batch
        loss_ref, grads_ref = _gradients(module, reference, xb)
        loss_dir, grads_dir = _gradients(module, direct, xb)
        assert loss_dir == pytest.approx(loss_ref, rel=1e-5)
        for g_ref, g_dir in zip(grads_ref, grads_dir):
            torch.testing.assert_close(g_dir, g_ref, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize(
    "params",
    [
        dict(sparsity="l1", sparsity_weight=0.1),
        dict(contractive_weight=0.1),
        dict(tied_weights=True),
        dict(activation="gelu"),
        dict(activation="elu"),
        dict(loss="bce", output_activation="sigmoid", standardize=False),
    ],
)
def test_other_models_keep_autograd(params, digits):
    X = digits[0][:100]
    est = AutoencoderTransformer(4, hidden_layer_sizes=(8,), max_iter=1, random_state=0, **params)
    with pytest.warns(Warning):
        est.fit(X)
    loss_fn = est._make_loss_fn(
        est.module_, torch.from_numpy(X).float(), est._hidden_sizes(), torch.Generator(), 32
    )
    assert not getattr(loss_fn, "sets_gradients", False)


@pytest.mark.parametrize("Estimator", [AutoencoderTransformer, AutoencoderAnomalyDetector])
def test_fit_matches_autograd_training(Estimator, digits, monkeypatch):
    """Whole fits with and without the direct gradients follow the same path."""
    X = digits[0][:400].astype(np.float32)
    params = dict(hidden_layer_sizes=(32, 16), max_iter=5, batch_size=64, random_state=0)
    with pytest.warns(Warning):
        direct = Estimator(4, **params).fit(X)
    monkeypatch.setattr(skae._base.DirectGradient, "build", classmethod(lambda *a, **k: None))
    with pytest.warns(Warning):
        reference = Estimator(4, **params).fit(X)
    np.testing.assert_allclose(direct.loss_curve_, reference.loss_curve_, rtol=1e-3)
    np.testing.assert_allclose(direct.reconstruct(X), reference.reconstruct(X), rtol=1e-2, atol=1e-3)
    assert all(p.grad is None for p in direct.module_.parameters())


@pytest.mark.parametrize("activation", ["relu", "tanh", "logistic", "identity", "leaky_relu"])
@pytest.mark.parametrize("standardize", [False, True])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_direct_forward_matches_module(activation, standardize, dtype):
    from skae._direct import DirectForward

    rng = np.random.RandomState(0)
    X = (rng.normal(size=(50, 7)) * 3 + 1).astype(dtype)
    est = AutoencoderTransformer(
        3, hidden_layer_sizes=(6,), activation=activation, latent_activation=activation,
        output_activation="sigmoid", standardize=standardize, max_iter=2, random_state=0,
    )
    with pytest.warns(Warning):
        est.fit(X)
    module = est.module_.to(torch.float64 if dtype == np.float64 else torch.float32)
    x = torch.from_numpy(X)
    with torch.no_grad():
        z = module.encoder(x)
        expected = {
            ("encoder",): z,
            ("decoder",): module.decoder(z),
            ("encoder", "decoder"): module(x)[0],
        }
        for parts, want in expected.items():
            forward = DirectForward.build(*(getattr(module, p) for p in parts))
            inp = z if parts == ("decoder",) else x
            torch.testing.assert_close(forward(inp), want)
            out = torch.empty_like(want)
            forward(inp[:20], out=out[:20])  # a shorter chunk reuses the buffers
            torch.testing.assert_close(out[:20], want[:20])
    # the public methods take the same route
    np.testing.assert_allclose(est.transform(X), z.numpy(), rtol=1e-5, atol=1e-6)


def test_direct_forward_leaves_tied_weights_to_the_module():
    from skae._direct import DirectForward

    est = AutoencoderTransformer(2, hidden_layer_sizes=(4,), tied_weights=True, max_iter=1)
    with pytest.warns(Warning):
        est.fit(np.random.RandomState(0).normal(size=(30, 5)))
    assert DirectForward.build(est.module_.encoder) is not None
    assert DirectForward.build(est.module_.decoder) is None
