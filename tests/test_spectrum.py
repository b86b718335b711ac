"""Tests for ntk_np.spectrum: eigenvalues, trace and the resolution floor."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import EPS, pool_to_20_features
from numpy.testing import assert_allclose, assert_array_equal

import ntk_np
from ntk_np.spectrum import Spectrum, kernel_spectrum, resolution_floor


def known_matrix(eigenvalues, seed=0) -> np.ndarray:
    """Q diag(eigenvalues) Q^T with a seeded random orthogonal Q, symmetrised."""
    n = len(eigenvalues)
    Q, _ = np.linalg.qr(np.random.default_rng(seed).normal(size=(n, n)))
    theta = (Q * eigenvalues) @ Q.T
    return (theta + theta.T) / 2


def test_known_spectrum():
    eigenvalues = np.array([30.0, 0.5, 7.0, 2.0, 100.0, 1e-3])
    spectrum = kernel_spectrum(known_matrix(eigenvalues))
    assert isinstance(spectrum, Spectrum)
    expected = np.sort(eigenvalues)
    assert np.all(np.diff(spectrum.eigenvalues) > 0)  # ascending
    assert_allclose(spectrum.eigenvalues, expected, rtol=0, atol=1e-12 * 100)
    assert spectrum.lambda_min == spectrum.eigenvalues[0]
    assert spectrum.lambda_max == spectrum.eigenvalues[-1]
    assert_allclose(spectrum.lambda_min, 1e-3, rtol=1e-9)
    assert_allclose(spectrum.trace, eigenvalues.sum(), rtol=1e-14)
    assert spectrum.resolution_floor == 6 * EPS * spectrum.lambda_max
    assert not spectrum.below_floor
    assert_allclose(spectrum.condition_number, 1e5, rtol=1e-9)
    assert spectrum.format_lambda_min() == f"{spectrum.lambda_min:.6g}"
    for value in (spectrum.lambda_min, spectrum.lambda_max, spectrum.trace):
        assert type(value) is float


def test_trace_is_trace_of_input():
    theta = known_matrix(np.arange(1.0, 9.0), seed=3)
    assert kernel_spectrum(theta).trace == float(np.trace(theta))


def test_only_lower_triangle_is_read():
    theta = known_matrix(np.array([1.0, 2.0, 5.0]), seed=1)
    garbage = theta.copy()
    garbage[np.triu_indices(3, 1)] = [1e3, -7.0, 42.0]
    assert_array_equal(
        kernel_spectrum(garbage).eigenvalues, kernel_spectrum(theta).eigenvalues
    )


def test_resolution_floor_function():
    assert resolution_floor(200, 1e4) == 200 * EPS * 1e4
    assert resolution_floor(10, -3.0) == 10 * EPS * 3.0


def test_rank_one_matrix_is_below_floor():
    v = np.random.default_rng(4).normal(size=30)
    spectrum = kernel_spectrum(np.outer(v, v))
    assert_allclose(spectrum.lambda_max, v @ v, rtol=1e-13)
    assert spectrum.below_floor
    assert spectrum.condition_number == float("inf")
    text = spectrum.format_lambda_min()
    assert "unresolved" in text
    assert text.startswith(f"<{spectrum.resolution_floor:.3g}")


def test_zero_matrix_is_below_floor():
    spectrum = kernel_spectrum(np.zeros((4, 4)))
    assert spectrum.resolution_floor == 0.0
    assert spectrum.below_floor


def test_more_samples_than_parameters_is_below_floor():
    """N = 30 images, P = 23 parameters (20 features, width 1): rank <= 23."""
    X, _ = ntk_np.load_sample(n_per_class=15)
    X = pool_to_20_features(X)
    net = ntk_np.make_network(1, 2, "sigmoid", n_inputs=20)
    assert net.n_params < len(X)
    spectrum = kernel_spectrum(ntk_np.empirical_ntk(net, X))
    assert spectrum.below_floor
    assert abs(spectrum.lambda_min) <= spectrum.resolution_floor
    assert "unresolved" in spectrum.format_lambda_min()
    # The resolved part: exactly P eigenvalues above the floor.
    resolved = spectrum.eigenvalues > spectrum.resolution_floor
    assert resolved.sum() <= net.n_params


def test_real_kernel_is_resolved(X):
    theta = ntk_np.empirical_ntk(ntk_np.make_network(50, 3, "relu"), X)
    spectrum = kernel_spectrum(theta)
    assert not spectrum.below_floor
    assert spectrum.lambda_min > 1e6 * spectrum.resolution_floor
    assert_allclose(spectrum.eigenvalues, np.linalg.eigvalsh(theta), rtol=1e-10)


@pytest.mark.parametrize(
    "theta, pattern",
    [
        (np.zeros((3, 4)), r"square.*\(3, 4\)"),
        (np.zeros(5), r"square.*\(5,\)"),
        (np.zeros((0, 0)), r"non-empty"),
        (np.zeros((2, 2, 2)), r"square"),
    ],
)
def test_bad_shape_raises(theta, pattern):
    with pytest.raises(ValueError, match=pattern):
        kernel_spectrum(theta)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_raises(bad):
    theta = np.eye(3)
    theta[2, 0] = bad
    with pytest.raises(ValueError, match="NaN or infinite"):
        kernel_spectrum(theta)
