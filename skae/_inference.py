"""Chunked inference: numpy in, numpy out, in the input's dtype.

A sparse X (CSR) is densified one chunk of rows at a time. Float64 input is
computed in float64 (weights cast once per call; the
module is only copied for networks with skip connections), float32 input in float32; standardization is
always computed in float64. Buffers are reused from chunk to chunk and, on
the CPU, results are written straight into the output array. Finiteness is
checked chunk by chunk while the chunk is in cache.
"""

import copy
import math

import numpy as np
import scipy.linalg
import scipy.linalg.blas
import scipy.linalg.lapack
import torch

from ._data import dense_rows, iter_chunks
from ._device import as_tensor, device_of
from ._nets.variational import LOG_2PI, posterior_std
from ._objective import check_bce_range, elementwise_error


def _finite(x):
    """Whether every element of ``x`` is finite: one fast reduction when they are."""
    return bool(torch.isfinite(x.sum())) or bool(torch.isfinite(x).all())


def _check_finite_input(x):
    """Raise scikit-learn's errors when ``x`` holds NaN or infinity."""
    if _finite(x):
        return
    if torch.isnan(x).any():
        raise ValueError("Input X contains NaN.")
    raise ValueError(
        f"Input X contains infinity or a value too large for dtype('{str(x.dtype)[6:]}')."
    )


def _check_input(x, bce):
    """Check a chunk of input: finite, and in [0, 1] when the loss is cross-entropy."""
    _check_finite_input(x)
    if bce and x.numel():
        low, high = torch.aminmax(x)
        check_bce_range(float(low), float(high), "Scale X as for fit.")


class Forward:
    """An inference pass through a network's steps, in one dtype.

    Parameters
    ----------
    steps : list of tuple
        As returned by the network's ``inference_steps``.
    dtype : torch.dtype
        Arithmetic of the dense layers.
    """

    def __init__(self, steps, dtype):
        self.steps = []
        for kind, part in steps:
            if kind in ("dense", "map"):
                w = part.linear.weight.detach().to(dtype)
                b = part.linear.bias.detach().to(dtype)
                self.steps.append((kind, part, w, b))
            elif kind == "module":  # a whole sub-network: a copy in this dtype if need be
                params = list(part.net.parameters())
                if params and params[0].dtype != dtype:
                    part = type(part)(copy.deepcopy(part.net).to(dtype))
                self.steps.append((kind, part, None, None))
            else:
                self.steps.append((kind, part, None, None))
        self._buffers = {}

    def _buffer(self, i, rows, width, like):
        buf = self._buffers.get(i)
        if buf is None or buf.shape[0] < rows:
            buf = torch.empty(rows, width, dtype=like.dtype, device=like.device)
            self._buffers[i] = buf
        return buf[:rows]

    def __call__(self, x, out=None):
        """Apply the steps to ``x``; write the result into ``out`` when given."""
        m, last, h = x.shape[0], len(self.steps) - 1, x
        for i, (kind, part, w, b) in enumerate(self.steps):
            if kind == "module":  # a sub-network: its own buffers
                h = part(h)
                if i == last and out is not None:
                    h = out.copy_(h)
                continue
            width = (w.shape[0] if kind == "dense" else part.linear.out_features if kind == "map"
                     else h.shape[1])
            target = out if i == last and out is not None else self._buffer(i, m, width, x)
            if kind == "standardize":  # float64 arithmetic, written in x's dtype
                h = torch.sub(h, part.shift, out=target).div_(part.scale)
            elif kind == "destandardize":
                h = torch.addcmul(part.shift, h, part.scale, out=target)
            elif kind == "map":
                h = target.copy_(part.module(part.linear.apply_to(h, w, b)))
            elif part.activation.apply_ is not None:
                h = torch.addmm(b, h, w.t(), out=target)
                part.activation.apply_(h)
            else:
                h = target.copy_(part.module(torch.addmm(b, h, w.t())))
        if out is not None and not self.steps:
            out.copy_(h)
        return h


def _dtype(X):
    return torch.float64 if X.dtype == np.float64 else torch.float32


