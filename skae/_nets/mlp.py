"""The multi-layer perceptron autoencoder."""

import math
from dataclasses import dataclass


import torch
from torch import nn

from .activations import ACTIVATIONS
from .conv import ImageMaps


def glorot_uniform_(layer, generator, fan_out=None):
    """Draw a :class:`Dense` layer's weight and bias from ``U(-b, b)``, in place.

    ``b = sqrt(factor / (fan_in + fan_out))`` with the factor of the
    activation that follows (see :class:`~skae._nets.activations.Activation`),
    as scikit-learn's MLP does; ``fan_out`` defaults to the layer's outputs.
    """
    lin = layer.linear
    fan_in, fans_out = getattr(lin, "glorot_fans", (lin.in_features, lin.out_features))
    fan_out = fans_out if fan_out is None else fan_out
    bound = math.sqrt(layer.activation.glorot_factor / (fan_in + fan_out))
    with torch.no_grad():
        lin.weight.uniform_(-bound, bound, generator=generator)
        lin.bias.uniform_(-bound, bound, generator=generator)


class Standardize(nn.Module):
    """Per-feature affine map ``(x - shift) / scale``, or its inverse.

    Computed in float64 whatever the input's dtype, so that a feature with
    a large offset and a small spread keeps its information; the result is
    returned in the input's dtype.

    Parameters
    ----------
    shift, scale : torch.Tensor of shape (n_features,)
        Per-feature location and (positive) scale, kept in float64.
    inverse : bool, default=False
        Compute ``x * scale + shift`` instead.
    """

    def __init__(self, shift, scale, inverse=False):
        super().__init__()
        self.register_buffer("shift", shift.to(torch.float64).clone())
        self.register_buffer("scale", scale.to(torch.float64).clone())
        self.inverse = inverse

    def forward(self, x):
        """Apply the map."""
        x64 = x.to(torch.float64)
        y = torch.addcmul(self.shift, x64, self.scale) if self.inverse else (x64 - self.shift) / self.scale
        return y.to(x.dtype)


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
        self.in_features, self.out_features = source.out_features, source.in_features
        self.bias = nn.Parameter(torch.zeros(source.in_features, dtype=source.weight.dtype))

    @property
    def weight(self):
        """The tied weight, ``source.weight.T``."""
        return self.source.weight.t()

    def forward(self, x):
        """Apply ``x @ source.weight + bias``."""
        return torch.addmm(self.bias, x, self.source.weight)


@dataclass(frozen=True)
class Dense:
    """One layer of the network: a linear map and the activation after it.

    Attributes
    ----------
    linear : torch.nn.Linear or TiedLinear
    module : torch.nn.Module
        The activation module (as it sits in the ``Sequential``).
    activation : skae._nets.activations.Activation
    """

    linear: nn.Module
    module: nn.Module
    activation: object

    def __call__(self, h):
        """Apply the layer; return ``(pre_activation, activation)``."""
        pre = self.linear(h)
        return pre, self.module(pre)


@dataclass(frozen=True)
class NetOutput:
    """What a forward pass in standardized units returns.

    Attributes
    ----------
    reconstruction : torch.Tensor of shape (m, n_features)
    code : torch.Tensor of shape (m, n_components)
    pre_activations, activations : tuple of torch.Tensor
        Per encoder layer (the last is the code), when requested; else ().
    mean, log_variance : torch.Tensor of shape (m, n_components) or None
        The posterior's parameters (variational networks only).
    logits : torch.Tensor of shape (m, n_features) or None
        The last decoder layer's pre-activation (variational networks only).
    """

    reconstruction: torch.Tensor
    code: torch.Tensor
    pre_activations: tuple = ()
    activations: tuple = ()
    mean: torch.Tensor = None
    log_variance: torch.Tensor = None
    logits: torch.Tensor = None


