"""One network up close: its kernel, spectrum and trace by layer.

:func:`inspect_network` computes them and :func:`write_inspection` writes them
to a folder; the command ``python -m ntk_np.inspect`` runs both.

The trace by layer follows from the layerwise identity of :mod:`ntk_np.kernel`.
The diagonal of ``c_l^2 (delta[l] delta[l]^T) o (A[l-1] A[l-1]^T)`` is
``c_l^2 |delta_i|^2 |a_i|^2``, and that of ``delta[l] delta[l]^T`` is
``|delta_i|^2``, so each layer's part of the trace costs one forward and one
backward pass and no Gram matrix.
"""

from __future__ import annotations

import csv
import logging
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .choices import DEFAULT_MEMORY_BUDGET
from .cli import UsageError
from .kernel import empirical_ntk
from .network import Network, backward, forward
from .report import FigureFile, write_inspection_report
from .spectrum import Spectrum, kernel_spectrum

logger = logging.getLogger(__name__)


@dataclass(frozen=True, eq=False)
class TraceShares:
    """The trace of an empirical NTK split by layer and parameter kind.

    Attributes
    ----------
    weights : ndarray of shape (D,)
        ``weights[l-1]`` is the trace of the kernel restricted to ``W(l)``:
        ``c_l^2 * sum_i |delta_i|^2 |a_i|^2``.
    biases : ndarray of shape (D,)
        ``biases[l-1]`` is the trace restricted to ``b(l)``:
        ``sum_i |delta_i|^2``.
    n_weights, n_biases : tuple of int
        Number of parameters in each ``W(l)`` and ``b(l)``.
    """

    weights: np.ndarray
    biases: np.ndarray
    n_weights: tuple[int, ...]
    n_biases: tuple[int, ...]

    @property
    def total(self) -> float:
        """The trace of the whole kernel."""
        return float(self.weights.sum() + self.biases.sum())

    def rows(self) -> list[dict]:
        """Return one dict per layer and parameter kind, weights first.

        Keys: ``layer`` (1-based), ``parameter`` (``'weight'`` or ``'bias'``),
        ``n_params``, ``trace_contribution`` and ``share`` (fraction of the
        total trace).
        """
        total = self.total
        out = []
        for l in range(len(self.weights)):
            for kind, values, counts in (
                ("weight", self.weights, self.n_weights),
                ("bias", self.biases, self.n_biases),
            ):
                out.append(
                    {
                        "layer": l + 1,
                        "parameter": kind,
                        "n_params": counts[l],
                        "trace_contribution": float(values[l]),
                        "share": float(values[l]) / total,
                    }
                )
        return out


def kernel_trace_shares(network: Network, X) -> TraceShares:
    """Split the trace of the empirical NTK by layer, weights and biases.

    Parameters
    ----------
    network : Network
    X : array_like of shape (N, n_0)
        Inputs; converted to float64.

    Returns
    -------
    TraceShares
        Its ``total`` equals ``np.trace(empirical_ntk(network, X))`` to
        rounding.
    """
    passed = forward(network, X)
    delta = backward(network, passed)
    depth = network.depth
    weights = np.empty(depth)
    biases = np.empty(depth)
    for l in range(1, depth + 1):
        delta_sq = np.einsum("ij,ij->i", delta[l], delta[l])
        a = passed.A[l - 1]
        a_sq = np.einsum("ij,ij->i", a, a)
        c = network.multipliers[l - 1]
        weights[l - 1] = c * c * np.dot(delta_sq, a_sq)
        biases[l - 1] = delta_sq.sum()
    return TraceShares(
        weights=weights,
        biases=biases,
        n_weights=tuple(W.size for W in network.weights),
        n_biases=tuple(b.size for b in network.biases),
    )


@dataclass(eq=False)
class InspectResult:
    """Everything :func:`inspect_network` computes for one network.

    Attributes
    ----------
    network : Network
    theta : ndarray of shape (N, N)
        The empirical NTK.
    spectrum : Spectrum
        Its eigenvalues and resolution floor.
    shares : TraceShares
        Its trace by layer.
    y : ndarray of shape (N,) or None
        Targets of the samples, used to mark the class blocks.
    class_names : tuple of str or None
        Names of the classes with targets 0 and 1, if known.
    method : str
        The kernel route.
    data_source : str or None
        Description of the data.
    seconds : float
        Wall time of the computation.
    """

    network: Network
    theta: np.ndarray = field(repr=False)
    spectrum: Spectrum = field(repr=False)
    shares: TraceShares = field(repr=False)
    y: np.ndarray | None = field(default=None, repr=False)
    class_names: tuple[str, ...] | None = None
    method: str = "layerwise"
    data_source: str | None = None
    seconds: float = 0.0