def transform(net, X, parts, n_out, width, owner):
    """Run the network's ``parts`` over ``X`` in chunks.

    Parameters
    ----------
    net : torch.nn.Module
    X : ndarray of shape (n_samples, n_in)
        Validated input (finiteness is checked here).
    parts : tuple of str
        See the network's ``inference_steps``.
    n_out : int
        Output width.
    width : int
        Widest layer, to size the chunks.
    owner : str
        Estimator name for error messages.

    Returns
    -------
    out : ndarray of shape (n_samples, n_out), in X's dtype

    Raises
    ------
    ValueError
        When the input is not finite, or a result overflows X's dtype.
    """
    device, dtype = device_of(net), _dtype(X)
    forward = Forward(net.inference_steps(parts), dtype)
    out = np.empty((X.shape[0], n_out), dtype=X.dtype)
    in_place = device.type == "cpu"
    with torch.inference_mode():
        for a, b in iter_chunks(X.shape[0], width):
            xb = as_tensor(dense_rows(X, a, b), device, dtype)
            _check_finite_input(xb)
            if in_place:
                y = forward(xb, out=torch.from_numpy(out[a:b]))
            else:
                y = forward(xb)
            if not _finite(y):
                raise ValueError(
                    f"{owner}: the result for some of the samples {a}..{b - 1} overflows "
                    f"{X.dtype}: their values are too large for the network in this dtype. "
                    "Pass float64 input, or rescale X."
                )
            if not in_place:
                out[a:b] = y.cpu().numpy()
    return out


def reconstruction_errors(net, X, loss, width, per_feature, scale=None, codes=None,
                          residual=None, residuals=None):
    """Reconstruction error of every sample (or element) of ``X``, in chunks.

    Errors are measured in the units the network trains in (standard
    deviations when standardizing), in X's dtype. An error that
    overflows (or is NaN because an intermediate overflowed) is +inf: such a
    sample is the most anomalous there is; no NaN is returned.

    Parameters
    ----------
    net : torch.nn.Module
    X : ndarray of shape (n_samples, n_features)
        Validated input (finiteness is checked here).
    loss : {"mse", "bce"}
    width : int
        Widest layer, to size the chunks.
    per_feature : bool
        Return elementwise errors instead of their mean over features.
    scale : ndarray of shape (n_features,) or None, default=None
        Divide each feature's errors by its entry (relative errors), before
        the mean over features.
    codes : ndarray of shape (n_samples, n_components) or None, default=None
        When given, also receives the code of every sample, from the same
        pass (a code that overflows is written as it is).
    residual : tuple of ndarray or None, default=None
        ``(mean, whitening)``: return instead, in float64, every sample's
        squared Mahalanobis distance ``||(r - mean) @ whitening||^2`` of its
        residual ``r`` (reconstruction minus standardized input; squared
        error loss only). An overflow is +inf.
    residuals : ndarray of shape (n_samples, n_features) or None, default=None
        When given (float64), also receives every sample's residual, from
        the same pass (squared error loss only).

    Returns
    -------
    errors : ndarray of shape (n_samples,) or (n_samples, n_features), in X's dtype
        (float64 with ``residual``)
    """
    device, dtype = device_of(net), _dtype(X)
    standardize = Forward(net.inference_steps(("standardize",)), dtype)
    if codes is None:
        core = Forward(net.inference_steps(("core",)), dtype)
    else:  # the core in two halves, keeping the code in between
        encode = Forward(net.inference_steps(("code",)), dtype)
        expand = Forward(net.inference_steps(("expand",)), dtype)
    shape = X.shape if per_feature else X.shape[:1]
    out = np.empty(shape, dtype=X.dtype if residual is None else np.float64)
    if scale is not None:  # its reciprocal in X's dtype (inf where the division overflows)
        with np.errstate(over="ignore"):
            inverse = torch.from_numpy((1.0 / np.asarray(scale, np.float64)).astype(X.dtype))
        inverse = inverse.to(device)
    with torch.inference_mode():
        for a, b in iter_chunks(X.shape[0], width):
            xb = as_tensor(dense_rows(X, a, b), device, dtype)
            _check_input(xb, bce=loss == "bce")
            xs = standardize(xb)
            if codes is None:
                reconstruction = core(xs)
            else:
                z = encode(xs)
                codes[a:b] = z.cpu().numpy()
                reconstruction = expand(z)
            if residuals is not None or residual is not None:
                rows = _residual_rows(reconstruction, xs)
                if residuals is not None:
                    residuals[a:b] = rows
                if residual is not None:
                    out[a:b] = residual_distances(rows, *residual)
                    continue
            # in X's dtype: an error beyond it is inf, which the rule below keeps
            errors = elementwise_error(reconstruction, xs, loss)
            if scale is not None:
                errors = errors * inverse
            if not per_feature:
                errors = errors.mean(1)
            errors = errors.nan_to_num(nan=torch.inf, posinf=torch.inf).to(dtype)
            out[a:b] = errors.cpu().numpy()
    return out


