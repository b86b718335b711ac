"""Eigenvalues of a kernel matrix and how far they can be trusted.

A symmetric eigensolver returns the exact eigenvalues of a matrix within about
``N * eps * lambda_max`` of the one it was given, and forming ``Theta`` as a sum
of products carries rounding of the same order. A smallest eigenvalue under
that resolution floor is indistinguishable from rounding and may even come out
negative; :class:`Spectrum` flags it instead of reporting it as a measurement.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.linalg import eigh

EPS = float(np.finfo(np.float64).eps)


def resolution_floor(n_samples: int, lambda_max: float) -> float:
    """Return ``N * eps * |lambda_max|``, the smallest eigenvalue ``eigh`` resolves."""
    return n_samples * EPS * abs(lambda_max)


@dataclass(frozen=True, eq=False)
class Spectrum:
    """All eigenvalues of a kernel with their summary.

    Attributes
    ----------
    eigenvalues : ndarray of shape (N,)
        Ascending.
    lambda_min, lambda_max, trace : float
    resolution_floor : float
        ``N * eps * lambda_max``.
    """

    eigenvalues: np.ndarray
    lambda_min: float
    lambda_max: float
    trace: float
    resolution_floor: float

    @property
    def below_floor(self) -> bool:
        """True if ``lambda_min`` is not resolved (at or under the floor)."""
        return bool(self.lambda_min <= self.resolution_floor)

    @property
    def condition_number(self) -> float:
        """``lambda_max / lambda_min``, or inf when ``lambda_min`` is unresolved."""
        if self.below_floor:
            return float("inf")
        return self.lambda_max / self.lambda_min

    def format_lambda_min(self) -> str:
        """Return ``lambda_min`` as text, or ``< floor`` when it is unresolved."""
        if self.below_floor:
            return f"<{self.resolution_floor:.3g} (unresolved)"
        return f"{self.lambda_min:.6g}"


def kernel_spectrum(theta) -> Spectrum:
    """Compute all eigenvalues of a symmetric kernel with ``scipy.linalg.eigh``.

    Parameters
    ----------
    theta : array_like of shape (N, N)
        Symmetric; only its lower triangle is read.

    Returns
    -------
    Spectrum

    Raises
    ------
    ValueError
        If ``theta`` is not square or contains non-finite values.
    """
    theta = np.asarray(theta, dtype=np.float64)
    if theta.ndim != 2 or theta.shape[0] != theta.shape[1] or theta.shape[0] == 0:
        raise ValueError(f"theta must be a non-empty square matrix, got {theta.shape}")
    if not np.all(np.isfinite(theta)):
        raise ValueError("theta contains NaN or infinite values")
    eigenvalues = eigh(theta, eigvals_only=True, check_finite=False)
    lambda_max = float(eigenvalues[-1])
    return Spectrum(
        eigenvalues=eigenvalues,
        lambda_min=float(eigenvalues[0]),
        lambda_max=lambda_max,
        trace=float(np.trace(theta)),
        resolution_floor=resolution_floor(theta.shape[0], lambda_max),
    )
