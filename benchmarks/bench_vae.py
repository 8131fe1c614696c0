"""Variational autoencoder on binarized MNIST: held-out NLL, speed, sample quality.

Protocol
--------
* Data: ``$SKAE_DATA/images/mnist.npz`` (60000 train / 10000 test), pixels
  divided by 255 and binarized once with a fixed seed (*fixed* stochastic
  binarization: ``x = u < p`` with ``u ~ U(0, 1)`` from
  ``np.random.RandomState(0)`` for the training set and ``RandomState(1)`` for
  the test set).
* Network (Burda et al., 2016, one stochastic layer): 784-H-H-50 encoder
  (``--hidden``, default 200 200; tanh), 50 Gaussian latent units, the
  mirrored decoder, Bernoulli likelihood; Adam at ``--lr``, batch
  ``--batch-size``, ``--epochs`` epochs, no early stopping, one code drawn per
  sample per step.
* Peers, run one after the other in one process with the same threads:
  ``skae`` = ``AutoencoderTransformer(variational=True, loss="bce",
  output_activation="sigmoid", ...)``; ``minimal`` = a hand-written torch VAE
  (``nn.Sequential`` encoder with a ``2 * 50`` output layer, decoder,
  ``binary_cross_entropy_with_logits`` summed over pixels + the closed-form
  KL, ``torch.optim.Adam``, shuffled index slices of one tensor).
* Held-out NLL: the importance-weighted estimate with ``--k`` samples
  (Burda et al.), each model scored by its own code (skae:
  ``-score_samples`` with ``n_importance_samples=k``; minimal: its own
  hand-written estimator), on the first ``--n-test`` test images.
* Samples: ``--n-samples`` decoder means ``E[x | z]``, ``z ~ N(0, I)``,
  labelled by a ``LogisticRegression`` trained on the real (grey-level)
  training set: mean top-class probability and the share of each class.

Usage::

    python benchmarks/bench_vae.py [--epochs 100] [--dataset mnist|fashion]
        [--k 1000] [--n-test 10000] [--figures docs/variational] [--tag NAME]

With ``--dataset fashion`` the grey levels in [0, 1] are the Bernoulli
targets (no binarization; no likelihood is reported, the Bernoulli
likelihood of grey levels not being a density) and only sample quality is
measured. Results go to ``benchmarks/results/vae_<tag>.md``.
"""

import argparse
import json
import math
import os
import platform
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from skae import AutoencoderTransformer  # noqa: E402

CLASSES = {
    "mnist": [str(i) for i in range(10)],
    "fashion": ["T-shirt", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                "Sneaker", "Bag", "Boot"],
}


def data_dir():
    return Path(os.environ.get("SKAE_DATA", ROOT.parent / "shared" / "datasets"))


def load(dataset):
    """``(X_train, y_train, X_test, y_test, grey_train)``; X float32 in {0, 1} or [0, 1]."""
    name = "mnist.npz" if dataset == "mnist" else "fashion_mnist.npz"
    d = np.load(data_dir() / "images" / name)
    grey_train = d["X_train"].reshape(-1, 784).astype(np.float32) / 255
    grey_test = d["X_test"].reshape(-1, 784).astype(np.float32) / 255
    if dataset == "mnist":
        X_train = (np.random.RandomState(0).uniform(size=grey_train.shape) < grey_train)
        X_test = (np.random.RandomState(1).uniform(size=grey_test.shape) < grey_test)
        X_train, X_test = X_train.astype(np.float32), X_test.astype(np.float32)
    else:
        X_train, X_test = grey_train, grey_test
    return X_train, d["y_train"], X_test, d["y_test"], grey_train


