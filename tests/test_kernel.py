"""Tests for ntk_np.kernel: per-sample gradients, the two NTK routes, memory.

Gradients are checked against central finite differences with step h = 1e-6
on each parameter, ``(f(p + h e_k) - f(p - h e_k)) / (p_k+ - p_k-)``. For ReLU
and Leaky ReLU only samples whose every pre-activation is at least 1e-4 away
from the kink are compared, so that no step crosses it (a step moves any
pre-activation by far less than 1e-4 here).
"""

from __future__ import annotations

import subprocess
import sys
import tracemalloc

import numpy as np
import pytest
from conftest import (
    ACTIVATIONS,
    EPS,
    PARAMETRIZATIONS,
    min_abs_preactivation,
    ref_deltas,
    ref_forward,
    ref_multipliers,
)
from numpy.testing import assert_allclose, assert_array_equal

import ntk_np
from ntk_np.kernel import (
    empirical_ntk,
    jacobian_blocks,
    jacobian_ntk,
    layerwise_ntk,
    ntk_over_depths,
    per_sample_gradients,
)
from ntk_np.network import flatten_params, forward, make_network, with_params

DEPTHS = (2, 3, 4)
STEP = 1e-6
KINK_MARGIN = 1e-4
GRADIENT_RTOL = 1e-6


def finite_difference_columns(network, X, indices, h=STEP) -> np.ndarray:
    """Central differences of f(X) over the parameters ``indices``: (N, k)."""
    p = flatten_params(network)
    columns = []
    for k in indices:
        up, down = p.copy(), p.copy()
        up[k] += h
        down[k] -= h
        f_up = forward(with_params(network, up), X).output
        f_down = forward(with_params(network, down), X).output
        columns.append((f_up - f_down) / (up[k] - down[k]))
    return np.stack(columns, axis=1)


def away_from_kinks(network, X) -> np.ndarray:
    keep = min_abs_preactivation(network, X) > KINK_MARGIN
    return np.asarray(X)[keep]


def assert_rows_close(J, J_fd, rtol=GRADIENT_RTOL):
    """Each per-sample gradient row within rtol of its finite-difference row."""
    error = np.linalg.norm(J - J_fd, axis=1) / np.linalg.norm(J_fd, axis=1)
    assert np.all(error < rtol), error


def ref_theta(network, X) -> np.ndarray:
    """REFERENCE.md's layerwise sum, from the plain-NumPy reference passes."""
    _, A, _ = ref_forward(network, X)
    delta = ref_deltas(network, X)
    c = ref_multipliers(
        network.n_inputs, network.width, network.depth, network.parametrization
    )
    theta = np.zeros((len(X), len(X)))
    for l in range(1, network.depth + 1):
        gram_delta = delta[l] @ delta[l].T
        theta += c[l - 1] ** 2 * gram_delta * (A[l - 1] @ A[l - 1].T) + gram_delta
    return theta


def assert_kernels_close(theta, expected, rtol=1e-12):
    scale = np.max(np.abs(expected))
    assert_allclose(theta, expected, rtol=0, atol=rtol * scale)


# ------------------------------------------------------------- gradients


@pytest.mark.parametrize("depth", DEPTHS)
@pytest.mark.parametrize("parametrization", PARAMETRIZATIONS)
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_gradients_match_finite_differences(X20, activation, parametrization, depth):
    """Every parameter of a width-6 network on 20-feature images."""
    net = make_network(6, depth, activation, parametrization, seed=1, n_inputs=20)
    X = away_from_kinks(net, X20)
    assert len(X) >= 6, "seed leaves too few samples away from the kinks"
    J = per_sample_gradients(net, X)
    assert J.shape == (len(X), net.n_params)
    J_fd = finite_difference_columns(net, X, range(net.n_params))
    assert_rows_close(J, J_fd)


@pytest.mark.parametrize("parametrization", PARAMETRIZATIONS)
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_gradients_full_images_random_parameters(X, activation, parametrization):
    """784 features, width 3, depth 3: 250 random parameters plus the last layers."""
    net = make_network(3, 3, activation, parametrization, seed=3)
    X = away_from_kinks(net, X)
    assert len(X) >= 5
    rng = np.random.default_rng(0)
    first = net.weights[0].size + net.biases[0].size
    indices = np.concatenate(
        [np.sort(rng.choice(first, 250, replace=False)), np.arange(first, net.n_params)]
    )
    J = per_sample_gradients(net, X)[:, indices]
    assert_rows_close(J, finite_difference_columns(net, X, indices))