def _residual_rows(reconstruction, xs):
    """Reconstruction minus standardized input, in float64 on the host."""
    return (reconstruction - xs).cpu().numpy().astype(np.float64, copy=False)


def whitened_residuals(rows, mean, whitening):
    """``(rows - mean) @ whitening`` (``whitening`` upper triangular), in float64."""
    with np.errstate(over="ignore", invalid="ignore"):
        centered = np.asfortranarray(rows - mean)
        # BLAS's triangular product: half the work of a dense one
        return scipy.linalg.blas.dtrmm(1.0, whitening, centered, side=1, lower=0,
                                       overwrite_b=True)


def residual_distances(rows, mean, whitening):
    """``||(rows - mean) @ whitening||^2`` per row (``whitening`` upper triangular).

    The squared Mahalanobis distances of residuals (see ``residual_gaussian``),
    in float64; an overflow (or NaN) is +inf.
    """
    white = whitened_residuals(rows, mean, whitening)
    with np.errstate(over="ignore", invalid="ignore"):
        distances = np.square(white).sum(1)
    return np.nan_to_num(distances, nan=np.inf, posinf=np.inf)


def residual_moments(net, X, width, weights, residuals=None):
    """Weighted moments of the residuals that fit their Gaussian (see ``residual_gaussian``).

    In float64, in chunks. The residual of a sample is its reconstruction
    minus its standardized input (squared error loss). Rows of weight 0 do
    not count (and are not computed).

    Parameters
    ----------
    net : torch.nn.Module
    X : ndarray of shape (n_samples, n_features)
        Validated input.
    width : int
        Widest layer, to size the chunks.
    weights : ndarray of shape (n_samples,)
        Sample weights, 0 for the samples left out.
    residuals : ndarray of shape (n_samples, n_features) or None, default=None
        X's residuals when at hand: the network is not run again (the sums
        are the same, chunk by chunk).

    Returns
    -------
    sums : ndarray of shape (3 + 2 * n_features + n_features ** 2,), float64
        ``[sum w, sum w |r|^2, sum w |r|^4, sum w r, sum w |r|^2 r, sum w r r^T]``,
        flattened, so that ranks can add them in one reduction.
    """
    d = X.shape[1]
    if residuals is None:
        device, dtype = device_of(net), _dtype(X)
        standardize = Forward(net.inference_steps(("standardize",)), dtype)
        core = Forward(net.inference_steps(("core",)), dtype)
    scalars, first = np.zeros(3), np.zeros((2, d))
    second = np.zeros((d, d), order="F")  # its upper triangle, filled in below
    with torch.inference_mode():
        for a, b in iter_chunks(X.shape[0], width):
            w = np.asarray(weights[a:b], np.float64)
            counted = w > 0  # only the kept rows: the trimmed ones are a share of each chunk
            if not counted.any():
                continue
            if residuals is None:
                xs = standardize(as_tensor(dense_rows(X, a, b), device, dtype))
                r = _residual_rows(core(xs), xs)[counted]
            else:
                r = residuals[a:b][counted]
            w = w[counted]
            sq = np.square(r).sum(1)
            scalars += [w.sum(), w @ sq, w @ np.square(sq)]
            first += [w @ r, (w * sq) @ r]
            # sum w r r^T by BLAS's symmetric rank-k update: half the work
            second = scipy.linalg.blas.dsyrk(1.0, r * np.sqrt(w)[:, None], beta=1.0, c=second,
                                             trans=1, overwrite_c=True)
    second = second + second.T  # the lower triangle was 0: the diagonal is doubled
    second.flat[::d + 1] *= 0.5
    return np.concatenate([scalars, first.ravel(), second.ravel()])


