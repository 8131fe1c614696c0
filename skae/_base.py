"""The shared base of skae's estimators: validate, resolve, build, train, publish."""

import copy
import dataclasses
import warnings
from abc import ABCMeta, abstractmethod
from contextlib import contextmanager

import numpy as np
import scipy.sparse as sp
import torch
from sklearn.base import BaseEstimator
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted

from . import _distributed, _inference
from ._blocks import BlockReader, LazyRowsMixin, is_dask_array, is_out_of_core
from ._compat import _check_feature_names, _check_n_features, validate_data
from ._data import as_csr, join_pairs, standardization
from ._fitting import train
from ._nets import build_network
from ._params import CONSTRAINTS, resolve
from ._serialization import get_state, set_state
from ._training import TrainState
from ._weights import canonical_rows, check_sample_weight

_INT32_MAX = np.iinfo(np.int32).max

#: Sparse formats used as they are; ``check_array`` converts any other to the first.
SPARSE_FORMATS = ("csr", "csc")

#: Posterior collapse: every latent unit's mean KL below this many nats.
COLLAPSE_KL = 0.01


class PosteriorCollapseWarning(UserWarning):
    """Warning that a variational autoencoder's code carries no information.

    Raised by ``fit`` and ``partial_fit`` when every latent unit's mean KL
    divergence from the prior (``latent_kl_``) is below 0.01 nats.
    """


