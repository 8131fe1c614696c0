"""Hand-derived backpropagation for plain MLP autoencoders.

Autograd records a graph and allocates every intermediate afresh on each
minibatch. For plain networks the gradients have a short closed form,
computed here into buffers allocated once per fit:

* forward: ``a_l = f_l(a_{l-1} W_l^T + b_l)``, activations in place;
* output error: ``delta_L = (2 / (m d)) (y - t) * f_L'(y)``, restricted to the
  kept samples for a trimmed loss;
* backward: ``grad W_l = delta_l^T a_{l-1}``, ``grad b_l = sum_rows delta_l``,
  ``delta_{l-1} = (delta_l W_l) * f_{l-1}'(a_{l-1})``, each derivative taken
  from the activation's output.

:func:`covers` is an allow-list of exactly what this implements; anything
else (a regularizer term, another loss, tied weights, another activation,
corruption or network kind, mixed precision) trains with autograd. The
gradients equal autograd's (``tests/test_fastpath.py``).
"""

import torch
from torch import nn

from ._nets.mlp import MLPAutoencoder, MLPStage
from ._objective import GaussianNoise, Masking, SaltAndPepper, n_kept

#: Activations implemented here (in place, derivative from the output).
ACTIVATIONS = frozenset({"identity", "relu", "logistic", "sigmoid", "tanh", "leaky_relu"})
#: Corruptions implemented here (applied to the input before the forward pass).
CORRUPTIONS = (type(None), GaussianNoise, Masking, SaltAndPepper)
#: Network kinds implemented here.
NETWORKS = (MLPAutoencoder, MLPStage)


def covers(objective, net, precision):
    """Whether :class:`DirectGradient` computes exactly ``objective`` on ``net``.

    Parameters
    ----------
    objective : skae._objective.Objective
    net : torch.nn.Module
    precision : str
        The fit's ``precision``; only full float32 arithmetic is covered.

    Returns
    -------
    covered : bool
    """
    if type(net) not in NETWORKS or precision not in ("float32", "tf32"):
        return False
    if objective.loss != "mse" or objective.terms or type(objective.corruption) not in CORRUPTIONS:
        return False
    layers = net.encoder_layers + net.decoder_layers
    return all(
        type(layer.linear) is nn.Linear and layer.activation.name in ACTIVATIONS
        and layer.linear.bias is not None
        for layer in layers
    ) and all(p.requires_grad for p in net.parameters())


def _grad(param):
    """``param.grad``, allocated on first use (overwritten, never added to)."""
    if param.grad is None:
        param.grad = torch.empty_like(param)
    return param.grad


class DirectGradient:
    """Loss and gradients of a covered objective without autograd.

    Calling it on a batch returns ``(loss, parts)`` like an objective and
    leaves every parameter's gradient in ``.grad``.

    Parameters
    ----------
    objective : skae._objective.Objective
        A covered objective (see :func:`covers`).
    net : torch.nn.Module
        A covered network.
    batch_size : int
        Largest batch the buffers must hold.

    Attributes
    ----------
    sets_gradients : bool
        Always True: the training loop runs no backward pass.
    """

    sets_gradients = True

    def __init__(self, objective, net, batch_size):
        self.layers = net.encoder_layers + net.decoder_layers
        self.trim, self.corruption = objective.trim, objective.corruption
        w = self.layers[0].linear.weight
        opts = dict(device=w.device, dtype=w.dtype)
        self.outputs = [torch.empty(batch_size, l.linear.out_features, **opts) for l in self.layers]
        self.deltas = [torch.empty(batch_size, l.linear.out_features, **opts) for l in self.layers]

    def __call__(self, net, xb):
        """Loss on ``xb``; gradients left in each parameter's ``.grad``."""
        m = xb.shape[0]
        with torch.no_grad():
            x_in = xb if self.corruption is None else self.corruption(xb)
            h = x_in
            for layer, out in zip(self.layers, self.outputs):
                h = torch.addmm(layer.linear.bias, h, layer.linear.weight.t(), out=out[:m])
                layer.activation.apply_(h)
            delta = torch.sub(h, xb, out=self.deltas[-1][:m])
            loss = self._output_error_(delta)
            self.layers[-1].activation.backprop_(delta, h)
            for i in range(len(self.layers) - 1, -1, -1):
                lin = self.layers[i].linear
                below = x_in if i == 0 else self.outputs[i - 1][:m]
                torch.mm(delta.t(), below, out=_grad(lin.weight))
                torch.sum(delta, 0, out=_grad(lin.bias))
                if i > 0:
                    delta = torch.mm(delta, lin.weight, out=self.deltas[i - 1][:m])
                    self.layers[i - 1].activation.backprop_(delta, below)
        return loss, {"reconstruction": loss}

    def _output_error_(self, diff):
        """Turn ``diff = y - t`` into dLoss/dy in place; return the loss."""
        m, d = diff.shape
        if self.trim > 0:
            errors = diff.square().mean(1)
            keep = n_kept(m, self.trim)
            kept = errors.topk(keep, largest=False, sorted=False).indices
            weights = torch.zeros(m, 1, device=diff.device, dtype=diff.dtype)
            weights[kept] = 1.0 / keep
            loss = (errors * weights[:, 0]).sum()
            diff.mul_(weights).mul_(2.0 / d)
            return loss
        flat = diff.view(-1)
        loss = torch.dot(flat, flat) / flat.numel()
        diff.mul_(2.0 / flat.numel())
        return loss


def loss_function(objective, net, batch_size, precision):
    """The objective itself, or its :class:`DirectGradient` when covered."""
    if covers(objective, net, precision):
        return DirectGradient(objective, net, batch_size)
    return objective
