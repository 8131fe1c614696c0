"""
Removing watermarks with the regressor
======================================

:class:`~skae.AutoencoderRegressor` learns from pairs: watermarked digits in,
clean digits out. Skip connections (``skip_connections=True``) pass the
detail of the input past the bottleneck. Rows of watermarked, restored and
clean held-out digits, as in the images guide on MNIST and Fashion-MNIST.
"""

import warnings

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning

from skae import AutoencoderRegressor, corrupt

warnings.simplefilter("ignore", ConvergenceWarning)

X = (load_digits().data / 16.0).astype(np.float32)
train, test = X[:1500], X[1500:]
marked_train = corrupt(train, "watermark", 0.6, image_shape=(8, 8), random_state=2)
marked_test = corrupt(test, "watermark", 0.6, image_shape=(8, 8), random_state=3)

reg = AutoencoderRegressor(
    n_components=None, hidden_layer_sizes=(), architecture="conv", image_shape=(8, 8, 1),
    conv_channels=(16, 32), skip_connections=True, output_activation="sigmoid",
    max_iter=60, random_state=0,
).fit(marked_train, train)
restored = reg.predict(marked_test)


def psnr(clean, restored):
    return 10 * np.log10(1.0 / np.mean((np.clip(restored, 0, 1) - clean) ** 2))


print(f"watermarked {psnr(test, marked_test):.2f} dB, restored {psnr(test, restored):.2f} dB")

# %%
fig, axes = plt.subplots(3, 8, figsize=(8.8, 3.75))
for i, (images, title) in enumerate(zip((marked_test, restored, test),
                                        ("watermarked", "restored", "clean"))):
    for j in range(8):
        axes[i, j].imshow(np.clip(images[j], 0, 1).reshape(8, 8), cmap="gray", vmin=0, vmax=1)
        axes[i, j].axis("off")
    axes[i, 0].set_title(title, fontsize=8, loc="left")
fig.tight_layout()
