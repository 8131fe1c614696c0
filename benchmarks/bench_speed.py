"""Training and inference speed of skae against the autoencoders a user could write or install.

Same data (a standardized low-rank nonlinear manifold plus noise), same
network (d-128-64-16-64-128-d, ReLU, linear output, MSE), Adam at 1e-3, the
same batch size and number of epochs for every implementation. The
implementations run interleaved, ``--repeats`` times each, in one process;
the table reports median fit time as a ratio to a minimal hand-written torch
loop (one tensor, shuffled index slices, no DataLoader), samples per second,
achieved GFLOP/s against the GEMM rate torch reaches on the same shapes, and
the final training MSE.

Examples
--------
python benchmarks/bench_speed.py                      # the full table
python benchmarks/bench_speed.py --batch-size 32 1024 # other batch sizes
python benchmarks/bench_speed.py --quick              # seconds; CI smoke test
python benchmarks/bench_speed.py --memory 2.0         # peak RSS of a fit on 2 GB
python benchmarks/bench_speed.py --device cuda --n 1000000 --batch-size 1024 4096
                                                      # GPU: minimal loop vs skae
"""

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from skae import AutoencoderTransformer  # noqa: E402

HIDDEN = (128, 64)
CODE = 16
#: Device of the torch implementations (``--device``); the others run on the CPU.
DEVICE = torch.device("cpu")


def synchronize():
    if DEVICE.type == "cuda":
        torch.cuda.synchronize(DEVICE)


def make_data(n, d, seed=0):
    """Standardized float32 data near a 16-dimensional nonlinear manifold."""
    rng = np.random.RandomState(seed)
    latent = rng.normal(size=(n, CODE))
    W1, W2 = rng.normal(size=(CODE, 64)), rng.normal(size=(64, d)) / 8
    X = np.tanh(latent @ W1) @ W2 + 0.1 * rng.normal(size=(n, d))
    X = (X - X.mean(0)) / X.std(0)
    return X.astype(np.float32)


def widths(d):
    return [d, *HIDDEN, CODE, *HIDDEN[::-1], d]


def training_flops(n, d, epochs):
    """Multiply-adds of forward and backward passes (about 3x forward) x 2 flops."""
    w = widths(d)
    macs = sum(a * b for a, b in zip(w[:-1], w[1:]))
    return 6.0 * macs * n * epochs


def gemm_rate(d, batch_size, seconds=0.5):
    """GFLOP/s torch reaches on the network's forward GEMM shapes."""
    w = widths(d)
    mats = [(torch.randn(batch_size, a, device=DEVICE), torch.randn(a, b, device=DEVICE))
            for a, b in zip(w[:-1], w[1:])]
    flops, start, done = 0.0, time.perf_counter(), 0.0
    while time.perf_counter() - start < seconds:
        for x, m in mats:
            torch.mm(x, m)
            flops += 2.0 * x.shape[0] * x.shape[1] * m.shape[1]
        synchronize()
    done = time.perf_counter() - start
    return flops / done / 1e9


def torch_mlp(d):
    w = widths(d)
    layers = []
    for i, (a, b) in enumerate(zip(w[:-1], w[1:])):
        layers.append(torch.nn.Linear(a, b))
        if i < len(w) - 2:
            layers.append(torch.nn.ReLU())
    return torch.nn.Sequential(*layers)


def final_mse(predict, X):
    with torch.no_grad():
        return float(np.mean((predict(X) - X) ** 2))


def run_minimal(X, batch_size, epochs, fused=False):
    """The minimal hand-written loop: one tensor, shuffled index slices."""
    torch.manual_seed(0)
    net = torch_mlp(X.shape[1]).to(DEVICE)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3, fused=fused or None)
    Xt = torch.from_numpy(X).to(DEVICE)
    g = torch.Generator(device=DEVICE).manual_seed(0)
    for _ in range(epochs):
        perm = torch.randperm(len(Xt), generator=g, device=DEVICE)
        for i in range(0, len(Xt), batch_size):
            xb = Xt[perm[i:i + batch_size]]
            loss = torch.nn.functional.mse_loss(net(xb), xb)
            opt.zero_grad()
            loss.backward()
            opt.step()
    synchronize()
    return lambda A: torch.cat([net(torch.from_numpy(A[i:i + 65536]).to(DEVICE)).cpu()
                                for i in range(0, len(A), 65536)]).numpy()


