"""Variational autoencoders: the KL term, the likelihood estimate, pPCA, sampling, scoring."""

import copy
import math
import pickle
import warnings

import numpy as np
import pytest
import torch
from sklearn.decomposition import PCA
from sklearn.model_selection import GridSearchCV
from sklearn.preprocessing import StandardScaler

from skae import AutoencoderAnomalyDetector, AutoencoderTransformer, PosteriorCollapseWarning
from skae._data import with_weights
from skae._fastpath import VariationalGradient, covers, loss_function
from skae._inference import log_likelihood
from skae._nets import build_network
from skae._nets.variational import VariationalAutoencoder
from skae._objective import GaussianKL, VariationalObjective, build_objective, gaussian_kl
from skae._params import resolve
from skae._training import Loop, TermSchedule, TrainState

pytestmark = [
    pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning"),
    pytest.mark.usefixtures("one_thread"),
]

VAE = dict(variational=True, random_state=0)
BERNOULLI = dict(VAE, loss="bce", output_activation="sigmoid")


def _vae(**params):
    return AutoencoderTransformer(**{**VAE, **params})


@pytest.fixture(scope="module")
def fitted_bernoulli(digits):
    X_train = digits[0]
    model = _vae(n_components=4, hidden_layer_sizes=(32,), loss="bce",
                 output_activation="sigmoid", max_iter=40, batch_size=64)
    return model.fit(X_train)


# ------------------------------------------------------------------ the KL term
def test_kl_matches_its_monte_carlo_estimate():
    g = torch.Generator().manual_seed(0)
    mean = torch.randn(5, 3, generator=g, dtype=torch.float64)
    log_var = torch.randn(5, 3, generator=g, dtype=torch.float64)
    n = 200_000
    z = mean[:, None] + (0.5 * log_var).exp()[:, None] * torch.randn(5, n, 3, generator=g,
                                                                      dtype=torch.float64)
    log_q = -0.5 * (((z - mean[:, None]) ** 2) / log_var.exp()[:, None] + log_var[:, None]
                    + math.log(2 * math.pi)).sum(2)
    log_p = -0.5 * (z ** 2 + math.log(2 * math.pi)).sum(2)
    draws = log_q - log_p
    mc, se = draws.mean(1), draws.std(1) / math.sqrt(n)
    closed = gaussian_kl(mean, log_var)
    assert torch.all((closed - mc).abs() < 4 * se + 1e-9)
    assert torch.all(closed > 0)
    assert float(gaussian_kl(torch.zeros(2, 4), torch.zeros(2, 4)).abs().max()) == 0.0


def test_kl_warmup_ramps_the_weight_then_holds_it():
    term = GaussianKL(2.0, warmup=4)
    values = []
    for epoch in range(1, 8):
        term.start_epoch(epoch)
        values.append(term.current)
    assert values == pytest.approx([0.5, 1.0, 1.5, 2.0, 2.0, 2.0, 2.0])
    no_ramp = GaussianKL(0.3, warmup=0)
    no_ramp.start_epoch(1)
    assert no_ramp.current == 0.3


def test_term_schedule_suspends_plateau_counting_during_the_warmup():
    term = GaussianKL(1.0, warmup=3)
    state = TrainState(n_iter=0, best_loss=1.0, no_improvement_count=5)
    loop = Loop(None, None, state)
    schedule = TermSchedule([term, object()])  # terms without a schedule are skipped
    schedule.on_train_begin(loop)
    assert term.current == pytest.approx(1 / 3)
    state.n_iter = 1
    schedule.on_epoch_end(loop)  # epoch 1 ran at a partial weight
    assert state.no_improvement_count == 0 and state.best_loss == math.inf
    assert term.current == pytest.approx(2 / 3)
    state.n_iter, state.no_improvement_count, state.best_loss = 3, 4, 2.0
    term.start_epoch(3)
    schedule.on_epoch_end(loop)  # epoch 3 ran at full weight: counting resumes
    assert state.no_improvement_count == 4 and state.best_loss == 2.0


def test_training_does_not_stop_during_the_warmup(small_X):
    # tol this large makes every epoch after the first a stall: without a warm-up,
    # training stops at epoch 3 (n_iter_no_change=1); with one, the count starts
    # at the first full-weight epoch (6), so it stops at epoch 7
    common = dict(n_components=2, tol=1e9, n_iter_no_change=1, max_iter=12)
    assert _vae(**common).fit(small_X).n_iter_ == 3
    warmed = _vae(kl_warmup=6, **common).fit(small_X)
    assert warmed.n_iter_ == 7
    assert np.all(np.array(warmed.loss_terms_["kl"]) > 0)