def test_gradient_structure(X20):
    """df/dW(l) = c_l delta(l) x(l-1)^T and df/db(l) = delta(l), row-major."""
    net = make_network(5, 3, "elu", "ntk", seed=2, n_inputs=20)
    J = per_sample_gradients(net, X20)
    _, A, _ = ref_forward(net, X20)
    delta = ref_deltas(net, X20)
    c = ref_multipliers(20, 5, 3, "ntk")
    offset = 0
    for l in range(1, 4):
        W = net.weights[l - 1]
        dW = c[l - 1] * np.einsum("nj,nk->njk", delta[l], A[l - 1])
        assert_allclose(J[:, offset : offset + W.size], dW.reshape(len(X20), -1))
        offset += W.size
        assert_allclose(J[:, offset : offset + W.shape[0]], delta[l])
        offset += W.shape[0]
    assert offset == net.n_params
    assert_array_equal(J[:, -1], 1.0)  # output bias


def test_per_sample_gradient_ranges(X20):
    net = make_network(6, 3, "sigmoid", n_inputs=20)
    J = per_sample_gradients(net, X20)
    cuts = [0, 1, 50, 120, 126, 127, 170, net.n_params]
    parts = [per_sample_gradients(net, X20, a, b) for a, b in zip(cuts, cuts[1:])]
    assert_array_equal(np.hstack(parts), J)
    assert per_sample_gradients(net, X20, 5, 5).shape == (10, 0)
    for start, stop in [(-1, 3), (4, 3), (0, net.n_params + 1)]:
        with pytest.raises(ValueError, match=r"parameter range"):
            per_sample_gradients(net, X20, start, stop)


# ---------------------------------------------------------------- kernels


@pytest.mark.parametrize("depth", DEPTHS)
@pytest.mark.parametrize("parametrization", PARAMETRIZATIONS)
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_layerwise_matches_jacobian(X, activation, parametrization, depth):
    net = make_network(12, depth, activation, parametrization, seed=5)
    theta = layerwise_ntk(net, X)
    # 7 columns: blocks end inside W(1) rows, inside biases and across layers.
    for block_columns in (None, 7, 1000, net.n_params):
        jac = jacobian_ntk(net, X, block_columns=block_columns)
        assert_kernels_close(jac, theta)
        assert_array_equal(jac, jac.T)
    assert_kernels_close(theta, ref_theta(net, X))


@pytest.mark.parametrize("parametrization", PARAMETRIZATIONS)
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_kernel_is_gram_matrix_of_gradients(X, activation, parametrization):
    net = make_network(15, 3, activation, parametrization, seed=6)
    theta = empirical_ntk(net, X)
    J = per_sample_gradients(net, X)
    assert_kernels_close(theta, J @ J.T)
    assert_allclose(np.diag(theta), np.sum(J * J, axis=1), rtol=1e-12)


@pytest.mark.parametrize("depth", DEPTHS)
@pytest.mark.parametrize("parametrization", PARAMETRIZATIONS)
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_layerwise_symmetric_and_psd(X, activation, parametrization, depth):
    net = make_network(25, depth, activation, parametrization, seed=7)
    theta = empirical_ntk(net, X)
    assert theta.shape == (10, 10)
    assert theta.dtype == np.float64
    assert_array_equal(theta, theta.T)  # exact
    eigenvalues = np.linalg.eigvalsh(theta)
    floor = len(theta) * EPS * eigenvalues[-1]
    assert eigenvalues[0] >= -floor, (eigenvalues[0], floor)
    assert np.all(np.diag(theta) > 0)


def test_thesis_kernel_grows_with_width_ntk_does_not(X):
    """The two scalings of REFERENCE.md's table, on ReLU depth 2.

    For thesis, theta(x, x) is about |x|^2 + width + 1 (the b(1) and W(2)
    terms grow with the width); for ntk it tends to a finite limit.
    """

    def mean_trace(width, parametrization):
        traces = [
            np.trace(
                empirical_ntk(make_network(width, 2, "relu", parametrization, s), X)
            )
            for s in range(3)
        ]
        return np.mean(traces)

    thesis = mean_trace(400, "thesis") / mean_trace(25, "thesis")
    ntk = mean_trace(400, "ntk") / mean_trace(25, "ntk")
    assert thesis > 2, thesis
    assert 0.7 < ntk < 1.4, ntk


