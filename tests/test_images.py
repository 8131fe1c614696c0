"""Images: the convolutional network kind, paired regression, image corruptions, compression."""

import pickle
import warnings

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import r2_score

from skae import (
    AutoencoderAnomalyDetector,
    AutoencoderRegressor,
    AutoencoderTransformer,
    PosteriorCollapseWarning,
    corrupt,
)
from skae._images import dequantize, pack, quantize, unpack
from skae._nets.conv import ImageConv, stage_shapes
from skae._objective import BlockMasking, Watermark, make_corruption

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

CONV = dict(architecture="conv", image_shape=(8, 8, 1), conv_channels=(8, 16))


@pytest.fixture(scope="module")
def digits():
    return (load_digits().data / 16.0).astype(np.float32)


# ----------------------------------------------------------------- layout
def test_rows_are_channels_last_images_as_numpy_reshape_lays_them_out():
    rng = np.random.RandomState(0)
    images = rng.rand(3, 5, 7, 2).astype(np.float32)  # (n, H, W, C)
    conv = ImageConv((2, 5, 7), (4, 3, 4), 3, channels_last_in=True)
    with torch.no_grad():
        conv.weight.normal_()
        conv.bias.normal_()
        flat = conv(torch.from_numpy(images.reshape(3, -1)))
        nchw = torch.from_numpy(images).permute(0, 3, 1, 2)
        expected = torch.nn.functional.conv2d(nchw, conv.weight, conv.bias, stride=2, padding=1)
    np.testing.assert_allclose(flat.numpy(), expected.reshape(3, -1).numpy(), rtol=1e-5, atol=1e-5)


def test_the_last_skip_layer_reads_the_input_image_in_the_users_layout():
    conv = ImageConv((4 + 3, 6, 5), (2, 6, 5), 3, stride=1, image_channels=3,
                     channels_last_out=True)
    torch.nn.init.normal_(conv.weight, generator=torch.Generator().manual_seed(0))
    features = torch.randn(2, 4, 6, 5, generator=torch.Generator().manual_seed(1))
    image = torch.randn(2, 6, 5, 3, generator=torch.Generator().manual_seed(2))  # (n, H, W, C)
    rows = torch.cat([features.reshape(2, -1), image.reshape(2, -1)], 1)
    expected = torch.nn.functional.conv2d(
        torch.cat([features, image.permute(0, 3, 1, 2)], 1), conv.weight, conv.bias, padding=1)
    with torch.no_grad():
        torch.testing.assert_close(conv(rows), expected.permute(0, 2, 3, 1).reshape(2, -1))


@pytest.mark.slow  # seconds; the default suite keeps to its time budget
def test_skip_connections_reach_the_input_at_full_resolution():
    # a colour channel of the input is a 3x3 convolution of the input away: with the
    # input at full resolution the regressor gets it almost exactly
    X = np.random.RandomState(0).rand(400, 6 * 5 * 3).astype(np.float32)
    reg = AutoencoderRegressor(architecture="conv", image_shape=(6, 5, 3), conv_channels=(4, 8),
                               n_components=None, hidden_layer_sizes=(), skip_connections=True,
                               max_iter=100, batch_size=32, learning_rate_init=1e-2,
                               random_state=0).fit(X, X[:, ::3])
    assert reg.score(X, X[:, ::3]) > 0.99


