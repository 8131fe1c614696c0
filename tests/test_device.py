"""Devices and process-wide torch settings under concurrent fits."""

import threading

import numpy as np
import pytest
import torch
from joblib import Parallel, delayed

from skae import AutoencoderTransformer
from skae._device import _SharedSetting, device_policy, current_policy, resolve_device, training_threads

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


def make_setting(value):
    box = {"value": value, "sets": 0}

    def set_(v):
        box["value"] = v
        box["sets"] += 1

    return box, _SharedSetting(lambda: box["value"], set_)


def test_shared_setting_is_set_once_and_restored_by_the_last_holder():
    box, setting = make_setting("a")
    with setting.hold("b", wait=True):
        assert box["value"] == "b"
        with setting.hold("b", wait=True):  # joins without setting again
            assert box["value"] == "b"
        assert box["value"] == "b"  # still held by the outer block
    assert box["value"] == "a" and box["sets"] == 2


def test_shared_setting_speed_only_values_join_the_current_one():
    box, setting = make_setting(4)
    with setting.hold(1, wait=False):
        with setting.hold(2, wait=False):  # runs under 1, does not race to change it
            assert box["value"] == 1
    assert box["value"] == 4


def test_conflicting_exact_setting_waits_for_the_holder():
    box, setting = make_setting("highest")
    entered, release, order = threading.Event(), threading.Event(), []

    def first():
        with setting.hold("high", wait=True):
            entered.set()
            release.wait(5)
            order.append(("first leaves", box["value"]))

    def second():
        entered.wait(5)
        with setting.hold("highest", wait=True):
            order.append(("second runs", box["value"]))

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for t in threads:
        t.start()
    entered.wait(5)
    assert not order  # the second block is waiting
    release.set()
    for t in threads:
        t.join(5)
    assert order == [("first leaves", "high"), ("second runs", "highest")]
    assert box["value"] == "highest"


def test_concurrent_fits_restore_threads_and_match_sequential_fits():
    rng = np.random.RandomState(0)
    X = rng.normal(size=(200, 6))
    before = torch.get_num_threads()
    params = [dict(hidden_layer_sizes=h, random_state=s) for h in [(4,), (8,)] for s in (0, 1)]

    def fit(p):
        return AutoencoderTransformer(2, max_iter=5, **p).fit(X).transform(X)

    sequential = [fit(p) for p in params]
    parallel = Parallel(n_jobs=4, backend="threading")(delayed(fit)(p) for p in params)
    assert torch.get_num_threads() == before
    for a, b in zip(sequential, parallel):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_small_cpu_fits_use_one_thread_and_restore():
    seen = []
    X = np.random.RandomState(0).normal(size=(50, 4))
    before = torch.get_num_threads()
    import skae._training

    original = skae._training.run_epoch

    def run_epoch(*args, **kwargs):
        seen.append(torch.get_num_threads())
        return original(*args, **kwargs)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(skae._training, "run_epoch", run_epoch)
        AutoencoderTransformer(2, hidden_layer_sizes=(3,), max_iter=2, random_state=0).fit(X)
    assert seen == [1, 1]
    assert torch.get_num_threads() == before


def test_device_policy_is_local_to_the_block():
    default = current_policy()
    widths = (64, 32, 8)
    assert training_threads(widths, 32, torch.device("cpu")) == 1
    with device_policy(single_thread_macs=0):
        assert training_threads(widths, 32, torch.device("cpu")) is None
        assert current_policy().single_thread_macs == 0
    assert current_policy() == default
    assert training_threads(widths, 32, torch.device("cuda")) is None


@pytest.mark.parametrize("bad", ["meta", "mps", "gpu0", "xla", 3.5])
def test_only_cpu_and_cuda_devices_are_accepted(bad):
    with pytest.raises(ValueError, match="'device' parameter"):
        resolve_device(bad, "Est")
