"""
Data-parallel training with torchrun
====================================

Each process (rank) loads its own shard of scikit-learn's digits and calls
``fit`` on it; skae joins the processes into one torch.distributed group and
trains one model on all the shards, as if on their union. Rank 0 then saves
the model with :func:`skae.save`.

Run on one machine with two processes::

    torchrun --standalone --nproc_per_node=2 examples/distributed/train_distributed.py

Without torchrun the script runs as a single process on all the rows.
Options: ``--out PATH`` (where rank 0 saves the model, default
``examples/output/digits_distributed.safetensors``) and ``--device``
(``cpu`` by default; ``cuda`` puts rank ``r`` on GPU ``LOCAL_RANK``).
"""

import argparse
import os
from pathlib import Path

from sklearn.datasets import load_digits

import skae
from skae import AutoencoderTransformer


def main():
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    default_out = Path(__file__).parents[1] / "output" / "digits_distributed.safetensors"
    parser.add_argument("--out", type=Path, default=default_out)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()

    # torchrun tells each process who it is; one process alone is rank 0 of 1.
    rank = int(os.environ.get("RANK", 0))
    world_size = int(os.environ.get("WORLD_SIZE", 1))

    X, _ = load_digits(return_X_y=True)
    X = X / 16.0
    X_train, X_test = X[:1500], X[1500:]
    shard = X_train[rank::world_size]  # in practice each rank reads its own files

    ae = AutoencoderTransformer(
        n_components=8, hidden_layer_sizes=(64,), batch_size=64, max_iter=30, tol=1e-3,
        early_stopping=True, random_state=0, device=args.device,
    )
    ae.fit(shard)  # every rank calls fit: the ranks train one model together
    print(f"rank {rank} of {world_size}: {shard.shape[0]} rows, {ae.n_iter_} epochs, "
          f"validation score {ae.validation_scores_[-1]:.4f}")

    if rank == 0:  # the ranks hold the same model: one of them saves it
        args.out.parent.mkdir(parents=True, exist_ok=True)
        skae.save(ae, args.out)
        print(f"saved to {args.out}; held-out score {ae.score(X_test):.4f}")


if __name__ == "__main__":
    main()
