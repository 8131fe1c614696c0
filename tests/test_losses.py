"""Loss terms against values computed independently."""

import math

import pytest
import torch
from torch import nn

from skae._losses import (
    activation_derivative,
    contractive_penalty,
    corrupt,
    elementwise_reconstruction_error,
    kl_sparsity,
    l1_activity,
)
from skae._modules import build_autoencoder, encoder_layers, forward_with_activations


def test_reconstruction_errors_by_hand():
    x = torch.tensor([[0.0, 1.0]])
    x_hat = torch.tensor([[0.5, 0.25]])
    assert elementwise_reconstruction_error(x_hat, x, "mse").tolist() == [[0.25, 0.5625]]
    bce = elementwise_reconstruction_error(x_hat, x, "bce")
    assert bce[0, 0].item() == pytest.approx(-math.log(0.5))
    assert bce[0, 1].item() == pytest.approx(-math.log(0.25))
    scaled = elementwise_reconstruction_error(x_hat, x, "mse", torch.tensor([0.5, 1.0]))
    assert scaled.tolist() == [[1.0, 0.5625]]


def test_l1_activity_by_hand():
    a = torch.tensor([[1.0, -2.0], [0.0, 3.0]])
    assert l1_activity(a).item() == pytest.approx((3 + 3) / 2)


def test_kl_sparsity_by_hand():
    a = torch.tensor([[0.2, 0.5], [0.4, 0.5]])  # unit means 0.3 and 0.5
    rho = 0.1

    def kl(q):
        return rho * math.log(rho / q) + (1 - rho) * math.log((1 - rho) / (1 - q))

    assert kl_sparsity(a, rho).item() == pytest.approx(kl(0.3) + kl(0.5), rel=1e-5)
    assert kl_sparsity(torch.full((4, 3), rho), rho).item() == pytest.approx(0.0, abs=1e-6)
    assert kl_sparsity(a, rho).item() > 0


@pytest.mark.parametrize("act", [nn.ReLU(), nn.Sigmoid(), nn.Tanh(), nn.LeakyReLU(0.1),
                                 nn.ELU(), nn.GELU(), nn.Identity()])
def test_activation_derivatives(act):
    pre = torch.linspace(-2, 2, 9, dtype=torch.float64)
    derivative = activation_derivative(act, pre, act(pre))
    expected = torch.func.vmap(torch.func.grad(lambda t: act(t)))(pre)
    if derivative is None:
        assert torch.allclose(expected, torch.ones_like(pre))
    else:
        assert torch.allclose(derivative, expected)


@pytest.mark.parametrize(
    "hidden, n_features, activation, latent",
    [((), 5, "sigmoid", "sigmoid"), ((), 5, "relu", "identity"), ((7,), 5, "tanh", "identity"),
     ((4, 3), 9, "sigmoid", "tanh"), ((6, 5, 4), 3, "elu", "sigmoid"),
     ((12,), 20, "sigmoid", "identity"), ((4, 3), 9, "relu", "identity")],
)
def test_contractive_penalty_matches_autograd_jacobian(hidden, n_features, activation, latent):
    torch.manual_seed(0)
    module = build_autoencoder(n_features, hidden, 2, activation, latent, "identity").double()
    x = torch.randn(6, n_features, dtype=torch.float64)
    _, _, pres, posts = forward_with_activations(module.encoder, x)
    pairs = encoder_layers(module.encoder)
    derivatives = [activation_derivative(a, p, q) for (_, a), p, q in zip(pairs, pres, posts)]
    penalty = contractive_penalty([lin.weight for lin, _ in pairs], derivatives)
    expected = sum(
        torch.autograd.functional.jacobian(module.encoder, xi).square().sum() for xi in x
    ) / len(x)
    assert penalty.item() == pytest.approx(expected.item(), rel=1e-10)


def test_corruptions():
    g = torch.Generator().manual_seed(0)
    x = torch.full((2000, 10), 0.5)
    noisy = corrupt(x, "gaussian", 0.3, g)
    assert (noisy - x).std().item() == pytest.approx(0.3, rel=0.05)
    scaled = corrupt(x, "gaussian", 0.3, g, scale=torch.full((10,), 2.0))
    assert (scaled - x).std().item() == pytest.approx(0.6, rel=0.05)
    masked = corrupt(x, "masking", 0.25, g)
    assert (masked == 0).float().mean().item() == pytest.approx(0.25, abs=0.01)
    assert set(masked.unique().tolist()) == {0.0, 0.5}
    sp = corrupt(x, "salt_and_pepper", 0.2, g)
    assert (sp == 0).float().mean().item() == pytest.approx(0.1, abs=0.01)
    assert (sp == 1).float().mean().item() == pytest.approx(0.1, abs=0.01)
    a = corrupt(x, "masking", 0.5, torch.Generator().manual_seed(1))
    b = corrupt(x, "masking", 0.5, torch.Generator().manual_seed(1))
    assert torch.equal(a, b)
