"""What training minimizes: reconstruction + a list of named terms.

An :class:`Objective` is built once per fit from the Spec. Corruption
(denoising) and trimming are parts of it. Every regularizer is one small
class with a ``name`` (the key it is recorded under in ``loss_terms_``) and
``__call__(output, x, net) -> tensor``, built from the Spec by a function
registered in :data:`TERMS`. Adding one: write the class, register its
builder, add its parameter.
"""

import math

import torch
from torch.nn import functional as F

from ._data import column_range, without_weights
from ._nets.activations import derivative

_BCE_EPS = 1e-7


# ------------------------------------------------------------- reconstruction
def elementwise_error(x_hat, x, loss):
    """Reconstruction error of every element.

    Parameters
    ----------
    x_hat, x : torch.Tensor of shape (n_samples, n_features)
        Reconstruction and target (standardized units when standardizing).
    loss : {"mse", "bce"}
        ``"mse"``: ``(x_hat - x) ** 2``. ``"bce"``: binary cross-entropy
        ``-(x log x_hat + (1 - x) log(1 - x_hat))``, ``x_hat`` clipped to
        ``[1e-7, 1 - 1e-7]``.

    Returns
    -------
    error : torch.Tensor of shape (n_samples, n_features)
    """
    if loss == "mse":
        return (x_hat - x).square()
    return F.binary_cross_entropy(x_hat.clamp(_BCE_EPS, 1 - _BCE_EPS), x, reduction="none")


def check_bce_range(low, high, hint, name="X"):
    """Raise ValueError unless ``[low, high]`` lies in [0, 1], as ``loss="bce"`` needs.

    Parameters
    ----------
    low, high : float
        Smallest and largest value of the data.
    hint : str
        What to do about it, appended to the message.
    name : str, default="X"
        The data's name in the message.
    """
    if low < 0 or high > 1:
        raise ValueError(
            f"loss='bce' needs {name} in [0, 1]; got values in [{low:.4g}, {high:.4g}]. {hint}"
        )


def batch_mean(values, weights=None):
    """Mean over the batch (the first axis) of ``values``, weighted by ``weights`` when given.

    Per-sample values of shape (m,) give a scalar; (m, k) give k means.
    """
    if weights is None:
        return values.mean(0)
    weights = weights.reshape(-1, *([1] * (values.dim() - 1)))
    return (values * weights).sum(0) / weights.sum()


def trimmed_weights(values, trim, weights):
    """``weights`` with those of the largest ``values`` set to 0, up to ``trim`` of their total.

    A sample of weight ``k`` counts as ``k`` samples would; the sample with
    the smallest value is always kept.
    """
    order = values.detach().argsort()
    w = weights[order]
    kept = w.cumsum(0) <= w.sum() * (1.0 - trim) * (1.0 + 1e-6)
    kept[0] = True
    return torch.zeros_like(weights).index_copy(0, order, w * kept)


def trimmed_mean(values, trim, weights=None):
    """Mean of the smallest per-sample ``values``, leaving out a fraction ``trim``.

    Without weights the ``ceil(trim * m)`` largest of ``m`` values are left
    out; with weights (frequencies), see :func:`trimmed_weights`.
    """
    if weights is None:
        return values.topk(n_kept(values.shape[0], trim), largest=False, sorted=False).values.mean()
    return batch_mean(values, trimmed_weights(values, trim, weights))


def n_kept(m, trim):
    """Samples of a batch of ``m`` that a trimmed loss keeps: ``m - ceil(trim m)``, at least 1."""
    return max(1, m - math.ceil(trim * m))


def reconstruction_loss(x_hat, x, loss, trim=0.0, weights=None):
    """Mean reconstruction error, over the best-reconstructed samples when trimming.

    With ``trim > 0`` the ``ceil(trim * m)`` samples of the batch with the
    largest error are left out (a trimmed mean), so that rare anomalies in
    the training data do not pull the model towards reconstructing them.

    Parameters
    ----------
    x_hat, x : torch.Tensor of shape (m, n_features)
    loss : {"mse", "bce"}
    trim : float, default=0.0
        Fraction of samples left out, in [0, 1).
    weights : torch.Tensor of shape (m,) or None, default=None
        Sample weights: a weighted mean (see :func:`trimmed_mean`).

    Returns
    -------
    loss : torch.Tensor
        A scalar.
    """
    if trim == 0 and weights is None:
        return F.mse_loss(x_hat, x) if loss == "mse" else elementwise_error(x_hat, x, loss).mean()
    errors = elementwise_error(x_hat, x, loss).mean(1)
    if trim == 0:
        return batch_mean(errors, weights)
    return trimmed_mean(errors, trim, weights)


