"""The variational autoencoder: a Gaussian encoder, an MLP decoder, a likelihood.

The encoder's hidden layers feed one linear *posterior layer* of
``2 * n_components`` outputs: the mean and, through
:func:`posterior_std`, the standard deviation of the diagonal Gaussian
posterior ``q(z | x)``. The decoder maps a code to the parameters
of ``p(x | z)``: Bernoulli probabilities (``likelihood="bernoulli"``) or the
mean of a Gaussian whose variance ``exp(log_noise_variance)`` is one learned
scalar shared by every feature (``likelihood="gaussian"``; shared, so that
a linear model is probabilistic PCA and no feature's variance can collapse
onto a constant feature). Everything is in standardized units when
standardizing; :meth:`VariationalAutoencoder.log_jacobian` converts
densities back to the input's units.
"""

import math

import torch
from torch import nn
from torch.nn import functional as F

from .activations import ACTIVATIONS
from .mlp import Dense, NetOutput, _Layered, _step_kind, glorot_uniform_, image_maps

LOG_2PI = math.log(2 * math.pi)
#: ``softplus(SOFTPLUS_ONE) = 1``: a zero pre-activation is a unit standard deviation.
SOFTPLUS_ONE = math.log(math.e - 1.0)
#: Smallest posterior standard deviation (standardized units).
MIN_STD = 1e-4


def posterior_std(h):
    """Posterior standard deviation from the posterior layer's second half: ``softplus(h + c) + 1e-4``.

    A softplus rather than ``exp(h / 2)``: the deviation grows linearly, not
    exponentially, with inputs unlike the training data (a standardized
    feature 20 deviations away from its training values), so the KL term and
    the likelihood estimate of such inputs stay of the order of their
    distance instead of overflowing.
    """
    return F.softplus(h + SOFTPLUS_ONE).add_(MIN_STD)


class HeadSlice(nn.Module):
    """Rows ``[start, stop)`` of a linear layer, as a linear layer of their own.

    The posterior layer computes mean and log-variance in one product; this
    view exposes one of them (e.g. the mean, for ``encoder``) without a
    copy of the weights.

    Parameters
    ----------
    source : torch.nn.Linear
        The posterior layer (registered by its owner, not by this view).
    start, stop : int
        Output rows of ``source`` this view computes.
    """

    def __init__(self, source, start, stop):
        super().__init__()
        object.__setattr__(self, "source", source)  # not a submodule: one owner
        self.start, self.stop = start, stop
        self.in_features, self.out_features = source.in_features, stop - start

    @property
    def weight(self):
        """``source.weight[start:stop]``."""
        return self.source.weight[self.start:self.stop]

    @property
    def bias(self):
        """``source.bias[start:stop]``."""
        return self.source.bias[self.start:self.stop]

    def forward(self, x):
        """Apply the rows of the layer."""
        return F.linear(x, self.weight, self.bias)