def test_loss_terms_record_likelihood_and_kl_separately(fitted_bernoulli):
    terms = fitted_bernoulli.loss_terms_
    assert set(terms) == {"reconstruction", "kl"}
    total = np.array(terms["reconstruction"]) + np.array(terms["kl"])
    np.testing.assert_allclose(total, fitted_bernoulli.loss_curve_, rtol=1e-5)
    assert terms["kl"][-1] > 1.0  # an informative code
    assert np.all(np.diff(fitted_bernoulli.loss_curve_[:10]) < 0)


# ------------------------------------------------------ the likelihood estimate
def _reference_log_likelihood(net, X, eps):
    """log p(x), importance-weighted, written out from the definitions in float64."""
    net = copy.deepcopy(net).double()
    x = torch.from_numpy(X).double()
    with torch.no_grad():
        mean, lv, _, _ = net.posterior_standardized(x)
        z = mean[:, None] + (0.5 * lv).exp()[:, None] * eps
        logits, rec = net.decode_logits(z)
        if net.likelihood == "bernoulli":
            log_px = (x[:, None] * torch.log(torch.sigmoid(logits))
                      + (1 - x[:, None]) * torch.log(torch.sigmoid(-logits))).sum(2)
        else:
            var = net.log_noise_variance.exp()
            log_px = (-0.5 * (rec - x[:, None]) ** 2 / var - 0.5 * torch.log(2 * math.pi * var)).sum(2)
        log_pz = -0.5 * (z ** 2 + math.log(2 * math.pi)).sum(2)
        log_qz = -0.5 * (eps ** 2 + lv[:, None] + math.log(2 * math.pi)).sum(2)
        w = log_px + log_pz - log_qz
        return (torch.logsumexp(w, 1) - math.log(eps.shape[0])).numpy()


def test_score_samples_is_the_importance_weighted_estimate(fitted_bernoulli, digits):
    X = digits[1][:50]
    model = fitted_bernoulli
    eps = torch.randn(model.n_importance_samples, 4, dtype=torch.float64,
                      generator=torch.Generator().manual_seed(model._inference_seed))
    expected = _reference_log_likelihood(model.module_, X, eps)
    np.testing.assert_allclose(model.score_samples(X), expected, rtol=1e-9)
    assert model.score(X) == pytest.approx(expected.mean(), rel=1e-9)


@pytest.mark.slow  # seconds of training: run with -m slow
def test_importance_weighted_estimate_bounds_the_elbo_and_grows_with_k(fitted_bernoulli, digits):
    X = digits[1]
    net = fitted_bernoulli.module_
    # the ELBO itself: closed-form KL and 500 draws of the expected log-likelihood
    x = torch.from_numpy(X).float()
    with torch.no_grad():
        mean, lv, _, _ = net.posterior_standardized(x)
        eps = torch.randn(500, 4, generator=torch.Generator().manual_seed(1))
        logits, _ = net.decode_logits(mean[:, None] + (0.5 * lv).exp()[:, None] * eps)
        expected_ll = -torch.nn.functional.binary_cross_entropy_with_logits(
            logits, x[:, None].expand_as(logits), reduction="none").sum(2).mean(1)
        elbo = float((expected_ll - gaussian_kl(mean, lv)).mean())
    # the expectation over the draws, estimated over 30 seeds: the draws are
    # shared by the samples, so one seed's mean over the samples is still noisy
    means = [np.mean([log_likelihood(net, X, k, s, 64).mean() for s in range(30)])
             for k in (1, 10, 100)]
    assert means[0] == pytest.approx(elbo, abs=0.15)  # K=1 is the ELBO
    assert elbo < means[1] < means[2]


def test_score_samples_is_deterministic_and_per_sample(fitted_bernoulli, digits):
    X = digits[1][:40]
    full = fitted_bernoulli.score_samples(X)
    np.testing.assert_array_equal(full, fitted_bernoulli.score_samples(X))
    np.testing.assert_allclose(fitted_bernoulli.score_samples(X[::-1])[::-1], full, rtol=1e-12)
    np.testing.assert_allclose(fitted_bernoulli.score_samples(X[7:8]), full[7:8], rtol=1e-12)
    again = _vae(n_components=4, hidden_layer_sizes=(32,), loss="bce",
                 output_activation="sigmoid", max_iter=40, batch_size=64).fit(digits[0])
    np.testing.assert_array_equal(again.score_samples(X), full)


