"""Activation functions and their derivatives as Numba kernels.

Each activation has an integer code so that compiled loops can branch on it.
The kernels compute the value and the derivative in one pass, and stay finite
without overflow warnings for every finite input: ELU uses ``expm1`` only on
the negative side, and the sigmoid evaluates ``exp`` of a non-positive number.
The derivative at a kink (ReLU and Leaky ReLU at 0) is the left derivative.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .choices import ACTIVATIONS

LEAKY_SLOPE = 0.01
ELU_ALPHA = 1.0

RELU, ELU, LEAKY_RELU, SIGMOID = range(4)


def activation_code(name: str) -> int:
    """Return the integer code of an activation name.

    Raises
    ------
    ValueError
        If ``name`` is not one of :data:`ACTIVATIONS`.
    """
    try:
        return ACTIVATIONS.index(name)
    except ValueError:
        allowed = ", ".join(ACTIVATIONS)
        raise ValueError(
            f"unknown activation {name!r}; expected one of {allowed}"
        ) from None


@njit(cache=True, inline="always")
def _value_and_slope(z, code):
    if code == RELU:
        if z > 0.0:
            return z, 1.0
        return 0.0, 0.0
    if code == ELU:
        if z > 0.0:
            return z, 1.0
        e = np.expm1(z)
        return ELU_ALPHA * e, ELU_ALPHA * (e + 1.0)
    if code == LEAKY_RELU:
        if z > 0.0:
            return z, 1.0
        return LEAKY_SLOPE * z, LEAKY_SLOPE
    # Sigmoid: exp of -|z| never overflows.
    # The slope e / (1 + e)^2 with e = exp(-|z|) keeps full relative accuracy
    # in both tails, where s * (1 - s) would cancel for large positive z.
    if z >= 0.0:
        e = np.exp(-z)
        s = 1.0 / (1.0 + e)
        return s, e * s * s
    e = np.exp(z)
    s = e / (1.0 + e)
    return s, s / (1.0 + e)


@njit(cache=True)
def affine_activate(pre, scale, bias, code, x_out, slope_out):
    """Set ``z = scale * pre + bias`` row-wise, then ``x = act(z)``, ``act'(z)``.

    ``pre`` (N, n) contains ``x(l-1) W(l)^T``; ``bias`` has shape (n,). Writes
    ``x_out`` and ``slope_out`` (both (N, n)) in place.
    """
    n_rows, n_cols = pre.shape
    for i in range(n_rows):
        for j in range(n_cols):
            x, s = _value_and_slope(scale * pre[i, j] + bias[j], code)
            x_out[i, j] = x
            slope_out[i, j] = s


@njit(cache=True)
def scale_by_slope(back, scale, slope):
    """Overwrite ``back`` (N, n) with ``scale * back * slope`` elementwise."""
    n_rows, n_cols = back.shape
    for i in range(n_rows):
        for j in range(n_cols):
            back[i, j] = scale * back[i, j] * slope[i, j]


@njit(cache=True)
def _apply(z, code, x_out, slope_out):
    for i in range(z.size):
        x_out[i], slope_out[i] = _value_and_slope(z[i], code)


def activation(name: str, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Evaluate an activation and its derivative.

    Parameters
    ----------
    name : str
        One of :data:`ACTIVATIONS`.
    z : array_like
        Pre-activations, any shape; converted to float64.

    Returns
    -------
    value, derivative : ndarray, same shape as ``z``
    """
    code = activation_code(name)
    z = np.array(z, dtype=np.float64, order="C")
    value = np.empty_like(z)
    derivative = np.empty_like(z)
    _apply(z.reshape(-1), code, value.reshape(-1), derivative.reshape(-1))
    return value, derivative
