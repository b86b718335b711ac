"""Benchmarks of the kernel routes and of what bounds them from below.

For each network of :data:`CASES` (ReLU, ``thesis`` parametrisation, seed 0,
the N = 200 images of :func:`ntk_np.load_sample`, float64):

``draw``
    Drawing the weights (:func:`ntk_np.make_network`).
``forward``
    One batched forward pass (:func:`ntk_np.forward`), the floor that the
    layerwise kernel, a forward and a backward pass plus Gram matrices, cannot
    beat.
``layerwise``, ``jacobian``
    The two kernel routes.
``forward_blas``, ``layerwise_blas``
    The BLAS calls of ``forward`` and of ``layerwise`` alone, on arrays of the
    same shapes: the GEMMs of the forward pass, and those plus the GEMMs of the
    backward pass and one ``syrk`` per Gram matrix. The ratios to them show how
    much time goes to anything but BLAS.
``syrk_floor``
    One ``dsyrk`` update of a block of the shape that ``jacobian`` streams,
    scaled by the number of blocks: the BLAS work the ``jacobian`` route does.

``test_jacobian_peak_memory`` records the peak of traced allocations of the
``jacobian`` route next to the forward and backward pass it keeps, to show that
the rest (one block and a few N x N matrices) does not grow with the width.
"""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
from scipy.linalg.blas import dsyrk

import ntk_np
from ntk_np.kernel import _TARGET_BLOCK_BYTES, jacobian_ntk, layerwise_ntk

CASES = ((200, 3), (1000, 4), (1000, 10))
QUICK = {(200, 3), (1000, 4)}


def _params(cases, quick=QUICK):
    return [
        pytest.param(
            width,
            depth,
            id=f"{width}x{depth}",
            marks=[pytest.mark.quick] if (width, depth) in quick else [],
        )
        for width, depth in cases
    ]


@pytest.fixture(scope="module")
def X():
    return ntk_np.load_sample()[0]


def _network(width, depth):
    return ntk_np.make_network(width, depth, "relu")


def _label(width, depth):
    return f"{width}x{depth}"


@pytest.mark.parametrize("width, depth", _params(CASES))
def test_draw(benchmark, width, depth):
    benchmark.group = f"kernel {_label(width, depth)}"
    benchmark.extra_info["id"] = f"draw[{_label(width, depth)}]"
    net = benchmark(_network, width, depth)
    assert net.depth == depth


@pytest.mark.parametrize("width, depth", _params(CASES))
def test_forward(benchmark, X, width, depth):
    net = _network(width, depth)
    benchmark.group = f"kernel {_label(width, depth)}"
    benchmark.extra_info["id"] = f"forward[{_label(width, depth)}]"
    passed = benchmark(ntk_np.forward, net, X)
    assert passed.output.shape == (X.shape[0],)


@pytest.mark.parametrize("width, depth", _params(CASES))
def test_layerwise(benchmark, X, width, depth):
    net = _network(width, depth)
    benchmark.group = f"kernel {_label(width, depth)}"
    benchmark.extra_info["id"] = f"layerwise[{_label(width, depth)}]"
    theta = benchmark(layerwise_ntk, net, X)
    assert theta.shape == (X.shape[0], X.shape[0])


def _forward_gemms(X, hidden):
    x = X
    for W in hidden:
        x = x @ W.T
    return x


def _layerwise_blas(X, hidden, outputs):
    _forward_gemms(X, hidden)
    # The backward pass: delta(l) = delta(l+1) W(l+1), l = depth-2 .. 1.
    delta = outputs[-1]
    for W in reversed(hidden[1:]):
        delta = delta @ W
    # One Gram matrix of the inputs of each layer and one of each delta.
    for a in [X, *outputs]:
        dsyrk(1.0, a)
    for a in outputs:
        dsyrk(1.0, a)


def _blas_operands(X, width, depth):
    net = _network(width, depth)
    hidden = net.weights[:-1]
    outputs = [
        np.random.default_rng(l).standard_normal((X.shape[0], width))
        for l in range(depth - 1)
    ]
    return hidden, outputs


@pytest.mark.parametrize("width, depth", _params(CASES))
def test_forward_blas(benchmark, X, width, depth):
    hidden, _ = _blas_operands(X, width, depth)
    benchmark.group = f"kernel {_label(width, depth)}"
    benchmark.extra_info["id"] = f"forward_blas[{_label(width, depth)}]"
    benchmark(_forward_gemms, X, hidden)


@pytest.mark.parametrize("width, depth", _params(CASES))
def test_layerwise_blas(benchmark, X, width, depth):
    hidden, outputs = _blas_operands(X, width, depth)
    benchmark.group = f"kernel {_label(width, depth)}"
    benchmark.extra_info["id"] = f"layerwise_blas[{_label(width, depth)}]"
    benchmark(_layerwise_blas, X, hidden, outputs)


def _block_columns(n_samples):
    return max(1, _TARGET_BLOCK_BYTES // (8 * n_samples))


@pytest.mark.parametrize("width, depth", _params(CASES, quick={(200, 3)}))
def test_jacobian(benchmark, X, width, depth):
    net = _network(width, depth)
    benchmark.group = f"kernel {_label(width, depth)}"
    benchmark.extra_info["id"] = f"jacobian[{_label(width, depth)}]"
    rounds = 5 if net.n_params < 10**6 else 2
    theta = benchmark.pedantic(jacobian_ntk, (net, X), rounds=rounds, iterations=1)
    # The two routes agree to rounding; checked once here on the timed result.
    expected = layerwise_ntk(net, X)
    assert np.max(np.abs(theta - expected)) <= 1e-12 * np.max(np.abs(expected))


@pytest.mark.parametrize("width, depth", _params(CASES, quick=set(CASES)))
def test_syrk_floor(benchmark, X, width, depth):
    net = _network(width, depth)
    n = X.shape[0]
    k = min(_block_columns(n), net.n_params)
    rng = np.random.default_rng(0)
    block = rng.standard_normal((n, k))
    theta = np.zeros((n, n), order="F")
    benchmark.group = f"kernel {_label(width, depth)}"
    benchmark.extra_info["id"] = f"syrk_floor[{_label(width, depth)}]"
    benchmark.extra_info["scale"] = net.n_params / k
    benchmark.extra_info["block_shape"] = [n, k]
    benchmark(dsyrk, 1.0, block.T, beta=1.0, c=theta, trans=1, overwrite_c=1)


@pytest.mark.parametrize("width, depth", _params(CASES, quick={(200, 3)}))
def test_jacobian_peak_memory(X, width, depth, memory_report):
    net = _network(width, depth)
    n = X.shape[0]
    # The route keeps the hidden layer outputs and the deltas (X is the caller's)
    # and, while it backpropagates, one (N, width) product.
    pass_bytes = n * (2 * (depth - 1) * width + 1) * 8
    budget = pass_bytes + n * width * 8 + 4 * n * n * 8 + _TARGET_BLOCK_BYTES
    tracemalloc.start()
    try:
        jacobian_ntk(net, X, memory_budget=budget)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    label = _label(width, depth)
    memory_report(f"jacobian {label}: peak", peak, limit=budget + 4 * n * n * 8)
    memory_report(
        f"jacobian {label}: peak minus forward and backward pass", peak - pass_bytes
    )
    memory_report(
        f"jacobian {label}: the N x P Jacobian it never forms", n * net.n_params * 8
    )
    assert peak <= budget + 4 * n * n * 8
