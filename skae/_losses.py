"""Loss terms as pure torch functions."""

import math

import torch
from torch import nn
from torch.nn import functional as F

_BCE_EPS = 1e-7


def elementwise_reconstruction_error(x_hat, x, loss, scale=None):
    """Reconstruction error of every input element.

    Parameters
    ----------
    x_hat : torch.Tensor of shape (n_samples, n_features)
        Reconstruction.
    x : torch.Tensor of shape (n_samples, n_features)
        Target.
    loss : {"mse", "bce"}
        ``"mse"``: ``(x_hat - x) ** 2``. ``"bce"``: binary cross-entropy
        ``-(x log x_hat + (1 - x) log(1 - x_hat))``, with ``x_hat`` clipped to
        ``[1e-7, 1 - 1e-7]``; needs ``x`` and ``x_hat`` in ``[0, 1]``.
    scale : torch.Tensor of shape (n_features,) or None, default=None
        For ``"mse"``, errors are measured in units of ``scale``:
        ``((x_hat - x) / scale) ** 2``.

    Returns
    -------
    error : torch.Tensor of shape (n_samples, n_features)
    """
    if loss == "mse":
        diff = x_hat - x
        return (diff if scale is None else diff / scale).square()
    if loss == "bce":
        return F.binary_cross_entropy(x_hat.clamp(_BCE_EPS, 1 - _BCE_EPS), x, reduction="none")
    raise ValueError(f"Unknown loss {loss!r}.")


def reconstruction_loss(x_hat, x, loss, scale=None):
    """Mean reconstruction error over samples and features.

    Parameters
    ----------
    x_hat, x : torch.Tensor of shape (n_samples, n_features)
        Reconstruction and target.
    loss : {"mse", "bce"}
        See :func:`elementwise_reconstruction_error`.
    scale : torch.Tensor of shape (n_features,) or None, default=None
        See :func:`elementwise_reconstruction_error`.

    Returns
    -------
    loss : torch.Tensor
        A scalar: ``(1 / (n_samples * n_features)) * sum of elementwise errors``.
    """
    if loss == "mse" and scale is None:
        return F.mse_loss(x_hat, x)
    return elementwise_reconstruction_error(x_hat, x, loss, scale).mean()


def trimmed_reconstruction_loss(x_hat, x, loss, scale, trim):
    """Mean reconstruction error over the best-reconstructed samples of a batch.

    The ``ceil(trim * m)`` samples with the largest error (of ``m``) are left
    out, so that rare anomalous samples in the training data do not pull the
    model towards reconstructing them.

    Parameters
    ----------
    x_hat, x : torch.Tensor of shape (m, n_features)
        Reconstruction and target.
    loss : {"mse", "bce"}
        See :func:`elementwise_reconstruction_error`.
    scale : torch.Tensor of shape (n_features,) or None
        See :func:`elementwise_reconstruction_error`.
    trim : float
        Fraction of samples to leave out, in [0, 1).

    Returns
    -------
    loss : torch.Tensor
        A scalar: the mean error of the kept samples.
    """
    errors = elementwise_reconstruction_error(x_hat, x, loss, scale).mean(1)
    keep = n_kept(errors.shape[0], trim)
    return errors.topk(keep, largest=False, sorted=False).values.mean()


def n_kept(m, trim):
    """Samples of a batch of ``m`` that a trimmed loss keeps: ``m - ceil(trim m)``, at least 1.

    Parameters
    ----------
    m : int
        Batch size.
    trim : float
        Fraction of samples left out, in [0, 1).

    Returns
    -------
    keep : int
    """
    return max(1, m - math.ceil(trim * m))


def l1_activity(activations):
    """L1 sparsity penalty: ``(1 / m) * sum_i sum_j |a_ij|``.

    Parameters
    ----------
    activations : torch.Tensor of shape (m, n_units)
        A layer's activations on a batch of ``m`` samples.

    Returns
    -------
    penalty : torch.Tensor
        Sum of absolute activations per sample, averaged over the batch.
    """
    return activations.abs().sum(1).mean()


def kl_sparsity(activations, target, eps=1e-7):
    """KL sparsity penalty: ``sum_j KL(rho || rho_hat_j)``.

    ``rho_hat_j`` is the mean activation of unit ``j`` over the batch and
    ``KL(rho || q) = rho log(rho / q) + (1 - rho) log((1 - rho) / (1 - q))``,
    the divergence between Bernoulli distributions with means ``rho`` and
    ``q``. It is 0 exactly when every unit's mean activation equals ``rho``.

    Parameters
    ----------
    activations : torch.Tensor of shape (m, n_units)
        Activations in (0, 1) (e.g. after a sigmoid).
    target : float
        Target mean activation ``rho`` in (0, 1).
    eps : float, default=1e-7
        ``rho_hat`` is clipped to ``[eps, 1 - eps]``.

    Returns
    -------
    penalty : torch.Tensor
    """
    rho_hat = activations.mean(0).clamp(eps, 1 - eps)
    rho = target
    kl = rho * torch.log(rho / rho_hat) + (1 - rho) * torch.log((1 - rho) / (1 - rho_hat))
    return kl.sum()


