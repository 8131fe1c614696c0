"""Hand-derived backpropagation for plain MLP autoencoders.

Autograd records a graph and allocates every intermediate afresh on each
minibatch. For plain networks the gradients have a short closed form,
computed here into buffers allocated once per fit:

* forward: ``a_l = f_l(a_{l-1} W_l^T + b_l)``, activations in place;
* output error: ``delta_L = (2 / (m d)) (y - t) * f_L'(y)``, restricted to the
  kept samples for a trimmed loss; with sample weights (frequencies) ``w_i``,
  row ``i``'s ``1 / m`` is ``w_i / sum(w)`` (the kept ones' sum when
  trimming);
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
from torch.nn import functional as F

from ._nets.mlp import MLPAutoencoder, MLPStage
from ._nets.variational import (
    LOG_2PI,
    SOFTPLUS_ONE,
    VariationalAutoencoder,
    posterior_std,
)
from ._objective import (
    GaussianKL,
    GaussianNoise,
    Masking,
    SaltAndPepper,
    VariationalObjective,
    n_kept,
    split_weights,
    trimmed_weights,
)

#: Activations implemented here (in place, derivative from the output).
ACTIVATIONS = frozenset({"identity", "relu", "logistic", "sigmoid", "tanh", "leaky_relu"})
#: Corruptions implemented here (applied to the input before the forward pass).
CORRUPTIONS = (type(None), GaussianNoise, Masking, SaltAndPepper)
#: Network kinds implemented here.
NETWORKS = (MLPAutoencoder, MLPStage)


def _variational_covered(objective, net):
    """Whether :class:`VariationalGradient` computes exactly ``objective`` on ``net``."""
    if type(objective) is not VariationalObjective or len(objective.terms) != 1:
        return False
    if type(objective.terms[0]) is not GaussianKL:
        return False
    if type(objective.corruption) not in CORRUPTIONS:
        return False
    layers = net.hidden_layers + net.decoder_layers
    return all(
        type(layer.linear) is nn.Linear and layer.activation.name in ACTIVATIONS for layer in layers
    ) and all(p.requires_grad for p in net.parameters())


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
    if precision not in ("float32", "tf32"):
        return False
    if type(net) is VariationalAutoencoder:
        return _variational_covered(objective, net)
    if type(net) not in NETWORKS:
        return False
    if objective.loss != "mse" or objective.terms or type(objective.corruption) not in CORRUPTIONS:
        return False
    if objective.n_inputs is not None or net.skip:  # paired data, skip connections
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


def _row_shares(values, trim, weights):
    """Each row's share of a batch's mean, shape (m, 1), as the objectives weigh rows.

    ``w_i / sum(w)`` over the rows a trimmed loss keeps (those of the
    smallest ``values``), ``w`` the sample weights, or 1 for every row when
    ``weights`` is None (then ``1 / kept`` on the kept rows).
    """
    if weights is not None:
        if trim > 0:
            weights = trimmed_weights(values, trim, weights)
        return (weights / weights.sum()).unsqueeze(1)
    m = values.shape[0]
    keep = n_kept(m, trim)
    kept = values.topk(keep, largest=False, sorted=False).indices
    shares = torch.zeros(m, 1, device=values.device, dtype=values.dtype)
    shares[kept] = 1.0 / keep
    return shares


def _backward(layers, outputs, deltas, delta, x_in):
    """Set the gradients of a stack of layers from the error at its output.

    Parameters
    ----------
    layers : sequence of Dense
        Input side first.
    outputs, deltas : sequence of torch.Tensor
        Per layer, buffers holding its activations and receiving its errors.
    delta : torch.Tensor of shape (m, out_features of the last layer)
        dLoss / d(pre-activation of the last layer).
    x_in : torch.Tensor of shape (m, in_features of the first layer)
        The stack's input.

    Returns
    -------
    delta : torch.Tensor
        dLoss / d(pre-activation of the first layer).
    """
    m = x_in.shape[0]
    for i in range(len(layers) - 1, -1, -1):
        lin = layers[i].linear
        below = x_in if i == 0 else outputs[i - 1][:m]
        torch.mm(delta.t(), below, out=_grad(lin.weight))
        torch.sum(delta, 0, out=_grad(lin.bias))
        if i > 0:
            delta = torch.mm(delta, lin.weight, out=deltas[i - 1][:m])
            layers[i - 1].activation.backprop_(delta, below)
    return delta


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
        self.weighted = objective.weighted
        w = self.layers[0].linear.weight
        opts = dict(device=w.device, dtype=w.dtype)
        self.outputs = [torch.empty(batch_size, l.linear.out_features, **opts) for l in self.layers]
        self.deltas = [torch.empty(batch_size, l.linear.out_features, **opts) for l in self.layers]

    def __call__(self, net, xb):
        """Loss on ``xb``; gradients left in each parameter's ``.grad``."""
        xb, weights = split_weights(xb, self.weighted)
        m = xb.shape[0]
        with torch.no_grad():
            x_in = xb if self.corruption is None else self.corruption(xb)
            h = x_in
            for layer, out in zip(self.layers, self.outputs):
                h = torch.addmm(layer.linear.bias, h, layer.linear.weight.t(), out=out[:m])
                layer.activation.apply_in_training_(h)
            delta = torch.sub(h, xb, out=self.deltas[-1][:m])
            loss = self._output_error_(delta, weights)
            self.layers[-1].activation.backprop_(delta, h)
            _backward(self.layers, self.outputs, self.deltas, delta, x_in)
        return loss, {"reconstruction": loss}

    def _output_error_(self, diff, weights=None):
        """Turn ``diff = y - t`` into dLoss/dy in place; return the loss.

        ``weights``: the batch's sample weights, or None when all are equal.
        """
        if weights is not None or self.trim > 0:  # a weighted (trimmed) mean of row errors
            errors = diff.square().mean(1)
            shares = _row_shares(errors, self.trim, weights)
            loss = (errors * shares[:, 0]).sum()
            diff.mul_(shares).mul_(2.0 / diff.shape[1])
            return loss
        flat = diff.view(-1)
        loss = torch.dot(flat, flat) / flat.numel()
        diff.mul_(2.0 / flat.numel())
        return loss