# ----------------------------------------------------------------- corruption
class GaussianNoise:
    """Add ``level * N(0, 1)`` noise (in standardized units when standardizing)."""

    def __init__(self, level, generator):
        self.level, self.generator = level, generator

    def __call__(self, x):
        """Corrupted copy of ``x``."""
        noise = torch.randn(x.shape, generator=self.generator, device=x.device, dtype=x.dtype)
        return x + self.level * noise


class Masking:
    """Set a random fraction ``level`` of the entries to 0 (the mean when standardizing)."""

    def __init__(self, level, generator):
        self.level, self.generator = level, generator

    def __call__(self, x):
        """Corrupted copy of ``x``."""
        hit = torch.rand(x.shape, generator=self.generator, device=x.device, dtype=x.dtype)
        return x.masked_fill(hit < self.level, 0.0)


class SaltAndPepper:
    """Set a fraction ``level`` of the entries to their feature's minimum or maximum.

    Parameters
    ----------
    level : float
    low, high : torch.Tensor of shape (n_features,)
        Each feature's training minimum (pepper) and maximum (salt).
    generator : torch.Generator
    """

    def __init__(self, level, low, high, generator):
        self.level, self.low, self.high, self.generator = level, low, high, generator

    def __call__(self, x):
        """Corrupted copy of ``x``: each hit entry is salt or pepper with equal odds."""
        opts = dict(generator=self.generator, device=x.device, dtype=x.dtype)
        hit = torch.rand(x.shape, **opts) < self.level
        salt = torch.rand(x.shape, **opts) < 0.5
        return torch.where(hit, torch.where(salt, self.high, self.low), x)


# ---------------------------------------------------------------------- terms
class L1Activity:
    """L1 sparsity: ``weight * sum_l (1/m) sum_i sum_j |a_lij|`` over chosen layers."""

    name = "sparsity"
    needs_activations = True

    def __init__(self, weight, layers):
        self.weight, self.layers = weight, layers

    def __call__(self, output, x, net, weights=None):
        """The weighted penalty on a batch (``weights``: sample weights or None)."""
        return self.weight * sum(batch_mean(output.activations[i].abs().sum(1), weights)
                                 for i in self.layers)


def kl_divergence_sparsity(activations, target, eps=1e-7, weights=None):
    """``sum_j KL(rho || rho_hat_j)`` between Bernoulli means.

    ``rho_hat_j`` is unit ``j``'s mean activation over the batch (weighted
    by the sample ``weights`` when given; clipped to ``[eps, 1 - eps]``);
    zero exactly when every mean equals ``rho``.
    """
    rho_hat = batch_mean(activations, weights).clamp(eps, 1 - eps)
    rho = target
    return (rho * torch.log(rho / rho_hat) + (1 - rho) * torch.log((1 - rho) / (1 - rho_hat))).sum()


class KLSparsity:
    """KL sparsity: ``weight * sum_l sum_j KL(target || mean_i a_lij)``."""

    name = "sparsity"
    needs_activations = True

    def __init__(self, weight, target, layers):
        self.weight, self.target, self.layers = weight, target, layers

    def __call__(self, output, x, net, weights=None):
        """The weighted penalty on a batch (``weights``: sample weights or None)."""
        return self.weight * sum(
            kl_divergence_sparsity(output.activations[i], self.target, weights=weights)
            for i in self.layers
        )


