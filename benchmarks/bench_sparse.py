"""Peak memory of fitting on a sparse TF-IDF matrix, against its dense size.

Protocol
--------
* Corpus (synthetic, fixed seed): ``--docs`` documents whose lengths are
  drawn from a Poisson law of mean ``--doc-length`` tokens; each token is a
  word id of a Zipf law (exponent ``--zipf``) over a ``--vocabulary``-word
  vocabulary (ids beyond it are redrawn). Word counts per document
  (``scipy.sparse``), then scikit-learn's ``TfidfTransformer`` (l2-normalized
  rows, smoothed idf): a float64 CSR matrix of ``docs x vocabulary``.
* The matrix is built once and saved; each model is then fitted in a fresh
  Python process that loads it, so that peaks do not mix: peak RSS
  (``resource.getrusage(RUSAGE_SELF).ru_maxrss``) after loading, and after
  ``fit``. The detector's ``fit`` also scores every training row (its
  threshold); the transformer's computes every code (``code_range_``).
* Models: ``AutoencoderAnomalyDetector`` (``standardize=True``: the column
  statistics come from the sparse matrix) and ``AutoencoderTransformer``
  (``standardize=False``), ``n_components=--code``, no hidden layer,
  ``--epochs`` epochs, batch 200, on the CPU.

Reported: shape, density, nnz, the CSR's bytes, the dense float32 size it
would take, each process's peak RSS and fit time (indicative only: the
machine may be shared).

Usage::

    python benchmarks/bench_sparse.py [--docs 100000] [--vocabulary 50000]
        [--epochs 1] [--out benchmarks/results/sparse_memory.md]
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
import scipy.sparse as sp

ROOT = Path(__file__).resolve().parents[1]

CHILD = """
import json, resource, sys, time, warnings
import numpy as np, scipy.sparse as sp
sys.path.insert(0, {root!r})
from skae import AutoencoderAnomalyDetector, AutoencoderTransformer
warnings.simplefilter("ignore")
X = sp.load_npz({path!r})
loaded = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
cls = {{"detector": AutoencoderAnomalyDetector, "transformer": AutoencoderTransformer}}[{model!r}]
est = cls(n_components={code}, hidden_layer_sizes=(), max_iter={epochs}, batch_size=200,
          standardize={standardize}, random_state=0)
start = time.perf_counter()
est.fit(X)
seconds = time.perf_counter() - start
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(json.dumps(dict(loaded=loaded, peak=peak, seconds=seconds, loss=est.loss_curve_[-1])))
"""


def tfidf_corpus(n_docs, vocabulary, doc_length, zipf, seed=0):
    """A TF-IDF CSR matrix of a synthetic corpus with Zipf-distributed word ids."""
    from sklearn.feature_extraction.text import TfidfTransformer

    rng = np.random.default_rng(seed)
    lengths = np.maximum(1, rng.poisson(doc_length, size=n_docs))
    words = rng.zipf(zipf, size=int(lengths.sum())) - 1
    while (far := words >= vocabulary).any():  # redraw ids beyond the vocabulary
        words[far] = rng.zipf(zipf, size=int(far.sum())) - 1
    # shuffle word ranks so that frequent words are not the first columns
    words = rng.permutation(vocabulary)[words]
    docs = np.repeat(np.arange(n_docs), lengths)
    counts = sp.csr_matrix((np.ones(words.size), (docs, words)), shape=(n_docs, vocabulary))
    counts.sum_duplicates()
    return TfidfTransformer().fit_transform(counts).tocsr()


def csr_bytes(X):
    return X.data.nbytes + X.indices.nbytes + X.indptr.nbytes


def run_child(path, model, code, epochs, standardize):
    script = CHILD.format(root=str(ROOT), path=str(path), model=model, code=code, epochs=epochs,
                          standardize=standardize)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--docs", type=int, default=100_000)
    parser.add_argument("--vocabulary", type=int, default=50_000)
    parser.add_argument("--doc-length", type=float, default=100.0)
    parser.add_argument("--zipf", type=float, default=1.1)
    parser.add_argument("--code", type=int, default=16)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)

    start = time.perf_counter()
    X = tfidf_corpus(args.docs, args.vocabulary, args.doc_length, args.zipf)
    build = time.perf_counter() - start
    n, d = X.shape
    dense = n * d * 4
    info = dict(shape=(n, d), nnz=int(X.nnz), density=X.nnz / (n * d), csr=csr_bytes(X),
                dense_float32=dense, build_seconds=build)
    print(json.dumps(info))
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "tfidf.npz"
        sp.save_npz(path, X, compressed=False)
        del X
        for model, standardize in (("detector", True), ("transformer", False)):
            results[model] = dict(standardize=standardize,
                                  **run_child(path, model, args.code, args.epochs, standardize))
            print(model, json.dumps(results[model]), flush=True)

    gib = 2.0 ** 30
    lines = [
        "# Sparse input: peak memory of a fit on a TF-IDF matrix",
        "",
        "Command: `python benchmarks/bench_sparse.py " + " ".join(argv or sys.argv[1:]) + "`",
        "",
        f"Machine: {platform.machine()}, {platform.system()}, Python {platform.python_version()}"
        "; CPU, shared with other work: times are indicative only.",
        "",
        f"Corpus: {n} documents, {d}-word vocabulary, Poisson({args.doc_length:g}) tokens per "
        f"document, Zipf({args.zipf:g}) word ids, seed 0; `TfidfTransformer` (l2 rows).",
        "",
        "| matrix | value |",
        "| --- | --- |",
        f"| shape | {n} x {d} |",
        f"| stored entries (nnz) | {info['nnz']} |",
        f"| density | {info['density']:.3e} |",
        f"| CSR size (float64 data, int32 indices) | {info['csr'] / gib:.3f} GiB |",
        f"| dense float32 size | {dense / gib:.1f} GiB |",
        "",
        f"Models: `n_components={args.code}`, `hidden_layer_sizes=()`, `max_iter={args.epochs}`, "
        "`batch_size=200`, CPU; each in a fresh process that loads the saved matrix.",
        "",
        "| model | standardize | RSS after loading | peak RSS during fit | peak / CSR | "
        "peak / dense float32 | fit time |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for model, r in results.items():
        lines.append(
            f"| {model} | {r['standardize']} | {r['loaded'] / gib:.2f} GiB | "
            f"{r['peak'] / gib:.2f} GiB | {r['peak'] / info['csr']:.1f}x | "
            f"{r['peak'] / dense:.3f} | {r['seconds']:.0f} s |"
        )
    lines += [
        "",
        "The fit's own memory is the peak minus the RSS after loading (Python, torch and "
        "the matrix). `fit` includes scoring (detector) or encoding (transformer) every "
        "training row once, chunk by chunk.",
        "",
    ]
    text = "\n".join(lines)
    print(text)
    if args.out is not None:
        args.out.write_text(text)
    return info, results


if __name__ == "__main__":
    main()
