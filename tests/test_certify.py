"""Tests for ntk_np.certify: the qr route against 40-digit references.

The references are the eigenvalues of ``J J^T`` for the float64 ``J`` that the
qr route reads, with the Gram matrix and its eigenvalues computed by mpmath.
A product of two doubles is exact at 40 digits, so the reference is accurate to
about ``1e-40 * lambda_max``.
"""

from __future__ import annotations

import csv
import json
import tracemalloc

import mpmath
import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from scipy.linalg import eigh, svdvals

import ntk_np
from ntk_np import results as res
from ntk_np import run_sweep
from ntk_np.certify import (
    _fold_layer_factors,
    _staircase_blocks,
    backward_error_constant,
    certified_lambda_min,
    certify_lambda_min,
    eigh_lambda_min,
    jacobian_singular_values,
    layer_factor_blocks,
    qr_needed,
    singular_values_with_bounds,
    triangular_factor,
)
from ntk_np.cli import UsageError
from ntk_np.kernel import jacobian_ntk, per_sample_gradients
from ntk_np.spectrum import EPS, kernel_spectrum

ACTIVATIONS = ("relu", "elu", "leaky_relu", "sigmoid")


@pytest.fixture(scope="module")
def X12() -> np.ndarray:
    """The first 6 T-shirts and 6 Ankle boots, (12, 784)."""
    X, _ = ntk_np.load_sample(n_per_class=6)
    return X


@pytest.fixture(scope="module")
def X12_196(X12) -> np.ndarray:
    """The same images with every 4th pixel, (12, 196), to keep P small."""
    return np.ascontiguousarray(X12[:, ::4])


@pytest.fixture(scope="module")
def deep_sigmoid(X12):
    """A sigmoid 4x14 network whose lambda_min (7e-21) is far below eigh's floor."""
    net = ntk_np.make_network(4, 14, "sigmoid")
    return net, per_sample_gradients(net, X12)


def exact_singular_values(J: np.ndarray, dps: int = 40) -> np.ndarray:
    """Return the singular values of ``J`` from an mpmath Gram matrix, descending."""
    with mpmath.workdps(dps):
        rows = [[mpmath.mpf(float(v)) for v in row] for row in J]
        n = len(rows)
        gram = mpmath.matrix(n, n)
        for i in range(n):
            for j in range(i + 1):
                gram[i, j] = gram[j, i] = mpmath.fdot(rows[i], rows[j])
        eigenvalues = mpmath.eigsy(gram, eigvals_only=True)
        values = sorted((max(e, 0) for e in eigenvalues), reverse=True)
        return np.array([float(mpmath.sqrt(v)) for v in values])


def column_blocks(J: np.ndarray, k: int) -> list[np.ndarray]:
    """Split ``J`` into C-contiguous blocks of ``k`` columns."""
    return [np.ascontiguousarray(J[:, i : i + k]) for i in range(0, J.shape[1], k)]


def matrix_with_singular_values(s: np.ndarray, n_columns: int, seed: int):
    """Return ``U diag(s) V^T`` with random orthonormal ``U`` and ``V``."""
    rng = np.random.default_rng(seed)
    U, _ = np.linalg.qr(rng.standard_normal((len(s), len(s))))
    V, _ = np.linalg.qr(rng.standard_normal((n_columns, len(s))))
    return (U * s) @ V.T


# ------------------------------------------------------- the two routes


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_routes_agree_on_resolved_kernel(X12, activation):
    net = ntk_np.make_network(30, 3, activation)
    spectrum = kernel_spectrum(ntk_np.empirical_ntk(net, X12))
    qr = certified_lambda_min(net, X12, block_columns=500)
    assert not spectrum.below_floor
    assert qr.resolved
    assert qr.method == "qr"
    tolerance = spectrum.resolution_floor + qr.bound
    assert abs(qr.value - spectrum.lambda_min) <= tolerance
    assert_allclose(
        qr.eigenvalues, spectrum.eigenvalues, rtol=0, atol=spectrum.resolution_floor
    )


@pytest.mark.parametrize("source", ["layers", "jacobian"])
@pytest.mark.parametrize(
    ("activation", "width", "depth", "block_columns"),
    [
        ("relu", 16, 3, 1),
        ("elu", 16, 4, 257),
        ("leaky_relu", 8, 5, 10_000),
        ("sigmoid", 16, 6, 64),
    ],
)
def test_qr_within_bound_of_reference(
    X12_196, activation, width, depth, block_columns, source
):
    net = ntk_np.make_network(width, depth, activation, n_inputs=196)
    reference = exact_singular_values(per_sample_gradients(net, X12_196))
    values, bounds = jacobian_singular_values(
        net, X12_196, block_columns=block_columns, source=source
    )
    assert np.all(np.abs(values - reference) <= bounds)
    # On these well-conditioned kernels the estimate is far from tight.
    assert np.all(np.abs(values - reference) <= bounds / 10)
    assert_allclose(values, reference, rtol=1e-12)


