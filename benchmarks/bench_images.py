"""Image-to-image benchmarks: denoising, watermark removal, colorization, compression, speed.

Held-out images, PSNR in dB (pixels in [0, 1], data range 1), peers run side
by side in one process on the same images:

* ``denoise``: Gaussian noise (sigma 0.1, 0.2, not clipped) and
  salt-and-pepper noise (10% of the pixels) on MNIST or Fashion-MNIST test
  images. Peers: the noisy input; scikit-image's ``denoise_nl_means``,
  ``denoise_tv_chambolle``, ``denoise_wavelet`` and a 3x3 median filter,
  each with its parameters chosen on a validation split (images held out of
  the training set); PCA reconstruction (``n_components`` chosen on the same
  split); the MLP and the convolutional denoising autoencoders (skae).
* ``watermark``: the text overlay of ``skae.corrupt(..., "watermark")``
  (opacity 0.6) at random positions; the regressor learns marked -> clean on
  training images and is tested on held-out images at new positions. Peers:
  the marked input, ``inpaint_biharmonic`` given the true mask (the pixels
  the overlay changed, information the model does not get). PSNR and SSIM.
* ``colorize``: gray (ITU-R 601 luma) -> RGB on ``colour_patches32.npz``
  (train tiles from 57 photos, test tiles from the 24 Kodak images). Peers:
  gray replicated to three channels; a per-pixel linear regression of RGB on
  the gray value; the regressor (skae).
* ``compress``: bytes per image vs PSNR. skae: the convolutional
  autoencoder's codes quantized to ``n_bits`` per component
  (``compress``/``decompress``), for several code sizes and bit depths; PCA
  codes with the same quantization; JPEG (Pillow, grayscale, quality 1-95,
  ``optimize=True``), the whole file's bytes.
* ``speed``: ``fit`` of the convolutional autoencoder vs a minimal torch
  loop with the same network, data, batches and epochs; interleaved
  repeats, median ratio.

Data: ``$SKAE_DATA/images/`` (default ``../shared/datasets/images``).
Results: markdown (and JSON) under ``benchmarks/results/``; figures with
``--figures DIR``.
"""

import argparse
import json
import os
import sys
import time
import warnings
from io import BytesIO
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402
from sklearn.decomposition import PCA  # noqa: E402
from sklearn.linear_model import LinearRegression  # noqa: E402

from skae import AutoencoderRegressor, AutoencoderTransformer, corrupt  # noqa: E402
from skae._images import dequantize, n_bytes, quantize  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"


def data_dir():
    return Path(os.environ.get("SKAE_DATA", ROOT.parent / "shared" / "datasets")) / "images"


def load(dataset):
    """``(X_train, X_test, image_shape)``: float32 rows in [0, 1], images.reshape(n, -1)."""
    name = {"mnist": "mnist.npz", "fashion": "fashion_mnist.npz",
            "colour": "colour_patches32.npz"}[dataset]
    d = np.load(data_dir() / name)
    shape = d["X_train"].shape[1:] + ((1,) if d["X_train"].ndim == 3 else ())
    rows = [(d[k].reshape(len(d[k]), -1) / 255.0).astype(np.float32) for k in ("X_train", "X_test")]
    return rows[0], rows[1], shape


def psnr(clean, restored):
    """Mean over images of the per-image PSNR (data range 1)."""
    mse = np.mean((np.clip(restored, 0, 1) - clean) ** 2, axis=1)
    return float(np.mean(10 * np.log10(1.0 / np.maximum(mse, 1e-12))))


def ssim(clean, restored, shape):
    from skimage.metrics import structural_similarity

    h, w, c = shape
    values = [
        structural_similarity(a.reshape(h, w, c), np.clip(b, 0, 1).reshape(h, w, c),
                              data_range=1.0, channel_axis=2)
        for a, b in zip(clean, restored)
    ]
    return float(np.mean(values))


def per_image(fn, X, shape):
    h, w, c = shape
    out = [fn(x.reshape(h, w, c) if c > 1 else x.reshape(h, w)) for x in X]
    return np.stack([np.asarray(o, dtype=np.float32).ravel() for o in out])


def split(X_train, n_train, n_val, seed=0):
    """Shuffled training and validation rows (disjoint) from the training set."""
    idx = np.random.RandomState(seed).permutation(len(X_train))
    return X_train[idx[:n_train]], X_train[idx[n_train:n_train + n_val]]


