"""The regularized family: each variant does its job."""

import os
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.decomposition import PCA
from sklearn.exceptions import ConvergenceWarning

from skae import AutoencoderAnomalyDetector, AutoencoderTransformer
from skae._nets.mlp import TiedLinear

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

DATA = Path(os.environ.get("SKAE_DATA", Path(__file__).resolve().parents[2] / "shared" / "datasets"))


def jacobian_norm(ae, X):
    """Mean squared Frobenius norm of the encoder Jacobian, by autograd."""
    x = torch.as_tensor(X, dtype=torch.float32)
    enc = ae.module_.encoder
    return float(np.mean([torch.autograd.functional.jacobian(enc, xi).square().sum().item()
                          for xi in x]))


def psnr(clean, other):
    return 10 * np.log10(1.0 / np.mean((clean - other) ** 2))


def test_kl_sparsity_drives_mean_activations_to_target(digits):
    X_train = digits[0]
    ae = AutoencoderTransformer(
        16, hidden_layer_sizes=(64,), latent_activation="sigmoid", sparsity="kl",
        sparsity_weight=0.5, sparsity_target=0.05, max_iter=60, random_state=0,
    ).fit(X_train)
    means = ae.transform(X_train).mean(axis=0)
    assert np.all(np.abs(means - 0.05) < 0.02), means
    plain = AutoencoderTransformer(16, hidden_layer_sizes=(64,), latent_activation="sigmoid",
                                   max_iter=60, random_state=0).fit(X_train)
    assert np.abs(plain.transform(X_train).mean(axis=0) - 0.05).max() > 0.1
    assert "sparsity" in ae.loss_terms_
    total = np.add(ae.loss_terms_["reconstruction"], ae.loss_terms_["sparsity"])
    np.testing.assert_allclose(total, ae.loss_curve_, rtol=1e-5)


def test_l1_sparsity_makes_most_activations_zero(digits):
    X_train = digits[0]

    def near_zero_share(**params):
        ae = AutoencoderTransformer(32, hidden_layer_sizes=(64,), latent_activation="relu",
                                    max_iter=40, random_state=0, **params).fit(X_train)
        return np.mean(np.abs(ae.transform(X_train)) < 1e-3)

    sparse = near_zero_share(sparsity="l1", sparsity_weight=0.01)
    assert sparse > 0.7 and sparse > near_zero_share() + 0.2


def test_sparsity_on_hidden_layers(digits):
    X_train = digits[0]
    ae = AutoencoderTransformer(8, hidden_layer_sizes=(32,), activation="sigmoid",
                                sparsity="kl", sparsity_weight=3.0, sparsity_target=0.1,
                                sparsity_layers=(0,), max_iter=60, random_state=0).fit(X_train)
    with torch.no_grad():
        hidden = ae.module_.encoder[:2](torch.as_tensor(X_train, dtype=torch.float32))
    assert np.all(np.abs(hidden.mean(0).numpy() - 0.1) < 0.03)


def test_kl_sparsity_needs_unit_interval_activations(small_X):
    with pytest.raises(ValueError, match="latent_activation='sigmoid'"):
        AutoencoderTransformer(sparsity="kl").fit(small_X)
    with pytest.raises(ValueError, match="activation='sigmoid'"):
        AutoencoderTransformer(sparsity="kl", sparsity_layers="all",
                               latent_activation="sigmoid").fit(small_X)
    with pytest.raises(ValueError, match="'sparsity_layers' parameter"):
        AutoencoderTransformer(sparsity="l1", sparsity_layers=(5,)).fit(small_X)


def test_contractive_term_lowers_the_heldout_jacobian(digits):
    X_train, X_test = digits[0], digits[1][:100]
    params = dict(hidden_layer_sizes=(64,), activation="sigmoid", max_iter=40, random_state=0)
    plain = AutoencoderTransformer(8, **params).fit(X_train)
    cae = AutoencoderTransformer(8, contractive_weight=0.1, **params).fit(X_train)
    assert jacobian_norm(cae, X_test) < 0.5 * jacobian_norm(plain, X_test)
    assert "contractive" in cae.loss_terms_


def test_denoising_is_reproducible_and_changes_training(small_X):
    def fit(**params):
        return AutoencoderTransformer(2, max_iter=5, random_state=0, **params).fit(small_X)

    for noise in ("gaussian", "masking", "salt_and_pepper"):
        a, b = fit(noise=noise, noise_level=0.3), fit(noise=noise, noise_level=0.3)
        np.testing.assert_array_equal(a.transform(small_X), b.transform(small_X))
        assert not np.allclose(a.transform(small_X), fit().transform(small_X))
    with pytest.raises(ValueError, match=r"'noise_level' parameter .* must be in \[0, 1\]"):
        fit(noise="masking", noise_level=1.5)