@pytest.mark.parametrize("source", ["layers", "jacobian"])
def test_eigh_wrong_qr_right_on_deep_sigmoid(X12, deep_sigmoid, source):
    net, J = deep_sigmoid
    exact = exact_singular_values(J)[-1] ** 2
    spectrum = kernel_spectrum(ntk_np.empirical_ntk(net, X12))
    qr = certified_lambda_min(net, X12, block_columns=97, source=source)

    assert 1e-21 < exact < 1e-20
    assert spectrum.below_floor
    assert abs(spectrum.lambda_min - exact) / exact > 1e3
    assert qr.resolved
    assert abs(qr.value - exact) <= qr.bound
    assert_allclose(qr.value, exact, rtol=1e-6)


def test_spectrum_from_1_to_1e_minus_10():
    s = np.logspace(0, -10, 16)
    J = matrix_with_singular_values(s, 600, seed=3)
    reference = exact_singular_values(J)
    eigh_min = eigh(J @ J.T, eigvals_only=True)[0]
    for k in (1, 37, 600):
        values, bounds = singular_values_with_bounds(
            triangular_factor(column_blocks(J, k)), J.shape[1]
        )
        assert np.all(np.abs(values - reference) <= bounds), k
        assert_allclose(values[-1] ** 2, reference[-1] ** 2, rtol=1e-6)
    assert_allclose(reference[-1], 1e-10, rtol=1e-3)
    # eigh returns rounding noise of size eps * lambda_max instead of 1e-20.
    assert abs(eigh_min - reference[-1] ** 2) > 1e3 * reference[-1] ** 2


def test_jacobi_keeps_graded_rows_accurate():
    # Rows scaled from 1 to 1e-14 in random order: the relative bound applies,
    # and one-sided Jacobi keeps every singular value to about eps, while a
    # bidiagonal SVD of the same R loses digits in the smallest ones.
    rng = np.random.default_rng(5)
    scales = rng.permutation(np.logspace(0, -14, 16))
    J = scales[:, None] * rng.standard_normal((16, 300))
    reference = exact_singular_values(J, dps=80)
    R = triangular_factor(column_blocks(J, 64))
    values, bounds = singular_values_with_bounds(R, J.shape[1])

    normwise = backward_error_constant(16, 300) * np.linalg.norm(J)
    assert normwise > reference[-1]
    assert np.all(bounds / values < 1e-12)
    assert np.all(np.abs(values - reference) <= bounds)
    assert_allclose(values, reference, rtol=1e-14)
    bidiagonal = svdvals(R)
    assert abs(bidiagonal[-1] - reference[-1]) / reference[-1] > 1e-10


# ------------------------------------------------------- the layers source


@pytest.mark.parametrize("parametrization", ["thesis", "ntk"])
def test_layer_factors_have_gram_of_jacobian(X12, parametrization):
    net = ntk_np.make_network(40, 4, "elu", parametrization)
    J = per_sample_gradients(net, X12)
    blocks = [b.copy() for b in layer_factor_blocks(net, X12, block_columns=30)]
    M = np.hstack(blocks)
    n = len(X12)
    # Layer 1: 12 x (12 + 1), layers 2 and 3: 12 x (12 + 1), output: 1 x (12 + 1).
    assert M.shape == (n, 3 * n * (n + 1) + n + 1)
    assert max(b.shape[1] for b in blocks) <= 30
    gram = J @ J.T
    assert_allclose(M @ M.T, gram, rtol=0, atol=1e-13 * np.abs(gram).max())


def test_layer_factors_narrower_than_samples(X12):
    net = ntk_np.make_network(5, 3, "relu", n_inputs=8)
    X = np.ascontiguousarray(X12[:, 300:308])
    M = np.hstack([b.copy() for b in layer_factor_blocks(net, X)])
    # Layer 1: 5 x (8 + 1), layer 2: 5 x (5 + 1), output: 1 x (5 + 1).
    assert M.shape == (12, 45 + 30 + 6)
    gram = per_sample_gradients(net, X) @ per_sample_gradients(net, X).T
    assert_allclose(M @ M.T, gram, rtol=0, atol=1e-13 * np.abs(gram).max())


