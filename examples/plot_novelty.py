"""
Novelty detection: clean training data, relative errors, the code distance
==========================================================================

In novelty detection the training data holds no anomalies, and new samples
are scored against it (scikit-learn's ``LocalOutlierFactor(novelty=True)``).
With clean data the detector's short, trimmed training is not needed: this
example trains on every sample for longer (``trim_fraction=0``,
``max_iter=200``) in batches of 256 rows, and measures each feature's error
relative to its mean training error (``relative_errors=True``); the score
adds the code's Mahalanobis distance (``code_distance="auto"``, the
default). This is the setting the anomaly detection guide selects for
novelty detection on ADBench. The data: scikit-learn's 8x8 digits, training
on half of the digits 0 to 8, testing on the other half and on every 9.
"""

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.ensemble import IsolationForest
from sklearn.metrics import roc_auc_score
from sklearn.neighbors import LocalOutlierFactor
from sklearn.preprocessing import MinMaxScaler

from skae import AutoencoderAnomalyDetector

# %%
# Clean training data: half of the normal digits. The test set holds the
# other half and every 9, the novelty.
X, digit = load_digits(return_X_y=True)
rng = np.random.RandomState(0)
normal = rng.permutation(np.flatnonzero(digit != 9))
train, test = normal[: len(normal) // 2], np.r_[normal[len(normal) // 2:],
                                                 np.flatnonzero(digit == 9)]
scaler = MinMaxScaler().fit(X[train])
X_train, X_test = scaler.transform(X[train]), scaler.transform(X[test])
is_novel = digit[test] == 9
print(f"{len(X_train)} training rows; {len(X_test)} test rows, {is_novel.sum()} of them 9s")

# %%
# The detectors. The novelty setting trains on every sample (no trimming) for
# up to 200 epochs, until the loss stops improving; the same without the code
# distance shows what the distance adds.
novelty = dict(trim_fraction=0.0, max_iter=200, batch_size=256, activation="relu",
               learning_rate_init=1e-3, relative_errors=True)
detectors = {
    "skae defaults": AutoencoderAnomalyDetector(random_state=0),
    "skae novelty setting": AutoencoderAnomalyDetector(random_state=0, **novelty),
    "  no code distance": AutoencoderAnomalyDetector(random_state=0, code_distance=None,
                                                     **novelty),
    "LOF (novelty=True)": LocalOutlierFactor(novelty=True),
    "IsolationForest": IsolationForest(random_state=0),
}
auroc = {}
for name, detector in detectors.items():
    detector.fit(X_train)
    auroc[name] = roc_auc_score(is_novel, -detector.score_samples(X_test))
    print(f"{name:22s} AUROC {auroc[name]:.3f}")

# %%
# Which pixels make a 9 new? ``feature_errors`` of the novelty setting,
# averaged over the 9s of the test set, next to their mean image: each
# pixel's error relative to its usual error on the training digits.
errors = detectors["skae novelty setting"].feature_errors(X_test[is_novel]).mean(axis=0)
fig, axes = plt.subplots(1, 3, figsize=(10, 3.2))
axes[0].barh(list(auroc), list(auroc.values()), color="tab:blue")
axes[0].set_xlim(0.5, 1.0)
axes[0].set_xlabel("AUROC, 9s against the other digits")
axes[0].invert_yaxis()
axes[1].imshow(X_test[is_novel].mean(axis=0).reshape(8, 8), cmap="gray_r")
axes[1].set_title("mean test 9")
image = axes[2].imshow(errors.reshape(8, 8), cmap="magma")
axes[2].set_title("relative error per pixel")
fig.colorbar(image, ax=axes[2])
for ax in axes[1:]:
    ax.set_axis_off()
fig.tight_layout()
plt.show()
