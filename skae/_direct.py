"""Hand-derived backpropagation for plain MLP autoencoders.

Autograd records a graph, allocates every intermediate afresh and frees it
again on each minibatch. For the common case (a stack of linear layers with
elementwise activations, mean squared error, optionally a standardizing
first and last layer, a trimmed loss and input noise) the gradients have a
short closed form, computed here into buffers allocated once per fit:

* forward: ``a_l = f_l(a_{l-1} W_l^T + b_l)``, activations written in place;
* output error: ``delta_L = (2 / (m d)) (y - t) * f_L'(y)`` with ``t`` the
  (standardized) target, restricted to the kept samples for a trimmed loss;
* backward: ``grad W_l = delta_l^T a_{l-1}``, ``grad b_l = sum_rows delta_l``,
  ``delta_{l-1} = (delta_l W_l) * f_{l-1}'(a_{l-1})``, each derivative taken
  from the activation's output.

The gradients are those autograd would compute (``tests/test_direct.py``
compares them); anything else (sparsity, contractive penalty, tied weights,
other activations or losses) keeps using autograd.
"""

import torch
from torch import nn

from ._losses import n_kept
from ._modules import Standardize

#: Activations whose derivative is a function of their output.
_SUPPORTED = (nn.Identity, nn.ReLU, nn.Sigmoid, nn.Tanh, nn.LeakyReLU)


def _layers(sequential):
    """``(linears, activations, leading, trailing)`` of an MLP, or None."""
    mods = list(sequential)
    leading = mods.pop(0) if mods and isinstance(mods[0], Standardize) else None
    trailing = mods.pop() if mods and isinstance(mods[-1], Standardize) else None
    linears, acts = mods[0::2], mods[1::2]
    if len(linears) != len(acts) or not linears:
        return None
    if not all(type(m) is nn.Linear for m in linears):
        return None
    if not all(type(a) in _SUPPORTED for a in acts):
        return None
    if any(isinstance(a, nn.LeakyReLU) and a.negative_slope < 0 for a in acts):
        return None
    return linears, acts, leading, trailing


def _activate_(act, a):
    """Apply ``act`` to ``a`` in place."""
    if isinstance(act, nn.ReLU):
        a.clamp_(min=0)
    elif isinstance(act, nn.Sigmoid):
        a.sigmoid_()
    elif isinstance(act, nn.Tanh):
        a.tanh_()
    elif isinstance(act, nn.LeakyReLU):
        torch.nn.functional.leaky_relu_(a, act.negative_slope)


def _standardize_into(x, standardizer, out):
    """``(x - shift) / scale`` of a :class:`Standardize`, written into ``out``."""
    return torch.sub(x, standardizer.shift, out=out).div_(standardizer.scale)


def _dense_into(linear, act, h, out):
    """``act(h W^T + b)`` written into ``out``, the activation in place."""
    a = torch.addmm(linear.bias, h, linear.weight.t(), out=out)
    _activate_(act, a)
    return a


def _backprop_activation_(act, delta, a):
    """Multiply ``delta`` in place by ``act``'s derivative, given its output ``a``."""
    if isinstance(act, nn.ReLU):
        delta.mul_(a > 0)
    elif isinstance(act, nn.Sigmoid):
        delta.mul_(a).mul_(1 - a)
    elif isinstance(act, nn.Tanh):
        delta.mul_(1 - a.square())
    elif isinstance(act, nn.LeakyReLU):
        slope = act.negative_slope
        delta.mul_(torch.where(a > 0, 1.0, slope))


def _grad(param):
    """``param.grad``, allocated on first use (it is overwritten, never added to)."""
    if param.grad is None:
        param.grad = torch.empty_like(param)
    return param.grad