# ------------------------------------------------------------------ minimal
class MinimalVAE(nn.Module):
    def __init__(self, d, hidden, k):
        super().__init__()
        widths = [d, *hidden]
        enc = []
        for a, b in zip(widths[:-1], widths[1:]):
            enc += [nn.Linear(a, b), nn.Tanh()]
        self.enc = nn.Sequential(*enc, nn.Linear(widths[-1], 2 * k))
        rev = [k, *hidden[::-1]]
        dec = []
        for a, b in zip(rev[:-1], rev[1:]):
            dec += [nn.Linear(a, b), nn.Tanh()]
        self.dec = nn.Sequential(*dec, nn.Linear(rev[-1], d))
        self.k = k

    def posterior(self, x):
        """Mean and log-variance, with skae's parameterization of the deviation."""
        mean, h = self.enc(x).chunk(2, dim=1)
        std = F.softplus(h + math.log(math.e - 1)) + 1e-4
        return mean, 2 * torch.log(std)

    def forward(self, x):
        mean, lv = self.posterior(x)
        z = mean + torch.exp(0.5 * lv) * torch.randn_like(mean)
        logits = self.dec(z)
        rec = F.binary_cross_entropy_with_logits(logits, x, reduction="none").sum(1)
        kl = 0.5 * (mean.square() + lv.exp() - 1 - lv).sum(1)
        return (rec + kl).mean()


def train_minimal(X, hidden, k, epochs, batch_size, lr, seed):
    torch.manual_seed(seed)
    model = MinimalVAE(X.shape[1], hidden, k)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    data = torch.from_numpy(X)
    n = data.shape[0]
    for _ in range(epochs):
        perm = torch.randperm(n)
        for i in range(0, n, batch_size):
            loss = model(data[perm[i:i + batch_size]])
            opt.zero_grad()
            loss.backward()
            opt.step()
    return model


@torch.no_grad()
def minimal_log_likelihood(model, X, k_samples, seed=0, rows=8):
    """Importance-weighted log p(x) per row, written independently of skae (float32)."""
    g = torch.Generator().manual_seed(seed)
    out = []
    for i in range(0, X.shape[0], rows):
        x = torch.from_numpy(X[i:i + rows])
        mean, lv = model.posterior(x)
        eps = torch.randn(x.shape[0], k_samples, model.k, generator=g)
        z = mean[:, None] + torch.exp(0.5 * lv)[:, None] * eps
        logits = model.dec(z)
        log_px = -F.binary_cross_entropy_with_logits(
            logits, x[:, None].expand_as(logits), reduction="none").sum(2)
        log_pz = -0.5 * (z ** 2 + math.log(2 * math.pi)).sum(2)
        log_qz = -0.5 * (eps ** 2 + lv[:, None] + math.log(2 * math.pi)).sum(2)
        out.append(torch.logsumexp(log_px + log_pz - log_qz, 1) - math.log(k_samples))
    return torch.cat(out).numpy()


# ------------------------------------------------------------------ samples
def sample_quality(samples, grey_train, y_train, seed=0):
    """``{classifier: (mean top-class probability, class shares)}`` on the samples.

    Two classifiers trained on the real (grey-level) training set: a
    ``LogisticRegression`` and a small ``MLPClassifier`` (one hidden layer of
    256 ReLU units, early stopping).
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.neural_network import MLPClassifier

    classifiers = {
        "logistic": LogisticRegression(max_iter=200, random_state=seed),
        "mlp": MLPClassifier(hidden_layer_sizes=(256,), early_stopping=True, random_state=seed),
    }
    out = {}
    for name, clf in classifiers.items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            clf.fit(grey_train, y_train)
        proba = clf.predict_proba(samples)
        shares = np.bincount(proba.argmax(1), minlength=10) / len(samples)
        out[name] = (float(proba.max(1).mean()), shares.tolist())
    return out


def figures(model, out_dir, X_test, tag, seed=0):
    """Sample grid and latent interpolation (PNG) of a fitted skae VAE."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir.mkdir(parents=True, exist_ok=True)
    grid = model.sample(64, random_state=seed).reshape(8, 8, 28, 28)
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.imshow(grid.transpose(0, 2, 1, 3).reshape(8 * 28, 8 * 28), cmap="gray_r")
    ax.set_axis_off()
    fig.savefig(out_dir / f"{tag}_samples.png", bbox_inches="tight", dpi=100)
    plt.close(fig)
    codes = model.transform(X_test[:16])
    rows = []
    for a, b in zip(codes[0::2][:6], codes[1::2][:6]):
        t = np.linspace(0, 1, 10)[:, None]
        rows.append(model.inverse_transform((1 - t) * a + t * b))
    strip = np.stack(rows).reshape(6, 10, 28, 28).transpose(0, 2, 1, 3).reshape(6 * 28, 10 * 28)
    fig, ax = plt.subplots(figsize=(6, 3.6))
    ax.imshow(strip, cmap="gray_r")
    ax.set_axis_off()
    fig.savefig(out_dir / f"{tag}_interpolation.png", bbox_inches="tight", dpi=100)
    plt.close(fig)