class VariationalGradient:
    """Negative ELBO and its gradients for a covered variational objective, without autograd.

    Forward: the encoder's hidden layers, the posterior layer ``[mean, h]``,
    ``std = softplus(h + c) + 1e-4`` (``lv = 2 log std``), ``z = mean + std *
    eps`` with ``eps`` drawn as the objective draws it, the decoder. With
    per-sample weights ``w_i`` (``1 / m``; ``1 / kept`` on the kept samples
    of a trimmed loss; with sample weights ``s_i`` (frequencies)
    ``s_i / sum(s)``, over the kept samples when trimming):

    * Bernoulli: ``nll_i = sum_j softplus(l_ij) - x_ij l_ij`` and
      ``dL/dl = w_i (sigmoid(l) - x)``;
    * Gaussian with shared ``s = log sigma^2``: ``nll_i = (||y_i - x_i||^2
      e^-s + d (s + log 2 pi)) / 2``, ``dL/dy = w_i (y - x) e^-s`` (then
      through the output activation) and ``dL/ds = sum_i w_i (d - ||y_i -
      x_i||^2 e^-s) / 2``;
    * KL: ``dL/dmean = dL/dz + beta w mean``, ``dL/dlv = dL/dz * eps *
      exp(lv / 2) / 2 + beta w (exp(lv) - 1) / 2`` and ``dL/dh = dL/dlv * 2
      sigmoid(h + c) / std``.

    Parameters
    ----------
    objective : skae._objective.VariationalObjective
    net : skae._nets.variational.VariationalAutoencoder
    batch_size : int

    Attributes
    ----------
    sets_gradients : bool
        Always True.
    """

    sets_gradients = True

    def __init__(self, objective, net, batch_size):
        self.objective, self.kl = objective, objective.terms[0]
        w = net.posterior.weight
        opts = dict(device=w.device, dtype=w.dtype)

        def buffers(layers):
            return [torch.empty(batch_size, l.linear.out_features, **opts) for l in layers]

        self.h_out, self.h_delta = buffers(net.hidden_layers), buffers(net.hidden_layers)
        self.d_out, self.d_delta = buffers(net.decoder_layers), buffers(net.decoder_layers)
        self.stats = torch.empty(batch_size, 2 * net.n_components, **opts)
        self.d_stats = torch.empty(batch_size, 2 * net.n_components, **opts)
        self.logits = torch.empty(batch_size, net.decoder_layers[-1].linear.out_features, **opts)

    def __call__(self, net, xb):
        """Loss on ``xb``; gradients left in each parameter's ``.grad``."""
        obj = self.objective
        xb, sample_weights = split_weights(xb, obj.weighted)
        m, k = xb.shape[0], net.n_components
        column = sample_weights is not None or obj.trim > 0  # weights: (m, 1), else 1 / m
        with torch.no_grad():
            x_in = xb if obj.corruption is None else obj.corruption(xb)
            eps = torch.randn((m, k), generator=obj.generator, device=xb.device, dtype=xb.dtype)
            h = x_in
            for layer, out in zip(net.hidden_layers, self.h_out):
                h = torch.addmm(layer.linear.bias, h, layer.linear.weight.t(), out=out[:m])
                layer.activation.apply_in_training_(h)
            post = net.posterior
            stats = torch.addmm(post.bias, h, post.weight.t(), out=self.stats[:m])
            mean, h_std = stats[:, :k], stats[:, k:]
            std = posterior_std(h_std)
            lv = 2.0 * torch.log(std)
            g = torch.addcmul(mean, std, eps)
            z = g
            last = len(net.decoder_layers) - 1
            for i, (layer, out) in enumerate(zip(net.decoder_layers, self.d_out)):
                lin = layer.linear
                if i == last and net.likelihood == "bernoulli":
                    logits = torch.addmm(lin.bias, g, lin.weight.t(), out=self.logits[:m])
                    g = torch.sigmoid(logits, out=out[:m])
                else:
                    g = torch.addmm(lin.bias, g, lin.weight.t(), out=out[:m])
                    layer.activation.apply_in_training_(g)
            delta = torch.sub(g, xb, out=self.d_delta[-1][:m])
            bernoulli, beta = net.likelihood == "bernoulli", self.kl.current
            var = std.square()
            kl = 0.5 * (mean.square() + var - 1.0 - lv).sum(1)
            if bernoulli:
                nll = F.binary_cross_entropy_with_logits(logits, xb, reduction="none").sum(1)
            else:
                s = net.log_noise_variance
                inv = torch.exp(-s)
                sq = delta.square().sum(1)
                nll = 0.5 * (sq * inv + xb.shape[1] * (s + LOG_2PI))
            if column:  # per-sample weights (see _row_shares)
                weights = _row_shares(nll + beta * kl, obj.trim, sample_weights)
                rec, kl_part = weights[:, 0] @ nll, beta * (weights[:, 0] @ kl)
            else:  # one weight, 1 / m: scalar arithmetic
                weights = 1.0 / m
                rec, kl_part = nll.mean(), beta * kl.mean()
            if bernoulli:
                delta.mul_(weights)
            else:
                # dL/ds = sum_i w_i (d - ||y_i - x_i||^2 e^-s) / 2
                sq_mean = weights[:, 0] @ sq if column else sq.mean()
                torch.mul(xb.shape[1] - sq_mean * inv, 0.5, out=_grad(s))
                delta.mul_(weights * inv)
                net.decoder_layers[-1].activation.backprop_(delta, g)
            delta = _backward(net.decoder_layers, self.d_out, self.d_delta, delta, z)
            d_z = delta @ net.decoder_layers[0].linear.weight
            d_stats = self.d_stats[:m]
            bw = beta * weights
            if column:
                torch.addcmul(d_z, mean, bw, out=d_stats[:, :k])
            else:
                torch.add(d_z, mean, alpha=bw, out=d_stats[:, :k])
            # dL/dlv, then dlv/dh = 2 sigmoid(h + c) / std
            d_lv = d_z.mul_(eps).mul_(std).mul_(0.5)
            d_lv.add_(var.sub_(1.0).mul_(0.5 * bw))
            torch.mul(d_lv, torch.sigmoid(h_std + SOFTPLUS_ONE).div_(std).mul_(2.0),
                      out=d_stats[:, k:])
            _backward(net.hidden_layers + (net.posterior_layer,), self.h_out + [stats],
                      self.h_delta + [d_stats], d_stats, x_in)
        return rec + kl_part, {"reconstruction": rec, "kl": kl_part}


def loss_function(objective, net, batch_size, precision):
    """The objective itself, or its direct-gradient form when covered."""
    if covers(objective, net, precision):
        if type(net) is VariationalAutoencoder:
            return VariationalGradient(objective, net, batch_size)
        return DirectGradient(objective, net, batch_size)
    return objective
