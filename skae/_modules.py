"""Torch building blocks: MLP encoders and decoders, and the autoencoder module."""

import math

import torch
from torch import nn

ACTIVATIONS = {
    "identity": nn.Identity,
    "relu": nn.ReLU,
    "logistic": nn.Sigmoid,
    "sigmoid": nn.Sigmoid,
    "tanh": nn.Tanh,
    "leaky_relu": nn.LeakyReLU,
    "elu": nn.ELU,
    "gelu": nn.GELU,
}

#: Activations whose outputs lie in (0, 1).
UNIT_INTERVAL_ACTIVATIONS = frozenset({"logistic", "sigmoid"})


def make_mlp(sizes, activation, last_activation):
    """Build a multi-layer perceptron as a ``torch.nn.Sequential``.

    Parameters
    ----------
    sizes : sequence of int
        Widths of every layer, input first: ``len(sizes) - 1`` linear layers.
    activation : str
        Name of the activation after every linear layer but the last.
    last_activation : str
        Name of the activation after the last linear layer.

    Returns
    -------
    mlp : torch.nn.Sequential
        Alternating ``Linear`` and activation modules.
    """
    layers = []
    n_layers = len(sizes) - 1
    for i, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(fan_in, fan_out))
        name = last_activation if i == n_layers - 1 else activation
        layers.append(ACTIVATIONS[name]())
    return nn.Sequential(*layers)


class Standardize(nn.Module):
    """Per-feature affine map ``(x - shift) / scale``, or its inverse.

    Parameters
    ----------
    shift, scale : torch.Tensor of shape (n_features,)
        Per-feature location and (positive) scale.
    inverse : bool, default=False
        Compute ``x * scale + shift`` instead.
    """

    def __init__(self, shift, scale, inverse=False):
        super().__init__()
        self.register_buffer("shift", shift.clone())
        self.register_buffer("scale", scale.clone())
        self.inverse = inverse

    def forward(self, x):
        """Apply the map."""
        if self.inverse:
            return torch.addcmul(self.shift, x, self.scale)
        return (x - self.shift) / self.scale


class TiedLinear(nn.Module):
    """Linear layer whose weight is the transpose of another layer's weight.

    Parameters
    ----------
    source : torch.nn.Linear
        Layer mapping ``out_features -> in_features`` of this one; its weight
        is shared (``weight = source.weight.T``), the bias is this layer's own.
    """

    def __init__(self, source):
        super().__init__()
        self.source = source
        self.bias = nn.Parameter(torch.zeros(source.in_features))

    @property
    def weight(self):
        """The tied weight, ``source.weight.T``."""
        return self.source.weight.t()

    def forward(self, x):
        """Apply ``x @ source.weight + bias``."""
        return torch.addmm(self.bias, x, self.source.weight)


def encoder_layers(encoder):
    """Return the ``(linear, activation)`` pairs of an MLP encoder or decoder.

    A leading or trailing :class:`Standardize` is skipped.

    Parameters
    ----------
    encoder : torch.nn.Sequential
        As built by :func:`build_autoencoder`.

    Returns
    -------
    pairs : list of tuple
    """
    mods = [m for m in encoder if not isinstance(m, Standardize)]
    return list(zip(mods[0::2], mods[1::2]))


def forward_with_activations(encoder, x):
    """Encode ``x`` and keep every layer's pre-activation and activation.

    Parameters
    ----------
    encoder : torch.nn.Sequential
        As built by :func:`build_autoencoder`.
    x : torch.Tensor of shape (n_samples, n_features)

    Returns
    -------
    z : torch.Tensor of shape (n_samples, n_components)
        The code (equal to ``encoder(x)``).
    inputs : torch.Tensor
        The input of the first linear layer (``x`` after standardization).
    pre_activations : list of torch.Tensor
        Output of each linear layer.
    activations : list of torch.Tensor
        Output of each activation; the last one is ``z``.
    """
    h = x
    if isinstance(encoder[0], Standardize):
        h = encoder[0](h)
    inputs, pre_activations, activations = h, [], []
    for linear, act in encoder_layers(encoder):
        pre = linear(h)
        h = act(pre)
        pre_activations.append(pre)
        activations.append(h)
    return h, inputs, pre_activations, activations


