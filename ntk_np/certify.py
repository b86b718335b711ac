"""Smallest eigenvalues of the empirical NTK with an error bound.

``scipy.linalg.eigh`` resolves the eigenvalues of ``Theta = J J^T`` only down to
about ``N * eps * lambda_max`` (see :mod:`ntk_np.spectrum`). This module also
computes them from ``J`` itself, as squared singular values, which resolves
``lambda_min`` to a relative accuracy of about ``eps * sqrt(lambda_max /
lambda_min)`` instead of ``eps * lambda_max / lambda_min``.

Each value carries its route and an absolute error bound:

``eigh``
    The smallest eigenvalue of ``Theta``. Its bound is the resolution floor
    ``N * eps * lambda_max``.
``qr``
    Column blocks ``B`` (N x k) are folded one at a time into the triangular
    factor ``R`` (N x N) of ``J^T = Q R``: LAPACK ``dtpqrt`` factors
    ``[R; B^T] = Q' R'`` in about ``2 N^2 k`` flops. Since ``J J^T = R^T R``,
    the singular values of ``R``, computed by LAPACK ``dgejsv`` (one-sided
    Jacobi), are the square roots of the eigenvalues of ``Theta``.

The blocks come from one of two sources (:data:`SOURCES`):

``layers`` (the default)
    Blocks of a smaller matrix ``M`` with ``J^T = Z M^T`` and ``Z^T Z = I``,
    which therefore has the same ``R``. Take ``delta[l]`` and ``A[l-1]`` as in
    :mod:`ntk_np.network`, their rows ``delta_i`` and ``a_i`` for sample
    ``i``, and thin QR factorisations ``delta[l]^T = Q1 R1`` and
    ``A[l-1]^T = Q2 R2`` with columns ``r1_i`` and ``r2_i``. The weight
    gradient of sample ``i`` in layer ``l`` is then
    ``c_l delta_i kron a_i = (Q1 kron Q2) (c_l r1_i kron r2_i)`` and its bias
    gradient is ``delta_i = Q1 r1_i``, where ``Q1 kron Q2`` has orthonormal
    columns. A layer thus gives ``M`` ``m1 (m2 + 1)`` columns,
    with ``m1 = min(n_l, N)`` and ``m2 = min(n_{l-1}, N)``, in place of the
    ``n_l (n_{l-1} + 1)`` columns of ``J``: 40,200 in place of 1,001,000 for
    a layer of width 1000 after one of width 1000, with N = 200. ``R1^T`` and
    ``R2^T`` are lower trapezoidal, so the column ``r1[:, p] * r2[:, q]`` of
    ``M`` is zero above row ``max(p, q)``. Each column is folded into the
    trailing part of ``R`` below its first nonzero row, in about a sixth of
    the flops of folding full columns.
``jacobian``
    The columns of ``J`` itself from :func:`ntk_np.kernel.jacobian_blocks`,
    within the same memory budget as the ``jacobian`` kernel route and with
    twice the flops of its ``dsyrk`` update.

Error bound of the ``qr`` route
-------------------------------
Write ``G = J^T`` (P x N). Its column ``g_j`` is the parameter gradient of
sample ``j``. Every step applies orthogonal transformations to the columns of
``G`` in floating point, so the computed singular values ``s_i`` are taken to
be the exact singular values of ``G + E`` with a columnwise backward error::

    ||E e_j|| <= gamma ||g_j||  for every j,   gamma = (sqrt(N P) + N) eps

The worst-case rounding analysis of Householder QR gives a bound of this form
with a constant that grows like ``N P eps``. ``gamma`` takes its square root,
the usual estimate when rounding errors have random signs, and adds ``N eps``
for ``dgejsv``. The ``layers`` source also factors ``delta[l]^T`` and
``A[l-1]^T``, with errors of the same columnwise form over ``n_l`` rows.
Relative errors ``e1`` in ``delta_i`` and ``e2`` in ``a_i`` change
``delta_i kron a_i`` by at most ``e1 + e2 + e1 e2`` relative to its norm, and
``gamma`` is not enlarged for them. It is an estimate, not a proof: the tests
compare it with errors measured against 40-digit references for both sources.
Two bounds follow:

1. Weyl's inequality gives ``|s_i - sigma_i| <= ||E||_2 <= gamma ||J||_F``.
2. Write ``G = B D`` with ``D = diag(||g_j||)``. If ``B`` has full rank, then
   ``G + E = (I + E D^-1 B^+) G``, so ``|s_i - sigma_i| <= eta sigma_i`` with
   ``eta = gamma sqrt(N) / sigma_min(B)``.

The second bound is the sharper one when the rows of ``J`` differ greatly in
norm but ``B`` is well conditioned. One-sided Jacobi keeps this relative
accuracy, whereas a bidiagonal SVD of ``R`` (LAPACK ``dgesdd``, as in
``scipy.linalg.svdvals``) has an absolute error of about ``eps * sigma_max`` in
every singular value, which is why ``dgejsv`` is used. In NTK Jacobians the rows
have similar norms, so the first bound is usually the one that applies.

With ``delta_i = min(gamma ||J||_F, eta s_i / (1 - eta))`` (the second term
only for ``eta < 1``) the bound on ``lambda_i = s_i^2`` is::

    |s_i^2 - sigma_i^2| <= delta_i (2 s_i + delta_i)

A value is resolved when it exceeds its bound.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np
from scipy.linalg import LinAlgError
from scipy.linalg.lapack import dgejsv, dgeqrf, dtpqrt
from threadpoolctl import threadpool_limits

from .choices import CERTIFY_POLICIES
from .kernel import (
    DEFAULT_MEMORY_BUDGET,
    MemoryBudgetError,
    _backward_over_slopes,
    jacobian_blocks,
    jacobian_memory_needed,
)
from .network import Network, check_inputs, forward
from .spectrum import EPS, Spectrum

logger = logging.getLogger(__name__)

LAMBDA_MIN_METHODS: tuple[str, ...] = ("eigh", "qr")
"""Names of the routes that produce a ``lambda_min``."""

SOURCES: tuple[str, ...] = ("layers", "jacobian")
"""Sources of the blocks that the ``qr`` route folds into ``R``."""

# Block size NB of dtpqrt and dgeqrf. On N = 200, NB = 16, 32 and 64 ran at the
# same speed within the noise of a shared 2-core machine.
_PANEL_COLUMNS = 32
_TARGET_BLOCK_BYTES = 1 << 23  # 8 MiB blocks, as in ntk_np.kernel

# dgejsv job codes in SciPy's wrapper: JOBA 'C' (relative accuracy for column
# scaling), JOBU and JOBV 'N' (no singular vectors), JOBR 'R' (only values
# below sqrt(underflow) are set to zero), JOBT and JOBP 'N'.
_JOBA_COLUMNWISE = 0
_NO_VECTORS = 3


@dataclass(frozen=True, eq=False)
class CertifiedEigenvalue:
    """The smallest eigenvalue of a kernel with its route and error bound.

    Attributes
    ----------
    value : float
        ``lambda_min``.
    bound : float
        Absolute error bound on ``value``: the resolution floor
        ``N * eps * lambda_max`` for ``eigh``, the bound of the module
        docstring for ``qr``.
    method : {'eigh', 'qr'}
        The route that computed ``value``.
    singular_values : ndarray of shape (N,) or None
        Singular values of ``J``, descending (``qr`` only).
    singular_value_bounds : ndarray of shape (N,) or None
        Absolute error bound on each singular value (``qr`` only).
    """

    value: float
    bound: float
    method: str
    singular_values: np.ndarray | None = None
    singular_value_bounds: np.ndarray | None = None

    @property
    def resolved(self) -> bool:
        """True if ``value`` exceeds its bound, so it is a measurement."""
        return bool(self.value > self.bound)

    @property
    def eigenvalues(self) -> np.ndarray | None:
        """All eigenvalues of the kernel, ascending, from the ``qr`` route."""
        if self.singular_values is None:
            return None
        return self.singular_values[::-1] ** 2

    def format(self) -> str:
        """Return the value as text, such as ``1.2e-10 +- 3e-15 (qr)``."""
        if not self.resolved:
            return f"<{self.bound:.3g} (unresolved, {self.method})"
        return f"{self.value:.6g} +- {self.bound:.2g} ({self.method})"


def _check_policy(policy: str) -> str:
    if policy not in CERTIFY_POLICIES:
        raise ValueError(
            f"unknown certify policy {policy!r}; expected one of "
            + ", ".join(CERTIFY_POLICIES)
        )
    return policy


def triangular_factor(
    blocks: Iterable[np.ndarray], overwrite_blocks: bool = False
) -> np.ndarray:
    """Compute the triangular factor ``R`` of ``J^T = Q R`` from blocks of ``J``.

    Each block ``B`` is folded in with LAPACK ``dtpqrt``, which factors
    ``[R; B^T]`` and keeps only the new ``R``. Only ``R`` and one block are
    held at a time. LAPACK runs with one BLAS thread: with OpenBLAS threads on
    two cores that other processes also used, ``dtpqrt`` ran about 20 times
    slower (N = 200, blocks of 5242 columns).

    Parameters
    ----------
    blocks : iterable of ndarray of shape (N, k)
        Consecutive column blocks of ``J`` (``k`` may vary). C-contiguous
        float64 blocks are read without a copy.
    overwrite_blocks : bool, default=False
        Let LAPACK overwrite each block with Householder vectors, which saves
        one copy per block. :func:`ntk_np.kernel.jacobian_blocks` refills its
        buffer for each block, so its blocks may be overwritten.

    Returns
    -------
    R : ndarray of shape (N, N)
        Upper triangular and Fortran-ordered, with ``R^T R = J J^T``. The
        signs of its rows are arbitrary.

    Raises
    ------
    ValueError
        If there are no blocks, a block is not 2-D, the blocks differ in
        their number of rows, or they contain NaN or infinite values.
    LinAlgError
        If LAPACK ``dtpqrt`` reports an invalid argument.
    """
    with threadpool_limits(1, user_api="blas"):
        R = _fold_blocks(blocks, overwrite_blocks)
    if R is None:
        raise ValueError("blocks must contain at least one block of J")
    if not np.all(np.isfinite(R)):
        raise ValueError("blocks contain NaN or infinite values")
    return R


def _fold_blocks(blocks, overwrite_blocks):
    R = None
    for index, block in enumerate(blocks):
        block = np.asarray(block, dtype=np.float64)
        if block.ndim != 2 or block.shape[0] < 1:
            raise ValueError(
                f"blocks[{index}] must be a 2-D array with at least one row, "
                f"got shape {block.shape}"
            )
        if R is None:
            R = np.zeros((block.shape[0],) * 2, order="F")
        elif block.shape[0] != R.shape[0]:
            raise ValueError(
                f"blocks[{index}] has {block.shape[0]} rows, but blocks[0] has "
                f"{R.shape[0]}; all blocks of J must have N rows"
            )
        if block.shape[1] == 0:
            continue
        # block.T is Fortran-ordered, so dtpqrt reads it without a copy.
        panel = min(_PANEL_COLUMNS, R.shape[0])
        R, _, _, info = dtpqrt(
            0, panel, R, block.T, overwrite_a=1, overwrite_b=int(overwrite_blocks)
        )
        if info != 0:
            raise LinAlgError(f"dtpqrt failed with info={info}")
    return R


def _jacobi_singular_values(A: np.ndarray) -> np.ndarray:
    """Return the singular values of a square matrix by ``dgejsv``, descending.

    ``A`` is overwritten. LAPACK runs with one BLAS thread, as in
    :func:`triangular_factor`.
    """
    with threadpool_limits(1, user_api="blas"):
        sva, _, _, work, iwork, info = dgejsv(
            A,
            joba=_JOBA_COLUMNWISE,
            jobu=_NO_VECTORS,
            jobv=_NO_VECTORS,
            jobr=1,
            jobt=0,
            jobp=0,
            overwrite_a=1,
        )
    if info != 0:
        raise LinAlgError(f"dgejsv failed with info={info}")
    if iwork[0] < A.shape[1]:
        logger.debug(
            "dgejsv set %d singular values below sqrt(underflow) to zero",
            A.shape[1] - iwork[0],
        )
    # The singular values are (WORK(1) / WORK(2)) * SVA. The factor differs from
    # 1 only when they would overflow or underflow.
    return sva * (work[0] / work[1])


def backward_error_constant(n_samples: int, n_columns: int) -> float:
    """Return ``gamma = (sqrt(N P) + N) * eps``, the columnwise backward error.

    See the module docstring: ``gamma`` is an estimate for the ``qr`` route on a
    Jacobian of ``N`` rows and ``P`` columns.
    """
    return (math.sqrt(n_samples * n_columns) + n_samples) * EPS


def singular_values_with_bounds(
    R: np.ndarray, n_columns: int
) -> tuple[np.ndarray, np.ndarray]:
    """Compute the singular values of ``J`` from ``R`` and bound their errors.

    Parameters
    ----------
    R : ndarray of shape (N, N)
        Triangular factor of ``J^T``, from :func:`triangular_factor`.
    n_columns : int
        Number of columns P of ``J``, at least 1; it sets the constant of the
        bound.

    Returns
    -------
    singular_values : ndarray of shape (N,)
        Descending.
    bounds : ndarray of shape (N,)
        Absolute error bound on each singular value (see the module docstring).

    Raises
    ------
    ValueError
        If ``R`` is not square or ``n_columns`` is below 1.
    LinAlgError
        If LAPACK ``dgejsv`` reports a failure.
    """
    R = np.asarray(R, dtype=np.float64)
    if R.ndim != 2 or R.shape[0] != R.shape[1] or R.shape[0] == 0:
        raise ValueError(f"R must be a non-empty square matrix, got shape {R.shape}")
    if n_columns < 1:
        raise ValueError(f"n_columns must be at least 1, got {n_columns}")
    n = R.shape[0]
    gamma = backward_error_constant(n, n_columns)
    column_norms = np.linalg.norm(R, axis=0)
    frobenius = float(np.linalg.norm(column_norms))

    singular_values = _jacobi_singular_values(np.array(R, order="F"))
    bounds = np.full(n, gamma * frobenius)

    # The relative bound needs sigma_min(B) of the column-equilibrated factor,
    # less the change that E and the rounding of R / D can make to it.
    if np.all(column_norms > 0):
        equilibrated = np.asfortranarray(R / column_norms)
        sigma_b = _jacobi_singular_values(equilibrated)[-1] - 3 * gamma * np.sqrt(n)
        if sigma_b > 0:
            eta = gamma * np.sqrt(n) / sigma_b
            if eta < 1:
                relative = eta * singular_values / (1 - eta)
                bounds = np.minimum(bounds, relative)
    return singular_values, bounds


def eigenvalue_bound(singular_value: float, bound: float) -> float:
    """Return ``delta (2 s + delta)``, which bounds ``|s^2 - sigma^2|``.

    ``s`` is a computed singular value and ``delta`` bounds ``|s - sigma|``.
    """
    return bound * (2 * singular_value + bound)


def _row_factor(M: np.ndarray) -> np.ndarray:
    """Return the triangular factor of ``M^T``, (min(m, N), N) for ``M`` (N, m)."""
    n = M.shape[0]
    qr, _, _, info = dgeqrf(M.T, lwork=max(1, _PANEL_COLUMNS * n))
    if info != 0:
        raise LinAlgError(f"dgeqrf failed with info={info}")
    return np.triu(qr[: min(M.shape)])


def _layer_factor_reserved(n: int, sizes) -> int:
    # Layer inputs and deltas, dgeqrf's copy, R1 and R2, R and dgejsv's workspace.
    reserved = 8 * n * (sum(sizes[:-1]) + sum(sizes[1:]))
    reserved += 8 * n * (max(sizes) + 2 * n)
    return reserved + 4 * n * n * 8


def qr_memory_needed(n_samples: int, layer_sizes, source: str = "layers") -> int:
    """Return the smallest ``memory_budget``, in bytes, of the ``qr`` route.

    ``layer_sizes`` is ``(n_0, n_1, ..., n_D)`` as ``Network.layer_sizes``.
    """
    if source == "jacobian":
        return jacobian_memory_needed(n_samples, layer_sizes)
    min_columns = max(min(size, n_samples) for size in layer_sizes[:-1])
    return _layer_factor_reserved(n_samples, layer_sizes) + 8 * n_samples * min_columns


def check_memory_budget(
    memory_budget: int,
    n_samples: int,
    layer_sizes,
    method: str = "layerwise",
    certify: str = "auto",
) -> None:
    """Check that a kernel's routes fit in ``memory_budget`` before any work.

    The ``jacobian`` kernel route is checked when ``method`` is
    ``'jacobian'``, and the ``qr`` route unless ``certify`` is ``'never'``
    (under ``'auto'`` the route may turn out not to be needed).

    Raises
    ------
    MemoryBudgetError
        Naming the route, the network and the bytes needed.
    """
    width = max(layer_sizes[1:-1], default=0)
    depth = len(layer_sizes) - 1
    needs = []
    if method == "jacobian":
        needs.append(
            ("jacobian kernel", jacobian_memory_needed(n_samples, layer_sizes))
        )
    if certify != "never":
        needs.append(("QR", qr_memory_needed(n_samples, layer_sizes)))
    for route, need in needs:
        if memory_budget < need:
            raise MemoryBudgetError(
                f"memory budget of {memory_budget} bytes "
                f"({memory_budget / 2**20:.3g} MiB) is too small for the {route} "
                f"route at width {width}, depth {depth} and N={n_samples}; at "
                f"least {need} bytes ({need / 2**20:.3g} MiB) are needed"
            )


def layer_factor_blocks(
    network: Network,
    X,
    memory_budget: int = DEFAULT_MEMORY_BUDGET,
    block_columns: int | None = None,
) -> Iterator[np.ndarray]:
    """Yield column blocks of ``M``, a matrix with the triangular factor of ``J``.

    ``M`` is the compressed Jacobian of the ``layers`` source in the module
    docstring: ``J J^T = M M^T``, with at most ``min(n_l, N) * (min(n_{l-1},
    N) + 1)`` columns for layer ``l``.

    Parameters
    ----------
    network : Network
    X : array_like of shape (N, n_0)
    memory_budget : int, default=1 GiB
        Bytes for one block, the forward and backward pass, the factors of one
        layer and four (N, N) matrices.
    block_columns : int, optional
        Columns per block, at least ``min(n_{l-1}, N)`` of every layer; by
        default about 8 MiB of block, within the budget.

    Yields
    ------
    block : ndarray of shape (N, k)
        C-contiguous. The blocks share one buffer, so each is valid only until
        the next is requested.

    Raises
    ------
    ValueError
        If the budget cannot hold a block of ``min(n_{l-1}, N)`` columns next
        to the forward pass.
    """
    n = np.shape(X)[0]
    min_columns = max(min(size, n) for size in network.layer_sizes[:-1])
    max_columns = (memory_budget - _layer_factor_reserved(n, network.layer_sizes)) // (
        8 * n
    )
    if block_columns is None:
        block_columns = _TARGET_BLOCK_BYTES // (8 * n)
    block_columns = int(max(min_columns, min(block_columns, max_columns)))
    buffer = None
    for r1, r2 in _layer_factors(network, X, memory_budget):
        if buffer is None:
            buffer = np.empty(n * block_columns)
        m1, m2 = r1.shape[1], r2.shape[1]
        step = block_columns // m2
        for p in range(0, m1, step):
            rows = min(step, m1 - p)
            block = buffer[: n * rows * m2].reshape(n, rows, m2)
            # Sample i's weight columns r1[i, p] * c_l r2[i, :] for these p.
            np.multiply(r1[:, p : p + rows, None], r2[:, None, :], out=block)
            yield block.reshape(n, rows * m2)
        bias = buffer[: n * m1].reshape(n, m1)
        np.copyto(bias, r1)
        yield bias
        del r1, r2  # free this layer's factors before the next are computed


def _layer_factors(network: Network, X, memory_budget: int):
    """Yield ``(R1, c R2)`` for each layer: the factors of ``delta`` and ``x``.

    ``R1`` is the transposed triangular factor of the layer's deltas, (N, m1),
    and ``R2`` that of its inputs, (N, m2), scaled by the layer's multiplier.
    Both are lower trapezoidal: row ``i`` has entries in columns ``0 .. i``
    only. Raises MemoryBudgetError before any work if the budget cannot hold
    the forward pass, one layer's factors and a block of ``max m2`` columns.
    """
    X = check_inputs(network, X)
    n = X.shape[0]
    sizes = network.layer_sizes
    # One block must hold a row of R1 times all rows of R2.
    min_columns = max(min(size, n) for size in sizes[:-1])
    max_columns = (memory_budget - _layer_factor_reserved(n, sizes)) // (8 * n)
    if max_columns < min_columns:
        need = qr_memory_needed(n, sizes)
        raise MemoryBudgetError(
            f"memory_budget={memory_budget} bytes is too small for N={n} samples "
            f"of this network; at least {need} bytes are needed"
        )
    passed = forward(network, X)
    A = passed.A
    # The deltas overwrite the activation slopes, which share one buffer with
    # the layer outputs and so could not be freed on their own.
    delta = _backward_over_slopes(network.weights, network.multipliers, passed.S)
    del passed
    for l in range(1, network.depth + 1):
        r1 = _row_factor(delta[l]).T
        r2 = _row_factor(A[l - 1]).T
        r2 *= network.multipliers[l - 1]
        yield r1, r2


def _staircase_blocks(r1: np.ndarray, r2: np.ndarray):
    """Yield ``(s, B)``: the columns of one layer's ``M`` grouped by first row.

    Column ``(p, q)`` of ``M``, ``r1[:, p] * r2[:, q]``, is zero above row
    ``max(p, q)`` because both factors are lower trapezoidal, and bias column
    ``p``, ``r1[:, p]``, is zero above row ``p``. ``B`` contains rows ``s ..
    N-1`` of every column whose first possibly nonzero row is ``s``.
    """
    m1, m2 = r1.shape[1], r2.shape[1]
    for s in range(max(m1, m2)):
        parts = []
        if s < m1:
            # Columns (s, q) for q <= s, and the bias column s.
            parts.append(r1[s:, s, None] * r2[s:, : min(s + 1, m2)])
            parts.append(r1[s:, s, None])
        if s < m2 and min(s, m1) > 0:
            # Columns (p, s) for p < s.
            parts.append(r1[s:, : min(s, m1)] * r2[s:, s, None])
        yield s, np.hstack(parts)


_MIN_GROUP_COLUMNS = 400


def _grouped(staircase, n: int):
    """Merge consecutive staircase blocks until each has enough columns.

    One ``dtpqrt`` call on a few dozen columns runs far below the rate of a
    wide one. A merged block starts at the first row of its first part, and
    the later parts are padded with zeros above their own first row.
    """
    group: list = []
    columns = 0
    for s, block in staircase:
        group.append((s, block))
        columns += block.shape[1]
        if columns >= _MIN_GROUP_COLUMNS:
            yield _merge(group, n)
            group, columns = [], 0
    if group:
        yield _merge(group, n)


def _merge(group, n: int):
    start = group[0][0]
    if len(group) == 1:
        return group[0]
    merged = np.zeros((n - start, sum(b.shape[1] for _, b in group)))
    column = 0
    for s, block in group:
        merged[s - start :, column : column + block.shape[1]] = block
        column += block.shape[1]
    return start, merged


def _fold_layer_factors(network: Network, X, memory_budget: int) -> np.ndarray:
    """Return ``R`` with ``R^T R = J J^T`` from the staircase blocks of ``M``.

    A block whose rows above ``s`` are zero changes only ``R[s:, s:]``: the
    Householder reflections of the first ``s`` columns are identities, in
    floating point too. Folding it into that trailing part alone takes about a
    sixth of the operations of folding full columns.
    """
    R = None
    with threadpool_limits(1, user_api="blas"):
        for r1, r2 in _layer_factors(network, X, memory_budget):
            n = r1.shape[0]
            if R is None:
                R = np.zeros((n, n), order="F")
            for s, block in _grouped(_staircase_blocks(r1, r2), n):
                trailing = np.asfortranarray(R[s:, s:])
                panel = min(_PANEL_COLUMNS, n - s)
                trailing, _, _, info = dtpqrt(
                    0, panel, trailing, block.T, overwrite_a=1, overwrite_b=1
                )
                if info != 0:
                    raise LinAlgError(f"dtpqrt failed with info={info}")
                R[s:, s:] = trailing
    if not np.all(np.isfinite(R)):
        raise ValueError("the layer factors contain NaN or infinite values")
    return R


def jacobian_singular_values(
    network: Network,
    X,
    memory_budget: int = DEFAULT_MEMORY_BUDGET,
    block_columns: int | None = None,
    source: str = "layers",
) -> tuple[np.ndarray, np.ndarray]:
    """Compute the singular values of the Jacobian ``J`` with error bounds.

    ``J``, or the compressed ``M`` of the ``layers`` source, is folded into its
    triangular factor in column blocks and never held whole (see
    :func:`triangular_factor`).

    Parameters
    ----------
    network : Network
    X : array_like of shape (N, n_0)
    memory_budget : int, default=1 GiB
        Bytes for one block, the forward and backward pass and four (N, N)
        matrices, as for :func:`ntk_np.kernel.jacobian_ntk`.
    block_columns : int, optional
        Columns per block of ``J`` for ``source='jacobian'``; by default about
        8 MiB of block, within the budget. The ``layers`` source folds blocks
        of its own, far smaller.
    source : {'layers', 'jacobian'}, default='layers'
        ``layers`` folds the compressed matrix of :func:`layer_factor_blocks`;
        ``jacobian`` folds the columns of ``J`` from
        :func:`ntk_np.kernel.jacobian_blocks`. Both give the same values to
        within the bounds, and ``layers`` needs far fewer flops for layers
        wider than N.

    Returns
    -------
    singular_values : ndarray of shape (N,)
        Descending; their squares are the eigenvalues of ``Theta = J J^T``.
    bounds : ndarray of shape (N,)
        Absolute error bound on each singular value.

    Raises
    ------
    ValueError
        If ``X`` does not fit the network, the budget cannot hold one block,
        or ``source`` is unknown.
    """
    X = check_inputs(network, X)
    if source == "layers":
        R = _fold_layer_factors(network, X, memory_budget)
    elif source == "jacobian":
        blocks = jacobian_blocks(network, X, memory_budget, block_columns)
        R = triangular_factor(blocks, overwrite_blocks=True)
    else:
        raise ValueError(
            f"unknown source {source!r}; expected one of " + ", ".join(SOURCES)
        )
    return singular_values_with_bounds(R, network.n_params)


def certified_lambda_min(
    network: Network,
    X,
    memory_budget: int = DEFAULT_MEMORY_BUDGET,
    block_columns: int | None = None,
    source: str = "layers",
) -> CertifiedEigenvalue:
    """Compute ``lambda_min`` of the empirical NTK by the ``qr`` route.

    Parameters
    ----------
    network : Network
    X : array_like of shape (N, n_0)
    memory_budget : int, default=1 GiB
        As for :func:`jacobian_singular_values`.
    block_columns : int, optional
        Columns per block of ``J`` for ``source='jacobian'``.
    source : {'layers', 'jacobian'}, default='layers'
        The blocks to fold, see :func:`jacobian_singular_values`.

    Returns
    -------
    CertifiedEigenvalue
        With ``method='qr'`` and all singular values of ``J``.

    Examples
    --------
    >>> import ntk_np
    >>> X, y = ntk_np.load_sample(n_per_class=5)
    >>> net = ntk_np.make_network(width=50, depth=3, activation="relu")
    >>> ntk_np.certified_lambda_min(net, X).resolved
    True
    """
    start = time.perf_counter()
    singular_values, bounds = jacobian_singular_values(
        network, X, memory_budget, block_columns, source
    )
    smallest = float(singular_values[-1])
    result = CertifiedEigenvalue(
        value=smallest**2,
        bound=eigenvalue_bound(smallest, float(bounds[-1])),
        method="qr",
        singular_values=singular_values,
        singular_value_bounds=bounds,
    )
    logger.debug(
        "qr route (%s) for %s, N=%d, P=%d: lambda_min %s in %.2f s",
        source,
        network.describe(),
        len(singular_values),
        network.n_params,
        result.format(),
        time.perf_counter() - start,
    )
    return result


def eigh_lambda_min(spectrum: Spectrum) -> CertifiedEigenvalue:
    """Return the ``eigh`` route's ``lambda_min`` with its resolution floor."""
    return CertifiedEigenvalue(
        value=spectrum.lambda_min,
        bound=spectrum.resolution_floor,
        method="eigh",
    )


