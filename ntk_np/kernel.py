"""The empirical Neural Tangent Kernel ``Theta = J J^T``.

``J`` is the ``(N, P)`` Jacobian of the network output over its parameters: row
``i`` is the per-sample gradient of ``f(x_i)``. Two routes compute ``Theta``:

``layerwise``
    The dense-layer identity, with ``delta[l]`` and ``A[l-1]`` as in
    :mod:`ntk_np.network`::

        Theta = sum_l c_l^2 (delta[l] delta[l]^T) o (A[l-1] A[l-1]^T)
                      + delta[l] delta[l]^T

    One forward and one backward pass plus small Gram matrices.
``jacobian``
    ``J`` formed block by block of parameters, each block folded into ``Theta``
    with a symmetric rank-k update (BLAS ``dsyrk``), so memory stays within a
    budget for any parameter count.

Both routes agree to rounding. Parameters are flattened in the order
``W(1), b(1), W(2), b(2), ..., W(D), b(D)``, each weight matrix row-major.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import numpy as np
from numba import njit
from scipy.linalg.blas import dsyrk

from .activations import scale_by_slope
from .choices import DEFAULT_MEMORY_BUDGET, METHODS
from .network import (
    Network,
    check_architecture,
    check_inputs,
    check_seed,
    draw_hidden_layers,
    draw_output_layer,
    forward,
    forward_hidden,
    layer_multipliers,
)

logger = logging.getLogger(__name__)


class MemoryBudgetError(ValueError):
    """A memory budget too small for one block of the Jacobian of a network."""


# A 2 MiB block is still in cache when dsyrk reads it back. Among blocks of 1 to
# 16 MiB, 1 to 4 MiB ran fastest on an AMD EPYC (Zen 4, 1 MiB of L2 per core).
_TARGET_BLOCK_BYTES = 1 << 21


@njit(cache=True)
def _accumulate_layer(theta, gram_delta, gram_a, c2):
    n = theta.shape[0]
    for i in range(n):
        for j in range(n):
            g = gram_delta[i, j]
            theta[i, j] += g * (c2 * gram_a[i, j] + 1.0)


def _backward_sum(weights, multipliers, A, S, gram_a=None):
    """Backpropagate through a forward pass and sum the layer terms of ``Theta``.

    ``A`` and ``S`` may come from a deeper network with the same leading
    layers; only those of ``len(weights)`` layers are read. ``gram_a[l]``, if
    given, is ``A[l] @ A[l].T``. Each ``delta[l]`` is dropped once its term is
    added, so at most two are alive at a time.
    """
    depth = len(weights)
    c = multipliers
    if gram_a is None:
        gram_a = [None] * depth
    gram = _gram(A[depth - 1], gram_a[depth - 1])
    # delta(D) is a column of ones, so its Gram matrix is all ones.
    theta = c[depth - 1] ** 2 * gram + 1.0
    delta = c[depth - 1] * weights[depth - 1] * S[depth - 1]
    for l in range(depth - 1, 0, -1):
        if l < depth - 1:
            delta = delta @ weights[l]
            scale_by_slope(delta, c[l], S[l])
        gram = _gram(A[l - 1], gram_a[l - 1])
        _accumulate_layer(theta, delta @ delta.T, gram, c[l - 1] ** 2)
    return theta


def _gram(a, known):
    return a @ a.T if known is None else known


def layerwise_ntk(network: Network, X) -> np.ndarray:
    """Compute the empirical NTK with the layerwise identity.

    Parameters
    ----------
    network : Network
    X : array_like of shape (N, n_0)

    Returns
    -------
    theta : ndarray of shape (N, N)
    """
    passed = forward(network, X)
    return _backward_sum(network.weights, network.multipliers, passed.A, passed.S)


def ntk_over_depths(
    X,
    width: int,
    depths,
    activation: str,
    parametrization: str = "thesis",
    seed: int = 0,
) -> Iterator[tuple[int, np.ndarray]]:
    """Yield ``(depth, theta)`` for networks of one seed, width and activation.

    The networks are those of :func:`ntk_np.network.make_network`. Their hidden
    layers are shared, so the forward pass and the input Gram matrices are
    computed once for all depths. Each kernel equals :func:`layerwise_ntk` of
    the same network.

    Raises
    ------
    ValueError, TypeError
        For an invalid architecture or ``X``, before any kernel is computed.
    """
    depths = sorted(set(depths))
    if not depths:
        raise ValueError("depths must not be empty")
    for depth in depths:
        width, _ = check_architecture(width, depth, activation, parametrization)
    seed = check_seed(seed)
    X = np.ascontiguousarray(X, dtype=np.float64)
    if X.ndim != 2 or X.shape[0] < 1 or X.shape[1] < 1:
        raise ValueError(f"X must have shape (N, d) with N, d >= 1, got {X.shape}")
    if not np.all(np.isfinite(X)):
        raise ValueError("X contains NaN or infinite values")
    return _ntk_over_depths(X, width, depths, activation, parametrization, seed)


def _ntk_over_depths(X, width, depths, activation, parametrization, seed, hidden=None):
    """Yield ``(depth, theta)`` for sorted, validated ``depths``.

    ``hidden`` may hold the hidden layers already drawn for this seed and width
    (at least ``max(depths) - 1`` of them), so that a caller looping over
    activations draws them once.
    """
    n_inputs = X.shape[1]
    deepest = depths[-1]
    if hidden is None:
        hidden = draw_hidden_layers(n_inputs, width, deepest - 1, seed)
    hidden = hidden[: deepest - 1]
    multipliers = layer_multipliers(n_inputs, width, deepest, parametrization)
    A, S = forward_hidden(hidden, multipliers, activation, X)
    gram_a = [a @ a.T for a in A]
    for depth in depths:
        W_out, _ = draw_output_layer(n_inputs, width, depth, seed)
        c = layer_multipliers(n_inputs, width, depth, parametrization)
        weights = [W for W, _ in hidden[: depth - 1]] + [W_out]
        yield depth, _backward_sum(weights, c, A, S, gram_a)


def _segments(network: Network):
    """Yield ``(offset, size, layer, is_bias)`` for each parameter segment."""
    offset = 0
    for l, (W, b) in enumerate(zip(network.weights, network.biases), start=1):
        yield offset, W.size, l, False
        offset += W.size
        yield offset, b.size, l, True
        offset += b.size


@njit(cache=True)
def _fill_weight_block(out, col, delta, a, c, p0, p1):
    # Columns p0 .. p1-1 of dW(l) = c * delta[l] x(l-1)^T, flattened row-major.
    # The innermost loop runs over slices from index 0, so LLVM can drop the
    # negative-index checks and vectorise it.
    n_samples = out.shape[0]
    n_in = a.shape[1]
    for i in range(n_samples):
        p = p0
        dst = col
        while p < p1:
            j = p // n_in
            k = p - j * n_in
            count = min(n_in - k, p1 - p)
            scaled = c * delta[i, j]
            target = out[i, dst : dst + count]
            source = a[i, k : k + count]
            for t in range(count):
                target[t] = scaled * source[t]
            dst += count
            p += count


@njit(cache=True)
def _fill_bias_block(out, col, delta, p0, p1):
    for i in range(out.shape[0]):
        for p in range(p0, p1):
            out[i, col + p - p0] = delta[i, p]


@njit(cache=True)
def _scale_slope_by(slope, scale, back):
    # Overwrites slope with scale * back * slope, the product scale_by_slope forms.
    n_rows, n_cols = slope.shape
    for i in range(n_rows):
        for j in range(n_cols):
            slope[i, j] = scale * back[i, j] * slope[i, j]


def _backward_over_slopes(weights, multipliers, S):
    """Return the deltas of :func:`ntk_np.network.backward_from`, stored over ``S``.

    ``delta[l]`` is written into the buffer of ``S[l]``, so the backward pass
    needs no memory beyond the forward pass but one product; ``S`` is consumed.
    """
    depth = len(weights)
    delta = [None] * (depth + 1)
    delta[depth] = np.ones((S[1].shape[0], 1))
    for l in range(depth - 1, 0, -1):
        back = delta[l + 1] @ weights[l]
        _scale_slope_by(S[l], multipliers[l], back)
        delta[l] = S[l]
    return delta


def _pass_bytes(n_samples: int, layer_sizes) -> int:
    # Layer inputs A[0..D-1], deltas of layers 1..D, and one (N, width) product
    # that the backward pass keeps while it runs.
    hidden = max(layer_sizes[1:-1], default=0)
    floats = sum(layer_sizes[:-1]) + sum(layer_sizes[1:]) + hidden
    return 8 * n_samples * floats


def jacobian_memory_needed(n_samples: int, layer_sizes) -> int:
    """Return the smallest ``memory_budget``, in bytes, of the ``jacobian`` route.

    ``layer_sizes`` is ``(n_0, n_1, ..., n_D)`` as :attr:`Network.layer_sizes`.
    The budget must hold the forward and backward pass, four ``(N, N)``
    matrices and one Jacobian column.
    """
    n = n_samples
    return _pass_bytes(n, layer_sizes) + 4 * n * n * 8 + 8 * n


class _Gradients:
    """Forward and backward pass of one batch, ready to emit Jacobian columns."""

    def __init__(self, network: Network, X):
        passed = forward(network, X)
        self.network = network
        self.A = passed.A
        self.delta = _backward_over_slopes(
            network.weights, network.multipliers, passed.S
        )
        self.n_samples = len(passed.output)
        self.nbytes = _pass_bytes(self.n_samples, network.layer_sizes)

    def fill(self, out: np.ndarray, start: int, stop: int) -> None:
        """Write Jacobian columns ``start .. stop-1`` into ``out`` (N, stop-start)."""
        for offset, size, l, is_bias in _segments(self.network):
            lo = max(start, offset)
            hi = min(stop, offset + size)
            if lo >= hi:
                continue
            col = lo - start
            if is_bias:
                _fill_bias_block(out, col, self.delta[l], lo - offset, hi - offset)
            else:
                c = self.network.multipliers[l - 1]
                _fill_weight_block(
                    out, col, self.delta[l], self.A[l - 1], c, lo - offset, hi - offset
                )


def per_sample_gradients(
    network: Network, X, start: int = 0, stop: int | None = None
) -> np.ndarray:
    """Return columns ``start .. stop-1`` of the Jacobian ``J``.

    Parameters
    ----------
    network : Network
    X : array_like of shape (N, n_0)
    start, stop : int
        Range of flattened parameter indices; ``stop`` defaults to P.

    Returns
    -------
    J_block : ndarray of shape (N, stop - start)
        Row ``i`` contains ``df(x_i)/dp`` for the parameters in the range.
    """
    n_params = network.n_params
    stop = n_params if stop is None else stop
    if not 0 <= start <= stop <= n_params:
        raise ValueError(
            f"parameter range [{start}, {stop}) is outside [0, {n_params}]"
        )
    grads = _Gradients(network, X)
    out = np.empty((grads.n_samples, stop - start))
    grads.fill(out, start, stop)
    return out


def jacobian_blocks(
    network: Network,
    X,
    memory_budget: int = DEFAULT_MEMORY_BUDGET,
    block_columns: int | None = None,
) -> Iterator[np.ndarray]:
    """Yield consecutive column blocks of ``J``, each ``(N, k)`` and C-contiguous.

    The blocks share one buffer, so each is valid only until the next is
    requested. The buffer, the forward and backward pass, and four ``(N, N)``
    matrices fit in ``memory_budget`` bytes.

    Raises
    ------
    ValueError
        If the budget cannot hold a single column next to the forward pass.
    """
    grads = _Gradients(network, X)
    n = grads.n_samples
    n_params = network.n_params
    spare = memory_budget - grads.nbytes - 4 * n * n * 8
    max_columns = spare // (8 * n)
    if max_columns < 1:
        need = jacobian_memory_needed(n, network.layer_sizes)
        raise MemoryBudgetError(
            f"memory_budget={memory_budget} bytes is too small for N={n} samples "
            f"of this network; at least {need} bytes are needed"
        )
    if block_columns is None:
        block_columns = max(1, _TARGET_BLOCK_BYTES // (8 * n))
    elif (
        isinstance(block_columns, bool)
        or not isinstance(block_columns, int | np.integer)
        or block_columns < 1
    ):
        raise ValueError(
            f"block_columns must be a positive integer, got {block_columns!r}"
        )
    block_columns = int(min(block_columns, max_columns, n_params))
    logger.debug(
        "jacobian blocks of %d columns for P=%d, N=%d", block_columns, n_params, n
    )
    buffer = np.empty(n * block_columns)
    for start in range(0, n_params, block_columns):
        stop = min(start + block_columns, n_params)
        block = buffer[: n * (stop - start)].reshape(n, stop - start)
        grads.fill(block, start, stop)
        yield block


def jacobian_ntk(
    network: Network,
    X,
    memory_budget: int = DEFAULT_MEMORY_BUDGET,
    block_columns: int | None = None,
) -> np.ndarray:
    """Compute the empirical NTK as ``J J^T`` from streamed blocks of ``J``.

    Parameters
    ----------
    network : Network
    X : array_like of shape (N, n_0)
    memory_budget : int, default=1 GiB
        Bytes available for the Jacobian block, the forward pass and the result.
    block_columns : int, optional
        Columns per block; by default about 2 MiB of block, within the budget.

    Returns
    -------
    theta : ndarray of shape (N, N)
    """
    theta = None
    for block in jacobian_blocks(network, X, memory_budget, block_columns):
        if theta is None:
            theta = np.zeros((block.shape[0],) * 2, order="F")
        # block.T is Fortran-ordered, so dsyrk reads it without a copy.
        theta = dsyrk(1.0, block.T, beta=1.0, c=theta, trans=1, overwrite_c=1)
    upper = np.triu(theta)
    return np.ascontiguousarray(upper + np.triu(theta, 1).T)


def empirical_ntk(
    network: Network,
    X,
    method: str = "layerwise",
    memory_budget: int = DEFAULT_MEMORY_BUDGET,
) -> np.ndarray:
    """Compute the empirical NTK ``Theta[i, j] = <df(x_i)/dp, df(x_j)/dp>``.

    Parameters
    ----------
    network : Network
        From :func:`ntk_np.make_network`.
    X : array_like of shape (N, n_0)
        Inputs; converted to float64.
    method : {'layerwise', 'jacobian'}, default='layerwise'
        The route (see the module docstring). Both agree to rounding.
    memory_budget : int, default=1 GiB
        Bytes for the ``jacobian`` route; ignored by ``layerwise``.

    Returns
    -------
    theta : ndarray of shape (N, N)
        Symmetric positive semidefinite up to rounding.

    Examples
    --------
    >>> import ntk_np
    >>> X, y = ntk_np.load_sample(n_per_class=5)
    >>> net = ntk_np.make_network(width=100, depth=3, activation="relu")
    >>> ntk_np.empirical_ntk(net, X).shape
    (10, 10)
    """
    X = check_inputs(network, X)
    if method == "layerwise":
        return layerwise_ntk(network, X)
    if method == "jacobian":
        return jacobian_ntk(network, X, memory_budget)
    raise ValueError(
        f"unknown method {method!r}; expected one of " + ", ".join(METHODS)
    )