def latent_grid_figure(X_train, out_dir, tag, epochs, seed=0):
    """Decoded 2-D latent grid of a VAE with a 2-D code."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from scipy.stats import norm

    model = AutoencoderTransformer(
        n_components=2, hidden_layer_sizes=(200, 200), activation="tanh", variational=True,
        loss="bce", output_activation="sigmoid", batch_size=100, max_iter=epochs,
        n_iter_no_change=epochs, random_state=seed,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(X_train)
    q = norm.ppf(np.linspace(0.05, 0.95, 15))
    Z = np.array([[a, b] for b in q[::-1] for a in q])
    img = model.inverse_transform(Z).reshape(15, 15, 28, 28).transpose(0, 2, 1, 3)
    fig, ax = plt.subplots(figsize=(6, 6))
    ax.imshow(img.reshape(15 * 28, 15 * 28), cmap="gray_r")
    ax.set_axis_off()
    fig.savefig(out_dir / f"{tag}_latent_grid.png", bbox_inches="tight", dpi=100)
    plt.close(fig)


def epoch_cost(X, hidden, latent, batch_size, epochs=3, repeats=3, rows=20000):
    """Seconds per epoch of the plain and the variational autoencoder, interleaved.

    Same network, data, batch size and epochs; for each loss, the plain
    model with ``variational=False`` and the VAE with ``variational=True``.
    Returns ``{loss: {"plain": s, "variational": s}}`` (medians).
    """
    X = X[:rows]
    times = {}
    for _ in range(repeats):
        for loss, out in (("mse", "identity"), ("bce", "sigmoid")):
            for kind in ("plain", "variational"):
                model = AutoencoderTransformer(
                    n_components=latent, hidden_layer_sizes=hidden, activation="tanh",
                    variational=kind == "variational", loss=loss, output_activation=out,
                    batch_size=batch_size, max_iter=epochs, n_iter_no_change=epochs,
                    random_state=0,
                )
                start = time.perf_counter()
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    model.fit(X)
                times.setdefault(loss, {}).setdefault(kind, []).append(
                    (time.perf_counter() - start) / epochs)
    return {loss: {k: float(np.median(v)) for k, v in d.items()} for loss, d in times.items()}


def speed(X, hidden, latent, batch_size, lr, epochs=2, repeats=3):
    """Seconds per epoch of skae's fit and the minimal loop, interleaved.

    Each repeat fits skae for ``epochs`` epochs, then trains the minimal VAE
    for as many, so that both see the same machine load; the whole ``fit``
    call (input validation and the posterior KL pass included) is timed.
    """
    times = {"skae": [], "minimal": []}
    for _ in range(repeats):
        model = AutoencoderTransformer(
            n_components=latent, hidden_layer_sizes=hidden, activation="tanh",
            variational=True, loss="bce", output_activation="sigmoid", batch_size=batch_size,
            learning_rate_init=lr, max_iter=epochs, n_iter_no_change=epochs, random_state=0,
        )
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model.fit(X)
        times["skae"].append((time.perf_counter() - start) / epochs)
        start = time.perf_counter()
        train_minimal(X, hidden, latent, epochs, batch_size, lr, seed=0)
        times["minimal"].append((time.perf_counter() - start) / epochs)
    return times


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--dataset", choices=("mnist", "fashion"), default="mnist")
    p.add_argument("--epochs", type=int, default=100)
    p.add_argument("--hidden", type=int, nargs="+", default=[200, 200])
    p.add_argument("--latent", type=int, default=50)
    p.add_argument("--batch-size", type=int, default=100)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--k", type=int, default=1000)
    p.add_argument("--n-test", type=int, default=10000)
    p.add_argument("--n-samples", type=int, default=10000)
    p.add_argument("--peers", default="skae,minimal")
    p.add_argument("--figures", type=Path, default=None)
    p.add_argument("--grid-epochs", type=int, default=30)
    p.add_argument("--tag", default=None)
    p.add_argument("--adaptive", action="store_true",
                   help="skae only: learning_rate='adaptive' (divide by 5 after 10 epochs "
                        "without a 0.01-nat improvement) instead of a constant rate")
    p.add_argument("--speed", action="store_true",
                   help="only time epochs of skae and the minimal loop, interleaved")
    p.add_argument("--cost", action="store_true",
                   help="only time epochs of the plain and the variational autoencoder")
    args = p.parse_args(argv)
    if args.speed:
        X_train = load(args.dataset)[0]
        times = speed(X_train, tuple(args.hidden), args.latent, args.batch_size, args.lr)
        ratios = [a / b for a, b in zip(times["skae"], times["minimal"])]
        lines = [
            "# Training speed: skae against the minimal torch VAE, interleaved", "",
            f"- command: `python benchmarks/bench_vae.py {' '.join(sys.argv[1:])}`",
            f"- date: {time.strftime('%Y-%m-%dT%H:%M:%S%z')}; torch {torch.__version__}, "
            f"{os.cpu_count()} CPUs, torch threads {torch.get_num_threads()}",
            f"- all 60000 {args.dataset} training images, 784-{'-'.join(map(str, args.hidden))}"
            f"-{args.latent} tanh, Bernoulli, batch {args.batch_size}; 3 repeats of (skae fit "
            "of 2 epochs, then the minimal loop for 2 epochs)", "",
            "| repeat | skae s/epoch | minimal s/epoch | ratio |", "|---|---:|---:|---:|",
        ]
        for i, (a, b) in enumerate(zip(times["skae"], times["minimal"]), 1):
            lines.append(f"| {i} | {a:.2f} | {b:.2f} | {a / b:.2f} |")
        lines += ["", f"median ratio: {float(np.median(ratios)):.2f}"]
        print("\n".join(lines))
        (ROOT / "benchmarks" / "results" / "vae_speed.md").write_text("\n".join(lines) + "\n")
        return
    if args.cost:
        X_train = load(args.dataset)[0]
        cost = epoch_cost(X_train, tuple(args.hidden), args.latent, args.batch_size)
        lines = [
            "# Cost per epoch: variational against plain", "",
            f"- command: `python benchmarks/bench_vae.py {' '.join(sys.argv[1:])}`",
            f"- date: {time.strftime('%Y-%m-%dT%H:%M:%S%z')}; torch {torch.__version__}, "
            f"{os.cpu_count()} CPUs, torch threads {torch.get_num_threads()}",
            f"- first 20000 {args.dataset} training images, 784-{'-'.join(map(str, args.hidden))}"
            f"-{args.latent} tanh, batch {args.batch_size}; median of 3 interleaved fits of 3 "
            "epochs each", "",
            "| loss | plain s/epoch | variational s/epoch | ratio |", "|---|---:|---:|---:|",
        ]
        for loss, d in cost.items():
            lines.append(f"| {loss} | {d['plain']:.3f} | {d['variational']:.3f} | "
                         f"{d['variational'] / d['plain']:.2f} |")
        print("\n".join(lines))
        out = ROOT / "benchmarks" / "results" / "vae_cost.md"
        out.write_text("\n".join(lines) + "\n")
        return
    tag = args.tag or args.dataset
    peers = args.peers.split(",")
    X_train, y_train, X_test, _, grey_train = load(args.dataset)
    X_eval = X_test[:args.n_test]
    hidden = tuple(args.hidden)
    results = {}
    for peer in peers:
        start = time.perf_counter()
        if peer == "skae":
            model = AutoencoderTransformer(
                n_components=args.latent, hidden_layer_sizes=hidden, activation="tanh",
                variational=True, loss="bce", output_activation="sigmoid",
                batch_size=args.batch_size, learning_rate_init=args.lr, max_iter=args.epochs,
                n_importance_samples=args.k, random_state=0,
                **(dict(learning_rate="adaptive", tol=0.01, n_iter_no_change=10)
                   if args.adaptive else dict(n_iter_no_change=args.epochs)),
            )
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # max_iter reached: the budget is the protocol
                model.fit(X_train)
        else:
            model = train_minimal(X_train, hidden, args.latent, args.epochs, args.batch_size,
                                  args.lr, seed=0)
        fit_s = time.perf_counter() - start
        epochs = model.n_iter_ if peer == "skae" else args.epochs
        res = {"fit_s": fit_s, "epochs": epochs, "s_per_epoch": fit_s / epochs}
        if args.dataset == "mnist":
            start = time.perf_counter()
            if peer == "skae":
                ll = model.score_samples(X_eval)
            else:
                ll = minimal_log_likelihood(model, X_eval, args.k)
            res["nll"] = float(-ll.mean())
            res["eval_s"] = time.perf_counter() - start
        if peer == "skae":
            res["train_elbo"] = -model.loss_curve_[-1]
            res["active_units"] = int((model.latent_kl_ > 0.01).sum())
            samples = model.sample(args.n_samples, random_state=0)
            res["samples"] = sample_quality(samples, grey_train, y_train)
            if args.figures is not None:
                figures(model, args.figures, X_test, tag)
        results[peer] = res
        print(peer, json.dumps(res), flush=True)
    if args.figures is not None and args.dataset == "mnist":
        latent_grid_figure(X_train, args.figures, tag, args.grid_epochs)
    report(args, results, tag)


def report(args, results, tag):
    out = ROOT / "benchmarks" / "results"
    out.mkdir(parents=True, exist_ok=True)
    command = "python benchmarks/bench_vae.py " + " ".join(sys.argv[1:])
    lines = [
        f"# Variational autoencoder: {args.dataset}", "",
        f"- command: `{command}`",
        f"- date: {time.strftime('%Y-%m-%dT%H:%M:%S%z')}",
        f"- versions: torch {torch.__version__}, python {platform.python_version()}, "
        f"{os.cpu_count()} CPUs, torch threads {torch.get_num_threads()}",
        f"- network: 784-{'-'.join(map(str, args.hidden))}-{args.latent} tanh, Bernoulli "
        f"likelihood; Adam lr {args.lr}"
        f"{' (adaptive: /5 after 10 epochs without a 0.01-nat gain)' if args.adaptive else ''}, "
        f"batch {args.batch_size}, up to {args.epochs} epochs; "
        f"NLL: importance-weighted, k={args.k}, first {args.n_test} test images",
        "", "| peer | epochs | fit s | s/epoch | test NLL (nats) | eval s |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for peer, r in results.items():
        nll = f"{r['nll']:.2f}" if "nll" in r else "-"
        ev = f"{r['eval_s']:.0f}" if "eval_s" in r else "-"
        lines.append(f"| {peer} | {r['epochs']} | {r['fit_s']:.0f} | {r['s_per_epoch']:.2f} | "
                     f"{nll} | {ev} |")
    if "skae" in results and "minimal" in results:
        s, m = results["skae"], results["minimal"]
        lines += ["", f"skae fit time / minimal fit time: {s['fit_s'] / m['fit_s']:.2f}"]
        if "nll" in s:
            lines.append(f"skae NLL - minimal NLL: {s['nll'] - m['nll']:+.2f} nats")
    if "skae" in results:
        s = results["skae"]
        lines += [
            "", f"skae: final training loss (negative ELBO) {-s['train_elbo']:.2f} nats; "
            f"active latent units (KL > 0.01 nats) {s['active_units']} of {args.latent}", "",
            f"skae samples ({args.n_samples} decoder means, z ~ N(0, I)) labelled by "
            "classifiers trained on the real training set:", "",
            "| classifier | mean top-class probability | smallest class share | largest class "
            "share | class shares |", "|---|---:|---:|---:|---|",
        ]
        for name, (top, shares) in s["samples"].items():
            listed = ", ".join(f"{c} {100 * v:.1f}%" for c, v in zip(CLASSES[args.dataset], shares))
            lines.append(f"| {name} | {top:.3f} | {100 * min(shares):.1f}% | "
                         f"{100 * max(shares):.1f}% | {listed} |")
    (out / f"vae_{tag}.md").write_text("\n".join(lines) + "\n")
    (out / f"vae_{tag}.json").write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