@pytest.mark.parametrize(
    ("width", "depth", "n_inputs"),
    [(40, 4, 784), (5, 3, 8), (30, 2, 20)],
    ids=["wider-than-N", "narrower-than-N", "mixed"],
)
def test_staircase_fold_matches_full_blocks(X12, width, depth, n_inputs):
    # Folding each staircase block into the trailing part of R must give the
    # same Gram matrix as folding the full columns of M.
    # The middle of image row 14 (28 x 28 images), where every item has ink.
    start = 0 if n_inputs == 784 else 14 * 28 + (28 - n_inputs) // 2
    X = np.ascontiguousarray(X12[:, start : start + n_inputs])
    assert np.abs(X).sum(axis=1).min() > 0
    net = ntk_np.make_network(width, depth, "elu", n_inputs=n_inputs)
    R = _fold_layer_factors(net, X, memory_budget=1 << 30)
    M = np.hstack([b.copy() for b in layer_factor_blocks(net, X)])
    gram = M @ M.T
    assert_allclose(R.T @ R, gram, rtol=0, atol=1e-13 * np.abs(gram).max())
    assert_allclose(R, np.triu(R), rtol=0, atol=0)


def test_staircase_blocks_cover_every_column():
    rng = np.random.default_rng(0)
    n, m1, m2 = 9, 4, 7
    r1 = np.tril(rng.standard_normal((n, m1)))
    r2 = np.tril(rng.standard_normal((n, m2)))
    blocks = list(_staircase_blocks(r1, r2))
    assert [s for s, _ in blocks] == list(range(max(m1, m2)))
    full = np.hstack([np.vstack([np.zeros((s, b.shape[1])), b]) for s, b in blocks])
    assert full.shape == (n, m1 * m2 + m1)
    weights = (r1[:, :, None] * r2[:, None, :]).reshape(n, m1 * m2)
    expected = np.hstack([weights, r1])
    gram = expected @ expected.T
    assert_allclose(full @ full.T, gram, rtol=0, atol=1e-14 * np.abs(gram).max())


def test_layer_factors_budget_too_small(X12):
    net = ntk_np.make_network(50, 3, "relu")
    with pytest.raises(ValueError, match=r"memory_budget=1000 bytes is too small"):
        next(layer_factor_blocks(net, X12, memory_budget=1000))


def test_unknown_source(X12):
    net = ntk_np.make_network(50, 3, "relu")
    with pytest.raises(ValueError, match=r"unknown source 'gram'; expected one of"):
        jacobian_singular_values(net, X12, source="gram")


# ------------------------------------------------------- the factor R


def test_factor_independent_of_block_size():
    J = matrix_with_singular_values(np.logspace(0, -3, 9), 250, seed=1)
    whole = triangular_factor([J])
    gram = J @ J.T
    for k in (1, 7, 100, 250):
        R = triangular_factor(column_blocks(J, k))
        assert_array_equal(R, np.triu(R))
        assert_allclose(R.T @ R, gram, rtol=0, atol=1e-14)
        assert_allclose(np.abs(R), np.abs(whole), rtol=0, atol=1e-14)


def test_factor_leaves_blocks_unchanged():
    J = matrix_with_singular_values(np.ones(5), 40, seed=2)
    blocks = column_blocks(J, 16)
    copies = [b.copy() for b in blocks]
    triangular_factor(blocks)
    for block, copy in zip(blocks, copies):
        assert_array_equal(block, copy)


def test_fewer_columns_than_rows_unresolved():
    J = matrix_with_singular_values(np.ones(5), 5, seed=4)[:, :3]
    R = triangular_factor([np.zeros((5, 0)), J])
    values, bounds = singular_values_with_bounds(R, 3)
    assert values.shape == (5,)
    assert np.all(values[3:] <= bounds[3:])
    assert_allclose(values[:3], exact_singular_values(J)[:3], rtol=1e-13)


@pytest.mark.parametrize(
    ("blocks", "pattern"),
    [
        ([], r"at least one block"),
        ([np.ones(4)], r"blocks\[0\] must be a 2-D array"),
        ([np.ones((3, 2)), np.ones((4, 2))], r"blocks\[1\] has 4 rows"),
        ([np.array([[1.0, np.nan], [0.0, 1.0]])], r"NaN or infinite"),
    ],
)
def test_factor_rejects_invalid_blocks(blocks, pattern):
    with pytest.raises(ValueError, match=pattern):
        triangular_factor(blocks)


def test_singular_values_reject_invalid_input():
    with pytest.raises(ValueError, match=r"R must be a non-empty square"):
        singular_values_with_bounds(np.ones((2, 3)), 3)
    with pytest.raises(ValueError, match=r"n_columns must be at least 1, got 0"):
        singular_values_with_bounds(np.eye(2), 0)


def test_backward_error_constant():
    assert backward_error_constant(200, 800) == pytest.approx(600 * EPS, rel=1e-15)


