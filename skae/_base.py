"""The shared base of skae's estimators: parameters, training and inference."""

import copy
import warnings
from abc import ABCMeta, abstractmethod
from numbers import Integral, Real

import numpy as np
import torch
from sklearn.base import BaseEstimator
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted

from ._compat import Interval, StrOptions, validate_data
from ._direct import DirectForward, DirectGradient
from ._losses import (
    activation_derivative,
    contractive_penalty,
    corrupt,
    elementwise_reconstruction_error,
    kl_sparsity,
    l1_activity,
    reconstruction_loss,
    trimmed_reconstruction_loss,
)
from ._modules import (
    ACTIVATIONS,
    Standardize,
    UNIT_INTERVAL_ACTIVATIONS,
    build_autoencoder,
    encoder_layers,
    forward_with_activations,
    glorot_init_,
)
from ._stacked import pretrain_greedy
from ._training import (
    StreamedRows,
    TrainState,
    fit_module,
    iter_chunks,
    torch_threads,
    training_precision,
)

_ACTIVATION_NAMES = StrOptions(set(ACTIVATIONS))
_INT32_MAX = np.iinfo(np.int32).max

#: Below this many multiply-adds in a minibatch's forward pass, training uses
#: one intra-op thread: thread synchronisation then costs more than it saves.
#: Above it, torch's default is kept: on 2 cores, 2 threads were as fast as or
#: faster than 1 down to about 1M multiply-adds per batch
#: (``benchmarks/bench_speed.py --thread-sweep``, results/speed.md).
SINGLE_THREAD_MACS = 1 << 18


def as_tensor(array, device, dtype):
    """Wrap a numpy array as a tensor on ``device`` without copying when possible.

    Parameters
    ----------
    array : ndarray
        Input; may be read-only (e.g. a memory map): skae never writes to it.
    device : torch.device
    dtype : torch.dtype

    Returns
    -------
    tensor : torch.Tensor
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
        tensor = torch.as_tensor(array)
    return tensor.to(device=device, dtype=dtype)


def resolve_device(device, owner):
    """Turn the ``device`` parameter into a ``torch.device``.

    Parameters
    ----------
    device : str or torch.device
        ``"auto"`` (CUDA when available, else CPU), ``"cpu"``, ``"cuda"``,
        ``"cuda:N"``, or anything else ``torch.device`` accepts.
    owner : str
        Estimator name for error messages.

    Returns
    -------
    device : torch.device
    """
    if isinstance(device, str) and device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError):
        raise ValueError(
            f"The 'device' parameter of {owner} must be 'auto', 'cpu', 'cuda', "
            f"'cuda:N' or a torch.device. Got {device!r} instead."
        ) from None
    if resolved.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(
                f"The 'device' parameter of {owner} is {device!r}, but CUDA is not "
                "available on this machine. Use device='auto' or device='cpu'."
            )
        if resolved.index is not None and resolved.index >= torch.cuda.device_count():
            raise ValueError(
                f"The 'device' parameter of {owner} is {device!r}, but only "
                f"{torch.cuda.device_count()} CUDA device(s) are available."
            )
    return resolved


#: Largest share of a GPU's free memory the training data may take there;
#: larger data is streamed from host memory (:class:`skae._training.StreamedRows`).
DEVICE_DATA_FRACTION = 0.5


def stage_on_device(X, device):
    """Whether to copy the training data ``X`` (a CPU tensor) to ``device`` whole."""
    if device.type != "cuda":
        return True
    free, _ = torch.cuda.mem_get_info(device)
    return X.numel() * X.element_size() <= DEVICE_DATA_FRACTION * free


def module_device(module):
    """Device of a module's first parameter."""
    return next(module.parameters()).device


def _check_finite(x):
    """Raise scikit-learn's errors when ``x`` holds NaN or infinity."""
    if torch.isfinite(x.sum()):  # one fast reduction; overflow is told apart below
        return
    if torch.isnan(x).any():
        raise ValueError("Input X contains NaN.")
    if not torch.isfinite(x).all():
        raise ValueError(
            f"Input X contains infinity or a value too large for dtype('{str(x.dtype)[6:]}')."
        )


