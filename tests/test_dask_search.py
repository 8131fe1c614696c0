"""Hyperparameter search over skae estimators on a Dask cluster.

scikit-learn's searches run their fits through joblib; under
``joblib.parallel_backend("dask")`` each batch of fits is a task of a
``distributed`` cluster. The fits are seeded (``random_state``) and every
worker trains on one thread, as the serial search's small fits do, so the
cluster's scores equal the serial ones; they are compared at ``rtol=1e-12``.

Where each fit ran is recorded by the search itself: a second scorer,
``"pid"``, returns the id of the process that scores the fitted candidate,
which is the process that fitted it. Every cell of the Dask search's
``split<k>_test_pid`` columns must be a worker's process id, and both
workers must appear.

A worker process killed with SIGKILL in the middle of a fit loses that fit;
the scheduler hands it to another worker (it allows
``distributed.scheduler.allowed-failures`` such deaths per task, 3 by
default), the worker's nanny starts a new process, and the search ends with
the serial scores, provided the killed worker did not hold the only copy of
data that fits still need (see ``test_worker_killed_during_search``).
"""

import os
import re
import signal
import threading
import time

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from scipy.stats import loguniform
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV, KFold, RandomizedSearchCV, StratifiedKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import MinMaxScaler

from skae import AutoencoderAnomalyDetector, AutoencoderTransformer

distributed = pytest.importorskip("distributed")
joblib = pytest.importorskip("joblib")

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

FIT_TASK = re.compile(r"batch_of__fit_and_score_\d+_calls-")


def scorers(metric=None):
    """Scoring for a search: ``"score"`` (``metric``) and ``"pid"``, the scoring process's id.

    The functions are defined in this call, not at module level, so that
    they pickle by value: the workers cannot import the test module.

    Parameters
    ----------
    metric : str or None
        A scikit-learn scorer name; None scores with the estimator's own
        ``score``.

    Returns
    -------
    scoring : dict
    """

    def own_score(estimator, X, y=None):
        return estimator.score(X)

    def process_id(estimator, X, y=None):
        return os.getpid()

    return {"score": own_score if metric is None else metric, "pid": process_id}


def fitting_processes(search):
    """Process id of the process that fitted each candidate on each split.

    Parameters
    ----------
    search : fitted GridSearchCV or RandomizedSearchCV scored with :func:`scorers`

    Returns
    -------
    pids : ndarray of int, shape (n_candidates * n_splits,)
    """
    columns = [k for k in search.cv_results_ if re.fullmatch(r"split\d+_test_pid", k)]
    return np.concatenate([search.cv_results_[k] for k in columns]).astype(int)


def search_serial_and_on_dask(search, warm_workers, X, y=None):
    """Fit ``search`` with ``n_jobs=1``, then on the default client's cluster with ``n_jobs=-1``.

    The Dask search starts once both workers are ready (``warm_workers``),
    so that neither is still importing torch while the other takes all fits.
    """
    serial = clone(search).set_params(n_jobs=1).fit(X, y)
    distributed.wait(warm_workers)
    with joblib.parallel_backend("dask"):
        on_dask = clone(search).set_params(n_jobs=-1).fit(X, y)
    return serial, on_dask


def assert_same_scores(serial, on_dask, refit=True):
    """Both searches scored every candidate on every split alike (and chose the same one)."""
    results, expected = on_dask.cv_results_, serial.cv_results_
    keys = [k for k in expected if re.fullmatch(r"(split\d+|mean|std)_test_score", k)]
    assert len(keys) > 3
    for key in keys:
        assert_allclose(results[key], expected[key], rtol=1e-12, atol=0, err_msg=key)
    assert_array_equal(results["rank_test_score"], expected["rank_test_score"])
    if not refit:
        return
    assert on_dask.best_index_ == serial.best_index_
    assert on_dask.best_params_ == serial.best_params_


def assert_fitted_on_both_workers(search, client):
    """Every fit of ``search`` ran in a worker process, and each of the two ran some."""
    worker_pids = set(client.run(os.getpid).values())
    assert len(worker_pids) == 2
    pids = fitting_processes(search)
    assert set(pids) == worker_pids, (pids, worker_pids)
    assert os.getpid() not in pids