def test_variants_combine(digits):
    ae = AutoencoderAnomalyDetector(
        8, noise="gaussian", noise_level=0.2, sparsity="l1", sparsity_weight=1e-3,
        contractive_weight=1e-3, max_iter=3, random_state=0,
    ).fit(digits[0])
    assert set(ae.loss_terms_) == {"reconstruction", "sparsity", "contractive"}


def test_tied_weights_share_the_encoder_weights(small_X):
    ae = AutoencoderTransformer(2, hidden_layer_sizes=(8,), tied_weights=True, max_iter=3,
                                random_state=0).fit(small_X)
    tied = [m for m in ae.module_.decoder if isinstance(m, TiedLinear)]
    enc = [m for m in ae.module_.encoder if isinstance(m, torch.nn.Linear)]
    assert len(tied) == 2
    assert torch.equal(tied[0].weight, enc[1].weight.t())
    assert torch.equal(tied[1].weight, enc[0].weight.t())
    untied = AutoencoderTransformer(2, hidden_layer_sizes=(8,), max_iter=1).fit(small_X)
    n_params = sum(p.numel() for p in ae.module_.parameters())
    assert n_params == sum(p.numel() for p in untied.module_.parameters()) - (6 * 8 + 8 * 2)
    restored = __import__("pickle").loads(__import__("pickle").dumps(ae))
    np.testing.assert_array_equal(restored.reconstruct(small_X), ae.reconstruct(small_X))


def test_identity_warning_for_unregularized_overcomplete(small_X):
    with pytest.warns(UserWarning, match="can learn the identity"):
        AutoencoderTransformer(6, max_iter=1).fit(small_X)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        warnings.simplefilter("ignore", ConvergenceWarning)
        AutoencoderTransformer(6, max_iter=1, noise="gaussian").fit(small_X)
        AutoencoderTransformer(5, max_iter=1).fit(small_X)


@pytest.mark.slow  # seconds of training: run with -m slow
def test_greedy_pretraining_helps_a_deep_sigmoid_network(digits):
    X_train = digits[0]
    params = dict(hidden_layer_sizes=(64, 48, 32, 24), activation="sigmoid",
                  learning_rate_init=1e-2, batch_size=32, tol=0, random_state=0)
    scratch = AutoencoderTransformer(8, max_iter=40, **params).fit(X_train)
    stacked = AutoencoderTransformer(8, max_iter=20, pretraining="greedy",
                                     pretraining_max_iter=4, **params).fit(X_train)
    # 5 stages x 4 epochs of (cheaper) shallow training + 20 epochs of fine-tuning,
    # against 40 epochs of the whole network from scratch
    assert len(stacked.pretraining_loss_curves_) == 5
    assert all(len(c) == 4 for c in stacked.pretraining_loss_curves_)
    assert stacked.loss_curve_[-1] < 0.7 * scratch.loss_curve_[-1]
    assert scratch.pretraining_loss_curves_ is None


def load_mnist():
    path = DATA / "images" / "mnist_test.npz"
    if not path.exists():
        pytest.skip(f"{path} not found (set SKAE_DATA)")
    with np.load(path) as data:
        return data["images"].reshape(len(data["images"]), -1).astype(np.float32) / 255.0


def denoising_psnr(n_train, max_iter, sigma=0.5):
    """PSNR on held-out MNIST digits with Gaussian noise: noisy, DAE, plain AE, PCA."""
    images = load_mnist()
    train, test = images[:n_train], images[9000:9300]
    rng = np.random.RandomState(0)
    noisy_test = (test + sigma * rng.normal(size=test.shape)).astype(np.float32)
    params = dict(hidden_layer_sizes=(256,), output_activation="sigmoid", loss="bce",
                  batch_size=64, max_iter=max_iter, random_state=0)
    dae = AutoencoderTransformer(64, noise="gaussian", noise_level=sigma, **params).fit(train)
    plain = AutoencoderTransformer(64, **params).fit(train)
    pca = PCA(64).fit(train)
    return {
        "noisy": psnr(test, noisy_test),
        "dae": psnr(test, dae.reconstruct(noisy_test)),
        "plain": psnr(test, plain.reconstruct(noisy_test)),
        "pca": psnr(test, np.clip(pca.inverse_transform(pca.transform(noisy_test)), 0, 1)),
    }


@pytest.mark.slow  # about 12 s: kept out of the default suite
def test_denoising_mnist_beats_noisy_input_plain_autoencoder_and_pca():
    scores = denoising_psnr(n_train=2000, max_iter=30)
    assert scores["dae"] > scores["noisy"] + 5, scores
    assert scores["dae"] > scores["plain"] + 1, scores
    assert scores["dae"] > scores["pca"], scores


@pytest.mark.slow
def test_denoising_mnist_with_more_data_beats_pca_clearly():
    scores = denoising_psnr(n_train=8000, max_iter=30)
    assert scores["dae"] > scores["pca"] + 0.5, scores
    assert scores["dae"] > scores["plain"] + 1, scores