class Autoencoder(nn.Module):
    """An encoder and a decoder trained to reproduce the input.

    Parameters
    ----------
    encoder : torch.nn.Module
        Maps inputs of shape ``(n, n_features)`` to codes ``(n, n_components)``.
    decoder : torch.nn.Module
        Maps codes back to the input space.
    feature_scale : torch.Tensor of shape (n_features,) or None, default=None
        Per-feature scale by which reconstruction errors are divided (kept
        as the buffer ``feature_scale``; ones when None).
    """

    def __init__(self, encoder, decoder, feature_scale=None):
        super().__init__()
        self.encoder = encoder
        self.decoder = decoder
        self.register_buffer("feature_scale", feature_scale)

    def forward(self, x):
        """Return the reconstruction and the code of ``x``."""
        z = self.encoder(x)
        return self.decoder(z), z


def build_autoencoder(
    n_features,
    hidden_layer_sizes,
    n_components,
    activation,
    latent_activation,
    output_activation,
    shift=None,
    scale=None,
    tied_weights=False,
):
    """Build an MLP autoencoder with a mirrored decoder.

    Parameters
    ----------
    n_features : int
        Input width.
    hidden_layer_sizes : tuple of int
        Encoder hidden widths; the decoder uses them in reverse order.
    n_components : int
        Width of the code (bottleneck).
    activation, latent_activation, output_activation : str
        Activation names for hidden layers, the code and the reconstruction.
    shift, scale : torch.Tensor of shape (n_features,) or None, default=None
        When given, the encoder starts by standardizing its input with them,
        the decoder ends by undoing it, and reconstruction errors are
        measured in standardized units.
    tied_weights : bool, default=False
        Make each decoder weight the transpose of the mirrored encoder weight.

    Returns
    -------
    module : Autoencoder
    """
    widths = [n_features, *hidden_layer_sizes, n_components]
    encoder = make_mlp(widths, activation, latent_activation)
    decoder = make_mlp(widths[::-1], activation, output_activation)
    if tied_weights:
        encoder_linears = [m for m in encoder if isinstance(m, nn.Linear)]
        for i, source in enumerate(reversed(encoder_linears)):
            decoder[2 * i] = TiedLinear(source)
    if scale is None:
        return Autoencoder(encoder, decoder)
    encoder.insert(0, Standardize(shift, scale))
    decoder.append(Standardize(shift, scale, inverse=True))
    return Autoencoder(encoder, decoder, feature_scale=scale)


def glorot_init_(module, generator):
    """Initialize every linear layer with Glorot-uniform weights and biases.

    The bound is ``sqrt(factor / (fan_in + fan_out))`` with ``factor = 2`` for
    a layer followed by a sigmoid and 6 otherwise, as scikit-learn's
    ``MLPRegressor`` does; biases use the same bound. Converges faster than
    torch's default initialization on autoencoder problems.

    Parameters
    ----------
    module : torch.nn.Module
        Module whose ``nn.Linear`` layers are (re)initialized in place.
    generator : torch.Generator
        Source of randomness (CPU generator; the module must be on the CPU).
    """
    children = list(module.modules())
    with torch.no_grad():
        for i, layer in enumerate(children):
            if not isinstance(layer, nn.Linear):
                continue
            nxt = children[i + 1] if i + 1 < len(children) else None
            factor = 2.0 if isinstance(nxt, nn.Sigmoid) else 6.0
            bound = math.sqrt(factor / (layer.in_features + layer.out_features))
            layer.weight.uniform_(-bound, bound, generator=generator)
            if layer.bias is not None:
                layer.bias.uniform_(-bound, bound, generator=generator)
