"""scikit-learn's estimator checks over every public estimator."""

from sklearn.utils.estimator_checks import parametrize_with_checks

from skae import AutoencoderAnomalyDetector, AutoencoderTransformer

ESTIMATORS = [
    AutoencoderTransformer(max_iter=5, random_state=0),
    AutoencoderAnomalyDetector(max_iter=5, random_state=0),
]

#: Checks that are expected to fail, with the reason. Goal: empty.
EXPECTED_FAILED_CHECKS = {}


@parametrize_with_checks(ESTIMATORS, expected_failed_checks=lambda est: EXPECTED_FAILED_CHECKS)
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)
