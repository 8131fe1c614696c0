"""Greedy layer-wise pretraining of a deep autoencoder (stacked autoencoder)."""

import torch

from ._data import SparseRows, iter_chunks, row_source, with_weights, without_weights
from ._fastpath import loss_function
from ._objective import Objective
from ._training import TrainState, fit_module


def _chunks(H):
    """``(rows, home device)`` chunk by chunk: a tensor's slices, or densified sparse rows."""
    for a, b in iter_chunks(*H.shape):
        if isinstance(H, SparseRows):
            yield H.slice(a, b), H.index_device
        else:
            yield H[a:b], H.device


def pretrain_greedy(net, rows, *, loss, device, batch_size, max_iter, make_optimizer,
                    generators, callbacks, shuffle, precision, weighted=False, collective=None):
    """Train each layer as a shallow autoencoder on the previous layer's codes.

    Stage 1 reconstructs the training rows with ``loss``; stage ``i > 1``
    reconstructs the activations of encoder layer ``i - 1`` (squared error),
    computed once with the trained layers. Fine-tuning is left to the caller.

    Parameters
    ----------
    net : skae._nets.mlp.MLPAutoencoder
        Trained in place (its stages share its parameters).
    rows : torch.Tensor of shape (n_samples, n_features) or skae._data.SparseRows
        Training rows in standardized units, on the device or in host memory
        (sparse rows are densified a batch or a chunk at a time).
    loss : {"mse", "bce"}
        Reconstruction loss of the first stage.
    device : torch.device
    batch_size, max_iter : int
        Per stage.
    make_optimizer : callable
        ``make_optimizer(stage) -> torch.optim.Optimizer``.
    generators : callable
        ``generators(device) -> torch.Generator`` for shuffling.
    callbacks : callable
        ``callbacks(max_iter) -> list of Callback`` for one stage.
    shuffle : bool
    precision : str
        The fit's ``precision`` (chooses the fast path or autograd).
    weighted : bool, default=False
        ``rows`` end with a sample-weight column, which weights every stage.
    collective : skae._distributed.Collective or None, default=None
        In a distributed fit, every stage trains in lockstep over all ranks'
        rows (see :func:`skae._training.fit_module`); each rank computes the
        next stage's inputs from its own rows.

    Returns
    -------
    status : {"done", "interrupted"}
        "interrupted" when Ctrl-C stopped a stage: no later stage ran.
    states : list of TrainState
        History of each stage that ran.
    """
    states, H = [], rows
    if weighted:
        H, weights = without_weights(rows)
    for i, stage in enumerate(net.stages()):
        objective = Objective(loss if i == 0 else "mse", weighted=weighted)
        data = row_source(with_weights(H, weights) if weighted else H, device, batch_size)
        state = TrainState()
        status = fit_module(
            stage, data, loss_function(objective, stage, batch_size, precision),
            make_optimizer(stage), state, max_iter=max_iter, batch_size=batch_size,
            generator=generators("cpu"), shuffle=shuffle,
            callbacks=callbacks(max_iter), collective=collective,
        )
        states.append(state)
        if status == "interrupted":
            return status, states
        with torch.no_grad():
            H = torch.cat([
                stage.encode_standardized(chunk.to(device))[0].to(home)
                for chunk, home in _chunks(H)
            ])
    return "done", states