def choose(candidates, noisy_val, clean_val, shape):
    """The candidate (name, fn) with the best validation PSNR."""
    scores = [(psnr(clean_val, per_image(fn, noisy_val, shape)), label, fn)
              for label, fn in candidates]
    best = max(scores, key=lambda s: s[0])
    return best[1], best[2]


# ------------------------------------------------------------ denoising
NOISES = {"gaussian_0.1": ("gaussian", 0.1), "gaussian_0.2": ("gaussian", 0.2),
          "salt_and_pepper_0.1": ("salt_and_pepper", 0.1)}


def classical_denoisers():
    from skimage.filters import median
    from skimage.morphology import footprint_rectangle
    from skimage.restoration import denoise_nl_means, denoise_tv_chambolle, denoise_wavelet

    def nlm(h, p):
        return lambda im: denoise_nl_means(im, h=h, patch_size=p, patch_distance=5, fast_mode=True)

    return {
        "nl_means": [(f"h={h},patch={p}", nlm(h, p))
                     for h in (0.02, 0.05, 0.08, 0.12, 0.16, 0.24, 0.32) for p in (3, 5)],
        "tv_chambolle": [(f"weight={w}", (lambda w: lambda im: denoise_tv_chambolle(im, weight=w))(w))
                         for w in (0.02, 0.05, 0.08, 0.12, 0.16, 0.24, 0.32, 0.5)],
        "wavelet": [(f"sigma={s}", (lambda s: lambda im: denoise_wavelet(
            im, sigma=s, rescale_sigma=True, mode="soft"))(s))
            for s in (None, 0.03, 0.06, 0.1, 0.15, 0.2, 0.3, 0.45)],
        "median_3x3": [("3x3", lambda im: median(im, footprint_rectangle((3, 3))))],
    }


#: Networks, fixed before the test images below were scored (the architectures were
#: explored on other images: training images and the first test images).
def conv_dae(noise, level, shape, epochs, seed):
    return AutoencoderTransformer(
        n_components=None, hidden_layer_sizes=(), architecture="conv", image_shape=shape,
        conv_channels=(32, 64), output_activation="sigmoid", noise=noise, noise_level=level,
        batch_size=64, learning_rate_init=2e-3, max_iter=epochs, random_state=seed,
    )


def mlp_dae(noise, level, shape, epochs, seed):
    return AutoencoderTransformer(
        n_components=256, hidden_layer_sizes=(512,), output_activation="sigmoid", noise=noise,
        noise_level=level, batch_size=64, learning_rate_init=1e-3, max_iter=epochs,
        random_state=seed,
    )


def denoise(args):
    X_train, X_test, shape = load(args.dataset)
    train, val = split(X_train, args.n_train, args.n_val)
    test = X_test[-args.n_test:]  # the first test images served exploratory runs
    rows, details = [], {}
    for key in args.noises:
        noise, level = NOISES[key]
        noisy_val = corrupt(val, noise, level, image_shape=shape, random_state=1)
        noisy_test = corrupt(test, noise, level, image_shape=shape, random_state=2)
        result = {"noisy input": psnr(test, noisy_test)}
        for name, candidates in classical_denoisers().items():
            label, fn = choose(candidates, noisy_val, val, shape)
            t = time.perf_counter()
            result[f"{name} ({label})"] = psnr(test, per_image(fn, noisy_test, shape))
            details[f"{key}/{name}"] = {"chosen": label, "seconds": time.perf_counter() - t}
        pca_scores = {}
        for k in (16, 32, 64, 128, 256):
            pca = PCA(k, random_state=0).fit(train)
            pca_scores[k] = (psnr(val, pca.inverse_transform(pca.transform(noisy_val))), pca)
        k = max(pca_scores, key=lambda k: pca_scores[k][0])
        pca = pca_scores[k][1]
        result[f"PCA reconstruction (k={k})"] = psnr(test, pca.inverse_transform(pca.transform(noisy_test)))
        for name, make in (("skae MLP DAE", mlp_dae), ("skae conv DAE", conv_dae)):
            t = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                model = make(noise, level, shape, args.epochs, args.seed).fit(train)
            result[name] = psnr(test, model.reconstruct(noisy_test))
            details[f"{key}/{name}"] = {"fit_seconds": time.perf_counter() - t,
                                        "validation": psnr(val, model.reconstruct(noisy_val))}
            if name == "skae conv DAE" and args.figures:
                triplet_figure(args.figures / f"denoise_{args.dataset}_{key}.png",
                               [noisy_test, model.reconstruct(noisy_test), test], shape,
                               ["noisy", "restored (conv DAE)", "clean"])
        rows.append((key, result))
        print(key, json.dumps(result, indent=1), flush=True)
    report_table(args, f"images_denoise_{args.dataset}{args.tag}", "Denoising", rows, details,
                 "PSNR (dB) on held-out test images; higher is better")


