"""Peak memory of fitting on an on-disk array larger than the memory a process may use.

Protocol
--------
* Data (synthetic, fixed seed): ``--rows`` rows of ``--features`` float32
  features, ``tanh`` of a rank-8 linear map of Gaussian codes plus Gaussian
  noise (sd 0.1), written block by block into a ``.npy`` file (never whole
  in memory). With the defaults the file holds 2 150 000 x 1 024 float32
  values: 8.8 GB (8.2 GiB).
* Each model is then fitted in a fresh Python process that opens the file
  with ``numpy.load(path, mmap_mode="r")`` and passes the memory map to
  ``fit``: peak RSS (``resource.getrusage(RUSAGE_SELF).ru_maxrss``, which
  counts the file's pages mapped into the process) after importing skae and
  opening the file, and after ``fit``. The data is written by another child
  process: on Linux a child's peak RSS starts from its parent's size at the
  fork, so the parent that starts the fits stays small; and, for comparison, the peak RSS
  of a process that only reads the whole map once (``X.sum()``): what
  any pass through the mapped pages costs without skae's block reading.
* Models: ``AutoencoderAnomalyDetector`` (``standardize=True``: one pass to
  check the values, two for the column statistics (three when the recorded
  run was made), one epoch, one pass scoring every row for the threshold) and ``AutoencoderTransformer``
  (``standardize=False``; one epoch, then every row's code for
  ``code_range_``), ``hidden_layer_sizes=(64,)``, ``n_components=8``, batch
  1 024, on the CPU.

Reported: the file's size, each process's peak RSS, fit time (indicative
only) and last training loss.

Usage::

    python benchmarks/bench_out_of_core.py [--rows 2150000] [--features 1024]
        [--dir /tmp] [--keep] [--out benchmarks/results/out_of_core_memory.md]
"""

import argparse
import json
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]

CHILD = """
import json, resource, sys, time, warnings
import numpy as np
sys.path.insert(0, {root!r})
from skae import AutoencoderAnomalyDetector, AutoencoderTransformer
warnings.simplefilter("ignore")
X = np.load({path!r}, mmap_mode="r")
opened = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
start = time.perf_counter()
if {model!r} == "read-the-map":
    X.sum(dtype=np.float64)
    loss = None
else:
    cls = {{"detector": AutoencoderAnomalyDetector, "transformer": AutoencoderTransformer}}[{model!r}]
    est = cls(n_components=8, hidden_layer_sizes=(64,), max_iter=1, batch_size=1024,
              standardize={standardize}, random_state=0).fit(X)
    loss = est.loss_curve_[-1]
seconds = time.perf_counter() - start
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(json.dumps(dict(opened=opened, peak=peak, seconds=seconds, loss=loss)))
"""


def write_data(path, n_rows, n_features, seed=0, block=50_000):
    """Write the synthetic rows into ``path`` (.npy), one block at a time."""
    rng = np.random.default_rng(seed)
    mixing = rng.normal(size=(8, n_features)) / np.sqrt(8)
    header = {"descr": "<f4", "fortran_order": False, "shape": (n_rows, n_features)}
    with open(path, "wb") as f:
        np.lib.format.write_array_header_1_0(f, header)
        for start in range(0, n_rows, block):
            m = min(block, n_rows - start)
            codes = rng.standard_normal((m, 8), dtype=np.float32)
            rows = np.tanh(codes @ mixing.astype(np.float32))
            rows += 0.1 * rng.standard_normal((m, n_features), dtype=np.float32)
            f.write(rows.astype("<f4").tobytes())


def run_child(path, model, standardize):
    code = CHILD.format(root=str(ROOT), path=str(path), model=model, standardize=standardize)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=2_150_000)
    parser.add_argument("--features", type=int, default=1024)
    parser.add_argument("--dir", default=None, help="where the .npy file is written")
    parser.add_argument("--keep", action="store_true", help="keep the .npy file")
    parser.add_argument("--out", default=None, help="write the markdown table here")
    parser.add_argument("--write", default=None, help=argparse.SUPPRESS)  # the data writer
    args = parser.parse_args()
    if args.write:
        write_data(args.write, args.rows, args.features)
        return

    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        path = Path(tmp) / "X.npy"
        start = time.perf_counter()
        # in a child process too: on Linux a child's peak RSS starts from its
        # parent's size when it was forked, so the parent stays small
        subprocess.run([sys.executable, __file__, "--write", str(path), "--rows",
                        str(args.rows), "--features", str(args.features)], check=True)
        written = time.perf_counter() - start
        size = path.stat().st_size
        results = {
            "read-the-map": run_child(path, "read-the-map", False),
            "detector": run_child(path, "detector", True),
            "transformer": run_child(path, "transformer", False),
        }
        if args.keep:
            kept = Path(args.dir or ".") / "X.npy"
            path.rename(kept)

    gib = 1024 ** 3
    command = "python benchmarks/bench_out_of_core.py " + " ".join(sys.argv[1:])
    lines = [
        "# Out-of-core fit: peak memory on an on-disk array",
        "",
        f"Command: `{command.strip()}`",
        "",
        f"Machine: {platform.processor() or platform.machine()}, Python "
        f"{platform.python_version()}, numpy {np.__version__}.",
        "",
        f"File: {args.rows} x {args.features} float32, {size / 1e9:.2f} GB "
        f"({size / gib:.2f} GiB), written in {written:.0f} s.",
        "",
        "| process | peak RSS after opening | peak RSS at the end | seconds | last loss |",
        "|---|---|---|---|---|",
    ]
    for name, r in results.items():
        loss = "" if r["loss"] is None else f"{r['loss']:.4f}"
        lines.append(f"| {name} | {r['opened'] / gib:.2f} GiB | {r['peak'] / gib:.2f} GiB | "
                     f"{r['seconds']:.0f} | {loss} |")
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        Path(args.out).write_text(text)


if __name__ == "__main__":
    main()