def inspect_network(
    network: Network,
    X,
    y=None,
    method: str = "layerwise",
    class_names: Sequence[str] | None = None,
    data_source: str | None = None,
    memory_budget: int = DEFAULT_MEMORY_BUDGET,
) -> InspectResult:
    """Compute the kernel, spectrum and trace shares of one network.

    Parameters
    ----------
    network : Network
        From :func:`ntk_np.make_network`.
    X : array_like of shape (N, n_0)
        Inputs.
    y : array_like of shape (N,), optional
        Targets; the kernel image marks where consecutive samples change class.
    method : {'layerwise', 'jacobian'}, default='layerwise'
        The kernel route of :func:`ntk_np.empirical_ntk`.
    class_names : sequence of str, optional
        Names of the classes with targets 0 and 1, such as
        ``('T-shirt/top', 'Ankle boot')``.
    data_source : str, optional
        Description of the data, for the report.
    memory_budget : int, default=1 GiB
        Bytes for the ``jacobian`` route, as for :func:`ntk_np.empirical_ntk`.

    Returns
    -------
    InspectResult

    Raises
    ------
    ValueError
        If ``y`` does not have one value per row of ``X`` or ``method`` is
        unknown.
    """
    started = time.perf_counter()
    X = np.ascontiguousarray(X, dtype=np.float64)
    if y is not None:
        y = np.asarray(y, dtype=np.float64)
        if y.shape != (X.shape[0],):
            raise ValueError(
                f"y must have shape ({X.shape[0]},) to match X, got {y.shape}"
            )
    theta = empirical_ntk(network, X, method=method, memory_budget=memory_budget)
    spectrum = kernel_spectrum(theta)
    shares = kernel_trace_shares(network, X)
    return InspectResult(
        network=network,
        theta=theta,
        spectrum=spectrum,
        shares=shares,
        y=y,
        class_names=tuple(class_names) if class_names is not None else None,
        method=method,
        data_source=data_source,
        seconds=time.perf_counter() - started,
    )


def write_trace_shares(path: str | os.PathLike, shares: TraceShares) -> None:
    """Write :meth:`TraceShares.rows` to a CSV file, floats with full precision."""
    columns = ("layer", "parameter", "n_params", "trace_contribution", "share")
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        for row in shares.rows():
            writer.writerow(
                {k: repr(v) if isinstance(v, float) else v for k, v in row.items()}
            )


def write_eigenvalues(path: str | os.PathLike, spectrum: Spectrum) -> None:
    """Write the ascending eigenvalues to a CSV file with a below-floor flag."""
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(("index", "eigenvalue", "below_floor"))
        for index, value in enumerate(spectrum.eigenvalues):
            below = bool(value <= spectrum.resolution_floor)
            writer.writerow((index, repr(float(value)), str(below).lower()))


def write_inspection(
    result: InspectResult,
    out: str | os.PathLike,
    image_format: str = "png",
    lambda_min=None,
) -> tuple[list[FigureFile], Path]:
    """Write the figures, data files and report of an inspected network.

    Parameters
    ----------
    result : InspectResult
    out : path
        Output folder, created if missing. Files of an earlier run are replaced.
    image_format : {'png', 'pdf', 'svg'}, default='png'
    lambda_min : CertifiedEigenvalue, optional
        From :func:`ntk_np.certify.certify_lambda_min`; a value of the ``qr``
        route is reported next to the ``eigh`` one.

    Returns
    -------
    figures : list of FigureFile
    report : Path
        The ``report.md`` written.

    Raises
    ------
    UsageError
        If the folder cannot be created or a file cannot be written.
    """
    # matplotlib is imported only here, so that importing ntk_np does not load it.
    from .plot import write_inspection_figures

    out = Path(out)
    shares_path = out / "trace_shares.csv"
    eigen_path = out / "eigenvalues.csv"
    try:
        out.mkdir(parents=True, exist_ok=True)
        write_trace_shares(shares_path, result.shares)
        write_eigenvalues(eigen_path, result.spectrum)
        figures = write_inspection_figures(
            result, out / "figures", image_format, lambda_min
        )
        files = [eigen_path, shares_path]
        report = write_inspection_report(out, result, figures, files, lambda_min)
    except OSError as err:
        raise UsageError(f"failed to write into output folder {out}: {err}") from None
    return figures, report