# ------------------------------------------------------------ watermark
def watermark_regressor(shape, epochs, seed):
    return AutoencoderRegressor(
        n_components=None, hidden_layer_sizes=(), architecture="conv", image_shape=shape,
        conv_channels=(32, 64), skip_connections=True, output_activation="sigmoid",
        batch_size=64, learning_rate_init=2e-3, max_iter=epochs, random_state=seed,
    )


def watermark(args):
    from skimage.restoration import inpaint_biharmonic

    X_train, X_test, shape = load(args.dataset)
    train, _ = split(X_train, args.n_train, 0)
    test = X_test[-args.n_test:]  # the first test images served exploratory runs
    marked_train = corrupt(train, "watermark", args.opacity, image_shape=shape, random_state=1)
    marked_test = corrupt(test, "watermark", args.opacity, image_shape=shape, random_state=2)
    mask = ~np.isclose(marked_test, test)
    h, w, c = shape
    t = time.perf_counter()
    inpainted = np.stack([
        inpaint_biharmonic(x.reshape(h, w, c), m.reshape(h, w, c).any(2), channel_axis=2).ravel()
        for x, m in zip(marked_test, mask)
    ])
    t_inpaint = time.perf_counter() - t
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t = time.perf_counter()
        reg = watermark_regressor(shape, args.epochs, args.seed).fit(marked_train, train)
        t_fit = time.perf_counter() - t
        # residual learning: the target is what to add to the marked image (0 off the strokes)
        res = watermark_regressor(shape, args.epochs, args.seed).set_params(
            output_activation="identity").fit(marked_train, train - marked_train)
    restored = reg.predict(marked_test)
    restored_residual = marked_test + res.predict(marked_test)
    result = {}
    for name, X in (("watermarked input", marked_test),
                     ("inpaint_biharmonic, given the true mask", inpainted),
                     ("skae AutoencoderRegressor (conv, skip connections)", restored),
                     ("skae AutoencoderRegressor on the residual (clean - marked), added back",
                      restored_residual)):
        result[name] = {"PSNR": psnr(test, X), "SSIM": ssim(test, X, shape)}
    print(json.dumps(result, indent=1), flush=True)
    if args.figures:
        triplet_figure(args.figures / f"watermark_{args.dataset}.png",
                       [marked_test, restored_residual, test], shape,
                       ["watermarked", "restored (residual regressor)", "clean"])
    details = {"fit_seconds": t_fit, "inpaint_seconds": t_inpaint, "opacity": args.opacity,
               "share_of_pixels_marked": float(mask.mean())}
    report_metrics(args, f"images_watermark_{args.dataset}", "Watermark removal", result, details)


# ---------------------------------------------------------- colorization
LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)


def to_gray(X, shape):
    h, w, _ = shape
    return (X.reshape(-1, h * w, 3) @ LUMA).astype(np.float32)


def colour_regressor(epochs, seed):
    return AutoencoderRegressor(
        n_components=None, hidden_layer_sizes=(), architecture="conv", image_shape=(32, 32, 1),
        conv_channels=(32, 64), skip_connections=True, output_activation="sigmoid",
        batch_size=64, learning_rate_init=2e-3, max_iter=epochs, random_state=seed,
    )