class VariationalAutoencoder(_Layered):
    """A Gaussian-posterior encoder and an MLP decoder with a likelihood.

    Named parts: ``standardizer``, ``hidden_layers`` (encoder hidden
    :class:`~skae._nets.mlp.Dense` layers), ``posterior`` (the linear layer
    giving mean and log-variance), ``encoder_layers`` (the hidden layers and
    the posterior mean as an identity layer: what sparsity and contractive
    terms act on, the last entry being the code), ``decoder_layers``,
    ``destandardizer``. ``encoder`` maps raw inputs to posterior means and
    ``decoder`` codes to the likelihood's mean in raw units; both are plain
    ``torch.nn.Sequential`` modules.

    Parameters
    ----------
    n_features : int
    hidden_layer_sizes : tuple of int
        Encoder hidden widths; the decoder uses them in reverse.
    n_components : int
        Dimension of the latent code.
    activation, output_activation : str
        Names from :data:`skae._nets.activations.ACTIVATIONS`.
    likelihood : {"bernoulli", "gaussian"}
    shift, scale : torch.Tensor of shape (n_features,) or None, default=None
        Standardization statistics; None for none.
    """

    def __init__(self, n_features, hidden_layer_sizes, n_components, activation,
                 output_activation, likelihood, shift=None, scale=None, *, maps=None):
        super().__init__()
        f32 = dict(dtype=torch.float32)
        n_dense = n_features if maps is None else maps.n_flat
        widths = [n_dense, *hidden_layer_sizes]
        hidden = [nn.Linear(a, b, **f32) for a, b in zip(widths[:-1], widths[1:])]
        self.posterior = nn.Linear(widths[-1], 2 * n_components, **f32)
        rev = [n_components, *reversed(hidden_layer_sizes), n_dense]
        dec = [nn.Linear(a, b, **f32) for a, b in zip(rev[:-1], rev[1:])]
        if maps is not None:  # convolutional stages at both ends (images)
            hidden, dec = maps.encoder + hidden, dec + maps.decoder
        self.linears = nn.ModuleList(hidden + dec)
        self.hidden_layers = tuple(self._layer(lin, activation) for lin in hidden)
        #: The whole posterior layer as an identity-activated layer.
        self.posterior_layer = self._layer(self.posterior, "identity")
        mean = HeadSlice(self.posterior, 0, n_components)
        self.mean_layer = self._layer(mean, "identity")
        self.encoder_layers = self.hidden_layers + (self.mean_layer,)
        names = [activation] * (len(dec) - 1) + [output_activation]
        self.decoder_layers = tuple(self._layer(lin, n) for lin, n in zip(dec, names))
        self.likelihood = likelihood
        self.n_components = n_components
        if likelihood == "gaussian":
            self.log_noise_variance = nn.Parameter(torch.zeros((), **f32))
        else:
            self.log_noise_variance = None
        self._assemble(shift, scale, self.hidden_layers, encoder_tail=(mean,))

    @staticmethod
    def _layer(linear, name):
        return Dense(linear, ACTIVATIONS[name].module(), ACTIVATIONS[name])

    # ------------------------------------------------------------ training
    def posterior_standardized(self, x, keep_activations=False):
        """Posterior mean and log-variance of standardized inputs ``x``.

        The log-variance is ``2 log posterior_std(h)`` of the posterior
        layer's second half ``h``.

        Returns
        -------
        mean, log_variance : torch.Tensor of shape (m, n_components)
        pre_activations, activations : tuple of torch.Tensor
            Per encoder layer (hidden layers, then the mean), when asked.
        """
        pres, posts = [], []
        h = x
        for layer in self.hidden_layers:
            pre, h = layer(h)
            if keep_activations:
                pres.append(pre)
                posts.append(h)
        stats = self.posterior(h)
        mean = stats[:, :self.n_components]
        log_variance = 2.0 * torch.log(posterior_std(stats[:, self.n_components:]))
        if keep_activations:
            pres.append(mean)
            posts.append(mean)
        return mean, log_variance, tuple(pres), tuple(posts)

    def decode_logits(self, z):
        """``(logits, mean)``: the last decoder layer's input to its activation, and its output."""
        for layer in self.decoder_layers:
            pre, z = layer(z)
        return pre, z

    def forward_standardized(self, x, keep_activations=False, noise=None):
        """Encode, draw a code, decode; standardized units.

        Parameters
        ----------
        x : torch.Tensor of shape (m, n_features)
        keep_activations : bool, default=False
        noise : torch.Tensor of shape (m, n_components) or None, default=None
            Standard normal draws: the code is ``mean + exp(log_variance / 2)
            * noise`` (the reparameterization). None decodes the mean.

        Returns
        -------
        output : NetOutput
            With ``mean``, ``log_variance`` and ``logits`` set.
        """
        mean, log_variance, pres, posts = self.posterior_standardized(x, keep_activations)
        code = mean if noise is None else torch.addcmul(mean, (0.5 * log_variance).exp(), noise)
        logits, reconstruction = self.decode_logits(code)
        return NetOutput(reconstruction, code, pres, posts, mean, log_variance, logits)

    def negative_log_likelihood(self, output, x):
        """``-log p(x | z)`` of every sample, in nats (standardized units).

        Parameters
        ----------
        output : NetOutput
            From :meth:`forward_standardized`.
        x : torch.Tensor of shape (m, n_features)
            Targets.

        Returns
        -------
        nll : torch.Tensor of shape (m,)
        """
        if self.likelihood == "bernoulli":
            return F.binary_cross_entropy_with_logits(output.logits, x, reduction="none").sum(1)
        s = self.log_noise_variance
        sq = (output.reconstruction - x).square().sum(1)
        return 0.5 * (sq * torch.exp(-s) + x.shape[1] * (s + LOG_2PI))

    def log_jacobian(self):
        """``-sum(log scale)``: add to a standardized log-density for the input's units."""
        if self.standardizer is None:
            return 0.0
        return -float(self.standardizer.scale.log().sum())

    # ----------------------------------------------------------- inference
    def _extra_steps(self, part):
        """Steps of the parts only variational networks have.

        ``"posterior"``: standardized inputs to the posterior layer's outputs
        (means, then the pre-activations of :func:`posterior_std`);
        ``"logits"``: codes to the last decoder layer's pre-activation
        (standardized units).
        """
        identity = ACTIVATIONS["identity"]
        if part == "posterior":
            return [(_step_kind(layer), layer)
                    for layer in self.hidden_layers + (self.posterior_layer,)]
        if part == "logits":
            *body, last = self.decoder_layers
            return [(_step_kind(layer), layer) for layer in body] + [
                (_step_kind(last), Dense(last.linear, identity.module(), identity))]
        return []

    def reset_parameters(self, generator):
        """Glorot-uniform weights and biases from ``generator`` (see the MLP's).

        The second half of the posterior layer starts at zero weight and
        bias (unit posterior deviation), the noise log-variance at 0.
        """
        with torch.no_grad():
            for layer in self.hidden_layers:  # in this order: input side first
                glorot_uniform_(layer, generator)
            glorot_uniform_(self.posterior_layer, generator, fan_out=self.n_components)
            for layer in self.decoder_layers:
                glorot_uniform_(layer, generator)
            self.posterior.weight[self.n_components:].zero_()
            self.posterior.bias[self.n_components:].zero_()
            if self.log_noise_variance is not None:
                self.log_noise_variance.zero_()


def build_variational(spec, shift=None, scale=None, generator=None, targets=None):
    """Build the variational autoencoder a :class:`~skae._params.Spec` describes.

    The likelihood follows ``spec.loss``: Bernoulli for ``"bce"``, Gaussian
    for ``"mse"``.
    """
    with torch.random.fork_rng(devices=[]):
        net = VariationalAutoencoder(
            spec.n_features, spec.hidden_layer_sizes, spec.n_components, spec.activation,
            spec.output_activation, "bernoulli" if spec.loss == "bce" else "gaussian",
            shift=shift, scale=scale, maps=image_maps(spec),
        )
    if generator is not None:
        net.reset_parameters(generator)
    return net