@pytest.mark.parametrize("source", ["layers", "jacobian"])
def test_memory_within_jacobian_budget(X12, source):
    n = len(X12)
    net = ntk_np.make_network(500, 4, "relu")
    budget = 4 << 20
    assert n * net.n_params * 8 > 20 * budget
    certified_lambda_min(net, X12, budget, source=source)  # compile and warm up
    tracemalloc.start()
    try:
        qr = certified_lambda_min(net, X12, budget, source=source)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak <= budget
    if source == "jacobian":
        assert peak > budget // 2  # the blocks do use the budget
    expected = kernel_spectrum(jacobian_ntk(net, X12, memory_budget=budget))
    assert_allclose(
        qr.eigenvalues, expected.eigenvalues, rtol=0, atol=expected.resolution_floor
    )


# ------------------------------------------------------- policies


def test_policies_choose_route(X12, deep_sigmoid):
    net, _ = deep_sigmoid
    unresolved = kernel_spectrum(ntk_np.empirical_ntk(net, X12))
    relu = ntk_np.make_network(30, 3, "relu")
    resolved = kernel_spectrum(ntk_np.empirical_ntk(relu, X12))

    assert not qr_needed(unresolved, "never")
    assert qr_needed(unresolved, "auto")
    assert not qr_needed(resolved, "auto")
    assert qr_needed(resolved, "always")
    assert certify_lambda_min(unresolved, net, X12, "never").method == "eigh"
    assert certify_lambda_min(unresolved, net, X12, "auto").method == "qr"
    assert certify_lambda_min(resolved, relu, X12, "auto").method == "eigh"
    assert certify_lambda_min(resolved, relu, X12, "always").method == "qr"


def test_eigh_value_carries_floor(X12, deep_sigmoid):
    net, _ = deep_sigmoid
    spectrum = kernel_spectrum(ntk_np.empirical_ntk(net, X12))
    value = eigh_lambda_min(spectrum)
    assert value.value == spectrum.lambda_min
    assert value.bound == spectrum.resolution_floor
    assert value.resolved is False
    assert value.eigenvalues is None
    assert value.format().endswith("(unresolved, eigh)")


def test_policy_errors(X12):
    net = ntk_np.make_network(30, 3, "relu")
    spectrum = kernel_spectrum(ntk_np.empirical_ntk(net, X12))
    with pytest.raises(ValueError, match=r"unknown certify policy 'sometimes'"):
        certify_lambda_min(spectrum, net, X12, "sometimes")
    with pytest.raises(ValueError, match=r"spectrum has 12 eigenvalues, but X has 6"):
        certify_lambda_min(spectrum, net, X12[:6], "always")


# ------------------------------------------------------- sweep and results


def test_sweep_certifies_unresolved_kernels(X12, tmp_path):
    grid = dict(widths=[4], depths=[3, 14], activations=["sigmoid"])
    out = tmp_path / "out"
    never = run_sweep(X12, **grid, certify="never")
    auto = run_sweep(X12, **grid, certify="auto", out=out)
    shallow_never, deep_never = never.rows
    shallow, deep = auto.rows

    assert shallow == {**shallow_never, "seconds": shallow["seconds"]}
    assert shallow["lambda_min_method"] == "eigh"
    assert deep_never["below_floor"] is True
    assert deep["below_floor"] is False
    assert deep["lambda_min_method"] == "qr"
    assert deep["lambda_min_eigh"] == deep_never["lambda_min"]
    assert deep["resolution_floor"] == deep_never["resolution_floor"]
    assert 0 < deep["lambda_min_bound"] < deep["lambda_min"] < 1e-18
    assert auto.summary[0]["lambda_min"] == shallow["lambda_min"]

    written = res.read_results(out)
    assert written == auto.rows
    assert json.loads((out / "settings.json").read_text())["certify"] == "auto"
    with pytest.raises(UsageError, match=r"other settings \(changed: certify"):
        run_sweep(X12, **grid, certify="always", out=out)
    with pytest.raises(UsageError, match=r"unknown certify policy 'maybe'"):
        run_sweep(X12, **grid, certify="maybe")


def test_results_without_certify_columns_read_as_eigh(tmp_path):
    old_columns = [c for c in res.COLUMNS if c not in res.CERTIFY_COLUMNS]
    values = ["relu", "50", "2", "0", "thesis", "10", "0.5", "9.0", "12.0"]
    values += ["2e-14", "false", "0.01"]
    path = tmp_path / "results.csv"
    with open(path, "w", newline="") as handle:
        csv.writer(handle).writerows([old_columns, values])
    (row,) = res.read_results(path)
    assert row["lambda_min_method"] == "eigh"
    assert row["lambda_min_eigh"] == 0.5
    assert row["lambda_min_bound"] == 2e-14
