"""Benchmarks of SGD with batch size 1 on ReLU 1000x4 and its memory floor.

``sgd_epoch``
    :func:`ntk_np.training.train_network` for one epoch (N = 200 steps,
    learning rate 1e-3): the compiled loop plus the set-up and the two forward
    passes that record the loss before and after the epoch.
``sgd_step``
    The compiled epoch loop alone, scaled by 1/N to one step.
``memory_floor``
    ``numpy.copyto`` between two arrays of P float64 moves 2 P values. Scaled
    by 3/2, it is the time to move 3 P values at the same bandwidth. That is
    the traffic of one step that reads the parameters twice and writes them
    once.

The ReLU 1000x4 network has P = 2,788,001 parameters (22 MB), which fits in the
32 MiB L3 cache of the machine the figures in ``docs/benchmarks.md`` come from,
while the two arrays of the copy (45 MB) do not. The floor is therefore a DRAM
bandwidth floor that a loop running from L3 can beat.
"""

from __future__ import annotations

import numpy as np
import pytest

import ntk_np
from ntk_np.training import _FlatNetwork, shuffle_orders, train_network

WIDTH, DEPTH = 1000, 4
LEARNING_RATE = 1e-3


@pytest.fixture(scope="module")
def sample():
    return ntk_np.load_sample()


@pytest.fixture(scope="module")
def network():
    return ntk_np.make_network(WIDTH, DEPTH, "relu")


@pytest.mark.quick
def test_sgd_epoch(benchmark, sample, network):
    X, y = sample
    benchmark.group = "sgd relu 1000x4"
    benchmark.extra_info["id"] = "sgd_epoch"
    result = benchmark.pedantic(
        train_network,
        (network, X, y),
        {"learning_rate": LEARNING_RATE, "epochs": 1, "batch_size": 1},
        rounds=5,
        iterations=1,
        warmup_rounds=1,
    )
    assert result.status == "ok"


@pytest.mark.quick
def test_sgd_step(benchmark, sample, network):
    X, y = sample
    flat = _FlatNetwork(network)
    buffers = flat.buffers(1)
    order = shuffle_orders(len(y), 1)[0]
    benchmark.group = "sgd relu 1000x4"
    benchmark.extra_info["id"] = "sgd_step"
    benchmark.extra_info["scale"] = 1 / len(y)
    benchmark.extra_info["n_params"] = network.n_params
    benchmark.pedantic(
        flat.sgd_epoch,
        (X, y, order, 1, LEARNING_RATE, buffers),
        rounds=5,
        iterations=1,
        warmup_rounds=1,
    )
    assert np.all(np.isfinite(flat.params))


@pytest.mark.quick
def test_memory_floor(benchmark, network):
    source = np.random.default_rng(0).standard_normal(network.n_params)
    target = np.empty_like(source)
    benchmark.group = "sgd relu 1000x4"
    benchmark.extra_info["id"] = "memory_floor"
    benchmark.extra_info["scale"] = 1.5
    benchmark(np.copyto, target, source)
    copy_seconds = benchmark.stats.stats.min
    benchmark.extra_info["copy_bandwidth_GB_per_s"] = (
        16 * source.size / copy_seconds / 1e9
    )
