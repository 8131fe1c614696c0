"""
Colorizing gray images
======================

:class:`~skae.AutoencoderRegressor` maps one-channel images to three-channel
ones: the input is the gray (luma) version of a tile, the target its colours.
The tiles come from the two photographs that ship with scikit-learn
(:func:`sklearn.datasets.load_sample_images`); the images guide shows the
same on Kodak tiles. Rows of gray, colourized and true held-out tiles.
"""

import warnings

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_sample_images
from sklearn.exceptions import ConvergenceWarning

from skae import AutoencoderRegressor

warnings.simplefilter("ignore", ConvergenceWarning)

size = 16
tiles = []
for photo in load_sample_images().images:
    h, w = photo.shape[0] // size * size, photo.shape[1] // size * size
    t = photo[:h, :w].reshape(h // size, size, w // size, size, 3).swapaxes(1, 2)
    tiles.append(t.reshape(-1, size * size * 3))
colour = (np.concatenate(tiles) / 255.0).astype(np.float32)
colour = colour[np.random.RandomState(0).permutation(len(colour))]
luma = np.array([0.299, 0.587, 0.114], dtype=np.float32)
gray = colour.reshape(len(colour), -1, 3) @ luma
train, test = slice(0, 1600), slice(1600, None)

reg = AutoencoderRegressor(
    n_components=None, hidden_layer_sizes=(), architecture="conv",
    image_shape=(size, size, 1), conv_channels=(16, 32), skip_connections=True,
    output_activation="sigmoid", batch_size=64, learning_rate_init=2e-3, max_iter=15,
    random_state=0,
).fit(gray[train], colour[train])
pred = reg.predict(gray[test])
gray3 = np.repeat(gray[test][:, :, None], 3, axis=2).reshape(len(pred), -1)


def psnr(clean, restored):
    return 10 * np.log10(1.0 / np.mean((np.clip(restored, 0, 1) - clean) ** 2))


print(f"{len(colour)} tiles of {size}x{size}; held-out PSNR: gray {psnr(colour[test], gray3):.2f}"
      f" dB, colourized {psnr(colour[test], pred):.2f} dB")

# %%
fig, axes = plt.subplots(3, 8, figsize=(8.8, 3.75))
for i, (images, title) in enumerate(zip((gray3, pred, colour[test]),
                                        ("gray", "colourized", "true"))):
    for j in range(8):
        axes[i, j].imshow(np.clip(images[j], 0, 1).reshape(size, size, 3))
        axes[i, j].axis("off")
    axes[i, 0].set_title(title, fontsize=8, loc="left")
fig.tight_layout()
