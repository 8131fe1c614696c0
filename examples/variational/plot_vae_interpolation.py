"""
Interpolating in the latent space
=================================

Pairs of held-out digits are encoded (posterior means, ``transform``), and
the straight line between their codes is decoded (``inverse_transform``):
each row goes from one digit to another through images the model finds
likely. The variational guide shows the same on MNIST.
"""

import warnings

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning

from skae import AutoencoderTransformer

warnings.simplefilter("ignore", ConvergenceWarning)

X = load_digits().data / 16.0
train, test = X[:1500], X[1500:]
vae = AutoencoderTransformer(
    n_components=8, hidden_layer_sizes=(128, 128), activation="tanh", variational=True,
    loss="bce", output_activation="sigmoid", batch_size=64, max_iter=100, random_state=0,
).fit(train)

# %%
codes = vae.transform(test[:12])
t = np.linspace(0, 1, 10)[:, None]
rows = [vae.inverse_transform((1 - t) * a + t * b) for a, b in zip(codes[0::2], codes[1::2])]
strip = np.stack(rows).reshape(6, 10, 8, 8).transpose(0, 2, 1, 3).reshape(6 * 8, 10 * 8)
fig, ax = plt.subplots(figsize=(6, 3.6))
ax.imshow(strip, cmap="gray_r")
ax.set_axis_off()
ax.set_title("from the left digit to the right one")