class _Layered(nn.Module):
    """Forward passes in standardized units over ``encoder_layers`` and ``decoder_layers``.

    The named parts are views of modules registered elsewhere, not modules
    of their own (so each parameter has one name in the state dict).
    """

    _VIEWS = ("standardizer", "destandardizer", "encoder_layers", "decoder_layers")

    #: Whether each decoder layer after the first also receives the output of
    #: the encoder layer that mirrors it (skip connections; see ``decode_standardized``).
    skip = False
    #: Width of the input part of a training row, when rows hold input and
    #: target side by side (paired data); None for an autoencoder.
    n_inputs = None

    def __setattr__(self, name, value):
        if name in self._VIEWS:
            object.__setattr__(self, name, value)
        else:
            super().__setattr__(name, value)

    def _assemble(self, shift, scale, encoder_layers, encoder_tail=(), targets=None):
        """Set the standardization parts and the raw-units ``encoder``/``decoder`` Sequentials.

        ``encoder`` runs the standardizer (when ``scale`` is given), the
        ``encoder_layers`` and the modules of ``encoder_tail``; ``decoder``
        runs ``decoder_layers`` and the destandardizer, whose statistics
        are ``targets = (shift, scale)`` of the outputs when they differ
        from the inputs' (paired data).
        """
        self.standardizer = self.destandardizer = None
        enc_mods, dec_mods = [], []
        if scale is not None:
            out_shift, out_scale = (shift, scale) if targets is None else targets
            self.standardizer = Standardize(shift, scale)
            self.destandardizer = Standardize(out_shift, out_scale, inverse=True)
            enc_mods.append(self.standardizer)
        for d in encoder_layers:
            enc_mods += [d.linear, d.module]
        enc_mods += list(encoder_tail)
        for d in self.decoder_layers:
            dec_mods += [d.linear, d.module]
        if scale is not None:
            dec_mods.append(self.destandardizer)
        self.encoder = nn.Sequential(*enc_mods)
        self.decoder = nn.Sequential(*dec_mods)

    def encode_standardized(self, h, keep_activations=False):
        """Code of standardized inputs ``h``; per-layer values if asked.

        Returns
        -------
        code : torch.Tensor
        pre_activations, activations : tuple of torch.Tensor
            Empty unless ``keep_activations``.
        """
        pres, posts = [], []
        for layer in self.encoder_layers:
            pre, h = layer(h)
            if keep_activations:
                pres.append(pre)
                posts.append(h)
        return h, tuple(pres), tuple(posts)

    def decode_standardized(self, z, skips=()):
        """Reconstruction, in standardized units, of codes ``z``.

        With skip connections, ``skips`` are the network's input followed by
        the encoder layers' outputs (the last is the code): decoder layer
        ``j > 0`` reads its input concatenated with ``skips[-1 - j]``, the
        mirrored encoder layer's output (for images, the feature maps of the
        same resolution: channels are concatenated). A convolutional
        network's extra last layer mirrors the input: it reads the image.
        """
        for j, layer in enumerate(self.decoder_layers):
            if j and skips:
                z = torch.cat((z, skips[-1 - j]), 1)
            z = layer(z)[1]
        return z

    def forward_standardized(self, x, keep_activations=False):
        """Encode and decode standardized inputs ``x``.

        Returns
        -------
        output : NetOutput
        """
        code, pres, posts = self.encode_standardized(x, keep_activations or self.skip)
        reconstruction = self.decode_standardized(code, (x, *posts) if self.skip else ())
        if self.skip and not keep_activations:
            pres = posts = ()
        return NetOutput(reconstruction, code, pres, posts)

    def training_statistics(self):
        """``(shift, scale)`` of a training row as float64 numpy arrays, or ``(None, None)``.

        A row is the input, or the input and the target side by side
        (paired data): then the statistics are concatenated.
        """
        if self.standardizer is None:
            return None, None
        parts = [self.standardizer] + ([self.destandardizer] if self.n_inputs is not None else [])
        return tuple(
            torch.cat([getattr(p, name) for p in parts]).cpu().numpy() for name in ("shift", "scale")
        )

    def inference_steps(self, parts):
        """The steps of an inference pass through ``parts``, in order.

        Parameters
        ----------
        parts : sequence of {"standardize", "encoder", "decoder", "core", "code", "expand"}
            ``"encoder"``: raw inputs to codes; ``"decoder"``: codes to raw
            inputs; ``"core"``: standardized inputs to standardized
            reconstructions, the same as ``"code"`` (standardized inputs to
            codes) then ``"expand"`` (codes to standardized reconstructions);
            ``"standardize"``: raw to standardized inputs; and the parts a
            network kind adds (see ``_extra_steps``).

        Returns
        -------
        steps : list of tuple
            ``("standardize", Standardize)``, ``("destandardize",
            Standardize)``, ``("dense", Dense)`` (a linear layer),
            ``("map", Dense)`` (a layer whose ``linear`` is another map with
            an ``apply_to(x, weight, bias)`` method, e.g. a convolution) or
            ``("module", nn.Module)`` (any map of flat rows).
        """
        if self.skip and any(p in ("encoder", "decoder", "code", "expand") for p in parts):
            raise ValueError("a network with skip connections has no separate encoder or decoder")
        steps = []
        for part in parts:
            if part in ("standardize", "encoder", "reconstruct") and self.standardizer is not None:
                steps.append(("standardize", self.standardizer))
            if part in ("encoder", "core", "reconstruct") and self.skip:
                steps.append(("module", _Core(self)))
            elif part in ("encoder", "core", "reconstruct", "code"):
                steps += [(_step_kind(layer), layer) for layer in self.encoder_layers]
            steps += self._extra_steps(part)
            if part in ("decoder", "core", "reconstruct", "expand") and not self.skip:
                steps += [(_step_kind(layer), layer) for layer in self.decoder_layers]
            if part in ("decoder", "reconstruct") and self.destandardizer is not None:
                steps.append(("destandardize", self.destandardizer))
        return steps

    def forward(self, x):
        """Reconstruction (in the output's units) and code of raw inputs ``x``."""
        if self.skip:
            h = x if self.standardizer is None else self.standardizer(x)
            out = self.forward_standardized(h)
            y = out.reconstruction
            return (y if self.destandardizer is None else self.destandardizer(y)), out.code
        z = self.encoder(x)
        return self.decoder(z), z

    def _extra_steps(self, part):
        """Steps of a part only some network kinds have; none here."""
        return []

    def parameter_groups(self):
        """``(weights, biases)``: weight decay applies to the first only."""
        weights = [p for n, p in self.named_parameters() if n.endswith("weight")]
        others = [p for n, p in self.named_parameters() if not n.endswith("weight")]
        return weights, others