def qr_needed(spectrum: Spectrum, policy: str) -> bool:
    """Return True if ``policy`` calls for the ``qr`` route on this spectrum.

    Raises
    ------
    ValueError
        For a policy not in :data:`CERTIFY_POLICIES`.
    """
    _check_policy(policy)
    if policy == "auto":
        return spectrum.below_floor
    return policy == "always"


def certify_lambda_min(
    spectrum: Spectrum,
    network: Network,
    X,
    policy: str = "auto",
    memory_budget: int = DEFAULT_MEMORY_BUDGET,
    block_columns: int | None = None,
    source: str = "layers",
) -> CertifiedEigenvalue:
    """Choose the ``eigh`` or ``qr`` route for ``lambda_min`` under a policy.

    Parameters
    ----------
    spectrum : Spectrum
        The ``eigh`` spectrum of the kernel of ``network`` on ``X``.
    network : Network
    X : array_like of shape (N, n_0)
    policy : {'never', 'auto', 'always'}, default='auto'
        ``never`` keeps the ``eigh`` value; ``auto`` runs the ``qr`` route only
        when the ``eigh`` value is at or below its resolution floor;
        ``always`` runs it for every kernel.
    memory_budget : int, default=1 GiB
        As for :func:`jacobian_singular_values`.
    block_columns : int, optional
        Columns per block of ``J`` for ``source='jacobian'``.
    source : {'layers', 'jacobian'}, default='layers'
        The blocks to fold, see :func:`jacobian_singular_values`.

    Returns
    -------
    CertifiedEigenvalue

    Raises
    ------
    ValueError
        For an unknown policy, or a spectrum whose size is not the number of
        samples in ``X``.
    """
    run_qr = qr_needed(spectrum, policy)
    n_samples = np.shape(X)[0]
    if spectrum.eigenvalues.shape != (n_samples,):
        raise ValueError(
            f"spectrum has {spectrum.eigenvalues.size} eigenvalues, but X has "
            f"{n_samples} samples; pass the spectrum of this network's kernel on X"
        )
    if not run_qr:
        return eigh_lambda_min(spectrum)
    return certified_lambda_min(network, X, memory_budget, block_columns, source)