def contractive_penalty(weights, derivatives, sample_weight=None):
    """Mean squared Frobenius norm of the encoder's Jacobian, exact.

    For ``h = g_L(W_L ... g_1(W_1 x + b_1) ...)``, ``J = D_L W_L ... D_1 W_1``
    with ``D_l = diag(g_l')``. Formed from the code side as batched matrix
    products; the last factor uses ``||A W_1||_F^2 = sum((A (W_1 W_1^T)) * A)``
    when the input is wider than the first layer. One layer reduces to
    ``sum_j g'_j^2 ||W_1[j]||^2``; one hidden layer under a linear code to
    ``d^T ((W_2^T W_2) * (W_1 W_1^T)) d`` with ``d = g_1'``.

    Parameters
    ----------
    weights : list of torch.Tensor
        ``W_1 ... W_L``, ``W_l`` of shape ``(h_l, h_{l-1})``.
    derivatives : list of torch.Tensor or None
        ``g_l'`` at each pre-activation, shape ``(m, h_l)``; None for identity.
    sample_weight : torch.Tensor of shape (m,) or None, default=None
        Weights of the batch's samples in the mean.

    Returns
    -------
    penalty : torch.Tensor
        ``(1 / m) sum_i ||J(x_i)||_F^2``.
    """
    W1, dL = weights[0], derivatives[-1]
    if len(weights) == 1:
        row_norms = W1.square().sum(1)
        return row_norms.sum() if dL is None else batch_mean((dL.square() * row_norms).sum(1),
                                                             sample_weight)
    WL = weights[-1]
    if len(weights) == 2 and dL is None:
        K = (WL.t() @ WL) * (W1 @ W1.t())
        d1 = derivatives[0]
        return K.sum() if d1 is None else batch_mean(((d1 @ K) * d1).sum(1), sample_weight)
    A = WL.unsqueeze(0) if dL is None else dL.unsqueeze(2) * WL
    for W, d in zip(weights[-2:0:-1], derivatives[-2:0:-1]):
        if d is not None:
            A = A * d.unsqueeze(1)
        A = A @ W
    if derivatives[0] is not None:
        A = A * derivatives[0].unsqueeze(1)
    if W1.shape[1] <= W1.shape[0]:
        return batch_mean((A @ W1).square().sum((1, 2)), sample_weight)
    return batch_mean(((A @ (W1 @ W1.t())) * A).sum((1, 2)), sample_weight)


class Contractive:
    """Contractive penalty: ``weight * (1/m) sum_i ||d code / d x (x_i)||_F^2``."""

    name = "contractive"
    needs_activations = True

    def __init__(self, weight):
        self.weight = weight

    def __call__(self, output, x, net, weights=None):
        """The weighted penalty on a batch (Jacobian w.r.t. the standardized input)."""
        layers = net.encoder_layers
        derivatives = [
            derivative(layer.activation, pre, post)
            for layer, pre, post in zip(layers, output.pre_activations, output.activations)
        ]
        return self.weight * contractive_penalty([layer.linear.weight for layer in layers],
                                                 derivatives, weights)


def gaussian_kl(mean, log_variance):
    """``KL(N(mean, diag(exp(log_variance))) || N(0, I))`` of every sample, in nats.

    Closed form: ``0.5 * sum_k (mean_k^2 + exp(lv_k) - 1 - lv_k)``.

    Returns
    -------
    kl : torch.Tensor of shape (m,)
    """
    return 0.5 * (mean.square() + log_variance.exp() - 1.0 - log_variance).sum(1)


class GaussianKL:
    """The variational KL term: ``beta_t * KL(q(z | x) || N(0, I))`` per sample.

    ``beta_t = weight * min(1, t / warmup)`` in the model's epoch ``t``
    (counted from 1 over all its training, warm starts and partial fits
    included), ``weight`` once ``warmup`` is 0. :meth:`start_epoch` sets it.
    """

    name = "kl"
    needs_activations = False
    per_sample = True

    def __init__(self, weight, warmup):
        self.weight, self.warmup = weight, warmup
        self.current = weight

    def start_epoch(self, epoch):
        """Set the weight of epoch ``epoch`` (from 1)."""
        ramp = 1.0 if self.warmup == 0 else min(1.0, epoch / self.warmup)
        self.current = self.weight * ramp

    def __call__(self, output, x, net, weights=None):
        """The weighted KL of every sample, shape (m,) (sample weights apply later)."""
        return self.current * gaussian_kl(output.mean, output.log_variance)


# ------------------------------------------------------------------- registry
class BlockMasking:
    """Set one random rectangle of each image to 0 (the mean when standardizing), all channels.

    Parameters
    ----------
    level : float
        Fraction of the image's area the rectangle covers (its sides are
        ``sqrt(level)`` of the image's, at least one pixel).
    image_shape : tuple of int
        ``(H, W, C)``; rows are laid out channels last.
    generator : torch.Generator
    """

    def __init__(self, level, image_shape, generator):
        self.level, self.image_shape, self.generator = level, image_shape, generator
        h, w, _ = image_shape
        self.size = (max(1, round(math.sqrt(level) * h)), max(1, round(math.sqrt(level) * w)))

    def mask(self, m, device):
        """Boolean ``(m, H * W * C)``: the hidden pixels of ``m`` images."""
        h, w, c = self.image_shape
        (bh, bw), g = self.size, self.generator
        top = torch.randint(0, h - bh + 1, (m, 1), generator=g, device=device)
        left = torch.randint(0, w - bw + 1, (m, 1), generator=g, device=device)
        rows = torch.arange(h, device=device) - top
        cols = torch.arange(w, device=device) - left
        inside = ((rows >= 0) & (rows < bh)).unsqueeze(2) & ((cols >= 0) & (cols < bw)).unsqueeze(1)
        return inside.unsqueeze(3).expand(m, h, w, c).reshape(m, -1)

    def __call__(self, x):
        """Corrupted copy of ``x``."""
        return x.masked_fill(self.mask(x.shape[0], x.device), 0.0)