def _step_kind(layer):
    return getattr(layer.linear, "step_kind", "dense")


class _Core(nn.Module):
    """A network's standardized forward pass as a module of its own (an inference step).

    Holds the network without registering it (the network owns this view).
    """

    def __init__(self, net):
        super().__init__()
        object.__setattr__(self, "net", net)

    def forward(self, x):
        """Standardized reconstruction of standardized rows ``x``."""
        return self.net.forward_standardized(x).reconstruction


class MLPStage(_Layered):
    """One encoder layer and its mirrored decoder layer: a greedy pretraining stage.

    Shares its parameters with the network it comes from.

    Parameters
    ----------
    encoder_layer, decoder_layer : Dense
    """

    def __init__(self, encoder_layer, decoder_layer):
        super().__init__()
        self.linears = nn.ModuleList([encoder_layer.linear, decoder_layer.linear])
        self.encoder_layers = (encoder_layer,)
        self.decoder_layers = (decoder_layer,)


class MLPAutoencoder(_Layered):
    """An MLP encoder and a mirrored MLP decoder, with named parts.

    ``encoder`` and ``decoder`` are plain ``torch.nn.Sequential`` modules
    that map raw inputs to codes and codes to raw inputs (standardizing
    first and undoing it last when statistics are given), so they can be
    used on their own. Training works in standardized units through
    :meth:`forward_standardized`; the parts are reached by name:
    ``standardizer``, ``encoder_layers``, ``decoder_layers``,
    ``destandardizer``.

    Parameters
    ----------
    n_features : int
    hidden_layer_sizes : tuple of int
        Encoder hidden widths; the decoder uses them in reverse.
    n_components : int
    activation, latent_activation, output_activation : str
        Names from :data:`skae._nets.activations.ACTIVATIONS`.
    shift, scale : torch.Tensor of shape (n_features,) or None, default=None
        Standardization statistics; None for none.
    tied_weights : bool, default=False
        Make each decoder weight the transpose of the mirrored encoder weight.
    maps : skae._nets.conv.ImageMaps or None, default=None
        Convolutional stages before the first and after the last dense
        layer (images); the dense layers then start and end at
        ``maps.n_flat`` features.
    n_outputs : int or None, default=None
        Output width, when it is not ``n_features`` (paired data).
    targets : tuple of torch.Tensor or None, default=None
        ``(shift, scale)`` of the outputs, when they differ from the inputs'.
    skip : bool, default=False
        Skip connections (see :meth:`decode_standardized`).
    dense : bool, default=True
        Whether there are dense layers; False (with ``maps``) makes the last
        convolutional stage's output the code.
    """

    def __init__(self, n_features, hidden_layer_sizes, n_components, activation,
                 latent_activation, output_activation, shift=None, scale=None,
                 tied_weights=False, *, maps=None, n_outputs=None, targets=None, skip=False,
                 dense=True):
        super().__init__()
        paired = n_outputs is not None
        n_outputs = n_features if n_outputs is None else n_outputs
        head, tail = (n_features, n_outputs) if maps is None else (maps.n_flat, maps.n_flat)
        widths = [head, *hidden_layer_sizes, n_components]
        f32 = dict(dtype=torch.float32)  # whatever torch's default dtype is
        enc_linears = [nn.Linear(a, b, **f32) for a, b in zip(widths[:-1], widths[1:])]
        rev = [n_components, *reversed(hidden_layer_sizes), tail]
        if tied_weights:
            dec_linears = [TiedLinear(lin) for lin in reversed(enc_linears)]
        else:
            dec_linears = [nn.Linear(a * (2 if skip and j else 1), b, **f32)
                           for j, (a, b) in enumerate(zip(rev[:-1], rev[1:]))]
        if not dense:
            enc_linears, dec_linears = [], []
        convs_in, convs_out = ([], []) if maps is None else (maps.encoder, maps.decoder)
        enc_modules, dec_modules = convs_in + enc_linears, dec_linears + convs_out
        self.encoder_layers = self._dense(
            enc_modules, [activation] * (len(enc_modules) - 1) + [latent_activation])
        self.decoder_layers = self._dense(
            dec_modules, [activation] * (len(dec_modules) - 1) + [output_activation])
        self.skip = skip
        self.n_inputs = n_features if paired else None
        self._assemble(shift, scale, self.encoder_layers, targets=targets)
        self.tied_weights = tied_weights

    @staticmethod
    def _dense(linears, names):
        return tuple(Dense(lin, ACTIVATIONS[n].module(), ACTIVATIONS[n]) for lin, n in zip(linears, names))

    def stages(self):
        """Shallow autoencoders for greedy pretraining, input side first.

        Stage ``i`` pairs encoder layer ``i`` with the decoder layer that
        mirrors it, sharing their parameters.

        Returns
        -------
        stages : list of MLPStage
        """
        return [MLPStage(e, d) for e, d in zip(self.encoder_layers, self.decoder_layers[::-1])]

    def reset_parameters(self, generator):
        """Glorot-uniform weights and biases, drawn from ``generator`` only.

        The bound is ``sqrt(factor / (fan_in + fan_out))`` with the factor of
        the activation that follows (see
        :class:`~skae._nets.activations.Activation`), as scikit-learn's MLP
        does; biases use the same bound. Tied decoder layers keep their
        shared weight and zero bias.
        """
        with torch.no_grad():
            for layer in self.encoder_layers + self.decoder_layers:
                if not isinstance(layer.linear, TiedLinear):
                    glorot_uniform_(layer, generator)