def residual_gaussian(sums, n_features):
    """Mean, whitening and shrinkage of the residuals' Gaussian, from ``residual_moments``.

    The covariance is the weighted empirical one shrunk towards a multiple
    of the identity by Ledoit and Wolf's formula (as
    ``sklearn.covariance.ledoit_wolf`` computes it, samples weighted as
    frequencies): ``(1 - s) * C + s * trace(C) / d * I``, plus 1e-6 times
    its mean eigenvalue (1e-12 at least) on the diagonal, so that it is
    invertible. The whitening matrix ``W`` (upper triangular) satisfies
    ``W @ W.T = inverse(covariance)``.

    Returns
    -------
    mean : ndarray of shape (n_features,)
    whitening : ndarray of shape (n_features, n_features)
    shrinkage : float
    """
    d = n_features
    (n, s2, s4), rest = sums[:3], sums[3:]
    v, b = rest[:d], rest[d:2 * d]
    m2 = rest[2 * d:].reshape(d, d)
    mean = v / n
    # sum w |r - mean|^4, expanded in the moments: |r - mean|^2 = |r|^2 - 2 r.mean + |mean|^2
    c = mean @ mean
    fourth = (s4 + 4 * mean @ m2 @ mean + c * c * n - 4 * mean @ b + 2 * c * s2
              - 4 * c * (v @ mean))
    cov = m2 / n  # symmetric, as the moments are
    cov -= np.outer(mean, mean)
    mu = np.trace(cov) / d
    frobenius = np.vdot(cov, cov)
    beta = max(fourth / n - frobenius, 0.0) / (d * n)
    delta = (frobenius - d * mu * mu) / d
    beta = min(beta, delta)
    shrinkage = float(beta / delta) if beta > 0 else 0.0
    floor = max(1e-6 * mu, 1e-12)
    cov *= 1 - shrinkage  # now the shrunk covariance, with the floor on its diagonal
    cov.flat[::d + 1] += shrinkage * mu + floor
    # positive definite: rounding errors stay far below the floor (|cov| <= d * mu)
    lower = np.linalg.cholesky(cov)
    inverse = scipy.linalg.lapack.dtrtri(lower, lower=1)[0]  # its diagonal is positive
    return mean, np.ascontiguousarray(inverse.T), shrinkage


def feature_error_sums(net, X, loss, width, weights=None):
    """Weighted sum over the samples of each feature's reconstruction error.

    In float64, in chunks, without holding every sample's errors at once. An
    error beyond X's dtype counts as the dtype's largest value.

    Parameters
    ----------
    net : torch.nn.Module
    X : ndarray of shape (n_samples, n_features)
        Validated input.
    loss : {"mse", "bce"}
    width : int
        Widest layer, to size the chunks.
    weights : ndarray of shape (n_samples,) or None, default=None
        Sample weights; None weights every sample 1.

    Returns
    -------
    sums : ndarray of shape (n_features,), float64
    """
    largest = float(np.finfo(X.dtype).max)
    sums = np.zeros(X.shape[1], dtype=np.float64)
    for a, b in iter_chunks(X.shape[0], width):
        errors = reconstruction_errors(net, dense_rows(X, a, b), loss, width, per_feature=True)
        errors = np.minimum(errors.astype(np.float64), largest)
        sums += errors.sum(0) if weights is None else weights[a:b] @ errors
    return sums