def test_jacobian_blocks_concatenate_to_jacobian(X20):
    net = make_network(6, 4, "leaky_relu", "ntk", n_inputs=20)
    J = per_sample_gradients(net, X20)
    blocks = [b.copy() for b in jacobian_blocks(net, X20, block_columns=11)]
    assert all(b.shape[1] == 11 for b in blocks[:-1])
    assert_array_equal(np.hstack(blocks), J)


@pytest.mark.parametrize("parametrization", PARAMETRIZATIONS)
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_ntk_over_depths_equals_layerwise(X, activation, parametrization):
    seen = []
    for depth, theta in ntk_over_depths(
        X, 20, [4, 2, 3, 2], activation, parametrization, seed=3
    ):
        seen.append(depth)
        net = make_network(20, depth, activation, parametrization, seed=3)
        assert_kernels_close(theta, layerwise_ntk(net, X), rtol=1e-14)
    assert seen == [2, 3, 4]


@pytest.mark.parametrize(
    "width, depths, bad_value, pattern",
    [(0, [2], None, "width"), (5, [2], np.nan, "NaN")],
)
def test_ntk_over_depths_validates_inputs(X20, width, depths, bad_value, pattern):
    # ntk_over_depths is public; like make_network/layerwise_ntk it must reject
    # invalid input instead of returning a NaN kernel.
    X = X20.copy()
    if bad_value is not None:
        X[0, 0] = bad_value
    with pytest.raises(ValueError, match=pattern):
        list(ntk_over_depths(X, width, depths, "relu"))


def test_ntk_over_depths_rejects_depth_1():
    # Run apart: without validation, depth 1 makes a Numba loop read a (0, 0)
    # Gram matrix out of bounds and return uninitialised memory.
    code = (
        "import ntk_np\n"
        "X, _ = ntk_np.load_sample(n_per_class=5)\n"
        "try:\n"
        "    out = list(ntk_np.ntk_over_depths(X, 10, [1], 'relu'))\n"
        "except ValueError as err:\n"
        "    print('ValueError', err)\n"
        "else:\n"
        "    print('returned', out[0][1][:2, :2].tolist())\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("ValueError"), done.stdout
    assert "depth" in done.stdout


# ------------------------------------------------------ routes and memory


def test_empirical_ntk_methods(X):
    net = make_network(100, 3, "relu")
    theta = empirical_ntk(net, X)
    assert theta.shape == (10, 10)
    assert_array_equal(theta, empirical_ntk(net, X, method="layerwise"))
    assert_kernels_close(empirical_ntk(net, X, method="jacobian"), theta)
    assert ntk_np.METHODS == ("layerwise", "jacobian")


def test_empirical_ntk_unknown_method(X):
    net = make_network(5, 2, "relu")
    with pytest.raises(ValueError, match=r"unknown method 'qr'.*layerwise"):
        empirical_ntk(net, X, method="qr")


def test_empirical_ntk_validates_inputs(X):
    net = make_network(5, 2, "relu")
    bad = np.array(X)
    bad[1, 1] = np.nan
    for method in ("layerwise", "jacobian"):
        with pytest.raises(ValueError, match="NaN"):
            empirical_ntk(net, bad, method=method)
        with pytest.raises(ValueError, match="784"):
            empirical_ntk(net, bad[:, :100], method=method)


@pytest.fixture(scope="module")
def X_20_samples():
    return ntk_np.load_sample(n_per_class=10)[0]


@pytest.mark.parametrize("depth", [3, 5])
def test_jacobian_route_respects_memory_budget(X_20_samples, depth):
    """N = 20, width 500: J is 100-180 MB, the budget 4 MiB."""
    X = X_20_samples
    n = len(X)
    net = make_network(500, depth, "relu")
    budget = 4 << 20
    assert n * net.n_params * 8 > 20 * budget
    jacobian_ntk(net, X, memory_budget=budget)  # compile and warm up outside
    tracemalloc.start()
    try:
        theta = jacobian_ntk(net, X, memory_budget=budget)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak <= budget + 4 * n * n * 8, (peak, budget)
    assert peak > budget // 2  # the blocks do use the budget
    assert_kernels_close(theta, layerwise_ntk(net, X))


def test_memory_budget_too_small(X):
    net = make_network(50, 3, "relu")
    with pytest.raises(ValueError, match=r"memory_budget=1000 bytes is too small"):
        jacobian_ntk(net, X, memory_budget=1000)
    with pytest.raises(ValueError, match=r"memory_budget"):
        empirical_ntk(net, X, method="jacobian", memory_budget=1000)