def image_maps(spec):
    """The convolutional stages a Spec asks for, or None (``architecture="mlp"``)."""
    if spec.architecture != "conv":
        return None
    return ImageMaps(spec.image_shape, spec.conv_channels, spec.kernel_size,
                     spec.output_image_shape[2], skip=spec.skip_connections,
                     dense=not spec.conv_code)


def build_mlp(spec, shift=None, scale=None, generator=None, targets=None):
    """Build the (MLP or convolutional) autoencoder a :class:`~skae._params.Spec` describes.

    Parameters
    ----------
    spec : Spec
    shift, scale : torch.Tensor or None
        Standardization statistics.
    targets : tuple of torch.Tensor or None
        Standardization statistics of the outputs (paired data).
    generator : torch.Generator or None
        CPU generator for the initial weights; torch's global generator is
        left untouched either way.

    Returns
    -------
    net : MLPAutoencoder
    """
    with torch.random.fork_rng(devices=[]):  # nn.Linear's own init draws globally
        net = MLPAutoencoder(
            spec.n_features, spec.hidden_layer_sizes, spec.n_components, spec.activation,
            spec.latent_activation, spec.output_activation, shift=shift, scale=scale,
            tied_weights=spec.tied_weights, maps=image_maps(spec), n_outputs=spec.n_outputs,
            targets=targets, skip=spec.skip_connections, dense=not spec.conv_code,
        )
    if generator is not None:
        net.reset_parameters(generator)
    return net


