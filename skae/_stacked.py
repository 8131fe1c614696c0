"""Greedy layer-wise pretraining of a deep autoencoder (stacked autoencoder)."""

import torch
from torch import nn

from ._losses import reconstruction_loss
from ._modules import Autoencoder, Standardize, encoder_layers
from ._training import StreamedRows, TrainState, fit_module, iter_chunks


def stage_modules(module):
    """Split a deep autoencoder into one shallow autoencoder per encoder layer.

    Stage ``i`` pairs encoder layer ``i`` with the decoder layer that mirrors
    it; the stages share their layers with ``module``, so training a stage
    trains those layers in place. The first stage keeps the network's input
    standardization, if any.

    Parameters
    ----------
    module : Autoencoder
        As built by :func:`skae._modules.build_autoencoder`.

    Returns
    -------
    stages : list of Autoencoder
    """
    enc_pairs = encoder_layers(module.encoder)
    dec_pairs = encoder_layers(module.decoder)[::-1]
    stages = []
    for i, (enc, dec) in enumerate(zip(enc_pairs, dec_pairs)):
        encoder, decoder = nn.Sequential(*enc), nn.Sequential(*dec)
        scale = None
        if i == 0:
            if isinstance(module.encoder[0], Standardize):
                encoder.insert(0, module.encoder[0])
            if isinstance(module.decoder[-1], Standardize):
                decoder.append(module.decoder[-1])
            scale = module.feature_scale
        stages.append(Autoencoder(encoder, decoder, feature_scale=scale))
    return stages


def pretrain_greedy(module, X, make_optimizer, *, loss, device=None, **fit_kwargs):
    """Train each layer as a shallow autoencoder on the previous layer's codes.

    Stage 1 reconstructs the input ``X`` (with ``loss``); stage ``i > 1``
    reconstructs the activations of encoder layer ``i - 1`` (squared error),
    computed once with the already trained layers. Fine-tuning of the whole
    network is left to the caller.

    Parameters
    ----------
    module : Autoencoder
        Deep autoencoder, trained in place.
    X : torch.Tensor of shape (n_samples, n_features)
        Training data, on the training device or (for data too large for
        it) in host memory, from where batches are streamed.
    make_optimizer : callable
        ``make_optimizer(stage_module) -> torch.optim.Optimizer``.
    loss : {"mse", "bce"}
        Reconstruction loss of the first stage.
    device : torch.device or None, default=None
        Training device; None for ``X.device``.
    **fit_kwargs
        Passed to :func:`skae._training.fit_module` for every stage.

    Returns
    -------
    states : list of TrainState
        Training history of each stage.
    """
    device = X.device if device is None else torch.device(device)
    states = []
    H = X
    for i, stage in enumerate(stage_modules(module)):
        stage_loss = loss if i == 0 else "mse"

        def loss_fn(m, xb, stage_loss=stage_loss):
            x_hat, _ = m(xb)
            rec = reconstruction_loss(x_hat, xb, stage_loss, m.feature_scale)
            return rec, {"reconstruction": rec}

        state = TrainState()
        streamed = H.device.type == "cpu" and device.type != "cpu"
        data = StreamedRows(H, device, fit_kwargs["batch_size"]) if streamed else H
        fit_module(stage, data, loss_fn, make_optimizer(stage), state, **fit_kwargs)
        states.append(state)
        with torch.no_grad():
            H = torch.cat([
                stage.encoder(H[a:b].to(device)).to(H.device) for a, b in iter_chunks(*H.shape)
            ])
    return states
