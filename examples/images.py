"""
Image tasks on digits
=====================

Denoising with a convolutional denoising autoencoder, watermark removal with
the regressor, a per-pixel anomaly heat map, and compression to bytes, on
scikit-learn's 8x8 digits (offline, about a minute on 2 CPU cores). The
benchmarks on MNIST, Fashion-MNIST and Kodak tiles are in
``benchmarks/bench_images.py``; the :ref:`image examples
<sphx_glr_auto_examples_image_tasks>` draw their figures.
"""

import warnings

import numpy as np
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning

from skae import AutoencoderAnomalyDetector, AutoencoderRegressor, AutoencoderTransformer, corrupt

warnings.simplefilter("ignore", ConvergenceWarning)


def psnr(clean, restored):
    mse = np.mean((np.clip(restored, 0, 1) - clean) ** 2)
    return 10 * np.log10(1.0 / mse)


X = (load_digits().data / 16.0).astype(np.float32)  # 1797 images, rows of 8 x 8 pixels
train, test = X[:1500], X[1500:]
conv = dict(architecture="conv", image_shape=(8, 8, 1), conv_channels=(16, 32),
            output_activation="sigmoid", random_state=0)

# denoising: a spatial code (n_components=None) trained on noisy inputs
noisy = corrupt(test, "gaussian", 0.2, random_state=1)
dae = AutoencoderTransformer(n_components=None, hidden_layer_sizes=(), noise="gaussian",
                             noise_level=0.2, max_iter=150, **conv).fit(train)
print(f"denoising, sigma 0.2:  noisy {psnr(test, noisy):.2f} dB -> "
      f"restored {psnr(test, dae.reconstruct(noisy)):.2f} dB")

# watermark removal: pairs (marked, clean), skip connections keep the detail
marked_train = corrupt(train, "watermark", 0.6, image_shape=(8, 8), random_state=2)
marked_test = corrupt(test, "watermark", 0.6, image_shape=(8, 8), random_state=3)
reg = AutoencoderRegressor(n_components=None, hidden_layer_sizes=(), skip_connections=True,
                           max_iter=150, **conv).fit(marked_train, train)
print(f"watermark removal:     marked {psnr(test, marked_test):.2f} dB -> "
      f"restored {psnr(test, reg.predict(marked_test)):.2f} dB")

# anomaly heat map: a bright patch pasted into test digits
det = AutoencoderAnomalyDetector(n_components=16, max_iter=100, **conv).fit(train)
patched = test.reshape(-1, 8, 8).copy()
patched[:, 0:3, 5:8] = 1.0
heat = det.feature_errors(patched.reshape(len(test), -1)).reshape(-1, 8, 8)
patch = np.zeros((8, 8), bool)
patch[0:3, 5:8] = True
inside = np.mean([h[patch].mean() / h[~patch].mean() for h in heat])
print(f"anomaly heat map:      the patch's pixels err {inside:.0f}x more than the rest")

# compression: a 16-value code, 4 bits per value = 8 bytes per image
ae = AutoencoderTransformer(n_components=16, max_iter=150, **conv).fit(train)
data = ae.compress(test, n_bits=4)
print(f"compression:           {len(data[0])} bytes per image (64 raw), "
      f"{psnr(test, ae.decompress(data, n_bits=4)):.2f} dB")