def test_standardized_likelihood_is_a_density_in_the_input_units(small_X):
    """Scaling X by c leaves the standardized model alone and shifts log p(x) by -d log c."""
    params = dict(n_components=2, standardize=True, max_iter=20)
    base = _vae(**params).fit(small_X)
    scaled = _vae(**params).fit(small_X * 10.0)
    shift = small_X.shape[1] * math.log(10.0)
    np.testing.assert_allclose(scaled.score_samples(small_X * 10.0),
                               base.score_samples(small_X) - shift, rtol=1e-4)


# ----------------------------------------------------------- linear VAE = pPCA
@pytest.fixture(scope="module")
def standardized_digits(digits):
    scaler = StandardScaler().fit(digits[0])
    return scaler.transform(digits[0]), scaler.transform(digits[1])


@pytest.mark.slow  # seconds of training: run with -m slow
def test_linear_vae_is_probabilistic_pca(standardized_digits):
    X_train, X_test = standardized_digits
    k = 10
    pca = PCA(k).fit(X_train)
    vae = _vae(n_components=k, hidden_layer_sizes=(), activation="identity", max_iter=600,
               batch_size=128, learning_rate_init=3e-3, learning_rate="adaptive",
               n_importance_samples=500, tol=1e-3, n_iter_no_change=20)
    vae.fit(X_train)
    for X in (X_train, X_test):
        ppca, ours = pca.score(X), vae.score(X)
        assert abs(ours - ppca) < 0.01 * abs(ppca), (ours, ppca)
    # the learned noise variance is pPCA's maximum-likelihood one
    noise = float(vae.module_.log_noise_variance.detach().exp())
    assert noise == pytest.approx(pca.noise_variance_, rel=0.05)


@pytest.mark.slow  # about 12 s: kept out of the default suite
def test_deep_vae_beats_probabilistic_pca(standardized_digits):
    X_train, X_test = standardized_digits
    k = 10
    deep = _vae(n_components=k, hidden_layer_sizes=(128,), activation="tanh", max_iter=300,
                batch_size=64, early_stopping=True, n_iter_no_change=15).fit(X_train)
    assert deep.score(X_test) > PCA(k).fit(X_train).score(X_test) + 2.0


# ------------------------------------------------------------------- sampling
def test_sample_decodes_prior_draws(fitted_bernoulli):
    model = fitted_bernoulli
    X = model.sample(5, random_state=3)
    Z = np.random.RandomState(3).standard_normal((5, 4))
    np.testing.assert_allclose(X, model.inverse_transform(Z))
    assert X.dtype == np.float64 and np.all((X > 0) & (X < 1))
    np.testing.assert_array_equal(X, model.sample(5, random_state=3))
    assert not np.array_equal(X, model.sample(5, random_state=4))
    drawn = model.sample(2000, random_state=0, from_likelihood=True)
    assert set(np.unique(drawn)) <= {0.0, 1.0}
    means = model.sample(2000, random_state=0)
    assert abs(drawn.mean() - means.mean()) < 0.01


def test_gaussian_samples_add_the_learned_noise_in_input_units(small_X):
    model = _vae(n_components=2, standardize=True, max_iter=30).fit(small_X * 5.0 + 3.0)
    means = model.sample(4000, random_state=0)
    drawn = model.sample(4000, random_state=0, from_likelihood=True)
    sigma = float(model.module_.log_noise_variance.detach().exp().sqrt())
    scale = model.module_.standardizer.scale.numpy()
    resid = drawn - means  # the decoder means use the first draws of the same stream
    np.testing.assert_allclose(resid.std(0), sigma * scale, rtol=0.1)


def test_sample_exists_only_for_variational_models(small_X):
    plain = AutoencoderTransformer(n_components=2, max_iter=2, random_state=0).fit(small_X)
    assert not hasattr(plain, "sample")
    model = _vae(n_components=2, max_iter=2).fit(small_X)
    for bad in (0, -1, 2.5, True, "3"):
        with pytest.raises(ValueError, match="'n_samples' parameter"):
            model.sample(bad)


