"""Tests for ntk_np.network: weights, multipliers, forward and backward pass."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import (
    ACTIVATIONS,
    PARAMETRIZATIONS,
    ref_deltas,
    ref_forward,
    ref_multipliers,
)
from numpy.testing import assert_allclose, assert_array_equal

import ntk_np
from ntk_np.network import (
    backward,
    flatten_params,
    forward,
    layer_multipliers,
    make_network,
    with_params,
)

DEPTHS = (2, 3, 4)


def expected_n_params(n_inputs, width, depth):
    return n_inputs * width + width + (depth - 2) * (width * width + width) + width + 1


def test_parametrization_names():
    assert ntk_np.PARAMETRIZATIONS == PARAMETRIZATIONS


# ------------------------------------------------------------ multipliers


@pytest.mark.parametrize("depth", DEPTHS)
def test_thesis_multipliers(depth):
    net = make_network(7, depth, "relu", "thesis", n_inputs=20)
    expected = (1 / np.sqrt(7),) * (depth - 1) + (1.0,)
    assert_allclose(net.multipliers, expected, rtol=1e-15)
    assert layer_multipliers(20, 7, depth, "thesis") == net.multipliers
    assert layer_multipliers(20, 7, depth) == net.multipliers  # thesis is default


@pytest.mark.parametrize("depth", DEPTHS)
def test_ntk_multipliers_are_fan_in(depth):
    net = make_network(7, depth, "relu", "ntk", n_inputs=20)
    expected = (1 / np.sqrt(20),) + (1 / np.sqrt(7),) * (depth - 1)
    assert_allclose(net.multipliers, expected, rtol=1e-15)
    assert layer_multipliers(20, 7, depth, "ntk") == net.multipliers


def test_default_network_is_thesis_seed_0_784_inputs():
    net = make_network(5, 2, "relu")
    assert (net.parametrization, net.seed, net.n_inputs) == ("thesis", 0, 784)
    same = make_network(5, 2, "relu", "thesis", 0, 784)
    for a, b in zip(net.weights + net.biases, same.weights + same.biases):
        assert_array_equal(a, b)


# ---------------------------------------------------------- weights, sizes


@pytest.mark.parametrize("depth", DEPTHS)
def test_shapes_and_parameter_count(depth):
    net = make_network(6, depth, "elu", n_inputs=20)
    sizes = (20,) + (6,) * (depth - 1) + (1,)
    assert net.layer_sizes == sizes
    assert (net.depth, net.width, net.n_inputs) == (depth, 6, 20)
    for l, (W, b) in enumerate(zip(net.weights, net.biases), start=1):
        assert W.shape == (sizes[l], sizes[l - 1])
        assert b.shape == (sizes[l],)
        assert W.dtype == b.dtype == np.float64
    assert net.n_params == expected_n_params(20, 6, depth)
    assert flatten_params(net).shape == (net.n_params,)
    assert make_network(800, 3, "relu").n_params == 784 * 800 + 800 + 800 * 801 + 801


def test_describe():
    assert make_network(800, 3, "relu").describe() == "relu 800x3 (thesis)"


@pytest.mark.parametrize("parametrization", PARAMETRIZATIONS)
def test_same_seed_same_weights_other_seed_different(parametrization):
    a = make_network(9, 4, "sigmoid", parametrization, seed=3, n_inputs=20)
    b = make_network(9, 4, "sigmoid", parametrization, seed=3, n_inputs=20)
    c = make_network(9, 4, "sigmoid", parametrization, seed=4, n_inputs=20)
    assert_array_equal(flatten_params(a), flatten_params(b))
    for Wa, Wc in zip(a.weights + a.biases, c.weights + c.biases):
        assert not np.any(Wa == Wc)


def test_weights_do_not_depend_on_activation_or_parametrization():
    base = flatten_params(make_network(9, 3, "relu", "thesis", seed=1, n_inputs=20))
    for activation in ACTIVATIONS:
        for parametrization in PARAMETRIZATIONS:
            net = make_network(9, 3, activation, parametrization, 1, n_inputs=20)
            assert_array_equal(flatten_params(net), base)


@pytest.mark.parametrize("seed", [0, 7])
def test_depth_prefix_property(seed):
    shallow = make_network(11, 3, "relu", seed=seed, n_inputs=20)
    deep = make_network(11, 5, "relu", seed=seed, n_inputs=20)
    for l in range(2):  # the hidden layers of depth 3
        assert_array_equal(shallow.weights[l], deep.weights[l])
        assert_array_equal(shallow.biases[l], deep.biases[l])
    # The output layer has its own stream per depth.
    assert not np.array_equal(shallow.weights[-1], deep.weights[-1])
    # Other widths share nothing.
    other = make_network(12, 3, "relu", seed=seed, n_inputs=20)
    first = shallow.weights[0].ravel()
    assert not np.any(other.weights[0].ravel()[: first.size] == first)


def test_weights_are_standard_normal():
    net = make_network(400, 3, "relu", seed=5)  # 313,600 + 160,000 entries
    for W in net.weights[:2]:
        assert abs(W.mean()) < 5 / np.sqrt(W.size)
        assert abs(W.std() - 1) < 5 / np.sqrt(W.size)


# --------------------------------------------------------- forward/backward


@pytest.mark.parametrize("depth", DEPTHS)
@pytest.mark.parametrize("parametrization", PARAMETRIZATIONS)
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_forward_matches_reference(X, activation, parametrization, depth):
    net = make_network(30, depth, activation, parametrization, seed=2)
    passed = forward(net, X)
    expected, A, _ = ref_forward(net, X)
    assert passed.output.shape == (len(X),)
    assert_allclose(passed.output, expected, rtol=1e-12, atol=1e-12)
    assert len(passed.A) == depth
    assert len(passed.S) == depth
    assert passed.S[0] is None
    for l in range(depth):
        assert_allclose(passed.A[l], A[l], rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize("depth", DEPTHS)
@pytest.mark.parametrize("parametrization", PARAMETRIZATIONS)
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_backward_matches_reference(X, activation, parametrization, depth):
    net = make_network(30, depth, activation, parametrization, seed=2)
    delta = backward(net, forward(net, X))
    expected = ref_deltas(net, X)
    assert len(delta) == depth + 1
    assert delta[0] is None
    assert_array_equal(delta[depth], np.ones((len(X), 1)))
    for l in range(1, depth):
        assert delta[l].shape == (len(X), 30)
        scale = np.max(np.abs(expected[l]))
        assert_allclose(delta[l], expected[l], rtol=1e-12, atol=1e-12 * scale)


def test_reference_multipliers_agree_with_package():
    for p in PARAMETRIZATIONS:
        assert_allclose(layer_multipliers(20, 6, 4, p), ref_multipliers(20, 6, 4, p))


def test_forward_outputs_share_one_buffer(X20):
    # Separate arrays per layer cost a page fault per 4 KiB page on every call.
    net = ntk_np.make_network(30, 4, "relu", n_inputs=X20.shape[1])
    passed = ntk_np.forward(net, X20)
    buffer = passed.A[1].base
    assert buffer is not None
    for l in range(1, net.depth):
        assert passed.A[l].base is buffer
        assert passed.S[l].base is buffer
        assert passed.A[l].flags.c_contiguous
        assert passed.S[l].flags.c_contiguous
    assert buffer.nbytes == 2 * (net.depth - 1) * X20.shape[0] * 30 * 8


def test_forward_accepts_lists_and_float32(X20):
    net = make_network(6, 3, "elu", n_inputs=20)
    expected = forward(net, X20).output
    assert_array_equal(forward(net, X20.tolist()).output, expected)
    out32 = forward(net, X20.astype(np.float32)).output
    assert_allclose(out32, ref_forward(net, X20.astype(np.float32))[0], rtol=1e-12)


def test_flatten_and_with_params_round_trip(X20):
    net = make_network(6, 3, "sigmoid", "ntk", seed=4, n_inputs=20)
    p = flatten_params(net)
    # Order W(1), b(1), W(2), ...: W(1) row-major first.
    assert_array_equal(p[:120], net.weights[0].ravel())
    assert_array_equal(p[120:126], net.biases[0])
    copy = with_params(net, p)
    assert copy.multipliers == net.multipliers
    assert (copy.activation, copy.parametrization, copy.seed) == ("sigmoid", "ntk", 4)
    assert_array_equal(forward(copy, X20).output, forward(net, X20).output)
    p[0] += 1.0  # the copy owns its parameters
    assert copy.weights[0][0, 0] == net.weights[0][0, 0]
    with pytest.raises(ValueError, match=r"\(175,\).*\(174,\)"):
        with_params(net, p[:-1])


# -------------------------------------------------------------- validation


@pytest.mark.parametrize(
    "kwargs, error, pattern",
    [
        ({"width": 0}, ValueError, r"width must be at least 1, got 0"),
        ({"width": -3}, ValueError, r"width.*-3"),
        ({"depth": 1}, ValueError, r"depth must be at least 2, got 1"),
        ({"width": True}, TypeError, r"width must be an integer, got True"),
        ({"depth": False}, TypeError, r"depth must be an integer, got False"),
        ({"width": 5.0}, TypeError, r"width must be an integer, got 5.0"),
        ({"width": "5"}, TypeError, r"width"),
        ({"activation": "tanh"}, ValueError, r"unknown activation 'tanh'"),
        ({"parametrization": "mup"}, ValueError, r"unknown parametrization 'mup'"),
        ({"seed": -1}, ValueError, r"seed must be at least 0, got -1"),
        ({"n_inputs": 0}, ValueError, r"n_inputs must be at least 1, got 0"),
    ],
)
def test_make_network_validation(kwargs, error, pattern):
    args = {"width": 5, "depth": 2, "activation": "relu", **kwargs}
    with pytest.raises(error, match=pattern):
        make_network(**args)


def test_make_network_accepts_numpy_integers():
    net = make_network(np.int64(5), np.int32(3), "relu", seed=np.uint8(1))
    assert (net.width, net.depth, net.seed) == (5, 3, 1)
    assert type(net.seed) is int


@pytest.mark.parametrize(
    "shape, pattern",
    [
        ((10, 19), r"\(N, 20\).*\(10, 19\)"),
        ((20,), r"\(20,\)"),
        ((2, 5, 4), r"\(2, 5, 4\)"),
    ],
)
def test_forward_rejects_wrong_shape(shape, pattern):
    net = make_network(4, 2, "relu", n_inputs=20)
    with pytest.raises(ValueError, match=pattern):
        forward(net, np.zeros(shape))


def test_forward_rejects_zero_rows():
    net = make_network(4, 2, "relu", n_inputs=20)
    with pytest.raises(ValueError, match="at least one sample"):
        forward(net, np.zeros((0, 20)))


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_forward_rejects_non_finite(X20, bad):
    net = make_network(4, 2, "relu", n_inputs=20)
    X = X20.copy()
    X[3, 7] = bad
    with pytest.raises(ValueError, match="NaN or infinite"):
        forward(net, X)
