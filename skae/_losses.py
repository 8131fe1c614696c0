"""Loss terms as pure torch functions."""

import torch
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