# ------------------------------------------------------------------- collapse
def test_posterior_collapse_warns_with_a_remedy(small_X):
    with pytest.warns(PosteriorCollapseWarning, match="Lower kl_weight"):
        model = _vae(n_components=2, kl_weight=200.0, max_iter=40).fit(small_X)
    assert model.latent_kl_.shape == (2,) and model.latent_kl_.max() < 0.01
    with warnings.catch_warnings():
        warnings.simplefilter("error", PosteriorCollapseWarning)
        healthy = _vae(n_components=2, max_iter=200, batch_size=16,
                       standardize=True).fit(small_X)
    assert healthy.latent_kl_.max() > 0.5
    plain = AutoencoderTransformer(n_components=2, max_iter=2, random_state=0).fit(small_X)
    assert plain.latent_kl_ is None


# ------------------------------------------------------------------- detector
def _planted(seed=0):
    rng = np.random.RandomState(seed)
    t = rng.normal(size=(400, 2))
    X = np.column_stack([t[:, 0], t[:, 1], t[:, 0] + t[:, 1], t[:, 0] - t[:, 1], 2 * t[:, 0]])
    X += 0.05 * rng.normal(size=X.shape)
    X[:8, 2] += 8.0  # eight anomalies, off the plane in feature 2
    return X


def test_variational_detector_scores_by_log_likelihood():
    X = _planted()
    det = AutoencoderAnomalyDetector(n_components=2, variational=True, contamination=0.02,
                                     max_iter=60, random_state=0).fit(X)
    scores = det.score_samples(X)
    assert set(range(8)) <= set(np.argsort(scores)[:10])
    assert np.sum(det.predict(X)[:8] == -1) >= 7
    assert np.mean(det.predict(X) == -1) == pytest.approx(0.02, abs=0.005)
    errors = det.feature_errors(X[:8])
    assert np.all(errors.argmax(1) == 2)
    same = AutoencoderTransformer(n_components=2, variational=True, standardize=True,
                                  max_iter=60, random_state=0)
    # the detector's score is the transformer's likelihood estimate (same training)
    det0 = AutoencoderAnomalyDetector(n_components=2, variational=True, trim_fraction=0.0,
                                      activation="relu", learning_rate_init=1e-3,
                                      batch_size=same.batch_size, max_iter=60,
                                      random_state=0).fit(X)
    np.testing.assert_allclose(det0.score_samples(X), same.fit(X).score_samples(X), rtol=1e-6)


def test_variational_auto_threshold_is_three_mads_below_the_median_score():
    X = _planted()
    det = AutoencoderAnomalyDetector(n_components=2, variational=True, contamination="auto",
                                     max_iter=60, random_state=0).fit(X)
    scores = det.score_samples(X)
    median = np.median(scores)
    mad = 1.4826 * np.median(np.abs(scores - median))
    assert det.offset_ == pytest.approx(median - 3 * mad)
    assert np.all(det.predict(X)[:8] == -1)


def test_trimmed_elbo_leaves_out_the_worst_samples():
    X = np.random.RandomState(0).normal(size=(40, 3)).astype(np.float32)
    far = torch.from_numpy(X).clone()
    far[:5] += 1e3  # five samples whose ELBO is hopeless

    def loss(trim):
        est = AutoencoderAnomalyDetector(n_components=2, variational=True, trim_fraction=trim,
                                         standardize=False)
        spec = resolve(est.get_params(deep=False), "t", X)
        net = build_network(spec, generator=torch.Generator().manual_seed(0))
        objective = build_objective(spec, far, torch.Generator().manual_seed(0))
        return float(objective(net, far)[0].detach())

    # trimming ceil(trim * 40) samples: 0 or 4 leave hopeless ones in, 5 or 10 do not
    assert loss(0.0) > 1e4 and loss(0.1) > 1e4
    assert loss(0.125) < 50 and loss(0.25) < 50