@pytest.fixture(scope="module")
def warm_workers(dask_client):
    """Have each worker import skae and fit once, while the first test fits serially.

    A fresh process spends seconds importing torch and, at its first fit,
    ``torch._dynamo`` (which torch's optimizers import); started here, that
    overlaps with the serial search instead of delaying the Dask one.

    Returns
    -------
    futures : list of distributed.Future
        One per worker; done when that worker is ready.
    """

    def fit_once():
        # defined here, not at module level, so that it pickles by value for the workers
        import warnings

        from sklearn.exceptions import ConvergenceWarning

        from skae import AutoencoderTransformer

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            AutoencoderTransformer(max_iter=1, device="cpu").fit(np.eye(4))

    workers = list(dask_client.scheduler_info()["workers"])
    return [dask_client.submit(fit_once, workers=[w], pure=False) for w in workers]


@pytest.fixture(scope="module")
def digit_rows(digits):
    """300 digit images scaled to [0, 1] with their labels."""
    X, _, y, _ = digits
    return X[:300], y[:300]


def test_grid_search_transformer_on_dask(dask_client, warm_workers, digit_rows):
    X, _ = digit_rows
    search = GridSearchCV(
        AutoencoderTransformer(max_iter=5, batch_size=32, random_state=0, device="cpu"),
        {"n_components": [2, 6], "hidden_layer_sizes": [(), (16,)]},
        scoring=scorers(), refit="score", cv=3,
    )
    serial, on_dask = search_serial_and_on_dask(search, warm_workers, X)
    assert_same_scores(serial, on_dask)
    assert_fitted_on_both_workers(on_dask, dask_client)
    assert set(fitting_processes(serial)) == {os.getpid()}
    # the nannies start the workers with OMP_NUM_THREADS=1: one torch thread each
    threads = dask_client.run(lambda: __import__("torch").get_num_threads())
    assert list(threads.values()) == [1, 1]
    # the transformer's own score, the negative reconstruction error
    assert np.all(on_dask.cv_results_["mean_test_score"] < 0)
    assert_allclose(on_dask.best_estimator_.transform(X), serial.best_estimator_.transform(X),
                    rtol=1e-12)


def test_grid_search_detector_pipeline_roc_auc_on_dask(dask_client, warm_workers, digit_rows):
    # zeros are the normal class, a few other digits the anomalies; the labels
    # only score the candidates (1 = inlier, which decision_function ranks high)
    X, digit = digit_rows
    keep = (digit == 0) | (np.arange(len(digit)) % 10 == 0)
    X, inlier = X[keep], (digit[keep] == 0).astype(int)
    search = GridSearchCV(
        make_pipeline(MinMaxScaler(), AutoencoderAnomalyDetector(max_iter=10, batch_size=16,
                                                                 random_state=0, device="cpu")),
        {"autoencoderanomalydetector__n_components": [2, 8]},
        scoring=scorers("roc_auc"), refit="score",
        cv=StratifiedKFold(3, shuffle=True, random_state=0),
    )
    serial, on_dask = search_serial_and_on_dask(search, warm_workers, X, inlier)
    assert_same_scores(serial, on_dask)
    assert_fitted_on_both_workers(on_dask, dask_client)
    assert on_dask.best_score_ > 0.8


def test_randomized_search_on_dask(dask_client, warm_workers, digit_rows):
    X, _ = digit_rows
    search = RandomizedSearchCV(
        AutoencoderTransformer(hidden_layer_sizes=(16,), max_iter=5, batch_size=32,
                               random_state=0, device="cpu"),
        {"n_components": [2, 4, 8], "learning_rate_init": loguniform(1e-3, 1e-1)},
        n_iter=4, scoring=scorers(), refit="score", cv=3, random_state=0,
    )
    serial, on_dask = search_serial_and_on_dask(search, warm_workers, X)
    # the same candidates were drawn, and scored alike
    assert on_dask.cv_results_["params"] == serial.cv_results_["params"]
    assert_same_scores(serial, on_dask)
    assert_fitted_on_both_workers(on_dask, dask_client)