#: A 5-pixel-high bitmap font for the watermark text (1 = ink).
_GLYPHS = {
    "A": ("010", "101", "111", "101", "101"),
    "E": ("111", "100", "110", "100", "111"),
    "C": ("011", "100", "100", "100", "011"),
    "O": ("010", "101", "101", "101", "010"),
    "P": ("110", "101", "110", "100", "100"),
    "Y": ("101", "101", "010", "010", "010"),
    " ": ("0", "0", "0", "0", "0"),
}


def watermark_pattern(text, width):
    """``text`` in the bitmap font, scaled (nearest neighbour) to about half of ``width``.

    Returns
    -------
    pattern : torch.Tensor of shape (ph, pw), float32, 1 on the strokes, 0 elsewhere
    """
    columns = []
    for i, ch in enumerate(text):
        if i:
            columns.append("0" * 5)
        glyph = _GLYPHS[ch]
        columns += ["".join(row[j] for row in glyph) for j in range(len(glyph[0]))]
    bitmap = torch.tensor([[float(c) for c in col] for col in columns]).t()
    scale = max(1, round(width / (2 * bitmap.shape[1])))
    return bitmap.repeat_interleave(scale, 0).repeat_interleave(scale, 1)


class Watermark:
    """Blend a semi-transparent text overlay into each image at a random position.

    ``x + level * stroke * (value - x)``: a stroke pixel moves the fraction
    ``level`` (the opacity) of the way to ``value``, the brightest value of
    the training data (white), in all channels. The text is placed at a
    uniformly random position per image (clipped at the borders when it is
    wider than the image).

    Parameters
    ----------
    level : float
        Opacity in [0, 1].
    image_shape : tuple of int
        ``(H, W, C)``.
    value : torch.Tensor of shape (H * W * C,)
        The overlay's colour per feature, in training units.
    generator : torch.Generator
    text : str, default="COPY"
    """

    def __init__(self, level, image_shape, value, generator, text="COPY"):
        self.level, self.image_shape, self.value, self.generator = level, image_shape, value, generator
        self.pattern = watermark_pattern(text, image_shape[1]).to(value.device)

    def strokes(self, m, device, dtype):
        """``(m, H * W * C)``: where the overlay's strokes fall (1) in ``m`` images."""
        h, w, c = self.image_shape
        pattern = self.pattern.to(device=device, dtype=dtype)  # already there: no copy
        ph, pw = pattern.shape
        g = self.generator
        top = torch.randint(0, max(1, h - ph + 1), (m, 1), generator=g, device=device)
        left = torch.randint(0, max(1, w - pw + 1), (m, 1), generator=g, device=device)
        rows = torch.arange(h, device=device) - top
        cols = torch.arange(w, device=device) - left
        ok_r, ok_c = (rows >= 0) & (rows < ph), (cols >= 0) & (cols < pw)
        ink = pattern[rows.clamp(0, ph - 1).unsqueeze(2), cols.clamp(0, pw - 1).unsqueeze(1)]
        ink = ink * (ok_r.unsqueeze(2) & ok_c.unsqueeze(1))
        return ink.unsqueeze(3).expand(m, h, w, c).reshape(m, -1)

    def __call__(self, x):
        """Corrupted copy of ``x``."""
        alpha = self.level * self.strokes(x.shape[0], x.device, x.dtype)
        return x + alpha * (self.value - x)


def _sparsity_term(spec):
    if spec.sparsity is None or spec.sparsity_weight == 0:
        return None
    if spec.sparsity == "l1":
        return L1Activity(spec.sparsity_weight, spec.sparsity_layers)
    return KLSparsity(spec.sparsity_weight, spec.sparsity_target, spec.sparsity_layers)


def _contractive_term(spec):
    return Contractive(spec.contractive_weight) if spec.contractive_weight > 0 else None


