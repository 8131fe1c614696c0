"""Autoencoder as a scikit-learn outlier detector."""

from numbers import Real

import numpy as np
from sklearn.base import OutlierMixin

from ._base import _BaseAutoencoder
from ._compat import Interval, StrOptions, _fit_context
from ._docs import NETWORK_AND_TRAINING_PARAMETERS, TRAINING_ATTRIBUTES, fill


class AutoencoderAnomalyDetector(OutlierMixin, _BaseAutoencoder):
    # The docstring is assembled below from the fragments shared with
    # AutoencoderTransformer.

    _parameter_constraints: dict = {
        **_BaseAutoencoder._parameter_constraints,
        "contamination": [StrOptions({"auto"}), Interval(Real, 0, 0.5, closed="right")],
        "trim_fraction": [Interval(Real, 0, 1, closed="left")],
    }

    def __init__(
        self,
        n_components=8,
        *,
        contamination=0.1,
        trim_fraction=0.3,
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
        max_iter=20,
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
        standardize=True,
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
        self.contamination = contamination
        self.trim_fraction = trim_fraction

    def _trim_fraction(self):
        return self.trim_fraction

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Train the autoencoder on X and set the outlier threshold.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training data, assumed mostly normal; labels are not used.
        y : Ignored
            Not used, present for API consistency by convention.

        Returns
        -------
        self : object
            Fitted estimator.
        """
        self._set_offset(self._fit(X))
        return self

    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y=None):
        """Run one epoch of training on X, then reset the threshold on X.

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
        self._set_offset(self._fit(X, incremental=True))
        return self

    def _set_offset(self, X):
        """Set ``offset_`` from the scores of the (validated) training data."""
        scores = self._score_samples(X)
        if self.contamination == "auto":
            # Flag errors far above the typical training error, on a log scale
            # where squared errors are close to symmetric: the median plus 3
            # scaled median absolute deviations of log(error).
            log_errors = np.log(np.maximum(-scores, np.finfo(scores.dtype).tiny))
            median = np.median(log_errors)
            mad = 1.4826 * np.median(np.abs(log_errors - median))
            self.offset_ = float(-np.exp(median + 3.0 * mad))
        else:
            self.offset_ = float(np.percentile(scores, 100.0 * self.contamination))

    def _score_samples(self, X):
        return -self._reconstruction_error(X)

    def score_samples(self, X):
        """Opposite of the reconstruction error: the lower, the more abnormal.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Data to score.

        Returns
        -------
        scores : ndarray of shape (n_samples,)
            ``-feature_errors(X).mean(axis=1)``.
        """
        return self._score_samples(self._validate_X(X))

    def decision_function(self, X):
        """Shifted score: negative for outliers, positive for inliers.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Data to score.

        Returns
        -------
        scores : ndarray of shape (n_samples,)
            ``score_samples(X) - offset_``.
        """
        return self.score_samples(X) - self.offset_

    def predict(self, X):
        """Label each sample as inlier (+1) or outlier (-1).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Data to label.

        Returns
        -------
        labels : ndarray of shape (n_samples,)
            -1 where ``decision_function(X) < 0``, else +1.
        """
        decision = self.decision_function(X)
        labels = np.ones(decision.shape[0], dtype=int)
        labels[decision < 0] = -1
        return labels

    def feature_errors(self, X):
        """Reconstruction error of every sample in every feature.

        Says which features make a sample anomalous.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Data to explain.

        Returns
        -------
        errors : ndarray of shape (n_samples, n_features)
            Elementwise ``loss`` between each sample and its reconstruction,
            in standard deviations of the training data when
            ``standardize=True``. Higher is more anomalous. Its mean over
            features is ``-score_samples(X)``.
        """
        return self._feature_errors(self._validate_X(X))


AutoencoderAnomalyDetector.__doc__ = fill(
    """Anomaly detector scoring samples by their autoencoder reconstruction error.

An autoencoder learns to reconstruct the (mostly normal) training data;
samples it reconstructs badly are anomalous. Follows scikit-learn's outlier
conventions, as :class:`~sklearn.ensemble.IsolationForest` does:
``score_samples`` is higher for more normal samples, ``decision_function``
is negative for outliers, and ``predict`` returns +1 for inliers and -1 for
outliers. :meth:`feature_errors` tells which features make a sample
anomalous.

Parameters
----------
n_components : int, default=8
    Size of the code (bottleneck).

contamination : "auto" or float, default=0.1
    Expected share of outliers in the training data, in (0, 0.5]: the
    threshold ``offset_`` is set so that this share of training samples is
    flagged. With ``"auto"``, no share is assumed: a sample is flagged when
    the logarithm of its reconstruction error exceeds the median over the
    training data by more than 3 scaled median absolute deviations (a robust
    "3 sigma" rule). Only ``predict`` and ``decision_function`` depend on
    it, not ``score_samples``.

trim_fraction : float, default=0.3
    Robust training: in every batch, the ``trim_fraction`` of samples with
    the largest reconstruction error are left out of the loss (a trimmed
    mean), so that anomalies in the training data are not learned. 0 trains
    on every sample.

{parameters}
Attributes
----------
offset_ : float
    Threshold on ``score_samples``: ``decision_function = score_samples -
    offset_``.

{attributes}
See Also
--------
sklearn.ensemble.IsolationForest : Tree-based anomaly detector.
AutoencoderTransformer : The same network as a transformer.

Notes
-----
Scale: with the default ``standardize=True`` every feature is standardized
inside the network with the training mean and standard deviation, and the
reconstruction error is measured in standard deviations, so a feature with
large values cannot dominate the score. Features that should count more or
less can still be rescaled by the user before fitting with
``standardize=False``. Heavy-tailed features are best transformed first
(e.g. ``QuantileTransformer`` or a log).

Examples
--------
>>> import numpy as np
>>> from skae import AutoencoderAnomalyDetector
>>> rng = np.random.RandomState(0)
>>> X = rng.normal(size=(500, 5))
>>> X[:5] += 8  # five outliers
>>> det = AutoencoderAnomalyDetector(n_components=2, contamination=0.01,
...                                  max_iter=20, random_state=0).fit(X)
>>> det.predict(X[:5])
array([-1, -1, -1, -1, -1])
""",
    parameters=fill(
        NETWORK_AND_TRAINING_PARAMETERS,
        hidden_layer_sizes="(64,)",
        max_iter="20",
        standardize="True",
    ),
    attributes=TRAINING_ATTRIBUTES,
)
