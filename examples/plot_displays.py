"""
===================================
Visualizing autoencoders with skae
===================================

The Displays of :mod:`skae.plotting` draw what a fitted autoencoder learned,
in scikit-learn's Display style: ``Display.from_estimator(...)`` computes
the data and plots it; the returned Display holds the data and the
matplotlib objects it drew. This example uses scikit-learn's 8x8 digits
(offline) and runs in a few seconds.
"""

# %%
# Data and models
# ---------------
# Digits scaled to [0, 1], as rows of 64 pixels. The transformer has a
# sparsity penalty (a second term of the loss) and holds out a validation
# set; the detector knows that its rows are 8x8 images (``image_shape``) and
# measures errors in pixel units (``standardize=False``: pixels share a scale).
import warnings

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning

from skae import AutoencoderAnomalyDetector, AutoencoderTransformer
from skae.plotting import (
    CodeDisplay,
    FeatureErrorDisplay,
    LossCurveDisplay,
    ReconstructionDisplay,
    ScoreDisplay,
)

warnings.simplefilter("ignore", ConvergenceWarning)  # short trainings for a quick example

X, y = load_digits(return_X_y=True)
X = (X / 16.0).astype(np.float32)
X_train, X_test, y_test = X[:1200], X[1200:], y[1200:]

ae = AutoencoderTransformer(
    n_components=8, sparsity="l1", sparsity_weight=1e-2, early_stopping=True,
    batch_size=128, max_iter=10, random_state=0,
).fit(X_train)
det = AutoencoderAnomalyDetector(
    n_components=8, image_shape=(8, 8), output_activation="sigmoid", standardize=False,
    contamination=0.05,
    batch_size=128, max_iter=25, random_state=0,
).fit(X_train[y[:1200] != 0])  # zeros are left out of training: they are the anomalies

# %%
# Training history
# ----------------
# The training loss, each of its terms (reconstruction and sparsity penalty)
# and, on the right axis, the validation score.
LossCurveDisplay.from_estimator(ae)

# %%
# Codes
# -----
# The codes have 8 components: ``components="pca"`` shows the first two
# principal components of the codes, coloured by the digit.
CodeDisplay.from_estimator(ae, X_test, y_test, components="pca")

# %%
# Reconstructions
# ---------------
# The detector was fitted with ``image_shape``, so samples (top row) and
# their reconstructions (bottom row) are drawn as images.
ReconstructionDisplay.from_estimator(det, X_test, n_samples=6)

# %%
# Without an image shape (the transformer), each sample's features are drawn
# as a profile, the reconstruction over the original.
ReconstructionDisplay.from_estimator(ae, X_test, n_samples=3)

# %%
# Anomaly scores
# --------------
# Zeros were never seen in training: split by label (``-1`` for zeros), their
# scores lie further below the detector's threshold ``offset_``.
labels = np.where(y_test == 0, -1, 1)
ScoreDisplay.from_estimator(det, X_test, labels)

# %%
# Which pixels make a sample anomalous
# ------------------------------------
# The ten pixels with the largest reconstruction error of the test set's
# first zero.
first_zero = int(np.flatnonzero(y_test == 0)[0])
FeatureErrorDisplay.from_estimator(det, X_test, sample=first_zero, top_k=10)

# %%
# Several Displays on one figure
# ------------------------------
# Every ``plot`` and ``from_estimator`` takes the Axes to draw on.
fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
LossCurveDisplay.from_estimator(det, ax=left)
CodeDisplay.from_estimator(ae, X_test, y_test, components=(0, 1), ax=right)
fig.tight_layout()
plt.show()
