"""The one place where skae imports private scikit-learn API."""

from sklearn.base import _fit_context
from sklearn.utils._param_validation import (
    Hidden,
    Interval,
    InvalidParameterError,
    StrOptions,
)
from sklearn.utils._optional_dependencies import check_matplotlib_support
from sklearn.utils._set_output import ADAPTERS_MANAGER, _get_output_config
from sklearn.utils.validation import (
    _check_feature_names,
    _check_feature_names_in,
    _check_n_features,
    validate_data,
)

__all__ = [
    "ADAPTERS_MANAGER",
    "_check_feature_names",
    "_check_feature_names_in",
    "_check_n_features",
    "_get_output_config",
    "check_matplotlib_support",
    "Hidden",
    "Interval",
    "InvalidParameterError",
    "StrOptions",
    "_fit_context",
    "validate_data",
]