class _BaseAutoencoder(LazyRowsMixin, BaseEstimator, metaclass=ABCMeta):
    """Base class for autoencoder estimators.

    Warning: This class should not be used directly. Use derived classes
    instead.
    """

    _parameter_constraints: dict = dict(CONSTRAINTS)

    #: Whether reaching max_iter in fit warns (the detector trains on a budget).
    _warn_on_max_iter = True

    @abstractmethod
    def __init__(
        self, n_components, *, hidden_layer_sizes, activation, latent_activation,
        output_activation, loss, solver, alpha, batch_size, learning_rate, learning_rate_init,
        max_iter, shuffle, random_state, tol, verbose, warm_start, momentum,
        nesterovs_momentum, early_stopping, validation_fraction, beta_1, beta_2, epsilon,
        n_iter_no_change, standardize, sparsity, sparsity_weight, sparsity_target,
        sparsity_layers, noise, noise_level, contractive_weight, pretraining,
        pretraining_max_iter, tied_weights, variational, kl_weight, kl_warmup,
        n_importance_samples, architecture, image_shape, conv_channels, kernel_size, device,
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
        self.variational = variational
        self.kl_weight = kl_weight
        self.kl_warmup = kl_warmup
        self.n_importance_samples = n_importance_samples
        self.architecture = architecture
        self.image_shape = image_shape
        self.conv_channels = conv_channels
        self.kernel_size = kernel_size
        self.device = device
        self.precision = precision

    # ---------------------------------------------------------------- training
    @contextmanager
    def _transaction(self):
        """On any exception, put every attribute back as it was before the block.

        Training never changes a fitted object in place (it trains copies),
        so restoring the attribute dictionary restores the estimator.
        """
        snapshot = dict(self.__dict__)
        try:
            yield
        except BaseException:
            self.__dict__.clear()
            self.__dict__.update(snapshot)
            raise

    #: Whether ``fit`` takes targets (paired data) instead of reconstructing X.
    _paired = False

    def _fit(self, X, incremental=False, Y=None, sample_weight=None):
        """Fit from scratch, or continue (warm start, partial fit); call in a transaction.

        Runs with autograd enabled even when called under ``torch.no_grad()`` or
        ``torch.inference_mode()``: training needs gradients.

        Under torch.distributed (see :mod:`skae._distributed`), every rank
        calls this with its own shard of the rows: the ranks check that
        they have the same columns, share rank 0's seed and initial
        weights, compute the standardization statistics of the union of
        the shards, and train in lockstep.

        Returns
        -------
        X : ndarray
            The validated training data, in canonical form (see
            :mod:`skae._weights`): the rows trained on.
        spec : skae._params.Spec
        weights : ndarray or None
            Their sample weights; None when all are equal.
        """
        with torch.inference_mode(False), torch.enable_grad():
            return self._fit_with_grad(X, incremental, Y, sample_weight)

    def _validate_training_data(self, X, Y, reset, out_of_core=False):
        """``(X, Y)`` validated; ``Y`` 2-D in X's dtype, or None for an autoencoder.

        A sparse ``X`` stays sparse, as canonical CSR (see ``_data.as_csr``);
        sparse targets are densified. A Dask array or a memory-mapped array
        becomes a checked :class:`skae._blocks.BlockReader`: read block by
        block, never whole.
        """
        if out_of_core:  # see _fit_with_grad
            return self._validate_out_of_core(X, reset), None
        if not self._paired:
            X = validate_data(self, X, accept_sparse=SPARSE_FORMATS,
                              dtype=[np.float64, np.float32], reset=reset)
            return (as_csr(X, canonical=True) if sp.issparse(X) else X), None
        X, Y = validate_data(self, X, Y, accept_sparse=SPARSE_FORMATS,
                             dtype=[np.float64, np.float32], multi_output=True,
                             y_numeric=True, reset=reset)
        Y = np.asarray(Y.toarray() if sp.issparse(Y) else Y, dtype=X.dtype)
        return (as_csr(X, canonical=True) if sp.issparse(X) else X), Y.reshape(Y.shape[0], -1)

    def _validate_out_of_core(self, X, reset):
        """A Dask or memory-mapped ``X`` as a :class:`skae._blocks.BlockReader`, checked.

        Sets or checks ``n_features_in_`` as ``validate_data`` does, and
        reads every block once to check it is finite (an error names the
        first block that is not).
        """
        owner = type(self).__name__
        reader = BlockReader(X, owner)
        if reader.shape[0] < 1 or reader.shape[1] < 1:
            raise ValueError(
                f"Found array with {reader.shape[0]} sample(s) and {reader.shape[1]} "
                f"feature(s) (shape={reader.shape}) while a minimum of 1 is required by "
                f"{owner}."
            )
        _check_feature_names(self, X, reset=reset)
        _check_n_features(self, reader, reset=reset)
        return reader.check()

    def _fit_with_grad(self, X, incremental, Y, sample_weight):
        params = self.get_params(deep=False)  # every parameter is read from here on
        reuse = hasattr(self, "module_") and (incremental or bool(params["warm_start"]))
        if self._paired and is_dask_array(X):
            raise ValueError(
                f"{type(self).__name__} trains on paired data held in memory; it got a Dask "
                "array. Load X and y as numpy arrays (or sparse matrices)."
            )
        # a memory map of paired data is read into memory, as any array-like
        out_of_core = is_out_of_core(X) and not self._paired
        if out_of_core:
            self._check_out_of_core(params, sample_weight)
        X, Y = self._validate_training_data(X, Y, reset=not reuse, out_of_core=out_of_core)
        owner = type(self).__name__
        collective = _distributed.current(params["device"], owner)  # None in a single process
        if collective is not None:
            collective.check_columns(X.shape[1:] if Y is None else (X.shape[1], Y.shape[1]), owner)
        weights = check_sample_weight(sample_weight, X, owner)
        if not out_of_core:  # out-of-core rows are trained on as they are stored
            index, weights = canonical_rows([X] if Y is None else [X, Y], weights,
                                            params["shuffle"])
            if index is not None:
                X, Y = X[index], None if Y is None else Y[index]
        spec = resolve(params, owner, X, incremental=incremental, Y=Y)
        if collective is not None:  # cuda:LOCAL_RANK for device="cuda"
            spec = dataclasses.replace(spec, device=collective.device)
        if reuse:
            spec.check_same_network(self._spec)
        rng = copy.deepcopy(self._random_state) if reuse else check_random_state(params["random_state"])
        seed = int(rng.randint(_INT32_MAX))
        if collective is not None:
            seed = collective.rank_0_seed(seed)
        if reuse:  # train copies: the fitted model stays intact should this call fail
            net, state = copy.deepcopy(self.module_), copy.deepcopy(self._train_state)
        else:
            net, state = self._new_network(spec, X, seed, Y, weights, collective), TrainState()
        net = net.to(spec.device)
        if collective is not None:  # every rank starts from rank 0's weights
            collective.broadcast_module(net)
        resume = reuse and incremental and self._spec.solver == spec.solver
        result = train(
            spec, X if Y is None else join_pairs(X, Y), net, state, seed=seed,
            weights=weights, optimizer_state=self._optimizer_state if resume else None,
            pretrain=not reuse and spec.pretraining == "greedy", collective=collective,
        )
        latent_kl = (_inference.latent_kl(net, X, spec.max_width, weights, collective)
                     if spec.variational else None)
        self._publish(spec, net, state, result, rng, fresh=not reuse)
        if not self._paired:
            self.latent_kl_ = latent_kl
        if not reuse:
            self._inference_seed = seed
        if latent_kl is not None and not incremental and latent_kl.max() < COLLAPSE_KL:
            warnings.warn(
                f"{spec.owner}: posterior collapse: every latent unit's mean KL divergence "
                f"from the prior is below {COLLAPSE_KL} nats (largest {latent_kl.max():.2g}), "
                "so the decoder ignores the code. Lower kl_weight, raise kl_warmup, use a "
                "smaller or shallower decoder (hidden_layer_sizes), or train longer.",
                PosteriorCollapseWarning, stacklevel=4,
            )
        if result.status == "interrupted":
            warnings.warn("Training interrupted by user.", UserWarning, stacklevel=4)
        elif result.status == "max_iter" and not incremental and self._warn_on_max_iter:
            warnings.warn(
                f"{spec.owner}: maximum iterations ({spec.max_iter}) reached and the "
                "optimization hasn't converged yet.",
                ConvergenceWarning, stacklevel=4,
            )
        return X, spec, weights

    def _check_out_of_core(self, params, sample_weight):
        """Raise ValueError for what a fit on a Dask or memory-mapped array cannot do."""
        owner = type(self).__name__
        if sample_weight is not None:
            raise ValueError(
                f"{owner} does not take sample_weight with a Dask or memory-mapped X (its rows "
                "are trained on as stored, a block at a time). Repeat rows instead, or "
                "load X into memory."
            )
        if params["pretraining"] == "greedy":
            raise ValueError(
                f"pretraining='greedy' on {owner} trains each layer on the codes of the one "
                "below, held in memory; it cannot run on a Dask or memory-mapped X. Use "
                "pretraining=None, or load X into memory."
            )

    @staticmethod
    def _new_network(spec, X, seed, Y=None, weights=None, collective=None):
        """A freshly initialized network for ``spec`` (statistics from ``X`` and ``Y``).

        With the ``collective`` of a distributed fit, the statistics are
        those of every rank's rows.
        """
        shift = scale = targets = None
        reduce = None if collective is None else collective.all_reduce
        if spec.standardize:
            shift, scale = map(torch.from_numpy, standardization(X, spec.owner, weights, reduce,
                                                                 spec.std_offset))
            if Y is not None:
                targets = tuple(map(torch.from_numpy,
                                    standardization(Y, spec.owner, weights, reduce)))
        if Y is None and not spec.regularized and spec.n_components >= spec.n_features:
            warnings.warn(
                f"{spec.owner} with n_components={spec.n_components} >= n_features="
                f"{spec.n_features} and no regularizer can learn the identity map and extract "
                "nothing useful. Use a smaller n_components, or regularize with sparsity=..., "
                "noise=... or contractive_weight=....",
                UserWarning, stacklevel=5,
            )
        return build_network(spec, shift, scale, torch.Generator().manual_seed(seed), targets)

    def _publish(self, spec, net, state, result, rng, fresh):
        """Set the fitted attributes."""
        self.module_ = net
        self._spec = spec
        self._optimizer_state = result.optimizer_state
        self._train_state = state
        self._random_state = rng
        self.n_iter_ = state.n_iter
        self.loss_curve_ = list(state.loss_curve)
        self.loss_terms_ = {k: list(v) for k, v in state.terms.items()}
        self.best_loss_ = state.best_loss
        if spec.early_stopping and not spec.incremental:
            self.validation_scores_ = list(state.validation_scores)
            self.best_validation_score_ = state.best_validation_score
        else:
            self.validation_scores_ = None
            self.best_validation_score_ = None
        if fresh:
            self.pretraining_loss_curves_ = result.pretraining_curves

    # --------------------------------------------------------------- inference
    def _validate_X(self, X):
        """Validate input to an inference method (finiteness is checked per chunk).

        A sparse ``X`` stays sparse, as CSR: it is densified chunk by chunk.
        """
        check_is_fitted(self)
        X = validate_data(
            self, X, accept_sparse=SPARSE_FORMATS, dtype=[np.float64, np.float32], reset=False,
            ensure_all_finite=False,
        )
        return as_csr(X) if sp.issparse(X) else X

    def _apply(self, X, parts, n_out):
        return _inference.transform(
            self.module_, X, parts, n_out, self._spec.max_width, type(self).__name__
        )

    def _encode(self, X):
        return self._apply(X, ("encoder",), self._spec.n_components)

    def _decode(self, Z):
        return self._apply(Z, ("decoder",), self._spec.n_features)

    def _reconstruct(self, X):
        spec = self._spec
        return self._apply(X, ("reconstruct",), spec.n_outputs or spec.n_features)

    def _errors(self, X, per_feature):
        return _inference.reconstruction_errors(
            self.module_, X, self._spec.loss, self._spec.max_width, per_feature
        )

    def _log_likelihood(self, X):
        spec = self._spec
        return _inference.log_likelihood(
            self.module_, X, spec.n_importance_samples, self._inference_seed, spec.max_width
        )

    def _feature_nll(self, X):
        return _inference.feature_negative_log_likelihood(self.module_, X, self._spec.max_width)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        return tags

    # -------------------------------------------------------------- pickling
    def __getstate__(self):
        # JSON and numpy arrays only (no torch object): see skae/_serialization.py
        return get_state(self)

    def __setstate__(self, state):
        set_state(self, state)


class _ReconstructMixin:
    """The public ``reconstruct`` of the estimators that reconstruct their input."""

    def reconstruct(self, X):
        """Encode and decode ``X``.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Input data.

        Returns
        -------
        X_hat : ndarray of shape (n_samples, n_features)
            Reconstruction of ``X``, in ``X``'s dtype (float64 or float32);
            a lazy Dask array for a Dask ``X``.
        """
        if is_dask_array(X):
            return self._lazy("reconstruct", X, self.n_features_in_)
        return self._reconstruct(self._validate_X(X))
