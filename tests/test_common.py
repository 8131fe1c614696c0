"""scikit-learn's estimator checks over every public estimator."""

import pytest
from sklearn.utils.estimator_checks import parametrize_with_checks

from skae import (
    AutoencoderAnomalyDetector,
    AutoencoderEnsembleDetector,
    AutoencoderRegressor,
    AutoencoderTransformer,
)

#: A convolutional network on rows as 1-pixel-high images of any width (a
#: variational one is the variational kind with convolutional stages: tested in
#: test_images.py).
CONV = dict(architecture="conv", image_shape=(1, -1, 1), conv_channels=(4, 8))

ESTIMATORS = [
    AutoencoderTransformer(max_iter=5, random_state=0),
    AutoencoderAnomalyDetector(max_iter=5, random_state=0),
    # each network kind: the variational one scores by likelihood
    AutoencoderTransformer(variational=True, max_iter=5, random_state=0),
    AutoencoderAnomalyDetector(variational=True, max_iter=5, random_state=0),
    # scores relative to each feature's training error
    AutoencoderAnomalyDetector(relative_errors=True, max_iter=2, random_state=0),
    # scores combining the error with the code's Mahalanobis distance
    AutoencoderAnomalyDetector(code_distance="multiply", max_iter=2, random_state=0),
    # the reconstruction error alone
    AutoencoderAnomalyDetector(code_distance=None, max_iter=2, random_state=0),
    # scores by the distance to the nearest training sample in the whitened space
    AutoencoderAnomalyDetector(n_neighbors=1, max_iter=2, random_state=0),
    AutoencoderTransformer(max_iter=5, random_state=0, **CONV),
    AutoencoderAnomalyDetector(max_iter=5, random_state=0, **CONV),
    AutoencoderRegressor(max_iter=50, random_state=0),
    AutoencoderEnsembleDetector(AutoencoderAnomalyDetector(max_iter=2), n_estimators=2,
                                random_state=0),
    # a convolutional regressor's targets are images (the checks' y is not), and
    # skip connections change the layers, not the API: both in test_images.py
]

#: Checks that are expected to fail, with the reason. Goal: empty.
EXPECTED_FAILED_CHECKS = {}


# The checks fit on tiny data sets (1 to 5 features) for a few epochs: the
# warnings that this is too short to converge, that a code as wide as the
# input can learn the identity, and that a variational code that has had no
# time to learn carries no information (posterior collapse), are expected there.
@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.filterwarnings("ignore:.*can learn the identity map:UserWarning")
@pytest.mark.filterwarnings("ignore::skae.PosteriorCollapseWarning")
@parametrize_with_checks(ESTIMATORS, expected_failed_checks=lambda est: EXPECTED_FAILED_CHECKS)
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)