def kill_during_fit(client, pids, data, killed, timeout=60.0):
    """SIGKILL the first worker process seen running a fit; record what it ran and held.

    Parameters
    ----------
    client : distributed.Client
    pids : dict of str to int
        Worker address to process id, of the workers that may be killed.
    data : list of distributed.Future
        The data the search's fits take.
    killed : dict
        Receives ``worker`` (the address), ``pid``, ``executed`` (the number
        of tasks the worker had run to their end), ``dependencies`` (the keys
        the fit it was running took) and ``sole_copies`` (the keys of
        ``data`` that no other worker held).
    timeout : float
        Seconds to wait for a fit to start.
    """
    def executing_fits(dask_worker):
        # defined here, not at module level, so that it pickles by value for the workers
        state = dask_worker.state
        return state.executed_count, [[str(dep.key) for dep in ts.dependencies]
                                      for ts in state.executing if FIT_TASK.match(str(ts.key))]

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        running = client.run(executing_fits, workers=list(pids))
        for worker, (executed, fits) in sorted(running.items()):
            if fits:
                holders = client.who_has(data)
                os.kill(pids[worker], signal.SIGKILL)
                killed.update(worker=worker, pid=pids[worker], executed=executed,
                              dependencies=fits[0],
                              sole_copies=[k for k, held in holders.items() if list(held) == [worker]])
                return
        time.sleep(0.01)


@pytest.mark.slow  # seconds; the default suite keeps to its time budget
def test_worker_killed_during_search(dask_client, warm_workers, digit_rows):
    """A worker process killed in the middle of a fit: the fit reruns in another process.

    joblib sends each argument of the fits larger than 1 kB (``X``, ``y``,
    and each split's train and test indices) to one worker; a worker holding
    the only copy of one that fits still need takes it with it, and the
    search then fails (``FutureCancelledError``) or waits forever. Here they
    are broadcast to both workers (``scatter=``, with the splits given as
    ``cv``; joblib recognizes them by identity, so the search must get the
    very arrays broadcast, not copies), so the kill loses only the fit it
    interrupts; the test checks that at the kill.

    The cluster's nanny starts a new worker process for the killed one; the
    test waits for it, so that the cluster serves the next tests.
    """
    client = dask_client
    X, _ = digit_rows
    splits = list(KFold(2).split(X))
    shared = [X, *(rows for split in splits for rows in split)]
    # each fit takes a few tenths of a second (400 steps), so that the kill,
    # tens of milliseconds after the fit starts, lands in the middle of it
    search = GridSearchCV(
        AutoencoderTransformer(hidden_layer_sizes=(32,), max_iter=40, batch_size=16,
                               random_state=0, device="cpu"),
        {"n_components": [2, 4]}, scoring=scorers(), refit=False, cv=splits,
    )
    serial = clone(search).set_params(n_jobs=1).fit(X)
    assert client.run_on_scheduler(lambda dask_scheduler: dask_scheduler.allowed_failures) >= 1
    pids = client.run(os.getpid)
    assert len(pids) == 2
    executed_before = client.run(lambda dask_worker: dask_worker.state.executed_count)
    killed = {}
    try:
        # the fits may run on the two workers present now only, so that the
        # survivor reruns the lost fit while the new process stays idle
        # (it would spend seconds importing torch)
        with joblib.parallel_backend("dask", scatter=shared, workers=list(pids)) as (backend, _):
            data = list(backend.data_futures.values())
            killer = threading.Thread(target=kill_during_fit, args=(client, pids, data, killed),
                                      daemon=True)
            killer.start()
            # not a clone: cloning would copy the splits, which joblib would then send anew
            on_dask = search.set_params(n_jobs=-1).fit(X)
            killer.join()
    finally:
        client.wait_for_workers(2, timeout=60)
    assert killed, "no fit was running on a worker"
    # the kill lost a fit, and no data: the fit's arguments were on the other worker too
    assert set(killed["dependencies"]) <= {future.key for future in data}
    assert killed["sole_copies"] == []
    # every fit has a result; the killed process has those of the fits it had
    # finished (none, unless it was slow to be seen running one), so the fit
    # it was running when killed ran again, in the other process
    fitted_by = fitting_processes(on_dask)
    assert len(fitted_by) == 2 * 2 and set(fitted_by) <= set(pids.values())
    done_by_killed = killed["executed"] - executed_before[killed["worker"]]
    assert np.sum(fitted_by == killed["pid"]) <= done_by_killed
    # the nanny replaced the killed process
    pids_after = client.run(os.getpid)
    assert len(pids_after) == 2 and killed["pid"] not in pids_after.values()
    assert_same_scores(serial, on_dask, refit=False)