def run_dataloader(X, batch_size, epochs):
    torch.manual_seed(0)
    net = torch_mlp(X.shape[1])
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    loader = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(torch.from_numpy(X)), batch_size=batch_size, shuffle=True
    )
    for _ in range(epochs):
        for (xb,) in loader:
            loss = torch.nn.functional.mse_loss(net(xb), xb)
            opt.zero_grad()
            loss.backward()
            opt.step()
    return lambda A: net(torch.from_numpy(A)).numpy()


def run_skae(X, batch_size, epochs, **params):
    ae = AutoencoderTransformer(
        CODE, hidden_layer_sizes=HIDDEN, batch_size=batch_size, max_iter=epochs, tol=0,
        n_iter_no_change=epochs + 1, random_state=0, device=DEVICE, **params,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ae.fit(X)
    synchronize()
    return ae.reconstruct


def run_skae_streamed(X, batch_size, epochs):
    """skae with the data kept in host memory, as for data larger than the GPU's.

    A GPU row: ``data_fraction=0.0`` streams every data set from host memory
    to a CUDA device. On the CPU the data is already in host memory and is
    used in place, so this row then times the same fit as ``skae``.
    """
    from skae._device import device_policy

    with device_policy(data_fraction=0.0):
        return run_skae(X, batch_size, epochs)


def run_mlp(X, batch_size, epochs):
    from sklearn.neural_network import MLPRegressor

    mlp = MLPRegressor(
        hidden_layer_sizes=(*HIDDEN, CODE, *HIDDEN[::-1]), batch_size=batch_size, max_iter=epochs, tol=0,
        n_iter_no_change=epochs + 1, learning_rate_init=1e-3, random_state=0,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mlp.fit(X, X)
    return mlp.predict


def run_pyod(X, batch_size, epochs, defaults=False):
    from pyod.models.auto_encoder import AutoEncoder

    kwargs = dict(epoch_num=epochs, batch_size=batch_size, lr=1e-3, verbose=0, random_state=0,
                  hidden_neuron_list=[*HIDDEN, CODE])
    if not defaults:
        kwargs.update(preprocessing=False, batch_norm=False, dropout_rate=0.0)
    det = AutoEncoder(**kwargs).fit(X)
    model = det.model.eval()
    return lambda A: model(torch.from_numpy(A)).detach().numpy()


def run_skorch(X, batch_size, epochs):
    from skorch import NeuralNetRegressor

    torch.manual_seed(0)
    net = NeuralNetRegressor(
        torch_mlp(X.shape[1]), max_epochs=epochs, lr=1e-3, batch_size=batch_size,
        optimizer=torch.optim.Adam, train_split=None, verbose=0, iterator_train__shuffle=True,
    )
    net.fit(X, X)
    return lambda A: net.predict(A)


IMPLEMENTATIONS = {
    "minimal torch loop": run_minimal,
    "minimal loop, fused Adam": lambda X, b, e: run_minimal(X, b, e, fused=True),
    "skae": run_skae,
    "sklearn MLPRegressor": run_mlp,
    "torch DataLoader loop": run_dataloader,
    "PyOD AutoEncoder (plain)": run_pyod,
    "PyOD AutoEncoder (defaults)": lambda X, b, e: run_pyod(X, b, e, defaults=True),
    "skorch NeuralNetRegressor": run_skorch,
}
GPU_IMPLEMENTATIONS = {
    "minimal torch loop": run_minimal,
    "minimal loop, fused Adam": lambda X, b, e: run_minimal(X, b, e, fused=True),
    "skae": run_skae,
    "skae, tf32": lambda X, b, e: run_skae(X, b, e, precision="tf32"),
    "skae, bfloat16": lambda X, b, e: run_skae(X, b, e, precision="bfloat16"),
    "skae, streamed from host": run_skae_streamed,
}
QUICK = ("minimal torch loop", "skae")


def available(name):
    module = {"sklearn": "sklearn", "PyOD": "pyod", "skorch": "skorch"}
    for key, mod in module.items():
        if name.startswith(key):
            try:
                __import__(mod)
            except ImportError:
                return False
    return True


def time_fits(X, batch_size, epochs, names, repeats):
    """Median fit time and final MSE of each implementation, after a warm-up.

    The first fit in a process pays one-off costs (thread pools, kernel
    selection, first touch of freshly mapped memory) that can double its time;
    every implementation is therefore run once on a few batches, untimed.
    """
    warm = X[: 4 * batch_size]
    for name in names:
        IMPLEMENTATIONS[name](warm, batch_size, 1)
    times = {name: [] for name in names}
    losses = {}
    for _ in range(repeats):
        for name in names:
            start = time.perf_counter()
            predict = IMPLEMENTATIONS[name](X, batch_size, epochs)
            times[name].append(time.perf_counter() - start)
            losses[name] = final_mse(predict, X)
    return {name: statistics.median(t) for name, t in times.items()}, losses


def inference_throughput(X, batch_size, repeats):
    """Samples/s of skae.transform versus the minimal loop's encoder.

    Both take a float32 numpy array in host memory and return one, after one
    untimed warm-up call each; median of ``max(repeats, 5)`` calls.
    """
    ae = run_skae(X[:2048], batch_size, 1).__self__
    net = torch.nn.Sequential(*list(ae.module_.encoder))
    X = np.tile(X, (max(1, 200_000 // len(X)), 1))  # enough rows that fixed costs vanish
    Xt = torch.from_numpy(X)

    def minimal():
        with torch.inference_mode():
            return torch.cat([net(Xt[i:i + 8192].to(DEVICE)).cpu()
                              for i in range(0, len(Xt), 8192)]).numpy()

    minimal(), ae.transform(X)
    rates = {"minimal encoder loop": [], "skae transform": []}
    for _ in range(max(repeats, 5)):
        for name, fn in (("minimal encoder loop", minimal), ("skae transform",
                                                             lambda: ae.transform(X))):
            start = time.perf_counter()
            fn()
            rates[name].append(len(X) / (time.perf_counter() - start))
    return {k: statistics.median(v) for k, v in rates.items()}


def thread_sweep(n, d, epochs, batch_sizes, repeats):
    """Fit time of skae with one thread, with torch's default, and with its own choice."""
    from skae._device import current_policy, device_policy, training_threads

    default = torch.get_num_threads()
    choices = {"1 thread": float("inf"), f"{default} threads": 0,
               "auto": current_policy().single_thread_macs}
    X = make_data(n, d)
    print(f"\nthread sweep: n={n} d={d} epochs={epochs} (seconds, median of {repeats})")
    print(f"{'batch':>6} " + " ".join(f"{c:>10}" for c in choices) + "  auto picks")
    rows = {}
    for batch_size in batch_sizes:
        times = {c: [] for c in choices}
        for _ in range(repeats):
            for c, threshold in choices.items():
                with device_policy(single_thread_macs=threshold):
                    start = time.perf_counter()
                    run_skae(X, batch_size, epochs)
                    times[c].append(time.perf_counter() - start)
        med = {c: statistics.median(t) for c, t in times.items()}
        picked = training_threads((d, *HIDDEN, CODE), batch_size, torch.device("cpu")) or default
        print(f"{batch_size:>6} " + " ".join(f"{med[c]:>10.2f}" for c in choices)
              + f"  {picked}")
        rows[batch_size] = med
    return rows


def memory_child(gigabytes, d, mode):
    """Run in a subprocess: peak RSS of fit or transform on a float32 input."""
    n = int(gigabytes * 2**30 / 4 / d)
    X = np.empty((n, d), dtype=np.float32)
    chunk = 100_000
    rng = np.random.default_rng(0)
    for i in range(0, n, chunk):
        X[i:i + chunk] = rng.standard_normal((min(chunk, n - i), d), dtype=np.float32)
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    ae = AutoencoderTransformer(CODE, hidden_layer_sizes=HIDDEN, batch_size=1024, max_iter=1,
                                random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if mode == "fit":
            ae.fit(X)
        else:
            ae.fit(X[:4096])
            base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
            ae.inverse_transform(ae.transform(X))  # output of the same size as the input
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps({"input_bytes": X.nbytes, "rss_before": base, "peak_rss": peak}))


def measure_memory(gigabytes, d):
    results = {}
    for mode in ("fit", "transform"):
        out = subprocess.run(
            [sys.executable, __file__, "--memory-child", str(gigabytes), "--d", str(d),
             "--memory-mode", mode], capture_output=True, text=True, check=True,
        )
        r = json.loads(out.stdout.strip().splitlines()[-1])
        extra = (r["peak_rss"] - r["rss_before"]) / r["input_bytes"]
        results[mode] = (r["peak_rss"] / r["input_bytes"], extra)
        print(f"{mode:>9}: input {r['input_bytes'] / 2**30:.2f} GiB, peak RSS "
              f"{r['peak_rss'] / 2**30:.2f} GiB = {r['peak_rss'] / r['input_bytes']:.2f}x input; "
              f"growth during the call {extra:.1%} of the input", flush=True)
    return results


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20000)
    parser.add_argument("--d", type=int, default=256)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--batch-size", type=int, nargs="+", default=[256])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads for the peers (default: torch's own)")
    parser.add_argument("--only", nargs="+", default=None, metavar="NAME",
                        help="implementation names, each quoted, e.g. 'minimal torch loop' skae")
    parser.add_argument("--quick", action="store_true", help="small, fast smoke run")
    parser.add_argument("--device", default="cpu",
                        help="device of the torch implementations, e.g. cuda")
    parser.add_argument("--memory", type=float, default=None, metavar="GB")
    parser.add_argument("--thread-sweep", action="store_true",
                        help="time skae with 1 thread, torch's default, and its own choice")
    parser.add_argument("--memory-child", type=float, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--memory-mode", default="fit", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.memory_child is not None:
        return memory_child(args.memory_child, args.d, args.memory_mode)
    if args.memory is not None:
        return measure_memory(args.memory, args.d)
    if args.thread_sweep:
        return thread_sweep(args.n, args.d, args.epochs, args.batch_size, args.repeats)
    if args.threads:
        torch.set_num_threads(args.threads)
    global DEVICE
    DEVICE = torch.device(args.device)
    if DEVICE.type != "cpu":
        IMPLEMENTATIONS.clear()
        IMPLEMENTATIONS.update(GPU_IMPLEMENTATIONS)
    if args.quick:
        args.n, args.epochs, args.repeats = 4000, 2, 1
    names = list(QUICK if args.quick else IMPLEMENTATIONS)
    if args.only:
        unknown = set(args.only) - set(IMPLEMENTATIONS)
        if unknown:
            parser.error(f"unknown implementation(s) {sorted(unknown)}; "
                         f"choose from {list(IMPLEMENTATIONS)}")
        names = [n for n in names if n in args.only]
    names = [n for n in names if available(n)]
    X = make_data(args.n, args.d)
    print(f"n={args.n} d={args.d} epochs={args.epochs} repeats={args.repeats} "
          f"torch={torch.__version__} threads={torch.get_num_threads()} cpus={os.cpu_count()}")
    results = {}
    for batch_size in args.batch_size:
        times, losses = time_fits(X, batch_size, args.epochs, names, args.repeats)
        rate = gemm_rate(args.d, batch_size)
        flops = training_flops(args.n, args.d, args.epochs)
        base = times["minimal torch loop"]
        print(f"\nbatch_size={batch_size}  (GEMM rate on these shapes: {rate:.1f} GFLOP/s)")
        print(f"{'implementation':<30} {'fit s':>7} {'ratio':>6} {'samples/s':>10} "
              f"{'GFLOP/s':>8} {'% GEMM':>7} {'final MSE':>9}")
        for name in names:
            t = times[name]
            gflops = flops / t / 1e9
            print(f"{name:<30} {t:7.2f} {t / base:6.2f} {args.n * args.epochs / t:10.0f} "
                  f"{gflops:8.1f} {gflops / rate:7.0%} {losses[name]:9.4f}")
        results[batch_size] = {name: times[name] / base for name in names}
    rates = inference_throughput(X, args.batch_size[0], args.repeats)
    print(f"\ninference (float32, {max(1, 200_000 // len(X)) * len(X)} samples):")
    for name, r in rates.items():
        print(f"{name:<30} {r:12.0f} samples/s")
    return results


if __name__ == "__main__":
    main()