class DirectGradient:
    """Loss and gradients of a plain MLP autoencoder without autograd.

    Use :meth:`build`, which returns None when the module or the loss is not
    covered. Calling the object on a batch returns ``(loss, terms)`` like a
    ``loss_fn`` and leaves every parameter's gradient in ``.grad``.

    Parameters
    ----------
    module : skae._modules.Autoencoder
    layers : tuple
        ``(linears, activations, standardize)`` over encoder then decoder.
    batch_size : int
        Largest batch the buffers must hold.
    trim : float
        Fraction of each batch's worst-reconstructed samples left out.
    corruption : callable or None
        ``corruption(xb)`` for denoising training: the corrupted batch is
        encoded, the clean one is the target.

    Attributes
    ----------
    sets_gradients : bool
        Always True: tells :func:`skae._training.run_epoch` that calling the
        object computes the gradients, so no backward pass is run.
    """

    sets_gradients = True

    def __init__(self, module, layers, batch_size, trim, corruption):
        self.linears, self.acts, self.standardize = layers
        self.trim = trim
        self.corruption = corruption
        weight = self.linears[0].weight
        opts = dict(device=weight.device, dtype=weight.dtype)
        n_features = self.linears[0].in_features
        self.outputs = [torch.empty(batch_size, lin.out_features, **opts) for lin in self.linears]
        self.deltas = [torch.empty(batch_size, lin.out_features, **opts) for lin in self.linears]
        standardized = self.standardize is not None
        self.inputs = torch.empty(batch_size, n_features, **opts) if standardized else None
        self.targets = (
            torch.empty(batch_size, n_features, **opts)
            if standardized and corruption is not None
            else None
        )

    @classmethod
    def build(cls, module, *, loss, batch_size, trim=0.0, corruption=None,
              sparsity=False, contractive=False):
        """Return a :class:`DirectGradient` for ``module``, or None if not covered.

        Parameters
        ----------
        module : torch.nn.Module
            The autoencoder (``encoder`` and ``decoder`` MLPs).
        loss : str
            Only ``"mse"`` is covered.
        batch_size : int
            Largest batch.
        trim : float, default=0.0
            Trimmed-loss fraction.
        corruption : callable or None, default=None
            Input corruption for denoising.
        sparsity, contractive : bool, default=False
            Whether those regularizers are active (not covered).

        Returns
        -------
        direct : DirectGradient or None
        """
        if loss != "mse" or sparsity or contractive:
            return None
        if not all(p.requires_grad for p in module.parameters()):
            return None
        enc = _layers(module.encoder)
        dec = _layers(module.decoder)
        if enc is None or dec is None or enc[3] is not None or dec[2] is not None:
            return None
        standardize = enc[2]
        if (standardize is None) != (dec[3] is None) or (
            standardize is not None and module.feature_scale is None
        ):
            return None
        linears, acts = enc[0] + dec[0], enc[1] + dec[1]
        for prev, nxt in zip(linears[:-1], linears[1:]):
            if prev.out_features != nxt.in_features or prev.bias is None:
                return None
        if linears[-1].bias is None:
            return None
        if standardize is not None:
            # the loss is measured in the units the encoder standardizes to
            inverse = dec[3]
            same = (
                torch.equal(inverse.shift, standardize.shift)
                and torch.equal(inverse.scale, standardize.scale)
                and torch.equal(module.feature_scale, standardize.scale)
            )
            if not same:
                return None
        return cls(module, (linears, acts, standardize), batch_size, trim, corruption)

    def __call__(self, module, xb):
        """Loss on ``xb``; gradients left in each parameter's ``.grad``."""
        m = xb.shape[0]
        with torch.no_grad():
            x_in = xb if self.corruption is None else self.corruption(xb)
            target = xb
            if self.standardize is not None:
                x_in = _standardize_into(x_in, self.standardize, self.inputs[:m])
                if self.corruption is None:
                    target = x_in
                else:
                    target = _standardize_into(xb, self.standardize, self.targets[:m])
            h = x_in
            for lin, act, out in zip(self.linears, self.acts, self.outputs):
                h = _dense_into(lin, act, h, out[:m])
            delta = torch.sub(h, target, out=self.deltas[-1][:m])
            loss = self._output_error_(delta)
            _backprop_activation_(self.acts[-1], delta, h)
            for i in range(len(self.linears) - 1, -1, -1):
                lin = self.linears[i]
                below = x_in if i == 0 else self.outputs[i - 1][:m]
                torch.mm(delta.t(), below, out=_grad(lin.weight))
                torch.sum(delta, 0, out=_grad(lin.bias))
                if i > 0:
                    delta_below = torch.mm(delta, lin.weight, out=self.deltas[i - 1][:m])
                    _backprop_activation_(self.acts[i - 1], delta_below, below)
                    delta = delta_below
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


class DirectForward:
    """Inference through plain MLP parts into buffers reused across chunks.

    Use :meth:`build`, which returns None when a part is not covered. The
    result of a call without ``out`` lives in an internal buffer that the
    next call overwrites.

    Parameters
    ----------
    steps : list of tuple
        ``("standardize", module)``, ``("unstandardize", module)`` or
        ``("linear", linear, activation)``, in order.
    """

    def __init__(self, steps):
        self.steps = steps
        self._buffers = {}

    @classmethod
    def build(cls, *parts):
        """Return a :class:`DirectForward` through ``parts`` in order, or None.

        Parameters
        ----------
        *parts : torch.nn.Sequential
            MLP encoders or decoders as built by
            :func:`skae._modules.build_autoencoder`.

        Returns
        -------
        forward : DirectForward or None
        """
        steps = []
        for part in parts:
            layers = _layers(part)
            if layers is None:
                return None
            linears, acts, leading, trailing = layers
            if leading is not None:
                steps.append(("standardize", leading))
            steps.extend(("linear", lin, act) for lin, act in zip(linears, acts))
            if trailing is not None:
                steps.append(("unstandardize", trailing))
        return cls(steps)

    def _buffer(self, i, rows, width, like):
        buf = self._buffers.get(i)
        if buf is None or buf.shape[0] < rows or buf.dtype != like.dtype:
            buf = torch.empty(rows, width, dtype=like.dtype, device=like.device)
            self._buffers[i] = buf
        return buf[:rows]

    def __call__(self, x, out=None):
        """Apply the parts to ``x``; write the result into ``out`` when given."""
        m, last = x.shape[0], len(self.steps) - 1
        h = x
        for i, step in enumerate(self.steps):
            kind, mod = step[0], step[1]
            width = mod.out_features if kind == "linear" else h.shape[1]
            target = out if i == last and out is not None else self._buffer(i, m, width, x)
            if kind == "standardize":
                h = _standardize_into(h, mod, target)
            elif kind == "unstandardize":
                h = torch.addcmul(mod.shift, h, mod.scale, out=target)
            else:
                h = _dense_into(mod, step[2], h, target)
        return h
