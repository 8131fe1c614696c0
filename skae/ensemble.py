"""An ensemble of autoencoder anomaly detectors that differ by their random seed."""

import copy
from numbers import Integral, Real

import numpy as np
from sklearn.base import BaseEstimator, OutlierMixin, _fit_context, clone
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted

from . import _distributed
from ._blocks import LazyRowsMixin, is_dask_array
from ._compat import Interval, StrOptions
from ._output import _FeatureOutputMixin
from .anomaly import AutoencoderAnomalyDetector, _OutlierScoresMixin, outlier_threshold

#: Largest seed drawn for a member (numpy's and torch's seeds take it).
_MAX_SEED = np.iinfo(np.int32).max


class AutoencoderEnsembleDetector(_OutlierScoresMixin, _FeatureOutputMixin, OutlierMixin,
                                  LazyRowsMixin, BaseEstimator):
    """Anomaly detector averaging the scores of several autoencoder detectors.

    Fits ``n_estimators`` copies of ``estimator`` (an
    :class:`AutoencoderAnomalyDetector`) that differ only by their
    ``random_state``, so by their initial weights and the order of their
    batches, and scores a sample by the mean of their ``score_samples``. An
    autoencoder's errors vary from one seed to the next on samples it has not
    learned well; their mean ranks samples more reliably than any one member
    (see the anomaly detection guide for the measured gain), at
    ``n_estimators`` times the cost. The conventions are
    :class:`AutoencoderAnomalyDetector`'s: ``score_samples`` is higher for
    more normal samples, ``decision_function`` is negative for outliers, and
    ``predict`` returns +1 for inliers and -1 for outliers.

    Parameters
    ----------
    estimator : AutoencoderAnomalyDetector or None, default=None
        The detector whose copies are fitted; None means
        ``AutoencoderAnomalyDetector()``. Its ``random_state`` is replaced
        in every member, and its ``contamination`` is not used (the ensemble
        has its own).

    n_estimators : int, default=3
        Number of members, at least 1.

    contamination : "auto" or float, default=0.1
        Expected share of outliers in the training data, in (0, 0.5]: the
        threshold ``offset_`` is set so that this share of training samples
        is flagged by the ensemble's scores. ``"auto"``: the rule of
        :class:`AutoencoderAnomalyDetector` (3 scaled median absolute
        deviations above the median of the log errors, or of the negative
        log-likelihoods of variational members), applied to the ensemble's
        scores. Only ``predict`` and ``decision_function`` depend on it.

    random_state : int, RandomState instance or None, default=None
        Draws the members' seeds: member ``i`` gets the ``i``-th of
        ``n_estimators`` integers drawn from it. Pass an int for reproducible
        results.

    Attributes
    ----------
    estimators_ : list of AutoencoderAnomalyDetector
        The fitted members.

    random_states_ : ndarray of shape (n_estimators,)
        The members' seeds.

    offset_ : float
        Threshold on ``score_samples``: ``decision_function = score_samples -
        offset_``.

    n_features_in_ : int
        Number of features seen during fit.

    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of features seen during fit. Defined only when ``X`` has feature
        names that are all strings.

    See Also
    --------
    AutoencoderAnomalyDetector : One member.
    sklearn.ensemble.IsolationForest : An ensemble of isolation trees.

    Notes
    -----
    The members are fitted one after the other, each as a call to its own
    ``fit`` would, on every kind of input the detector takes (sparse
    matrices, memory maps, Dask arrays, sample weights, under ``torchrun``).
    ``fit`` and ``partial_fit`` are transactional: if a member's training
    raises, the ensemble is left as it was. ``feature_errors`` is the mean
    of the members' ``feature_errors``, so that its mean over features is
    ``-score_samples`` for members scored by reconstruction error.

    Examples
    --------
    >>> import numpy as np
    >>> from skae import AutoencoderAnomalyDetector, AutoencoderEnsembleDetector
    >>> rng = np.random.RandomState(0)
    >>> X = rng.normal(size=(500, 5))
    >>> X[:5] += 8  # five outliers
    >>> ens = AutoencoderEnsembleDetector(
    ...     AutoencoderAnomalyDetector(n_components=2, max_iter=20),
    ...     n_estimators=3, contamination=0.01, random_state=0).fit(X)
    >>> ens.predict(X[:5])
    array([-1, -1, -1, -1, -1])
    """

    _parameter_constraints: dict = {
        "estimator": [AutoencoderAnomalyDetector, None],
        "n_estimators": [Interval(Integral, 1, None, closed="left")],
        "contamination": [StrOptions({"auto"}), Interval(Real, 0, 0.5, closed="right")],
        "random_state": ["random_state"],
    }

    def __init__(self, estimator=None, *, n_estimators=3, contamination=0.1,
                 random_state=None):
        self.estimator = estimator
        self.n_estimators = n_estimators
        self.contamination = contamination
        self.random_state = random_state

    # ------------------------------------------------------------- training
    def _members(self):
        """Unfitted members with their seeds, drawn from ``random_state``."""
        template = AutoencoderAnomalyDetector() if self.estimator is None else self.estimator
        seeds = check_random_state(self.random_state).randint(_MAX_SEED, size=self.n_estimators)
        return [clone(template).set_params(random_state=int(s)) for s in seeds], seeds

    def _fit_members(self, members, X, sample_weight, incremental):
        fitted = []
        for member in members:
            call = member.partial_fit if incremental else member.fit
            fitted.append(call(X, sample_weight=sample_weight))
        return fitted

    def _finish(self, members, seeds, X, sample_weight):
        """Set the fitted state from fitted ``members`` (nothing is set before)."""
        first = members[0]
        scores = _mean([m.score_samples(X) for m in members])
        if is_dask_array(scores):
            scores = scores.compute()
        dtype = scores.dtype
        weights = None
        if sample_weight is not None:
            weights = np.asarray(sample_weight, dtype=np.float64)
        spec = first._spec
        offset = outlier_threshold(scores, weights, self.contamination, spec.variational, dtype,
                                   _distributed.current(spec.device, type(self).__name__))
        self.estimators_ = members
        self.random_states_ = np.asarray(seeds)
        self.offset_ = offset
        self.n_features_in_ = first.n_features_in_
        if hasattr(first, "feature_names_in_"):
            self.feature_names_in_ = first.feature_names_in_
        elif hasattr(self, "feature_names_in_"):
            del self.feature_names_in_
        return self

    @_fit_context(prefer_skip_nested_validation=False)
    def fit(self, X, y=None, sample_weight=None):
        """Fit every member on X and set the outlier threshold.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Training data, assumed mostly normal; labels are not used.
        y : Ignored
            Not used, present for API consistency by convention.
        sample_weight : array-like of shape (n_samples,), default=None
            Sample weights, as frequencies (see
            :meth:`AutoencoderAnomalyDetector.fit`): each member trains on
            them, and they weight the training scores of the threshold.

        Returns
        -------
        self : object
            Fitted estimator.
        """
        members, seeds = self._members()
        members = self._fit_members(members, X, sample_weight, incremental=False)
        return self._finish(members, seeds, X, sample_weight)

    @_fit_context(prefer_skip_nested_validation=False)
    def partial_fit(self, X, y=None, sample_weight=None):
        """Run one epoch of training of every member on X, then reset the threshold on X.

        The first call creates the members, as ``fit`` does.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Training data.
        y : Ignored
            Not used, present for API consistency by convention.
        sample_weight : array-like of shape (n_samples,), default=None
            Sample weights, as in :meth:`fit`.

        Returns
        -------
        self : object
            Updated estimator.
        """
        if hasattr(self, "estimators_"):
            # train copies: a failing member leaves the ensemble as it was
            members = [copy.deepcopy(m) for m in self.estimators_]
            seeds = self.random_states_
        else:
            members, seeds = self._members()
        members = self._fit_members(members, X, sample_weight, incremental=True)
        return self._finish(members, seeds, X, sample_weight)

    # ------------------------------------------------------------ inference
    def score_samples(self, X):
        """Mean of the members' ``score_samples``: the lower, the more abnormal.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Data to score.

        Returns
        -------
        scores : ndarray of shape (n_samples,)
            In X's dtype (float32 or float64); a lazy Dask array, computed
            block by block, for a Dask ``X``.
        """
        check_is_fitted(self)
        if is_dask_array(X):
            return self._lazy("score_samples", X)
        return _mean([m.score_samples(X) for m in self.estimators_])

    def feature_errors(self, X):
        """Mean of the members' ``feature_errors``: which features make a sample anomalous.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Data to explain.

        Returns
        -------
        errors : ndarray or DataFrame of shape (n_samples, n_features)
            A pandas or polars DataFrame when :meth:`set_output` or
            ``sklearn.set_config(transform_output=...)`` asks for one. With
            members scored by reconstruction error alone
            (``code_distance=None``), its mean over features is
            ``-score_samples(X)``. A lazy Dask array (no column names)
            for a Dask ``X``.
        """
        check_is_fitted(self)
        if is_dask_array(X):
            return self._lazy("_feature_error_array", X, self.n_features_in_)
        return self._wrap_features(self._feature_error_array(X), X)

    def _feature_error_array(self, X):
        return _mean([m._feature_error_array(X) for m in self.estimators_])

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        return tags


def _mean(arrays):
    """Elementwise mean of equally shaped arrays, in their dtype; -inf and +inf stay."""
    total = arrays[0].astype(np.float64)
    for a in arrays[1:]:
        total = total + a
    with np.errstate(over="ignore"):
        return (total / len(arrays)).astype(arrays[0].dtype)
