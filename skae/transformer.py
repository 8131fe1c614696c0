"""Autoencoder as a scikit-learn transformer."""

import numpy as np
from sklearn.base import ClassNamePrefixFeaturesOutMixin, TransformerMixin
from sklearn.utils.validation import check_array, check_is_fitted

from ._base import _BaseAutoencoder
from ._compat import _fit_context
from ._docs import NETWORK_AND_TRAINING_PARAMETERS, TRAINING_ATTRIBUTES, fill


class AutoencoderTransformer(ClassNamePrefixFeaturesOutMixin, TransformerMixin, _BaseAutoencoder):
    # The docstring is assembled below from the fragments shared with
    # AutoencoderAnomalyDetector.

    def __init__(
        self,
        n_components=2,
        *,
        hidden_layer_sizes=(64,),
        activation="relu",
        latent_activation="identity",
        output_activation="identity",
        loss="mse",
        solver="adam",
        alpha=0.0,
        batch_size=256,
        learning_rate="constant",
        learning_rate_init=1e-3,
        max_iter=200,
        shuffle=True,
        random_state=None,
        tol=1e-4,
        verbose=False,
        warm_start=False,
        momentum=0.9,
        nesterovs_momentum=True,
        early_stopping=False,
        validation_fraction=0.1,
        beta_1=0.9,
        beta_2=0.999,
        epsilon=1e-8,
        n_iter_no_change=10,
        standardize=False,
        sparsity=None,
        sparsity_weight=1e-3,
        sparsity_target=0.05,
        sparsity_layers="code",
        noise=None,
        noise_level=0.1,
        contractive_weight=0.0,
        pretraining=None,
        pretraining_max_iter=None,
        tied_weights=False,
        device="auto",
        precision="float32",
    ):
        super().__init__(
            n_components,
            hidden_layer_sizes=hidden_layer_sizes,
            activation=activation,
            latent_activation=latent_activation,
            output_activation=output_activation,
            loss=loss,
            solver=solver,
            alpha=alpha,
            batch_size=batch_size,
            learning_rate=learning_rate,
            learning_rate_init=learning_rate_init,
            max_iter=max_iter,
            shuffle=shuffle,
            random_state=random_state,
            tol=tol,
            verbose=verbose,
            warm_start=warm_start,
            momentum=momentum,
            nesterovs_momentum=nesterovs_momentum,
            early_stopping=early_stopping,
            validation_fraction=validation_fraction,
            beta_1=beta_1,
            beta_2=beta_2,
            epsilon=epsilon,
            n_iter_no_change=n_iter_no_change,
            standardize=standardize,
            sparsity=sparsity,
            sparsity_weight=sparsity_weight,
            sparsity_target=sparsity_target,
            sparsity_layers=sparsity_layers,
            noise=noise,
            noise_level=noise_level,
            contractive_weight=contractive_weight,
            pretraining=pretraining,
            pretraining_max_iter=pretraining_max_iter,
            tied_weights=tied_weights,
            device=device,
            precision=precision,
        )

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Train the autoencoder on X.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training data.
        y : Ignored
            Not used, present for API consistency by convention.

        Returns
        -------
        self : object
            Fitted estimator.
        """
        self._fit(X)
        return self

    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y=None):
        """Run one epoch of training on X, starting a model on the first call.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training data.
        y : Ignored
            Not used, present for API consistency by convention.

        Returns
        -------
        self : object
            Updated estimator.
        """
        self._fit(X, incremental=True)
        return self

    def transform(self, X):
        """Encode X.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Data to encode.

        Returns
        -------
        Z : ndarray of shape (n_samples, n_components)
            Codes, in X's dtype (float64 or float32).
        """
        return self._encode(self._validate_X(X))

    def inverse_transform(self, X):
        """Decode codes back to the input space.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_components)
            Codes, as returned by :meth:`transform`.

        Returns
        -------
        X_original : ndarray of shape (n_samples, n_features)
            Decoded data, in the codes' dtype (float64 or float32).
        """
        check_is_fitted(self)
        Z = check_array(X, dtype=[np.float64, np.float32])
        if Z.shape[1] != self.n_components:
            raise ValueError(
                f"X has {Z.shape[1]} features, but {type(self).__name__}.inverse_transform "
                f"expects codes with n_components={self.n_components} features."
            )
        return self._decode(Z)

    def score_samples(self, X):
        """Negative reconstruction error of each sample (higher is better).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Data.

        Returns
        -------
        scores : ndarray of shape (n_samples,)
            Minus the mean over features of the elementwise ``loss``.
        """
        return -self._reconstruction_error(self._validate_X(X))

    def score(self, X, y=None):
        """Negative mean reconstruction error on X (higher is better).

        Lets ``GridSearchCV`` and ``cross_val_score`` rank models without
        labels.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Data.
        y : Ignored
            Not used, present for API consistency by convention.

        Returns
        -------
        score : float
            Mean of :meth:`score_samples`.
        """
        return float(np.mean(self.score_samples(X)))

    @property
    def _n_features_out(self):
        """Number of transformed output features."""
        return self.n_components

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags


AutoencoderTransformer.__doc__ = fill(
    """Autoencoder for dimensionality reduction, feature extraction and denoising.

An MLP encoder maps each sample to a code of ``n_components`` values and a
mirrored decoder maps the code back; both are trained with PyTorch to
minimize the reconstruction error, on a GPU when there is one.
``transform`` returns the codes, ``inverse_transform`` decodes them, and
``score`` is the negative mean reconstruction error, so model selection
works without labels.

With ``hidden_layer_sizes=()``, identity activations and ``loss="mse"``,
the autoencoder is linear and reaches the reconstruction error of
:class:`~sklearn.decomposition.PCA` with the same ``n_components``.

Parameters
----------
n_components : int, default=2
    Size of the code (bottleneck).

{parameters}
Attributes
----------
{attributes}
See Also
--------
sklearn.decomposition.PCA : Linear dimensionality reduction.
AutoencoderAnomalyDetector : The same network used to score anomalies.

Notes
-----
Training runs in float32. Inference runs in the dtype of the input: float64
input is encoded and decoded in float64, float32 input in float32. Inference
processes the data in chunks, so its extra memory stays bounded for any
number of samples.

Examples
--------
>>> from sklearn.datasets import load_digits
>>> from skae import AutoencoderTransformer
>>> X = load_digits().data / 16
>>> ae = AutoencoderTransformer(n_components=8, max_iter=5, random_state=0)
>>> ae.fit_transform(X).shape
(1797, 8)
>>> ae.inverse_transform(ae.transform(X[:3])).shape
(3, 64)
""",
    parameters=fill(
        NETWORK_AND_TRAINING_PARAMETERS,
        hidden_layer_sizes="(64,)",
        max_iter="200",
        standardize="False",
    ),
    attributes=TRAINING_ATTRIBUTES,
)