def colorize(args):
    X_train, X_test, shape = load("colour")
    train, _ = split(X_train, min(args.n_train, len(X_train)), 0)
    test = X_test[np.random.RandomState(3).permutation(len(X_test))[:args.n_test]]
    g_train, g_test = to_gray(train, shape), to_gray(test, shape)
    replicated = np.repeat(g_test[:, :, None], 3, axis=2).reshape(len(test), -1)
    lin = LinearRegression().fit(g_train.reshape(-1, 1), train.reshape(-1, 3))
    linear = lin.predict(g_test.reshape(-1, 1)).reshape(len(test), -1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t = time.perf_counter()
        reg = colour_regressor(args.epochs, args.seed)
        if args.residual:  # the target is what to add to the gray image in each channel
            gray3 = np.repeat(g_train[:, :, None], 3, axis=2).reshape(len(train), -1)
            reg.set_params(output_activation="identity").fit(g_train, train - gray3)
        else:
            reg.fit(g_train, train)
        t_fit = time.perf_counter() - t
    pred = reg.predict(g_test) + (replicated if args.residual else 0.0)
    name = ("skae AutoencoderRegressor on the residual (colour - gray), added back"
            if args.residual else "skae AutoencoderRegressor (conv, skip connections)")
    result = {name: {"PSNR": psnr(test, X), "SSIM": ssim(test, X, shape)}
              for name, X in (("gray replicated", replicated),
                              ("per-pixel linear regression on gray", linear),
                              (name, pred))}
    print(json.dumps(result, indent=1), flush=True)
    if args.figures:
        triplet_figure(args.figures / "colorize_kodak.png",
                       [replicated, pred, test], shape, ["gray", "colourized", "true"])
    stem = "images_colorize_kodak" + ("_residual" if args.residual else "")
    report_metrics(args, stem, "Colorization (Kodak tiles)", result,
                   {"fit_seconds": t_fit, "n_train": len(train), "n_test": len(test)})


# ----------------------------------------------------------- compression
def jpeg_curve(X, shape):
    from PIL import Image

    h, w, _ = shape
    points = []
    for q in (1, 2, 3, 5, 8, 10, 15, 20, 30, 40, 50, 60, 70, 80, 90, 95):
        sizes, out = [], []
        for x in X:
            buf = BytesIO()
            Image.fromarray(np.rint(x.reshape(h, w) * 255).astype(np.uint8), "L").save(
                buf, "JPEG", quality=q, optimize=True)
            sizes.append(buf.tell())
            buf.seek(0)
            out.append(np.asarray(Image.open(buf), dtype=np.float32).ravel() / 255.0)
        points.append({"quality": q, "bytes": float(np.mean(sizes)), "psnr": psnr(X, np.stack(out))})
    return points


def compress_bench(args):
    X_train, X_test, shape = load(args.dataset)
    train, _ = split(X_train, args.n_train, 0)
    test = X_test[-args.n_test:]  # the first test images served exploratory runs
    curves = {"JPEG (Pillow, whole file)": jpeg_curve(test, shape), "skae conv AE": [], "PCA": []}
    for k in args.code_sizes:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ae = AutoencoderTransformer(
                n_components=k, hidden_layer_sizes=(), architecture="conv", image_shape=shape,
                conv_channels=(32, 64), output_activation="sigmoid", batch_size=64,
                learning_rate_init=2e-3, max_iter=args.epochs, random_state=args.seed,
            ).fit(train)
        pca = PCA(k, random_state=0).fit(train)
        Zp = pca.transform(train)
        low, high = Zp.min(0), Zp.max(0)
        for b in args.bits:
            data = ae.compress(test, n_bits=b)
            curves["skae conv AE"].append({"n_components": k, "n_bits": b, "bytes": len(data[0]),
                                           "psnr": psnr(test, ae.decompress(data, n_bits=b))})
            Zq = dequantize(quantize(pca.transform(test), low, high, b), low, high, b)
            curves["PCA"].append({"n_components": k, "n_bits": b, "bytes": n_bytes(k, b),
                                  "psnr": psnr(test, pca.inverse_transform(Zq))})
        print(k, curves["skae conv AE"][-len(args.bits):], flush=True)
    if args.figures:
        rd_figure(args.figures / f"rate_distortion_{args.dataset}.png", curves, args.dataset)
    out = RESULTS / f"images_compress_{args.dataset}"
    out.with_suffix(".json").write_text(json.dumps(curves, indent=1))
    lines = [f"# Compression: {args.dataset}, bytes per image vs PSNR", "",
             f"Command: `{command(args)}`", "",
             f"{len(test)} test images; {len(train)} training images; {args.epochs} epochs.", ""]
    for name, pts in curves.items():
        env = envelope(pts)
        lines += [f"## {name} (lower envelope)", "", "| bytes | PSNR (dB) | setting |",
                  "|---:|---:|---|"]
        for p in env:
            setting = (f"quality {p['quality']}" if "quality" in p
                       else f"k={p['n_components']}, {p['n_bits']} bits")
            lines.append(f"| {p['bytes']:.1f} | {p['psnr']:.2f} | {setting} |")
        lines.append("")
    out.with_suffix(".md").write_text("\n".join(lines))
    print("\n".join(lines))


def envelope(points):
    """Points not beaten by a point with at most as many bytes."""
    best, out = -np.inf, []
    for p in sorted(points, key=lambda p: (p["bytes"], -p["psnr"])):
        if p["psnr"] > best:
            out.append(p)
            best = p["psnr"]
    return out


# ----------------------------------------------------------------- speed
class MinimalConvAE(torch.nn.Module):
    """The network ``architecture="conv"`` builds, written directly in torch (NCHW)."""

    def __init__(self, shape, channels, k):
        super().__init__()
        h, w, c = shape
        sizes = [(h, w)]
        for _ in channels:
            sizes.append(((sizes[-1][0] + 1) // 2, (sizes[-1][1] + 1) // 2))
        enc, dec, widths = [], [], [c, *channels]
        for a, b in zip(widths[:-1], widths[1:]):
            enc += [torch.nn.Conv2d(a, b, 3, stride=2, padding=1), torch.nn.ReLU()]
        self.enc = torch.nn.Sequential(*enc)
        self.flat = (channels[-1], *sizes[-1])
        n = int(np.prod(self.flat))
        self.code = torch.nn.Linear(n, k)
        self.up = torch.nn.Sequential(torch.nn.Linear(k, n), torch.nn.ReLU())
        for i in range(len(channels), 0, -1):
            out_c = widths[i - 1]
            (hi, wi), (ho, wo) = sizes[i], sizes[i - 1]
            pad = (ho - (2 * hi - 1), wo - (2 * wi - 1))
            dec += [torch.nn.ConvTranspose2d(widths[i], out_c, 3, stride=2, padding=1,
                                             output_padding=pad)]
            dec += [torch.nn.ReLU()] if i > 1 else [torch.nn.Sigmoid()]
        self.dec = torch.nn.Sequential(*dec)

    def forward(self, x):
        z = self.code(self.enc(x).flatten(1))
        return self.dec(self.up(z).reshape(-1, *self.flat))


def minimal_fit(X, shape, channels, k, epochs, batch_size, lr, seed):
    torch.manual_seed(seed)
    h, w, c = shape
    data = torch.from_numpy(X).reshape(-1, h, w, c).permute(0, 3, 1, 2).contiguous()
    model = MinimalConvAE(shape, channels, k)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    for _ in range(epochs):
        perm = torch.randperm(len(data))
        for i in range(0, len(data), batch_size):
            xb = data[perm[i:i + batch_size]]
            loss = torch.nn.functional.mse_loss(model(xb), xb)
            opt.zero_grad()
            loss.backward()
            opt.step()
    return model


def speed(args):
    X_train, _, shape = load(args.dataset)
    X = X_train[:args.n_train]
    channels, k, batch, lr = (32, 64), 64, 64, 2e-3
    times = {"skae": [], "minimal": []}
    for r in range(args.repeats):
        for peer in (("skae", "minimal") if r % 2 == 0 else ("minimal", "skae")):
            t = time.perf_counter()
            if peer == "skae":
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    AutoencoderTransformer(
                        n_components=k, hidden_layer_sizes=(), architecture="conv",
                        image_shape=shape, conv_channels=channels, output_activation="sigmoid",
                        batch_size=batch, learning_rate_init=lr, max_iter=args.epochs, tol=0.0,
                        n_iter_no_change=10 ** 6, random_state=r, device="cpu",
                    ).fit(X)
            else:
                minimal_fit(X, shape, channels, k, args.epochs, batch, lr, r)
            times[peer].append(time.perf_counter() - t)
        print(r, {p: round(v[-1], 2) for p, v in times.items()}, flush=True)
    ratios = [a / b for a, b in zip(times["skae"], times["minimal"])]
    lines = [f"# Convolutional fit speed: skae vs a minimal torch loop ({args.dataset})", "",
             f"Command: `{command(args)}`", "",
             f"{len(X)} images {shape}, conv_channels={channels}, code {k}, batch {batch}, "
             f"Adam, {args.epochs} epochs, torch threads {torch.get_num_threads()}; repeats "
             "interleaved (order alternates).", "",
             "| repeat | skae (s) | minimal (s) | ratio |", "|---:|---:|---:|---:|"]
    for i, (a, b) in enumerate(zip(times["skae"], times["minimal"])):
        lines.append(f"| {i} | {a:.2f} | {b:.2f} | {a / b:.3f} |")
    lines += ["", f"Median ratio skae / minimal: **{np.median(ratios):.3f}**", ""]
    (RESULTS / f"images_speed_{args.dataset}.md").write_text("\n".join(lines))
    print("\n".join(lines))


# ------------------------------------------------------------- reporting
def command(args):
    return "python benchmarks/bench_images.py " + " ".join(sys.argv[1:])


def report_table(args, stem, title, rows, details, note):
    names = list(rows[0][1])
    lines = [f"# {title}: {args.dataset}", "", f"Command: `{command(args)}`", "",
             f"{note}. {args.n_test} test images, {args.n_train} training images "
             f"({args.n_val} more for validation), {args.epochs} epochs, seed {args.seed}.", "",
             "| method | " + " | ".join(k for k, _ in rows) + " |",
             "|---|" + "---:|" * len(rows)]
    bases = [n.split(" (")[0] for n in names]
    for base in bases:
        cells = []
        for _, r in rows:
            match = [(n, v) for n, v in r.items() if n.split(" (")[0] == base][0]
            label = match[0][len(base):].strip(" ()")
            cells.append(f"{match[1]:.2f}" + (f" ({label})" if label else ""))
        lines.append(f"| {base} | " + " | ".join(cells) + " |")
    lines += ["", "Details (chosen parameters, seconds):", "", "```",
              json.dumps(details, indent=1), "```", ""]
    (RESULTS / f"{stem}.md").write_text("\n".join(lines))
    (RESULTS / f"{stem}.json").write_text(json.dumps({"rows": rows, "details": details}, indent=1))
    print("\n".join(lines))


def report_metrics(args, stem, title, result, details):
    lines = [f"# {title}", "", f"Command: `{command(args)}`", "",
             f"{args.n_test} held-out test images, {args.n_train} training images, "
             f"{args.epochs} epochs, seed {args.seed}.", "",
             "| method | PSNR (dB) | SSIM |", "|---|---:|---:|"]
    for name, m in result.items():
        lines.append(f"| {name} | {m['PSNR']:.2f} | {m['SSIM']:.4f} |")
    lines += ["", "```", json.dumps(details, indent=1), "```", ""]
    (RESULTS / f"{stem}.md").write_text("\n".join(lines))
    print("\n".join(lines))


# --------------------------------------------------------------- figures
def triplet_figure(path, rows, shape, titles, n=8):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    h, w, c = shape
    fig, axes = plt.subplots(len(rows), n, figsize=(n * 1.1, len(rows) * 1.25))
    for i, (X, title) in enumerate(zip(rows, titles)):
        for j in range(n):
            img = np.clip(X[j], 0, 1).reshape(h, w, c)
            axes[i, j].imshow(img[..., 0] if c == 1 else img, cmap="gray" if c == 1 else None,
                              vmin=0, vmax=1)
            axes[i, j].axis("off")
        axes[i, 0].set_title(title, fontsize=8, loc="left")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def rd_figure(path, curves, dataset):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    for name, pts in curves.items():
        env = envelope(pts)
        ax.plot([p["bytes"] for p in env], [p["psnr"] for p in env], marker="o", ms=3, label=name)
    ax.set_xscale("log")
    ax.set_xlabel("bytes per image")
    ax.set_ylabel("PSNR (dB)")
    ax.set_title(f"Rate-distortion, {dataset} test images")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("task", choices=("denoise", "watermark", "colorize", "compress", "speed"))
    p.add_argument("--dataset", choices=("mnist", "fashion"), default="mnist")
    p.add_argument("--n-train", type=int, default=20000)
    p.add_argument("--n-val", type=int, default=200)
    p.add_argument("--n-test", type=int, default=1000)
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--noises", nargs="+", default=list(NOISES))
    p.add_argument("--opacity", type=float, default=0.6)
    p.add_argument("--code-sizes", type=int, nargs="+", default=[4, 8, 16, 32, 64])
    p.add_argument("--bits", type=int, nargs="+", default=[2, 3, 4, 6, 8])
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--figures", type=Path, default=None)
    p.add_argument("--tag", default="", help="suffix of the result files' names")
    p.add_argument("--residual", action="store_true",
                   help="colorize: fit the regressor on colour - gray and add the gray back")
    args = p.parse_args(argv)
    RESULTS.mkdir(parents=True, exist_ok=True)
    {"denoise": denoise, "watermark": watermark, "colorize": colorize,
     "compress": compress_bench, "speed": speed}[args.task](args)


if __name__ == "__main__":
    main()