def _sequential_forward(seqs):
    """``forward(x, out=None)`` applying the modules ``seqs`` in turn."""

    def forward(x, out=None):
        for seq in seqs:
            x = seq(x)
        return x if out is None else out.copy_(x)

    return forward


def _state_to_cpu(state_dict):
    return None if state_dict is None else {k: v.cpu() for k, v in state_dict.items()}


class _BaseAutoencoder(BaseEstimator, metaclass=ABCMeta):
    """Base class for autoencoder estimators.

    Warning: This class should not be used directly. Use derived classes
    instead.
    """

    _parameter_constraints: dict = {
        "n_components": [Interval(Integral, 1, None, closed="left")],
        "hidden_layer_sizes": ["array-like", Interval(Integral, 1, None, closed="left")],
        "activation": [_ACTIVATION_NAMES],
        "latent_activation": [_ACTIVATION_NAMES],
        "output_activation": [_ACTIVATION_NAMES],
        "loss": [StrOptions({"mse", "bce"})],
        "solver": [StrOptions({"adam", "adamw", "sgd"})],
        "alpha": [Interval(Real, 0, None, closed="left")],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "learning_rate": [StrOptions({"constant", "adaptive"})],
        "learning_rate_init": [Interval(Real, 0, None, closed="neither")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "shuffle": ["boolean"],
        "random_state": ["random_state"],
        "tol": [Interval(Real, 0, None, closed="left")],
        "verbose": ["verbose"],
        "warm_start": ["boolean"],
        "momentum": [Interval(Real, 0, 1, closed="both")],
        "nesterovs_momentum": ["boolean"],
        "early_stopping": ["boolean"],
        "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
        "beta_1": [Interval(Real, 0, 1, closed="left")],
        "beta_2": [Interval(Real, 0, 1, closed="left")],
        "epsilon": [Interval(Real, 0, None, closed="neither")],
        "n_iter_no_change": [Interval(Integral, 1, None, closed="left")],
        "standardize": ["boolean"],
        "sparsity": [None, StrOptions({"l1", "kl"})],
        "sparsity_weight": [Interval(Real, 0, None, closed="left")],
        "sparsity_target": [Interval(Real, 0, 1, closed="neither")],
        "sparsity_layers": [StrOptions({"code", "all"}), "array-like"],
        "noise": [None, StrOptions({"gaussian", "masking", "salt_and_pepper"})],
        "noise_level": [Interval(Real, 0, None, closed="left")],
        "contractive_weight": [Interval(Real, 0, None, closed="left")],
        "pretraining": [None, StrOptions({"greedy"})],
        "pretraining_max_iter": [None, Interval(Integral, 1, None, closed="left")],
        "tied_weights": ["boolean"],
        "device": [str, torch.device],
        "precision": [StrOptions({"float32", "tf32", "bfloat16"})],
    }

    @abstractmethod
    def __init__(
        self,
        n_components,
        *,
        hidden_layer_sizes,
        activation,
        latent_activation,
        output_activation,
        loss,
        solver,
        alpha,
        batch_size,
        learning_rate,
        learning_rate_init,
        max_iter,
        shuffle,
        random_state,
        tol,
        verbose,
        warm_start,
        momentum,
        nesterovs_momentum,
        early_stopping,
        validation_fraction,
        beta_1,
        beta_2,
        epsilon,
        n_iter_no_change,
        standardize,
        sparsity,
        sparsity_weight,
        sparsity_target,
        sparsity_layers,
        noise,
        noise_level,
        contractive_weight,
        pretraining,
        pretraining_max_iter,
        tied_weights,
        device,
        precision,
    ):
        self.n_components = n_components
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.latent_activation = latent_activation
        self.output_activation = output_activation
        self.loss = loss
        self.solver = solver
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.learning_rate_init = learning_rate_init
        self.max_iter = max_iter
        self.shuffle = shuffle
        self.random_state = random_state
        self.tol = tol
        self.verbose = verbose
        self.warm_start = warm_start
        self.momentum = momentum
        self.nesterovs_momentum = nesterovs_momentum
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.n_iter_no_change = n_iter_no_change
        self.standardize = standardize
        self.sparsity = sparsity
        self.sparsity_weight = sparsity_weight
        self.sparsity_target = sparsity_target
        self.sparsity_layers = sparsity_layers
        self.noise = noise
        self.noise_level = noise_level
        self.contractive_weight = contractive_weight
        self.pretraining = pretraining
        self.pretraining_max_iter = pretraining_max_iter
        self.tied_weights = tied_weights
        self.device = device
        self.precision = precision

    # ------------------------------------------------------------------ checks
    def _hidden_sizes(self):
        sizes = self.hidden_layer_sizes
        if isinstance(sizes, Integral):
            sizes = (sizes,)
        sizes = tuple(sizes)
        if not all(isinstance(s, Integral) and not isinstance(s, bool) and s >= 1 for s in sizes):
            raise ValueError(
                f"The 'hidden_layer_sizes' parameter of {type(self).__name__} must be a "
                f"sequence of integers >= 1 (or empty). Got {self.hidden_layer_sizes!r} instead."
            )
        return tuple(int(s) for s in sizes)

    def _check_params(self, X):
        """Check what the constraint language cannot express; return hidden sizes."""
        name = type(self).__name__
        sizes = self._hidden_sizes()
        if self.loss == "bce":
            if self.standardize:
                raise ValueError(
                    f"loss='bce' compares reconstructions with X in [0, 1] and cannot be "
                    f"combined with standardize=True on {name}; use loss='mse' or "
                    "standardize=False."
                )
            if self.output_activation not in UNIT_INTERVAL_ACTIVATIONS:
                raise ValueError(
                    f"loss='bce' needs reconstructions in (0, 1): set "
                    f"output_activation='sigmoid' on {name}. Got "
                    f"output_activation={self.output_activation!r}."
                )
            if X.size and (X.min() < 0 or X.max() > 1):
                raise ValueError(
                    f"loss='bce' needs X in [0, 1]; got values in [{X.min():.4g}, "
                    f"{X.max():.4g}]. Scale X (e.g. with MinMaxScaler) or use loss='mse'."
                )
        if self.noise in ("masking", "salt_and_pepper") and self.noise_level > 1:
            raise ValueError(
                f"noise={self.noise!r} corrupts a fraction noise_level of the entries: "
                f"noise_level must be in [0, 1] on {name}. Got {self.noise_level!r}."
            )
        self._sparse_layer_indices(sizes)
        if self.early_stopping:
            n_val = int(self.validation_fraction * X.shape[0])
            if n_val < 1 or X.shape[0] - n_val < 1:
                raise ValueError(
                    f"early_stopping=True with validation_fraction={self.validation_fraction} "
                    f"leaves no validation or no training sample among {X.shape[0]} "
                    "samples. Use more samples, a larger validation_fraction, or "
                    "early_stopping=False."
                )
        return sizes

    def _sparse_layer_indices(self, hidden_sizes):
        """Encoder layers (0 = first hidden, last = code) the sparsity acts on."""
        n_layers = len(hidden_sizes) + 1
        if self.sparsity_layers == "code":
            indices = [n_layers - 1]
        elif self.sparsity_layers == "all":
            indices = list(range(n_layers))
        else:
            raw = np.atleast_1d(self.sparsity_layers)
            if raw.ndim != 1 or not all(isinstance(i, Integral) for i in raw.tolist()) or any(
                not -n_layers <= i < n_layers for i in raw.tolist()
            ):
                raise ValueError(
                    f"The 'sparsity_layers' parameter of {type(self).__name__} must be "
                    f"'code', 'all' or a sequence of encoder layer indices in "
                    f"[-{n_layers}, {n_layers - 1}] (0 = first hidden layer, -1 = code). "
                    f"Got {self.sparsity_layers!r} instead."
                )
            indices = sorted({i % n_layers for i in raw.tolist()})
        if self.sparsity == "kl":
            for i in indices:
                act = self.latent_activation if i == n_layers - 1 else self.activation
                if act not in UNIT_INTERVAL_ACTIVATIONS:
                    which = "latent_activation" if i == n_layers - 1 else "activation"
                    raise ValueError(
                        f"sparsity='kl' needs activations in (0, 1) on the chosen layers, "
                        f"but encoder layer {i} uses {which}={act!r}. Set {which}='sigmoid', "
                        "or use sparsity='l1'."
                    )
        return indices

    def _is_regularized(self):
        return (
            (self.sparsity is not None and self.sparsity_weight > 0)
            or (self.noise is not None and self.noise_level > 0)
            or self.contractive_weight > 0
        )

    # ---------------------------------------------------------------- training
    def _build_module(self, X_t, hidden_sizes, generator):
        """Build the network on the CPU, initialized from ``generator`` only."""
        # torch's own layer initialization draws from the global generator:
        # fork it so that fitting leaves the user's global random state alone.
        with torch.random.fork_rng(devices=[]):
            return self._build_module_unforked(X_t, hidden_sizes, generator)

    def _build_module_unforked(self, X_t, hidden_sizes, generator):
        shift = scale = None
        if self.standardize:
            var, shift = torch.var_mean(X_t, dim=0, correction=0)
            scale = var.sqrt()
            scale = torch.where(scale > 1e-12 * shift.abs().clamp(min=1.0), scale, 1.0)
            shift, scale = shift.cpu(), scale.cpu()
        module = build_autoencoder(
            X_t.shape[1],
            hidden_sizes,
            self.n_components,
            self.activation,
            self.latent_activation,
            self.output_activation,
            shift=shift,
            scale=scale,
            tied_weights=self.tied_weights,
        )
        glorot_init_(module, generator)
        return module

    def _make_optimizer(self, module):
        weights = [p for n, p in module.named_parameters() if n.endswith("weight")]
        others = [p for n, p in module.named_parameters() if not n.endswith("weight")]
        groups = [
            {"params": weights, "weight_decay": self.alpha},
            {"params": others, "weight_decay": 0.0},
        ]
        lr = self.learning_rate_init
        if self.solver == "sgd":
            return torch.optim.SGD(
                groups, lr=lr, momentum=self.momentum,
                nesterov=self.nesterovs_momentum and self.momentum > 0,
            )
        cls = torch.optim.Adam if self.solver == "adam" else torch.optim.AdamW
        kwargs = dict(lr=lr, betas=(self.beta_1, self.beta_2), eps=self.epsilon)
        try:
            return cls(groups, fused=True, **kwargs)
        except (RuntimeError, TypeError, ValueError):  # fused kernels unsupported here
            return cls(groups, **kwargs)

    def _make_loss_fn(self, module, X_t, hidden_sizes, generator, batch_size):
        """Build ``loss_fn(module, xb) -> (loss, terms)``: reconstruction + λ R.

        Each regularizer's weighted term is recorded under its own name.
        Plain MLP autoencoders get a :class:`~skae._direct.DirectGradient`,
        which computes the same loss and its gradients without autograd.
        """
        loss_name = self.loss
        sparse_layers = self._sparse_layer_indices(hidden_sizes) if self.sparsity else []
        contractive = self.contractive_weight > 0
        corruption = self._corruption(module, X_t, generator)
        trim = self._trim_fraction()
        direct = None if self.precision == "bfloat16" else DirectGradient.build(
            module, loss=loss_name, batch_size=batch_size, trim=trim, corruption=corruption,
            sparsity=bool(sparse_layers), contractive=contractive,
        )
        if direct is not None:
            return direct
        # the layer structure is fixed: look it up once, not on every batch
        pairs = encoder_layers(module.encoder) if contractive else []

        def loss_fn(module, xb):
            x_in = xb if corruption is None else corruption(xb)
            if sparse_layers or contractive:
                z, _, pres, posts = forward_with_activations(module.encoder, x_in)
                x_hat = module.decoder(z)
            else:
                x_hat, z = module(x_in)
            if trim > 0:
                rec = trimmed_reconstruction_loss(x_hat, xb, loss_name, module.feature_scale, trim)
            else:
                rec = reconstruction_loss(x_hat, xb, loss_name, module.feature_scale)
            terms = {"reconstruction": rec}
            loss = rec
            if sparse_layers:
                if self.sparsity == "l1":
                    penalty = sum(l1_activity(posts[i]) for i in sparse_layers)
                else:
                    target = self.sparsity_target
                    penalty = sum(kl_sparsity(posts[i], target) for i in sparse_layers)
                terms["sparsity"] = self.sparsity_weight * penalty
                loss = loss + terms["sparsity"]
            if contractive:
                derivatives = [
                    activation_derivative(act, pre, post)
                    for (_, act), pre, post in zip(pairs, pres, posts)
                ]
                weights = [linear.weight for linear, _ in pairs]
                terms["contractive"] = self.contractive_weight * contractive_penalty(
                    weights, derivatives
                )
                loss = loss + terms["contractive"]
            return loss, terms

        return loss_fn

    def _trim_fraction(self):
        """Share of each batch's worst-reconstructed samples left out of the loss."""
        return 0.0

    def _corruption(self, module, X_t, generator):
        """Return ``corrupt(xb)`` for denoising training, or None.

        With ``standardize``, gaussian noise is in units of each feature's
        standard deviation and masking sets entries to the feature's mean.
        """
        if self.noise is None or self.noise_level == 0:
            return None
        kind, level = self.noise, self.noise_level
        kwargs = {}
        standardizer = module.encoder[0] if isinstance(module.encoder[0], Standardize) else None
        if kind == "gaussian" and standardizer is not None:
            kwargs["scale"] = standardizer.scale
        elif kind == "masking" and standardizer is not None:
            kwargs["fill"] = standardizer.shift
        elif kind == "salt_and_pepper":
            low, high = torch.aminmax(X_t, dim=0)
            device = module_device(module)
            kwargs.update(low=low.to(device), high=high.to(device))

        def corruption(xb):
            return corrupt(xb, kind, level, generator, **kwargs)

        return corruption

    def _n_threads(self, n_features, hidden_sizes, batch_size, device):
        """Intra-op threads for training: one for small problems on the CPU."""
        if device.type != "cpu":
            return None
        widths = [n_features, *hidden_sizes, self.n_components]
        # encoder and mirrored decoder: each layer shape appears twice
        macs = 2 * batch_size * sum(a * b for a, b in zip(widths[:-1], widths[1:]))
        return 1 if macs < SINGLE_THREAD_MACS else None

    def _fit(self, X, incremental=False):
        """Fit from scratch, or continue training (warm start, partial fit).

        Returns the validated ``X``.
        """
        reuse = hasattr(self, "module_") and (incremental or self.warm_start)
        X = validate_data(self, X, dtype=[np.float64, np.float32], reset=not reuse)
        hidden_sizes = self._check_params(X)
        device = resolve_device(self.device, type(self).__name__)
        if not reuse:
            self._random_state = check_random_state(self.random_state)
        seed = int(self._random_state.randint(_INT32_MAX))
        cpu_gen = torch.Generator().manual_seed(seed)
        batch_size = min(self.batch_size, X.shape[0])
        X_t = as_tensor(X, "cpu", torch.float32)
        if stage_on_device(X_t, device):
            X_t = X_t.to(device)
            data = X_t
        else:  # too large for the accelerator: stream batches from host memory
            data = StreamedRows(X_t, device, batch_size)
        if reuse:
            module, state = self.module_.to(device), self._train_state
        else:
            module = self._build_module(X_t, hidden_sizes, cpu_gen).to(device)
            state = TrainState()
        optimizer = getattr(self, "_optimizer", None) if incremental else None
        if optimizer is None:
            optimizer = self._make_optimizer(module)

        index, validation_score = None, None
        if self.early_stopping and not incremental:
            n_val = int(self.validation_fraction * X.shape[0])
            perm = torch.randperm(X.shape[0], generator=cpu_gen).to(X_t.device)
            val_index, index = perm[:n_val], perm[n_val:]

            def validation_score(m):
                return -self._mean_error(m, X_t, val_index)

        # noise is drawn on the training device, shuffling where the rows are
        generator = torch.Generator(device=device).manual_seed(seed + 1)
        if isinstance(data, StreamedRows):
            shuffle_generator = torch.Generator(device=X_t.device).manual_seed(seed + 1)
        else:
            shuffle_generator = generator
        n_threads = self._n_threads(X.shape[1], hidden_sizes, batch_size, device)
        if not reuse and not self._is_regularized() and self.n_components >= X.shape[1]:
            warnings.warn(
                f"{type(self).__name__} with n_components={self.n_components} >= "
                f"n_features={X.shape[1]} and no regularizer can learn the identity map "
                "and extract nothing useful. Use a smaller n_components, or regularize "
                "with sparsity=..., noise=... or contractive_weight=....",
                UserWarning,
            )
        common = dict(
            batch_size=batch_size, generator=shuffle_generator, shuffle=self.shuffle, tol=self.tol,
            n_iter_no_change=self.n_iter_no_change, verbose=bool(self.verbose),
        )
        with torch_threads(n_threads), training_precision(self.precision, device):
            if not reuse and not incremental and self.pretraining == "greedy":
                stages = pretrain_greedy(
                    module, X_t if index is None else X_t.index_select(0, index),
                    self._make_optimizer, loss=self.loss, device=device,
                    max_iter=self.pretraining_max_iter or self.max_iter, **common,
                )
                self.pretraining_loss_curves_ = [list(st.loss_curve) for st in stages]
            elif not reuse:
                self.pretraining_loss_curves_ = None
            status = fit_module(
                module,
                data,
                self._make_loss_fn(module, X_t, hidden_sizes, generator, batch_size),
                optimizer,
                state,
                max_iter=1 if incremental else self.max_iter,
                index=index,
                validation_score=validation_score,
                check_convergence=not incremental,
                adaptive_learning_rate=self.learning_rate == "adaptive",
                **common,
            )
        for p in module.parameters():
            p.grad = None  # the optimizer's state is kept; gradients are not
        self.module_ = module
        self._optimizer = optimizer
        self._train_state = state
        self.n_iter_ = state.n_iter
        self.loss_curve_ = list(state.loss_curve)
        self.loss_terms_ = {k: list(v) for k, v in state.terms.items()}
        self.best_loss_ = state.best_loss
        if self.early_stopping and not incremental:
            self.validation_scores_ = list(state.validation_scores)
            self.best_validation_score_ = state.best_validation_score
        else:
            self.validation_scores_ = None
            self.best_validation_score_ = None
        if status == "max_iter" and not incremental:
            warnings.warn(
                f"{type(self).__name__}: maximum iterations ({self.max_iter}) reached "
                "and the optimization hasn't converged yet.",
                ConvergenceWarning,
            )
        return X

    # --------------------------------------------------------------- inference
    def _mean_error(self, module, X, index):
        """Mean reconstruction error of the rows ``X[index]``, in bounded chunks.

        Rows are gathered chunk by chunk, so no copy of the selection is made.
        """
        total, device = 0.0, module_device(module)
        for start, stop in iter_chunks(index.shape[0], self._max_width()):
            x = X.index_select(0, index[start:stop]).to(device)
            errors = elementwise_reconstruction_error(module(x)[0], x, self.loss, module.feature_scale)
            total = total + errors.sum()
        return float(total) / (index.shape[0] * X.shape[1])

    def _max_width(self):
        return max(self.n_features_in_, self.n_components, *self._hidden_sizes(), 1)

    def _apply(self, X, parts, n_out, finish=None):
        """Run module ``parts`` over ``X`` in chunks; numpy out, in X's dtype.

        Parameters
        ----------
        X : ndarray of shape (n_samples, n_in)
            Validated input.
        parts : tuple of {"encoder", "decoder"}
            The parts of the module to apply, in order.
        n_out : int or None
            Width of the output, or None for a 1-D output.
        finish : callable or None, default=None
            ``finish(module, y, x) -> tensor`` turns the parts' output ``y``
            on the chunk ``x`` into the result (e.g. reconstruction errors);
            None returns ``y`` itself.

        Float64 input is computed in float64, float32 input in float32.
        Plain networks run through :class:`~skae._direct.DirectForward`:
        buffers reused from chunk to chunk and, on the CPU, results written
        straight into the output array.
        """
        module = self.module_
        device = module_device(module)
        dtype = torch.float64 if X.dtype == np.float64 else torch.float32
        if dtype != next(module.parameters()).dtype:
            module = copy.deepcopy(module).to(dtype)
        seqs = [getattr(module, part) for part in parts]
        forward = DirectForward.build(*seqs) or _sequential_forward(seqs)
        out = np.empty((X.shape[0],) if n_out is None else (X.shape[0], n_out), dtype=X.dtype)
        in_place = device.type == "cpu" and finish is None
        with torch.inference_mode():
            for start, stop in iter_chunks(X.shape[0], self._max_width()):
                xb = as_tensor(X[start:stop], device, dtype)
                _check_finite(xb)
                if in_place:
                    forward(xb, out=torch.from_numpy(out[start:stop]))
                    continue
                y = forward(xb)
                if finish is not None:
                    y = finish(module, y, xb)
                out[start:stop] = y.cpu().numpy()
        return out

    def _validate_X(self, X):
        """Validate input to an inference method.

        Finiteness is checked chunk by chunk in :meth:`_apply`, where the
        chunk is already in cache, instead of in a separate pass over ``X``.
        """
        check_is_fitted(self)
        return validate_data(
            self, X, dtype=[np.float64, np.float32], reset=False, ensure_all_finite=False
        )

    def _encode(self, X):
        return self._apply(X, ("encoder",), self.n_components)

    def _decode(self, Z):
        return self._apply(Z, ("decoder",), self.n_features_in_)

    def _reconstruct(self, X):
        return self._apply(X, ("encoder", "decoder"), self.n_features_in_)

    def _feature_errors(self, X):
        loss = self.loss

        def errors(m, x_hat, x):
            return elementwise_reconstruction_error(x_hat, x, loss, m.feature_scale)

        return self._apply(X, ("encoder", "decoder"), self.n_features_in_, errors)

    def _reconstruction_error(self, X):
        loss = self.loss

        def errors(m, x_hat, x):
            return elementwise_reconstruction_error(x_hat, x, loss, m.feature_scale).mean(1)

        return self._apply(X, ("encoder", "decoder"), None, errors)

    def reconstruct(self, X):
        """Encode and decode ``X``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Input data.

        Returns
        -------
        X_hat : ndarray of shape (n_samples, n_features)
            Reconstruction of ``X``, in ``X``'s dtype (float64 or float32).
        """
        return self._reconstruct(self._validate_X(X))

    # -------------------------------------------------------------- pickling
    def __getstate__(self):
        state = super().__getstate__()
        state = dict(state)
        if "module_" in state:
            state["module_"] = copy.deepcopy(self.module_).cpu()
            state["_fit_device"] = str(module_device(self.module_))
        state.pop("_optimizer", None)
        if "_train_state" in state:
            train_state = copy.copy(self._train_state)
            train_state.best_state = _state_to_cpu(train_state.best_state)
            state["_train_state"] = train_state
        return state

    def __setstate__(self, state):
        fit_device = state.pop("_fit_device", "cpu")
        super().__setstate__(state)
        if "module_" in state and fit_device.startswith("cuda") and torch.cuda.is_available():
            try:
                self.module_.to(resolve_device(fit_device, type(self).__name__))
            except ValueError:  # that GPU index is absent here: stay on the CPU
                pass