# ------------------------------------------------------------- variational
def _standard_normal(shape, seed, device, dtype):
    """Standard normal draws from ``seed``, the same on every device and dtype."""
    draws = torch.randn(shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    return draws.to(device=device, dtype=dtype)


class _Variational:
    """Chunked passes of a variational network over ``X``, in X's dtype."""

    def __init__(self, net, X):
        self.net, self.device, self.dtype = net, device_of(net), _dtype(X)
        self.standardize = Forward(net.inference_steps(("standardize",)), self.dtype)
        self.posterior = Forward(net.inference_steps(("posterior",)), self.dtype)
        self.logits = Forward(net.inference_steps(("logits",)), self.dtype)
        s = net.log_noise_variance
        self.log_var = None if s is None else s.detach().to(self.dtype)

    def chunks(self, X, width):
        """Yield ``(a, b, standardized rows, mean, log_variance)``."""
        k = self.net.n_components
        for a, b in iter_chunks(X.shape[0], width):
            xb = as_tensor(dense_rows(X, a, b), self.device, self.dtype)
            _check_input(xb, bce=self.net.likelihood == "bernoulli")
            xs = self.standardize(xb)
            stats = self.posterior(xs)
            yield a, b, xs, stats[:, :k], 2.0 * torch.log(posterior_std(stats[:, k:]))

    def elementwise_log_likelihood(self, logits, x):
        """``log p(x_j | z)`` of every element, from the last layer's logits."""
        if self.net.likelihood == "bernoulli":
            return x * logits - torch.nn.functional.softplus(logits)
        mean = self.net.decoder_layers[-1].module(logits)
        return -0.5 * ((mean - x).square() * torch.exp(-self.log_var) + self.log_var + LOG_2PI)


def log_likelihood(net, X, n_samples, seed, width):
    """Importance-weighted estimate of ``log p(x)`` for every sample of ``X``.

    ``log (1/K) sum_k p(x | z_k) p(z_k) / q(z_k | x)`` with ``z_k = mean(x)
    + exp(lv(x) / 2) * eps_k`` (Burda et al., 2016). The same ``K`` standard
    normal draws ``eps_k`` (from ``seed``) serve every sample, so each
    sample's estimate depends on that sample alone: deterministic, and the
    same whatever the batch or the order. ``K = 1`` is a one-sample ELBO.
    In the input's units (the standardization's Jacobian included), in X's
    dtype; an estimate that is NaN or overflows is -inf.

    Parameters
    ----------
    net : skae._nets.variational.VariationalAutoencoder
    X : ndarray of shape (n_samples, n_features)
    n_samples : int
        ``K``, importance samples per data sample.
    seed : int
    width : int
        Widest layer, to size the chunks.

    Returns
    -------
    log_likelihood : ndarray of shape (n_samples,)
    """
    passes = _Variational(net, X)
    k, dtype = net.n_components, passes.dtype
    eps = _standard_normal((n_samples, k), seed, passes.device, dtype)
    log_q_eps = -0.5 * (eps.square() + LOG_2PI).sum(1)  # log q(z|x) + sum(lv) / 2
    const = net.log_jacobian() - math.log(n_samples)
    out = np.empty(X.shape[0], dtype=X.dtype)
    with torch.inference_mode():
        for a, b, xs, mean, lv in passes.chunks(X, width * n_samples):
            m = b - a
            z = torch.addcmul(mean.unsqueeze(1), (0.5 * lv).exp().unsqueeze(1), eps)
            logits = passes.logits(z.reshape(m * n_samples, k)).reshape(m, n_samples, -1)
            log_px = passes.elementwise_log_likelihood(logits, xs.unsqueeze(1)).sum(2)
            log_pz = -0.5 * (z.square() + LOG_2PI).sum(2)
            log_w = log_px + log_pz - (log_q_eps - 0.5 * lv.sum(1, keepdim=True))
            ll = torch.logsumexp(log_w, 1) + const
            out[a:b] = ll.nan_to_num(nan=-torch.inf, neginf=-torch.inf).cpu().numpy()
    return out


def feature_negative_log_likelihood(net, X, width):
    """``-log p(x_j | z = posterior mean)`` of every element, standardized units, X's dtype.

    NaN or overflowing values are +inf.
    """
    passes = _Variational(net, X)
    out = np.empty(X.shape, dtype=X.dtype)
    with torch.inference_mode():
        for a, b, xs, mean, lv in passes.chunks(X, width):
            nll = -passes.elementwise_log_likelihood(passes.logits(mean), xs)
            out[a:b] = nll.nan_to_num(nan=torch.inf, posinf=torch.inf).cpu().numpy()
    return out


def latent_kl(net, X, width, weights=None, collective=None):
    """Mean over the samples of ``KL(q(z_k | x) || N(0, 1))`` per latent unit, in float64.

    ``weights`` (sample weights, or None) weight the mean. With the
    ``collective`` of a distributed fit, the mean is over every rank's rows.

    Returns
    -------
    kl : ndarray of shape (n_components,)
    """
    passes = _Variational(net, X)
    total = torch.zeros(net.n_components, dtype=torch.float64, device=passes.device)
    w = None if weights is None else torch.from_numpy(weights).to(passes.device)
    start = 0
    with torch.inference_mode():
        for _, _, _, mean, lv in passes.chunks(X, width):
            mean, lv = mean.to(torch.float64), lv.to(torch.float64)
            kl = 0.5 * (mean.square() + lv.exp() - 1.0 - lv)
            if w is not None:
                kl = kl * w[start:start + kl.shape[0]].unsqueeze(1)
            start += kl.shape[0]
            total += kl.sum(0)
    count = max(1, X.shape[0]) if weights is None else weights.sum()
    if collective is not None:
        sums = collective.all_reduce(np.r_[total.cpu().numpy(), count])
        return sums[:-1] / sums[-1]
    return (total / count).cpu().numpy()
