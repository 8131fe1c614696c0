"""Every activation's behaviour, in one table.

The network builder, the initializer, the contractive penalty and the
hand-derived fast path all look activations up here by name.
"""

from dataclasses import dataclass
from typing import Callable, Optional

import torch
from torch import nn
from torch.nn import functional as F


@dataclass(frozen=True)
class Activation:
    """How one activation behaves.

    Attributes
    ----------
    name : str
        The name used by the ``activation`` parameters.
    module : callable
        ``module() -> torch.nn.Module`` applying it.
    apply_ : callable or None
        ``apply_(a)`` applies it in place (None: the identity, nothing to do).
    derivative : callable or None
        ``derivative(post) -> tensor``: its derivative at the pre-activation,
        from its output ``post`` alone; None when that is not possible (the
        derivative is then taken by autograd).
    backprop_ : callable or None
        ``backprop_(delta, post)`` multiplies ``delta`` in place by that
        derivative, with as few temporaries as possible (the fast path).
    glorot_factor : float
        ``factor`` in the Glorot-uniform bound ``sqrt(factor / (fan_in +
        fan_out))`` of the layer it follows: 2 for the logistic, else 6 (as
        scikit-learn's MLP).
    train_ : callable or None
        A faster, slightly less exact ``apply_`` for the hand-derived
        training step (:meth:`apply_in_training_`); None: ``apply_``.
        Inference always uses ``apply_``.
    """

    name: str
    module: Callable[[], nn.Module]
    apply_: Optional[Callable]
    derivative: Optional[Callable]
    backprop_: Optional[Callable]
    glorot_factor: float = 6.0
    train_: Optional[Callable] = None

    def apply_in_training_(self, a):
        """Apply the activation to ``a`` in place, in a training step."""
        return (self.train_ or self.apply_)(a)

    def __reduce__(self):
        # pickled by name: the table holds functions that pickle cannot
        return (_by_name, (self.name,))


def _by_name(name):
    return ACTIVATIONS[name]


def _identity_(a):
    return a


_LEAKY_SLOPE = 0.01

def _sigmoid_backprop_(delta, post):
    delta.mul_(post).mul_(1 - post)


def _tanh_train_(a):
    # On the CPU, tanh(a) = 2 * sigmoid(2a) - 1 takes half the time of torch.tanh_
    # (float32, one thread, AVX2: 74 against 164 us for 512 x 64), with an absolute
    # error below 2e-7: fine for a training step, not for scores compared to ONNX
    # runtimes'. GPUs run torch.tanh_ at memory speed.
    if a.device.type != "cpu":
        return a.tanh_()
    return a.mul_(2).sigmoid_().mul_(2).sub_(1)


def _tanh_backprop_(delta, post):
    delta.mul_(1 - post.square())


ACTIVATIONS = {
    a.name: a
    for a in (
        Activation("identity", nn.Identity, _identity_, lambda post: None, lambda d, post: None),
        Activation("relu", nn.ReLU, lambda a: a.clamp_(min=0),
                   lambda post: (post > 0).to(post.dtype), lambda d, post: d.mul_(post > 0)),
        Activation("logistic", nn.Sigmoid, torch.sigmoid_, lambda post: post * (1 - post),
                   _sigmoid_backprop_, 2.0),
        Activation("sigmoid", nn.Sigmoid, torch.sigmoid_, lambda post: post * (1 - post),
                   _sigmoid_backprop_, 2.0),
        Activation("tanh", nn.Tanh, torch.tanh_, lambda post: 1 - post.square(), _tanh_backprop_,
                   train_=_tanh_train_),
        Activation(
            "leaky_relu",
            lambda: nn.LeakyReLU(_LEAKY_SLOPE),
            lambda a: F.leaky_relu_(a, _LEAKY_SLOPE),
            lambda post: torch.where(post > 0, 1.0, _LEAKY_SLOPE).to(post.dtype),
            lambda d, post: d.mul_(torch.where(post > 0, 1.0, _LEAKY_SLOPE)),
        ),
        Activation("elu", nn.ELU, None, None, None),
        Activation("gelu", nn.GELU, None, None, None),
    )
}

#: Activations whose outputs lie in (0, 1).
UNIT_INTERVAL = frozenset({"logistic", "sigmoid"})


def derivative(activation, pre, post):
    """Derivative of ``activation`` (an :class:`Activation`) at ``pre``.

    Parameters
    ----------
    activation : Activation
    pre : torch.Tensor
        Its input.
    post : torch.Tensor
        Its output.

    Returns
    -------
    derivative : torch.Tensor or None
        Differentiable; None for the identity (a derivative of one).
    """
    if activation.derivative is not None:
        return activation.derivative(post)
    module = activation.module()
    with torch.enable_grad():
        x = pre if pre.requires_grad else pre.detach().requires_grad_()
        (grad,) = torch.autograd.grad(module(x).sum(), x, create_graph=True)
    return grad