def _kl_term(spec):
    return GaussianKL(spec.kl_weight, spec.kl_warmup) if spec.variational else None


#: Builders ``build(spec) -> term or None``, in the order terms are added.
TERMS = [_kl_term, _sparsity_term, _contractive_term]


class Objective:
    """Reconstruction loss + regularizer terms, with corruption and trimming.

    Parameters
    ----------
    loss : {"mse", "bce"}
        Reconstruction error.
    terms : tuple
        Regularizer terms (see :data:`TERMS`).
    corruption : callable or None
        ``corruption(x)`` for denoising: the corrupted batch is encoded, the
        clean one is the target.
    trim : float
        Trimmed-loss fraction (0 for none).
    n_inputs : int or None, default=None
        Paired data: each training row holds ``n_inputs`` input columns
        followed by the target's; the network maps the (corrupted) input to
        the target. None: the target is the row itself (an autoencoder).
    weighted : bool, default=False
        Each training row ends with its sample weight (a column the
        network never sees): every mean over the batch is weighted by it.
    """

    def __init__(self, loss, terms=(), corruption=None, trim=0.0, n_inputs=None, weighted=False):
        self.loss, self.terms, self.corruption, self.trim = loss, tuple(terms), corruption, trim
        self.n_inputs, self.weighted = n_inputs, weighted
        self._activations = any(t.needs_activations for t in self.terms)

    def __call__(self, net, xb):
        """``(loss, parts)`` on a batch ``xb`` of training rows.

        ``parts`` maps ``"reconstruction"`` and each term's name to its value.
        """
        xb, weights = split_weights(xb, self.weighted)
        xb, target = split_rows(xb, self.n_inputs)
        x_in = xb if self.corruption is None else self.corruption(xb)
        output = net.forward_standardized(x_in, keep_activations=self._activations)
        rec = reconstruction_loss(output.reconstruction, target, self.loss, self.trim, weights)
        parts, total = {"reconstruction": rec}, rec
        for term in self.terms:
            value = term(output, x_in, net, weights=weights)
            parts[term.name] = value
            total = total + value
        return total, parts


class VariationalObjective(Objective):
    """Negative ELBO: ``-log p(x | z) + beta KL(q(z | x) || p(z))``, per sample.

    The code is drawn with the reparameterization ``z = mean + exp(lv / 2) *
    eps`` (one draw ``eps ~ N(0, I)`` per sample from ``generator``), so the
    loss is an unbiased estimate of the negative ELBO (when ``beta`` is 1),
    in nats per sample. Per-sample terms (the KL) join the reconstruction
    before trimming: a trimmed loss leaves out the samples of largest
    negative ELBO. ``parts["reconstruction"]`` is the mean negative
    log-likelihood ``-log p(x | z)``.

    Parameters
    ----------
    terms : tuple
        The :class:`GaussianKL` term first, then any regularizer.
    corruption : callable or None
    trim : float
    generator : torch.Generator
        Draws the codes' noise, on the training device.
    """

    def __init__(self, terms, corruption=None, trim=0.0, generator=None, weighted=False):
        super().__init__("likelihood", terms, corruption, trim, weighted=weighted)
        self.generator = generator

    def __call__(self, net, xb):
        """``(loss, parts)`` on a batch ``xb`` of training rows."""
        xb, weights = split_weights(xb, self.weighted)
        x_in = xb if self.corruption is None else self.corruption(xb)
        noise = torch.randn((xb.shape[0], net.n_components), generator=self.generator,
                            device=xb.device, dtype=xb.dtype)
        output = net.forward_standardized(x_in, keep_activations=self._activations, noise=noise)
        values = {"reconstruction": net.negative_log_likelihood(output, xb)}
        for term in self.terms:
            if getattr(term, "per_sample", False):
                values[term.name] = term(output, x_in, net, weights=weights)
        if self.trim > 0 and weights is None:
            total = sum(values.values())
            kept = total.topk(n_kept(total.shape[0], self.trim), largest=False, sorted=False).indices
            values = {k: v.index_select(0, kept) for k, v in values.items()}
        elif self.trim > 0:  # weights of the left-out samples set to 0
            weights = trimmed_weights(sum(values.values()), self.trim, weights)
        parts = {k: batch_mean(v, weights) for k, v in values.items()}
        total = sum(parts.values())
        for term in self.terms:
            if not getattr(term, "per_sample", False):
                parts[term.name] = value = term(output, x_in, net, weights=weights)
                total = total + value
        return total, parts