def activation_derivative(activation, pre, post):
    """Elementwise derivative of an activation module at ``pre``.

    Parameters
    ----------
    activation : torch.nn.Module
        An elementwise activation.
    pre : torch.Tensor
        Its input.
    post : torch.Tensor
        Its output, ``activation(pre)``.

    Returns
    -------
    derivative : torch.Tensor or None
        ``activation'(pre)``, differentiable; None for the identity.
    """
    if isinstance(activation, nn.Identity):
        return None
    if isinstance(activation, nn.ReLU):
        return (pre > 0).to(pre.dtype)
    if isinstance(activation, nn.Sigmoid):
        return post * (1 - post)
    if isinstance(activation, nn.Tanh):
        return 1 - post.square()
    if isinstance(activation, nn.LeakyReLU):
        return torch.where(pre > 0, 1.0, activation.negative_slope).to(pre.dtype)
    with torch.enable_grad():  # any other elementwise activation: autograd
        x = pre if pre.requires_grad else pre.detach().requires_grad_()
        (derivative,) = torch.autograd.grad(activation(x).sum(), x, create_graph=True)
    return derivative


def contractive_penalty(linear_weights, derivatives):
    """Mean squared Frobenius norm of the encoder's Jacobian, exact.

    For ``h = g_L(W_L ... g_1(W_1 x + b_1) ...)`` the Jacobian of one sample is
    ``J = D_L W_L D_{L-1} ... D_1 W_1`` with ``D_l = diag(g_l'(.))``. The
    product is formed from the code side as batched matrix products
    (``n_components`` rows per sample), and the last factor uses
    ``||A W_1||_F^2 = sum((A @ (W_1 W_1^T)) * A)`` when the input is wider than
    the first layer, so that no ``(m, n_components, n_features)`` tensor is
    formed. For one layer it reduces to ``sum_j g'_j^2 ||W_1[j]||^2``, and for
    one hidden layer under a linear code to
    ``d^T ((W_2^T W_2) * (W_1 W_1^T)) d`` with ``d = g_1'``, which needs a
    single ``h x h`` matrix per batch.

    Parameters
    ----------
    linear_weights : list of torch.Tensor
        Weights ``W_1 ... W_L`` (``W_l`` of shape ``(h_l, h_{l-1})``).
    derivatives : list of torch.Tensor or None
        ``g_l'`` at each layer's pre-activation, shape ``(m, h_l)``; None for
        an identity activation.

    Returns
    -------
    penalty : torch.Tensor
        ``(1 / m) * sum_i ||J(x_i)||_F^2``.
    """
    W1, dL = linear_weights[0], derivatives[-1]
    if len(linear_weights) == 1:
        row_norms = W1.square().sum(1)
        if dL is None:
            return row_norms.sum()
        return (dL.square() * row_norms).sum(1).mean()
    WL = linear_weights[-1]
    if len(linear_weights) == 2 and dL is None:
        # one hidden layer, linear code: J = W_2 D_1 W_1 and
        # ||J||^2 = d_1^T ((W_2^T W_2) * (W_1 W_1^T)) d_1, one h x h matrix per batch
        K = (WL.t() @ WL) * (W1 @ W1.t())
        d1 = derivatives[0]
        if d1 is None:
            return K.sum()
        return ((d1 @ K) * d1).sum(1).mean()
    A = WL.unsqueeze(0) if dL is None else dL.unsqueeze(2) * WL  # (m or 1, k, h_{L-1})
    for W, d in zip(linear_weights[-2:0:-1], derivatives[-2:0:-1]):
        if d is not None:
            A = A * d.unsqueeze(1)
        A = A @ W
    if derivatives[0] is not None:
        A = A * derivatives[0].unsqueeze(1)  # (m, k, h_1)
    if W1.shape[1] <= W1.shape[0]:
        return (A @ W1).square().sum((1, 2)).mean()
    return ((A @ (W1 @ W1.t())) * A).sum((1, 2)).mean()


def corrupt(x, kind, level, generator, *, scale=None, fill=None, low=None, high=None):
    """Corrupt a batch for denoising training (the target stays ``x``).

    Parameters
    ----------
    x : torch.Tensor of shape (m, n_features)
        Clean batch.
    kind : {"gaussian", "masking", "salt_and_pepper"}
        ``"gaussian"`` adds ``level * scale * N(0, 1)`` noise;
        ``"masking"`` sets a random fraction ``level`` of the entries to
        ``fill``; ``"salt_and_pepper"`` sets a random fraction ``level`` of
        the entries to ``low`` or ``high`` with equal probability.
    level : float
        Noise standard deviation (gaussian) or fraction of entries (others).
    generator : torch.Generator
        Source of randomness, on ``x.device``.
    scale, fill, low, high : torch.Tensor of shape (n_features,) or None
        Per-feature noise scale (default 1), masking value (default 0), and
        salt-and-pepper values (default 0 and 1).

    Returns
    -------
    x_noisy : torch.Tensor of shape (m, n_features)
    """
    if kind == "gaussian":
        noise = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
        return x + level * (noise if scale is None else noise * scale)
    hit = torch.rand(x.shape, generator=generator, device=x.device, dtype=x.dtype) < level
    if kind == "masking":
        return torch.where(hit, 0.0 if fill is None else fill, x)
    if kind == "salt_and_pepper":
        salt = torch.rand(x.shape, generator=generator, device=x.device, dtype=x.dtype) < 0.5
        low = torch.zeros((), dtype=x.dtype, device=x.device) if low is None else low
        high = torch.ones((), dtype=x.dtype, device=x.device) if high is None else high
        return torch.where(hit, torch.where(salt, high, low), x)
    raise ValueError(f"Unknown noise {kind!r}.")
