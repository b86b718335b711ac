"""Benchmarks of the full default sweep, a plain-NumPy baseline and weight drawing.

``sweep``
    :func:`ntk_np.run_sweep` on the default grid (720 kernels of the
    N = 200 images, with all their eigenvalues), one worker process per core,
    certification of small eigenvalues off, no results folder. One round is
    the whole grid end to end, worker start-up included.
``sweep_plain_numpy``
    The same layerwise kernels written with NumPy operations only, in one
    process: every network draws its own weights, runs its own forward and
    backward pass and its Gram matrices, and ``numpy.linalg.eigvalsh`` gives
    the spectrum. It runs every width and depth of the grid with one activation
    per width (rotating through the four) and is scaled by 4 to the full grid.
``draw_shared``, ``draw_per_network``
    Drawing the weights of the grid. ``draw_shared`` draws the hidden layers
    once per width, shared across depths and activations, as the sweep does.
    ``draw_per_network`` draws every network of one activation separately and
    is scaled by 4, because without sharing every activation draws again.
    The sweep draws about 66 million normal numbers. Drawing every network
    separately would take 1.33 billion.
"""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

import ntk_np
from ntk_np import run_sweep
from ntk_np.activations import ACTIVATIONS
from ntk_np.choices import DEFAULT_DEPTHS, DEFAULT_WIDTHS
from ntk_np.network import draw_hidden_layers, draw_output_layer


@pytest.fixture(scope="module")
def X():
    return ntk_np.load_sample()[0]


def test_sweep(benchmark, X):
    jobs = os.cpu_count() or 1
    benchmark.group = "sweep"
    benchmark.extra_info["id"] = "sweep"
    benchmark.extra_info["jobs"] = jobs
    result = benchmark.pedantic(
        run_sweep,
        (X,),
        {"jobs": jobs, "certify": "never"},
        rounds=2,
        iterations=1,
    )
    assert len(result.rows) == len(DEFAULT_WIDTHS) * len(DEFAULT_DEPTHS) * 4


_PEAK_RSS_SCRIPT = """
import os, resource, sys
import ntk_np
from ntk_np import run_sweep

def own_peak_bytes():
    # Linux keeps ru_maxrss across exec, so a process started from a large
    # pytest process would report that process's size. VmHWM belongs to the
    # address space that exec created.
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    unit = 1 if sys.platform == "darwin" else 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * unit

if __name__ == "__main__":
    X, _ = ntk_np.load_sample()
    run_sweep(X, jobs=os.cpu_count() or 1, certify="never")
    unit = 1 if sys.platform == "darwin" else 1024
    print(own_peak_bytes())
    # The workers are started from this small process, so their ru_maxrss
    # is their own peak or this process's size at start, whichever is larger.
    print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * unit)
"""


def test_sweep_peak_memory(tmp_path, memory_report):
    # A fresh interpreter: workers forked from the pytest process would report
    # its resident size, which the benchmarks before them have grown.
    script = tmp_path / "sweep_peak_rss.py"
    script.write_text(_PEAK_RSS_SCRIPT)
    run = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, check=True
    )
    main_bytes, worker_bytes = (int(v) for v in run.stdout.split())
    memory_report("sweep: max RSS of the main process", main_bytes)
    memory_report("sweep: max RSS of the largest worker process", worker_bytes)


def _activate(name, z):
    """Return ``act(z)`` and ``act'(z)`` with NumPy operations."""
    if name == "relu":
        return np.maximum(z, 0.0), (z > 0).astype(np.float64)
    if name == "leaky_relu":
        return np.where(z > 0, z, 0.01 * z), np.where(z > 0, 1.0, 0.01)
    if name == "elu":
        return np.where(z > 0, z, np.expm1(np.minimum(z, 0.0))), np.where(
            z > 0, 1.0, np.exp(np.minimum(z, 0.0))
        )
    s = 1.0 / (1.0 + np.exp(-z))
    return s, s * (1.0 - s)


def plain_numpy_kernel(network, X):
    """Compute the layerwise kernel of ``network`` with NumPy operations only."""
    W, b, c = network.weights, network.biases, network.multipliers
    depth = network.depth
    A, S = [X], [None]
    for l in range(depth - 1):
        a, s = _activate(network.activation, c[l] * (A[-1] @ W[l].T) + b[l])
        A.append(a)
        S.append(s)
    theta = np.zeros((X.shape[0], X.shape[0]))
    delta = np.ones((X.shape[0], 1))
    for l in range(depth - 1, -1, -1):
        theta += (delta @ delta.T) * (c[l] ** 2 * (A[l] @ A[l].T) + 1.0)
        if l > 0:
            delta = c[l] * (delta @ W[l]) * S[l]
    return theta


def _plain_numpy_sweep(X):
    for i, width in enumerate(DEFAULT_WIDTHS):
        activation = ACTIVATIONS[i % len(ACTIVATIONS)]
        for depth in DEFAULT_DEPTHS:
            network = ntk_np.make_network(width, depth, activation)
            np.linalg.eigvalsh(plain_numpy_kernel(network, X))


def test_plain_numpy_kernel_matches(X):
    for activation in ACTIVATIONS:
        network = ntk_np.make_network(100, 4, activation)
        expected = ntk_np.layerwise_ntk(network, X)
        theta = plain_numpy_kernel(network, X)
        assert np.max(np.abs(theta - expected)) <= 1e-12 * np.max(np.abs(expected))


def test_sweep_plain_numpy(benchmark, X):
    benchmark.group = "sweep"
    benchmark.extra_info["id"] = "sweep_plain_numpy"
    benchmark.extra_info["scale"] = len(ACTIVATIONS)
    benchmark.extra_info["subset"] = "every width and depth, one activation each"
    with np.errstate(over="ignore"):
        benchmark.pedantic(_plain_numpy_sweep, (X,), rounds=1, iterations=1)


def _draw_shared(n_inputs=784):
    for width in DEFAULT_WIDTHS:
        draw_hidden_layers(n_inputs, width, max(DEFAULT_DEPTHS) - 1, 0)
        for depth in DEFAULT_DEPTHS:
            draw_output_layer(n_inputs, width, depth, 0)


def _draw_per_network():
    for width in DEFAULT_WIDTHS:
        for depth in DEFAULT_DEPTHS:
            ntk_np.make_network(width, depth, "relu")


@pytest.mark.quick
def test_draw_shared(benchmark):
    benchmark.group = "draw weights of the sweep grid"
    benchmark.extra_info["id"] = "draw_shared"
    benchmark.pedantic(_draw_shared, rounds=3, iterations=1)


def test_draw_per_network(benchmark):
    benchmark.group = "draw weights of the sweep grid"
    benchmark.extra_info["id"] = "draw_per_network"
    benchmark.extra_info["scale"] = len(ACTIVATIONS)
    benchmark.pedantic(_draw_per_network, rounds=1, iterations=1)
