"""Output containers (pandas, polars) for estimators without ``transform``.

scikit-learn's ``set_output`` only wraps ``transform`` and ``fit_transform``.
The anomaly detector has neither, but its per-feature errors have the input's
features: ``_FeatureOutputMixin`` gives it ``set_output`` and
``get_feature_names_out`` with scikit-learn's rules and wraps a method's
output with scikit-learn's own container adapters, so the estimator's
``set_output(transform=...)`` and the global
``sklearn.set_config(transform_output=...)`` apply as they do to a
transformer.
"""

from sklearn.utils.validation import check_is_fitted

from ._compat import ADAPTERS_MANAGER, _check_feature_names_in, _get_output_config


class _FeatureOutputMixin:
    """``set_output`` and ``get_feature_names_out`` for per-feature outputs."""

    def get_feature_names_out(self, input_features=None):
        """Get output feature names: the names of the per-feature errors.

        The per-feature outputs (:meth:`feature_errors`) have one column per
        input feature, so these are the input feature names.

        Parameters
        ----------
        input_features : array-like of str or None, default=None
            Input feature names. If None, ``feature_names_in_`` is used when
            defined, else ``["x0", "x1", ..., "x(n_features_in_ - 1)"]``.
            If given, it must match ``feature_names_in_`` when that is
            defined, and have ``n_features_in_`` names.

        Returns
        -------
        feature_names_out : ndarray of str objects
            The input feature names.
        """
        check_is_fitted(self, "n_features_in_")
        return _check_feature_names_in(self, input_features)

    def set_output(self, *, transform=None):
        """Set the output container of the per-feature outputs.

        Applies to :meth:`feature_errors`, whose columns are named by
        :meth:`get_feature_names_out`. Without a call, the global
        ``sklearn.set_config(transform_output=...)`` applies.

        Parameters
        ----------
        transform : {"default", "pandas", "polars"} or None, default=None
            ``"default"``: ndarray; ``"pandas"``: a pandas DataFrame (with
            the input's index when the input is a pandas DataFrame);
            ``"polars"``: a polars DataFrame; None leaves the configuration
            unchanged.

        Returns
        -------
        self : estimator instance
            Estimator instance.
        """
        if transform is None:
            return self
        supported = sorted(ADAPTERS_MANAGER.supported_outputs)
        if not isinstance(transform, str) or transform not in supported:
            raise ValueError(
                f"The 'transform' parameter of {type(self).__name__}.set_output must be a str "
                f"among {supported} or None. Got {transform!r} instead."
            )
        if not hasattr(self, "_sklearn_output_config"):
            self._sklearn_output_config = {}
        self._sklearn_output_config["transform"] = transform
        return self

    def _wrap_features(self, data, X):
        """``data`` (n_samples, n_features_in_) in the configured container.

        ``X`` is the method's original input (its index is kept for pandas).
        """
        dense = _get_output_config("transform", self)["dense"]
        if dense == "default":
            return data
        return ADAPTERS_MANAGER.adapters[dense].create_container(
            data, X, columns=self.get_feature_names_out()
        )
