"""Tests for ntk_np.activations: values, derivatives, extremes and errors."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from conftest import ACTIVATIONS, EPS, LEAKY_SLOPE, ref_activation
from numpy.testing import assert_allclose, assert_array_equal

import ntk_np

MAX = float(np.finfo(np.float64).max)
TINY = float(np.finfo(np.float64).smallest_subnormal)
EXTREMES = np.array(
    [-MAX, -1e4, -800.0, -1.0, -TINY, -0.0, 0.0, TINY, 1.0, 800.0, 1e4, MAX]
)


def grid(seed: int = 0) -> np.ndarray:
    """A seeded mix of moderate and large pre-activations, kinks excluded."""
    rng = np.random.default_rng(seed)
    z = np.concatenate(
        [rng.normal(0, 3, 400), rng.uniform(-60, 60, 200), np.linspace(-8, 8, 161)]
    )
    return z[np.abs(z) > 1e-3]


def test_activation_names():
    assert ntk_np.ACTIVATIONS == ACTIVATIONS


@pytest.mark.parametrize("name", ACTIVATIONS)
def test_values_match_reference(name):
    z = grid()
    value, _ = ntk_np.activation(name, z)
    assert_allclose(value, ref_activation(name, z)[0], rtol=1e-14, atol=0)


@pytest.mark.parametrize("name", ACTIVATIONS)
def test_derivatives_match_reference(name):
    # The sigmoid slope is formed as s * (1 - s): exact to eps in absolute
    # terms, hence atol = eps (its relative accuracy fades for z > ~18).
    z = grid()
    _, slope = ntk_np.activation(name, z)
    assert_allclose(slope, ref_activation(name, z)[1], rtol=1e-13, atol=EPS)


def test_known_values():
    z = np.array([-2.0, -0.5, 0.5, 2.0])
    assert_array_equal(ntk_np.activation("relu", z)[0], [0, 0, 0.5, 2.0])
    assert_array_equal(ntk_np.activation("leaky_relu", z)[0], [-0.02, -0.005, 0.5, 2])
    assert_allclose(
        ntk_np.activation("elu", z)[0], [np.exp(-2) - 1, np.exp(-0.5) - 1, 0.5, 2]
    )
    assert_allclose(ntk_np.activation("sigmoid", np.array([0.0]))[0], [0.5])
    assert_allclose(ntk_np.activation("sigmoid", np.array([0.0]))[1], [0.25])
    assert_allclose(ntk_np.activation("sigmoid", z)[0], 1 / (1 + np.exp(-z)))


@pytest.mark.parametrize(
    "name, slope_at_zero", [("relu", 0.0), ("leaky_relu", LEAKY_SLOPE), ("elu", 1.0)]
)
def test_derivative_at_kink_is_left_derivative(name, slope_at_zero):
    value, slope = ntk_np.activation(name, np.array([0.0, -0.0]))
    assert_array_equal(value, [0.0, 0.0])
    assert_array_equal(slope, [slope_at_zero, slope_at_zero])


@pytest.mark.parametrize("name", ACTIVATIONS)
def test_derivative_matches_central_differences(name):
    """(act(z + h) - act(z - h)) / 2h with h = 1e-6, at |z| >= 1e-3 (no kink)."""
    h = 1e-6
    z = grid(1)
    z = z[np.abs(z) < 30]
    _, slope = ntk_np.activation(name, z)
    fd = (ntk_np.activation(name, z + h)[0] - ntk_np.activation(name, z - h)[0]) / (
        2 * h
    )
    assert_allclose(slope, fd, rtol=1e-7, atol=1e-9)


@pytest.mark.parametrize("name", ACTIVATIONS)
def test_extremes_finite_without_warnings(name):
    with warnings.catch_warnings(), np.errstate(all="raise"):
        warnings.simplefilter("error")
        value, slope = ntk_np.activation(name, EXTREMES)
    assert np.all(np.isfinite(value)), value
    assert np.all(np.isfinite(slope)), slope
    with np.errstate(all="ignore"):
        ref_value, ref_slope = ref_activation(name, EXTREMES)
    assert_allclose(value, ref_value, rtol=1e-15, atol=0)
    assert_allclose(slope, ref_slope, rtol=1e-15, atol=EPS)


def test_extreme_values_saturate():
    ends = np.array([-MAX, MAX])
    assert_array_equal(ntk_np.activation("sigmoid", ends)[0], [0.0, 1.0])
    assert_array_equal(ntk_np.activation("sigmoid", ends)[1], [0.0, 0.0])
    assert_array_equal(ntk_np.activation("elu", ends)[0], [-1.0, MAX])
    assert_array_equal(ntk_np.activation("elu", ends)[1], [0.0, 1.0])
    assert_array_equal(ntk_np.activation("leaky_relu", ends)[0], [-MAX / 100, MAX])


@pytest.mark.parametrize("name", ACTIVATIONS)
@pytest.mark.parametrize("shape", [(3,), (2, 3), (2, 0), (2, 3, 4)])
def test_output_shape_equals_input_shape(name, shape):
    z = np.random.default_rng(2).normal(size=shape)
    value, slope = ntk_np.activation(name, z)
    assert value.shape == shape
    assert slope.shape == shape
    assert value.dtype == slope.dtype == np.float64


def test_scalar_input_gives_zero_dimensional_output():
    # Documented: "z : array_like ... any shape" and "value, derivative :
    # ndarray, same shape as z"; a scalar has shape ().
    for name in ACTIVATIONS:
        value, slope = ntk_np.activation(name, 0.5)
        assert (value.shape, slope.shape) == ((), ()), name
        assert_allclose(value, ref_activation(name, 0.5)[0], rtol=1e-14)


@pytest.mark.parametrize("name", ACTIVATIONS)
def test_accepts_integers_and_strided_input(name):
    z = np.arange(-6, 6).reshape(3, 4)[:, ::2]
    value, slope = ntk_np.activation(name, z)
    expected = ref_activation(name, z.astype(float))
    assert_allclose(value, expected[0], rtol=1e-14)
    assert_allclose(slope, expected[1], rtol=1e-14)


@pytest.mark.parametrize("bad", ["tanh", "ReLU", ""])
def test_unknown_name_raises_value_error_naming_it(bad):
    with pytest.raises(ValueError, match=repr(bad)) as excinfo:
        ntk_np.activation(bad, np.zeros(3))
    assert "relu" in str(excinfo.value)