def split_weights(rows, weighted):
    """``(rows, weights)``: the weight column taken off weighted rows, else ``(rows, None)``."""
    if not weighted:
        return rows, None
    rows, column = without_weights(rows)
    return rows, column.squeeze(1)


def split_rows(rows, n_inputs):
    """``(inputs, targets)`` of training rows: the row twice, or its two parts (paired data)."""
    if n_inputs is None:
        return rows, rows
    return rows[:, :n_inputs], rows[:, n_inputs:]


def make_corruption(noise, level, rows, generator, image_shape=None, statistics=None,
                    reduce=None):
    """The corruption ``noise=`` names, for rows like ``rows`` (None when ``level`` is 0).

    Parameters
    ----------
    noise : str or None
        One of :data:`NOISES`.
    level : float
    rows : torch.Tensor of shape (n_samples, n_features) or skae._data.SparseRows
        Training rows (inputs only), in training units: salt-and-pepper's
        per-feature extremes and the watermark's colour come from them.
    generator : torch.Generator
        On the rows' device.
    image_shape : tuple of int or None
    statistics : tuple of numpy.ndarray or None
        ``(shift, scale)`` of the standardization, so that the watermark is
        the brightest raw value whatever each feature's scale.
    reduce : callable or None, default=None
        ``reduce(values, op)`` over the ranks of a distributed fit: the
        per-feature extremes are then those of every rank's rows.

    Returns
    -------
    corruption : callable or None
    """
    if noise is None or level == 0:
        return None
    if noise == "gaussian":
        return GaussianNoise(level, generator)
    if noise == "masking":
        return Masking(level, generator)
    if noise == "block":
        return BlockMasking(level, image_shape, generator)
    device = generator.device  # where the corruption runs: its tensors live there
    low, high = column_range(rows)
    if reduce is not None:
        extremes = reduce(torch.stack([-low, high]).cpu(), "max")
        low, high = -extremes[0], extremes[1]
    low, high = low.to(device), high.to(device)
    if noise == "salt_and_pepper":
        return SaltAndPepper(level, low, high, generator)
    # watermark: the brightest raw value, in each feature's training units
    shift, scale = (0.0, 1.0) if statistics is None or statistics[0] is None else (
        torch.as_tensor(statistics[0], device=device), torch.as_tensor(statistics[1], device=device))
    brightest = (high.to(torch.float64) * scale + shift).max()
    return Watermark(level, image_shape, ((brightest - shift) / scale).to(rows.dtype), generator)


#: The corruptions ``noise=`` accepts; the last two need ``image_shape``.
NOISES = ("gaussian", "masking", "salt_and_pepper", "block", "watermark")
IMAGE_NOISES = ("block", "watermark")


def build_objective(spec, rows, generator, statistics=None, weighted=False, reduce=None):
    """Build the :class:`Objective` a Spec describes.

    Parameters
    ----------
    spec : skae._params.Spec
    rows : torch.Tensor of shape (n_samples, n_features) or skae._data.SparseRows
        The training rows (for salt-and-pepper's per-feature extremes and
        the watermark's colour), on the training device's side.
    generator : torch.Generator
        Corruption randomness, on the training device.
    statistics : tuple of numpy.ndarray or None, default=None
        ``(shift, scale)`` of the training rows' standardization (inputs
        and, for paired data, targets).
    weighted : bool, default=False
        The batches' rows end with a sample-weight column (not in ``rows``).
    reduce : callable or None, default=None
        In a distributed fit, ``reduce(values, op)`` with ``op`` "max" over
        the ranks: the corruption's extremes are then those of all ranks'
        rows.

    Returns
    -------
    objective : Objective
    """
    n_inputs = spec.n_features if spec.n_outputs is not None else None
    if n_inputs is not None and statistics is not None and statistics[0] is not None:
        statistics = tuple(a[:n_inputs] for a in statistics)  # the inputs' part of a row
    inputs = (rows.inputs(n_inputs) if hasattr(rows, "inputs")
              else split_rows(rows, n_inputs)[0])
    corruption = make_corruption(spec.noise, spec.noise_level, inputs,
                                 generator, spec.image_shape, statistics, reduce)
    terms = [t for t in (build(spec) for build in TERMS) if t is not None]
    if spec.variational:
        return VariationalObjective(terms, corruption, spec.trim_fraction, generator, weighted)
    return Objective(spec.loss, terms, corruption, spec.trim_fraction, n_inputs, weighted)