@pytest.mark.parametrize("shape", [(8, 8, 1), (7, 5, 3), (1, 9, 1), (5, 6, 2)])
@pytest.mark.parametrize("kernel_size", [3, 5])
def test_decoder_restores_the_exact_image_shape(shape, kernel_size):
    X = np.random.RandomState(0).rand(20, int(np.prod(shape)))
    ae = AutoencoderTransformer(n_components=3, architecture="conv", image_shape=shape,
                                conv_channels=(4, 4, 4), kernel_size=kernel_size, max_iter=2,
                                random_state=0).fit(X)
    assert ae.inverse_transform(ae.transform(X)).shape == X.shape
    shapes = stage_shapes(shape, (4, 4, 4), kernel_size)
    assert shapes[1][1:] == ((shape[0] + 1) // 2, (shape[1] + 1) // 2)
    convs = [m for m in ae.module_.modules() if isinstance(m, ImageConv)]
    assert len(convs) == 6 and convs[-1].out_shape == (shape[2], shape[0], shape[1])


def test_image_shape_accepts_two_entries_and_one_inferred_entry(digits):
    for shape in [(8, 8), (8, -1), (-1, 8, 1)]:
        ae = AutoencoderTransformer(architecture="conv", image_shape=shape, max_iter=1,
                                    random_state=0).fit(digits[:50])
        assert ae._spec.image_shape == (8, 8, 1)


@pytest.mark.parametrize("params, match", [
    (dict(architecture="conv"), "needs image_shape"),
    (dict(architecture="conv", image_shape=(8, 7)), "does not match X's 64 features"),
    (dict(architecture="conv", image_shape=(8, 8, 1), kernel_size=4), "'kernel_size' parameter"),
    (dict(architecture="conv", image_shape=(8, 8, 1), tied_weights=True), "tied_weights"),
    (dict(architecture="conv", image_shape=(8, 8, 1), contractive_weight=0.1), "contractive"),
    (dict(architecture="conv", image_shape=(8, 8, 1), conv_channels=()), "'conv_channels'"),
    (dict(image_shape=(8, -1, -1)), "'image_shape' parameter"),
    (dict(image_shape=(8, 8.0)), "'image_shape' parameter"),
    (dict(image_shape=(0, 8)), "'image_shape' parameter"),
    (dict(n_components=None), "needs architecture='conv'"),
    (dict(n_components=None, architecture="conv", image_shape=(8, 8)), "hidden_layer_sizes=()"),
    (dict(n_components=None, architecture="conv", image_shape=(8, 8), hidden_layer_sizes=(),
          variational=True), "variational=False"),
    (dict(noise="block", noise_level=0.2), "needs image_shape"),
    (dict(noise="watermark", noise_level=0.2), "needs image_shape"),
    (dict(noise="block", noise_level=1.5, image_shape=(8, 8)), "'noise_level'"),
])
def test_bad_image_parameters_raise_naming_them(digits, params, match):
    ae = AutoencoderTransformer(max_iter=1, **params)
    with pytest.raises(ValueError, match=match):
        ae.fit(digits[:20])
    assert not hasattr(ae, "module_")


# ------------------------------------------------------ convolutional kind
@pytest.mark.slow  # seconds of training: run with -m slow
def test_conv_autoencoder_learns_digits_and_beats_the_mean(digits):
    ae = AutoencoderTransformer(n_components=16, max_iter=60, random_state=0, **CONV).fit(digits)
    err = np.mean((ae.reconstruct(digits) - digits) ** 2)
    assert err < 0.5 * digits.var(0).mean()
    assert ae.loss_curve_[-1] < 0.5 * ae.loss_curve_[0]


def test_a_convolutional_code_is_the_last_stage_feature_map(digits):
    ae = AutoencoderTransformer(n_components=None, hidden_layer_sizes=(), noise="gaussian",
                                max_iter=3, random_state=0, **CONV).fit(digits)
    assert ae.transform(digits[:5]).shape == (5, 16 * 2 * 2)
    assert not [m for m in ae.module_.modules() if isinstance(m, torch.nn.Linear)]
    with torch.no_grad():
        features = ae.module_.encoder[0](torch.from_numpy(digits[:5]))
        features = ae.module_.encoder[2](ae.module_.encoder[1](features))
    np.testing.assert_allclose(ae.transform(digits[:5]), features.numpy(), rtol=1e-5, atol=1e-6)
    assert len(ae.compress(digits[:2], n_bits=4)[0]) == 32
    # skip connections without dense layers: each decoder stage but the first gets one
    reg = AutoencoderRegressor(n_components=None, hidden_layer_sizes=(), skip_connections=True,
                               max_iter=2, random_state=0, **CONV).fit(digits, digits)
    convs = [m for m in reg.module_.modules() if isinstance(m, ImageConv) and m.transpose]
    assert [m.in_shape[0] for m in convs] == [16, 16]  # 16, then 8 + 8 concatenated
    last = reg.module_.decoder_layers[-1].linear  # full resolution: 8 feature maps + the image
    assert (last.stride, last.in_shape, last.out_shape) == (1, (9, 8, 8), (1, 8, 8))
    assert reg.predict(digits[:3]).shape == (3, 64)


def test_conv_inference_is_chunk_and_dtype_consistent(digits):
    ae = AutoencoderTransformer(n_components=8, max_iter=3, random_state=0, **CONV).fit(digits)
    Z32 = ae.transform(digits)
    Z64 = ae.transform(digits.astype(np.float64))
    assert Z32.dtype == np.float32 and Z64.dtype == np.float64
    np.testing.assert_allclose(Z32, Z64, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(ae.transform(digits[:1]), Z32[:1], rtol=1e-5, atol=1e-6)
    with torch.no_grad():  # the module's own Sequential parts agree with inference
        z = ae.module_.encoder(torch.from_numpy(digits[:5]))
        x_hat = ae.module_.decoder(z)
    np.testing.assert_allclose(z.numpy(), Z32[:5], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(x_hat.numpy(), ae.reconstruct(digits[:5]), rtol=1e-5, atol=1e-5)


def test_conv_variants_train(digits):
    X = digits[:300]
    sparse = AutoencoderTransformer(sparsity="l1", sparsity_layers="all", sparsity_weight=1e-2,
                                    max_iter=3, random_state=0, **CONV).fit(X)
    assert len(sparse._spec.sparsity_layers) == 4  # two convolutional stages, hidden, code
    assert "sparsity" in sparse.loss_terms_
    kl = AutoencoderTransformer(sparsity="kl", sparsity_layers=[0], max_iter=1, **CONV)
    with pytest.raises(ValueError, match="encoder layer 0 uses activation='relu'"):
        kl.fit(X)
    with warnings.catch_warnings():  # 3 epochs: the code may carry nothing yet
        warnings.simplefilter("ignore", PosteriorCollapseWarning)
        vae = AutoencoderTransformer(n_components=4, variational=True, max_iter=3,
                                     random_state=0, **CONV).fit(X)
    scores = vae.score_samples(X[:10])
    assert np.isfinite(scores).all() and vae.sample(3, random_state=0).shape == (3, 64)
    stacked = AutoencoderTransformer(n_components=4, pretraining="greedy", pretraining_max_iter=2,
                                     max_iter=2, random_state=0, **CONV).fit(X)
    assert len(stacked.pretraining_loss_curves_) == 4


@pytest.mark.slow  # seconds of training each: run with -m slow
def test_conv_denoising_beats_plain_training_on_noisy_inputs(digits):
    rng = np.random.RandomState(0)
    train, test = digits[:1400], digits[1400:]
    noisy = test + 0.5 * rng.randn(*test.shape).astype(np.float32)
    common = dict(n_components=16, max_iter=40, random_state=0, **CONV)
    plain = AutoencoderTransformer(**common).fit(train)
    dae = AutoencoderTransformer(noise="gaussian", noise_level=0.5, **common).fit(train)
    err_plain = np.mean((plain.reconstruct(noisy) - test) ** 2)
    err_dae = np.mean((dae.reconstruct(noisy) - test) ** 2)
    assert err_dae < 0.25 * 0.5 ** 2  # a quarter of the noise's error
    assert err_dae < 0.95 * err_plain


@pytest.mark.slow  # seconds of training: run with -m slow
def test_feature_errors_light_up_a_pasted_patch(digits):
    det = AutoencoderAnomalyDetector(n_components=16, max_iter=60, random_state=0,
                                     **CONV).fit(digits)
    images = digits[:20].reshape(20, 8, 8).copy()
    images[:, 0:3, 5:8] = 1.0  # a bright 3x3 patch in a corner digits leave dark
    heat = det.feature_errors(images.reshape(20, -1)).reshape(20, 8, 8)
    patch = np.zeros((8, 8), bool)
    patch[0:3, 5:8] = True
    for h in heat:
        assert patch.ravel()[h.argmax()]  # the largest error lies in the patch
        top = np.argsort(h.ravel())[::-1][:9]
        assert patch.ravel()[top].mean() >= 5 / 9  # most of the 9 largest too
        assert h[patch].mean() > 20 * h[~patch].mean()
    clean = det.score_samples(digits[:20])
    assert (det.score_samples(images.reshape(20, -1)) < clean).all()


# --------------------------------------------------------------- regressor
def _colour(gray):
    """A fixed colouring: each channel a different function of the gray value."""
    return np.stack([gray, gray ** 2, 1.0 - gray], axis=-1).reshape(gray.shape[0], -1)


@pytest.mark.slow  # seconds of training: run with -m slow
def test_regressor_maps_gray_to_colour_of_another_width(digits):
    gray = digits.reshape(-1, 8, 8)
    Y = _colour(gray)
    reg = AutoencoderRegressor(n_components=16, max_iter=80, random_state=0, **CONV)
    reg.fit(digits[:1500], Y[:1500])
    pred = reg.predict(digits[1500:])
    assert pred.shape == (297, 192) and reg.n_outputs_ == 192
    assert reg.score(digits[1500:], Y[1500:]) == pytest.approx(r2_score(Y[1500:], pred))
    # weighted by variance: border pixels that are (nearly) always dark carry no weight
    r2 = r2_score(Y[1500:], pred, multioutput="variance_weighted")
    replicated = np.repeat(digits[1500:, :, None], 3, axis=2).reshape(297, -1)
    assert r2 > 0.5 and r2 > r2_score(Y[1500:], replicated, multioutput="variance_weighted")


@pytest.mark.slow  # seconds of training each: run with -m slow
def test_skip_connections_carry_detail_past_the_bottleneck(digits):
    gray = digits.reshape(-1, 8, 8)
    Y = _colour(gray)
    common = dict(n_components=2, max_iter=60, random_state=0, **CONV)
    plain = AutoencoderRegressor(**common).fit(digits[:1500], Y[:1500])
    skip = AutoencoderRegressor(skip_connections=True, **common).fit(digits[:1500], Y[:1500])
    def r2(model):
        return r2_score(Y[1500:], model.predict(digits[1500:]), multioutput="variance_weighted")

    assert r2(skip) > r2(plain) + 0.1
    # float64 inference of a network with skip connections
    np.testing.assert_allclose(skip.predict(digits[1500:1510].astype(np.float64)),
                               skip.predict(digits[1500:1510]), rtol=1e-4, atol=1e-4)


@pytest.mark.slow  # seconds of training each: run with -m slow
def test_regressor_learns_to_remove_a_watermark(digits):
    marked = corrupt(digits, "watermark", 0.6, image_shape=(8, 8), random_state=0)
    reg = AutoencoderRegressor(n_components=32, max_iter=60, random_state=0, skip_connections=True,
                               **CONV).fit(marked[:1500], digits[:1500])
    before = np.mean((marked[1500:] - digits[1500:]) ** 2)
    after = np.mean((reg.predict(marked[1500:]) - digits[1500:]) ** 2)
    assert after < 0.5 * before


def test_regressor_follows_regressor_conventions(digits):
    X, y = digits[:200], digits[:200, 10] * 3 + 1
    reg = AutoencoderRegressor(max_iter=5, random_state=0).fit(X, y)
    assert reg.predict(X).shape == (200,)
    assert not hasattr(reg, "pretraining_loss_curves_") and not hasattr(reg, "latent_kl_")
    reg.partial_fit(X, y)
    assert reg.n_iter_ == 6
    before = {k: v.clone() for k, v in reg.module_.state_dict().items()}
    with pytest.raises(ValueError, match="'n_outputs' changed from 1 to 2"):
        reg.partial_fit(X, np.c_[y, y])
    # a failed call leaves the estimator as it was
    assert reg.n_iter_ == 6 and reg.n_outputs_ == 1
    assert all(torch.equal(before[k], v) for k, v in reg.module_.state_dict().items())
    bad = y.copy()
    bad[3] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        AutoencoderRegressor(max_iter=1).fit(X, bad)
    with pytest.raises(ValueError, match="not a whole number of channels"):
        AutoencoderRegressor(max_iter=1, **CONV).fit(X, X[:, :10])
    standardized = AutoencoderRegressor(standardize=True, max_iter=30, random_state=0)
    standardized.fit(X, 1000 * y + 5000)  # target statistics are undone on predictions
    assert abs(standardized.predict(X).mean() - (1000 * y + 5000).mean()) < 0.1 * 1000 * y.std()


def test_regressor_cross_entropy_needs_targets_not_inputs_in_the_unit_interval(digits):
    bce = dict(loss="bce", output_activation="sigmoid", max_iter=2, random_state=0)
    reg = AutoencoderRegressor(**bce).fit(10 * digits[:100] - 5, digits[:100])
    assert ((reg.predict(digits[:5]) > 0) & (reg.predict(digits[:5]) < 1)).all()
    with pytest.raises(ValueError, match=r"loss='bce' needs y in \[0, 1\]"):
        AutoencoderRegressor(**bce).fit(digits[:100], 2 * digits[:100])


@pytest.mark.slow  # seconds of training each: run with -m slow
def test_regressor_noise_corrupts_inputs_only(digits):
    # identity regression with masking noise: targets stay clean, so the
    # prediction of a clean input stays close to it
    reg = AutoencoderRegressor(n_components=32, noise="block", noise_level=0.25,
                               skip_connections=True, max_iter=40, random_state=0, **CONV)
    reg.fit(digits[:1500], digits[:1500])
    assert "reconstruction" in reg.loss_terms_
    hidden = corrupt(digits[1500:], "block", 0.25, image_shape=(8, 8), random_state=1)
    assert np.mean((reg.predict(hidden) - digits[1500:]) ** 2) < np.mean((hidden - digits[1500:]) ** 2)


# ------------------------------------------------------------ corruptions
def test_block_masking_hides_one_rectangle_of_the_requested_area():
    X = np.ones((50, 10 * 12 * 3))
    Xc = corrupt(X, "block", 0.25, image_shape=(10, 12, 3), random_state=0)
    images = Xc.reshape(50, 10, 12, 3)
    assert (images[..., 0] == images[..., 1]).all()  # all channels of a pixel
    for img in images[..., 0]:
        rows, cols = np.nonzero(img == 0)
        assert (rows.max() - rows.min() + 1, cols.max() - cols.min() + 1) == (5, 6)
        assert (img == 0).sum() == 30  # a full rectangle, 25% of the area
    tops = {np.nonzero(img == 0)[0].min() for img in images[..., 0]}
    assert len(tops) > 3  # random positions


def test_watermark_blends_text_towards_the_brightest_value():
    rng = np.random.RandomState(0)
    X = rng.uniform(0.0, 0.5, size=(40, 28 * 28 * 3))
    X[0, 0] = 2.0  # the brightest value of the data
    Xc = corrupt(X, "watermark", 0.6, image_shape=(28, 28, 3), random_state=0)
    changed = ~np.isclose(Xc, X)
    moved = (Xc - X)[changed] / (2.0 - X[changed])
    np.testing.assert_allclose(moved, 0.6, rtol=1e-6)  # 60% of the way to the brightest value
    images = changed.reshape(40, 28, 28, 3)
    assert (images[..., 0] == images[..., 2]).all()
    share = images[..., 0].mean(axis=(1, 2))
    assert (share > 0.03).all() and (share < 0.4).all()
    positions = {tuple(np.argwhere(img[..., 0])[0]) for img in images}
    assert len(positions) > 10
    again = corrupt(X, "watermark", 0.6, image_shape=(28, 28, 3), random_state=0)
    np.testing.assert_array_equal(again, Xc)


def test_training_uses_the_image_corruptions():
    gen = torch.Generator().manual_seed(0)
    rows = torch.rand(5, 64)
    block = make_corruption("block", 0.3, rows, gen, (8, 8, 1))
    mark = make_corruption("watermark", 0.5, rows, gen, (8, 8, 1))
    assert isinstance(block, BlockMasking) and isinstance(mark, Watermark)
    # standardized rows: the overlay is the brightest raw value in each feature's units
    shift, scale = np.linspace(0.0, 0.5, 64), np.linspace(0.1, 2.0, 64)  # per-feature units
    standardized = ((rows.double() - torch.from_numpy(shift)) / torch.from_numpy(scale)).float()
    mark = make_corruption("watermark", 1.0, standardized, gen, (8, 8, 1), (shift, scale))
    brightest = float(rows.max())
    np.testing.assert_allclose(mark.value.numpy(), (brightest - shift) / scale, rtol=1e-5)


# ----------------------------------------------------------- compression
@pytest.mark.parametrize("n_bits", [1, 3, 8, 11, 16])
def test_pack_unpack_round_trip(n_bits):
    levels = np.random.RandomState(n_bits).randint(0, 2 ** n_bits, size=(7, 5)).astype(np.uint16)
    data = pack(levels, n_bits)
    assert data.shape == (7, int(np.ceil(5 * n_bits / 8)))
    np.testing.assert_array_equal(unpack(data, 5, n_bits), levels)


def test_quantization_error_is_at_most_half_a_step():
    Z = np.random.RandomState(0).randn(100, 4)
    low, high = Z.min(0), Z.max(0)
    back = dequantize(quantize(Z, low, high, 5), low, high, 5)
    assert (np.abs(back - Z) <= (high - low) / 31 / 2 + 1e-12).all()
    clipped = dequantize(quantize(Z * 10, low, high, 5), low, high, 5)
    assert (clipped >= low - 1e-12).all() and (clipped <= high + 1e-12).all()


@pytest.mark.slow  # seconds of training: run with -m slow
def test_compress_to_bytes_and_back(digits):
    ae = AutoencoderTransformer(n_components=12, max_iter=40, random_state=0, **CONV).fit(digits)
    Z = ae.transform(digits)
    np.testing.assert_allclose(ae.code_range_, [Z.min(0), Z.max(0)], rtol=1e-6)
    errors = []
    for n_bits in (2, 4, 8):
        data = ae.compress(digits[:100], n_bits=n_bits)
        assert len(data) == 100 and all(len(d) == (12 * n_bits + 7) // 8 for d in data)
        assert all(isinstance(d, bytes) for d in data)
        back = ae.decompress(data, n_bits=n_bits)
        errors.append(np.mean((back - digits[:100]) ** 2))
    assert errors[0] > errors[1] > errors[2]
    exact = np.mean((ae.reconstruct(digits[:100]) - digits[:100]) ** 2)
    assert errors[2] == pytest.approx(exact, rel=0.05)
    with pytest.raises(ValueError, match="'n_bits' parameter"):
        ae.compress(digits[:2], n_bits=0)
    with pytest.raises(ValueError, match="12 bytes each"):
        ae.decompress([b"abc"], n_bits=8)


def test_partial_fit_widens_the_code_range(digits):
    ae = AutoencoderTransformer(n_components=4, random_state=0, **CONV)
    ae.partial_fit(digits[:100])
    first = ae.code_range_.copy()
    ae.partial_fit(digits[100:])
    assert (ae.code_range_[0] <= first[0]).all() and (ae.code_range_[1] >= first[1]).all()


def test_image_models_pickle_and_chunk_inference_in_bounded_memory(digits, monkeypatch):
    ae = AutoencoderTransformer(n_components=8, max_iter=2, random_state=0, **CONV).fit(digits)
    reg = AutoencoderRegressor(n_components=None, hidden_layer_sizes=(), skip_connections=True,
                               max_iter=2, random_state=0, **CONV).fit(digits, digits)
    for model, method in ((ae, "transform"), (reg, "predict")):
        loaded = pickle.loads(pickle.dumps(model))
        np.testing.assert_array_equal(getattr(loaded, method)(digits), getattr(model, method)(digits))
    # the chunks are sized by the widest layer: the first stage's 8 x 4 x 4 = 128 values
    assert ae._spec.max_width == 128
    seen = []
    real = __import__("skae._data", fromlist=["iter_chunks"]).iter_chunks

    def spy(n_rows, n_cols):
        seen.append(n_cols)
        return real(n_rows, n_cols)

    monkeypatch.setattr("skae._inference.iter_chunks", spy)
    monkeypatch.setattr("skae._data.CHUNK_ELEMENTS", 128 * 10)  # 10 rows per chunk
    small = ae.transform(digits)
    assert seen == [128]
    monkeypatch.undo()
    np.testing.assert_allclose(small, ae.transform(digits), rtol=1e-5, atol=1e-6)
