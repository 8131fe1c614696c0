"""
A two-dimensional latent space
==============================

With a 2-D code the whole latent space fits in one figure: a grid of codes
at evenly spaced quantiles of the standard normal prior, each decoded into an
image. Neighbouring codes decode to similar digits. The variational guide
shows the same on MNIST.
"""

import warnings

import matplotlib.pyplot as plt
import numpy as np
from scipy.stats import norm
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning

from skae import AutoencoderTransformer

warnings.simplefilter("ignore", ConvergenceWarning)

X = load_digits().data / 16.0
vae = AutoencoderTransformer(
    n_components=2, hidden_layer_sizes=(128, 128), activation="tanh", variational=True,
    loss="bce", output_activation="sigmoid", batch_size=64, max_iter=100, random_state=0,
).fit(X)

# %%
q = norm.ppf(np.linspace(0.05, 0.95, 15))
Z = np.array([[a, b] for b in q[::-1] for a in q])
img = vae.inverse_transform(Z).reshape(15, 15, 8, 8).transpose(0, 2, 1, 3)
fig, ax = plt.subplots(figsize=(6, 6))
ax.imshow(img.reshape(15 * 8, 15 * 8), cmap="gray_r")
ax.set_axis_off()
ax.set_title("decoded 15 x 15 grid of the 2-D latent space")