# ------------------------------------------------------------- the fast path
@pytest.mark.parametrize("likelihood", ["bce", "mse"])
@pytest.mark.parametrize("hidden", [(), (6, 5)])
@pytest.mark.parametrize("trim,noise", [(0.0, None), (0.3, "masking"), (0.2, "gaussian")])
@pytest.mark.parametrize("output_activation", ["sigmoid", "identity"])
@pytest.mark.parametrize("weighted", [False, True])
def test_variational_gradients_match_autograd(likelihood, hidden, trim, noise, output_activation,
                                              weighted):
    if likelihood == "bce" and output_activation != "sigmoid":
        pytest.skip("bce needs a sigmoid output")
    rng = np.random.RandomState(0)
    X = rng.uniform(size=(50, 7)).astype(np.float32)
    est = AutoencoderAnomalyDetector(
        n_components=3, hidden_layer_sizes=hidden, variational=True, loss=likelihood,
        output_activation=output_activation, activation="tanh", trim_fraction=trim,
        kl_weight=0.7, noise=noise, standardize=False)
    spec = resolve(est.get_params(deep=False), "t", X)
    net = build_network(spec, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        net.posterior.weight.normal_(0, 0.3, generator=torch.Generator().manual_seed(1))
        if net.log_noise_variance is not None:
            net.log_noise_variance.fill_(-0.7)
    twin, rows = copy.deepcopy(net), torch.from_numpy(X)
    fast = loss_function(
        build_objective(spec, rows, torch.Generator().manual_seed(3), weighted=weighted),
        net, 64, "float32")
    reference = build_objective(spec, rows, torch.Generator().manual_seed(3), weighted=weighted)
    if weighted:  # rows carrying a sample weight (frequency) as their last column
        weights = rng.exponential(1.0, (len(X), 1)).astype(np.float32)
        rows = with_weights(rows, torch.from_numpy(weights))
    assert isinstance(fast, VariationalGradient)
    assert not covers(reference, twin, "bfloat16")
    for xb in (rows[:32], rows[32:45]):
        for p in list(net.parameters()) + list(twin.parameters()):
            p.grad = None
        loss, parts = fast(net, xb)
        ref_loss, ref_parts = reference(twin, xb)
        ref_loss.backward()
        assert float(loss) == pytest.approx(float(ref_loss.detach()), rel=1e-5)
        for name in ("reconstruction", "kl"):
            assert float(parts[name]) == pytest.approx(float(ref_parts[name].detach()), rel=1e-5)
        for (name, p), q in zip(net.named_parameters(), twin.parameters()):
            torch.testing.assert_close(p.grad, q.grad, rtol=1e-4, atol=1e-6, msg=name)


def test_other_terms_train_a_variational_model_with_autograd(small_X):
    X = small_X.astype(np.float32)
    est = AutoencoderTransformer(n_components=2, variational=True, sparsity="l1",
                                 sparsity_weight=0.1)
    spec = resolve(est.get_params(deep=False), "t", X)
    net = build_network(spec, generator=torch.Generator().manual_seed(0))
    objective = build_objective(spec, torch.from_numpy(X), torch.Generator().manual_seed(0))
    assert isinstance(objective, VariationalObjective)
    assert not covers(objective, net, "float32")
    loss, parts = objective(net, torch.from_numpy(X))
    assert set(parts) == {"reconstruction", "kl", "sparsity"}
    fitted = AutoencoderTransformer(n_components=2, variational=True, sparsity="l1",
                                    contractive_weight=0.01, max_iter=3, random_state=0)
    fitted.fit(X)
    assert set(fitted.loss_terms_) == {"reconstruction", "kl", "sparsity", "contractive"}


# ------------------------------------------------------------- the estimator
@pytest.mark.parametrize("params,match", [
    (dict(latent_activation="tanh"), "latent_activation='identity'"),
    (dict(tied_weights=True), "tied_weights=False"),
    (dict(pretraining="greedy"), "pretraining=None"),
])
def test_incompatible_parameters_are_rejected(small_X, params, match):
    with pytest.raises(ValueError, match=match):
        _vae(max_iter=1, **params).fit(small_X)


def test_warm_start_may_not_change_the_likelihood(small_X):
    X = np.clip(small_X, 0, 1)
    model = _vae(n_components=2, max_iter=2, warm_start=True, output_activation="sigmoid")
    model.fit(X)
    model.set_params(loss="bce")
    with pytest.raises(ValueError, match="'loss' changed"):
        model.fit(X)
    plain = AutoencoderTransformer(n_components=2, max_iter=2, warm_start=True,
                                   random_state=0).fit(X)
    plain.set_params(variational=True)
    with pytest.raises(ValueError, match="'variational' changed"):
        plain.fit(X)


def test_partial_fit_continues_the_warmup(small_X, monkeypatch):
    epochs = []
    original = GaussianKL.start_epoch

    def spy(self, epoch):
        epochs.append(epoch)
        original(self, epoch)

    monkeypatch.setattr(GaussianKL, "start_epoch", spy)
    model = _vae(n_components=2, kl_warmup=4)
    for _ in range(3):
        model.partial_fit(small_X)
    assert model.n_iter_ == 3 and isinstance(model.module_, VariationalAutoencoder)
    # each call sets its epoch's weight, then the next one's
    assert epochs == [1, 2, 2, 3, 3, 4]


def test_pickle_round_trip_keeps_scores_and_samples(fitted_bernoulli, digits):
    X = digits[1][:20]
    clone = pickle.loads(pickle.dumps(fitted_bernoulli))
    np.testing.assert_array_equal(clone.score_samples(X), fitted_bernoulli.score_samples(X))
    np.testing.assert_array_equal(clone.sample(3, random_state=0),
                                  fitted_bernoulli.sample(3, random_state=0))
    assert clone.module_.encoder[-1].source is clone.module_.posterior


@pytest.mark.slow  # seconds of training: run with -m slow
def test_grid_search_selects_by_held_out_likelihood():
    # data from a linear Gaussian model with a 3-dimensional code
    rng = np.random.RandomState(0)
    X = rng.normal(size=(600, 3)) @ rng.normal(size=(3, 10)) + 0.3 * rng.normal(size=(600, 10))
    search = GridSearchCV(
        _vae(hidden_layer_sizes=(), activation="identity", max_iter=100, batch_size=64,
             learning_rate_init=3e-3, n_importance_samples=20),
        {"n_components": [1, 3]}, cv=2,
    ).fit(X)
    assert search.best_params_ == {"n_components": 3}
    scores = search.cv_results_["mean_test_score"]
    pca = [PCA(k).fit(X[:300]).score(X[300:]) for k in (1, 3)]
    assert scores[1] > scores[0] + 1.0 and pca[1] > pca[0] + 1.0


def test_float32_and_float64_inference_agree(fitted_bernoulli, digits):
    X = digits[1][:30]
    s64 = fitted_bernoulli.score_samples(X)
    s32 = fitted_bernoulli.score_samples(X.astype(np.float32))
    assert s32.dtype == np.float32 and s64.dtype == np.float64
    np.testing.assert_allclose(s32, s64, rtol=1e-4)


def test_non_finite_rules(fitted_bernoulli, digits):
    X = digits[1][:5].copy()
    X[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        fitted_bernoulli.score_samples(X)
    with pytest.raises(ValueError, match=r"loss='bce' needs X in \[0, 1\]"):
        fitted_bernoulli.score_samples(digits[1][:5] * 2)
    gauss = _vae(n_components=2, max_iter=3).fit(digits[0][:200])
    far = digits[1][:3] * 1e200
    scores = gauss.score_samples(far)
    assert np.all(scores == -np.inf)


def test_mixed_precision_and_denoising_variational_fits(small_X):
    half = _vae(n_components=2, precision="bfloat16", max_iter=5).fit(small_X)
    assert np.isfinite(half.loss_curve_).all() and np.isfinite(half.score_samples(small_X)).all()
    denoising = _vae(n_components=2, noise="gaussian", noise_level=0.2, standardize=True,
                     max_iter=5).fit(small_X)
    assert set(denoising.loss_terms_) == {"reconstruction", "kl"}
    # the same draws of the same noise: two fits agree exactly
    again = _vae(n_components=2, noise="gaussian", noise_level=0.2, standardize=True,
                 max_iter=5).fit(small_X)
    assert denoising.loss_curve_ == again.loss_curve_


def test_early_stopping_scores_the_held_out_elbo(digits):
    model = _vae(n_components=4, hidden_layer_sizes=(32,), loss="bce",
                 output_activation="sigmoid", early_stopping=True, max_iter=15, batch_size=64)
    model.fit(digits[0])
    scores = np.array(model.validation_scores_)
    assert len(scores) == model.n_iter_ and model.best_validation_score_ == scores.max()
    # an ELBO in nats per sample (about minus the training loss), not minus a
    # per-element cross-entropy (which lies in (-1, 0) here)
    assert scores[-1] < -10 and abs(scores[-1] + model.loss_curve_[-1]) < 5
