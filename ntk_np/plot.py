"""Every figure of ntk_np, and the command that redraws a results folder.

``python -m ntk_np.plot DIR`` redraws the figures of a results folder written
by ``python -m ntk_np.sweep`` (see :mod:`ntk_np.results` for its layout) and
rewrites its ``report.md``, without computing any kernel. A training section
that ``python -m ntk_np.train`` added to the report is kept, and the training
figures are left as they are.

The module has numbered sections:

1. Style: :func:`figure_style`, the one set of rcParams every figure is drawn
   under, and :func:`new_figure` / :func:`save_figure`.
2. The smallest eigenvalue on a width-by-depth grid (:class:`LambdaMinGrid`),
   read from results rows of any number of seeds.
3. Sweep figures: heatmaps, ``lambda_min`` against width, spectra.
4. Figures of one network (:mod:`ntk_np.inspection`).
5. Drawing a whole results folder, and the command line.
6. Training figures (:mod:`ntk_np.training`).

A new figure function is decorated with ``@figure_style()``, builds its figure
with :func:`new_figure` and is saved with :func:`save_figure`.

Figures are :class:`matplotlib.figure.Figure` objects on an Agg canvas, not
pyplot figures, so drawing changes no global matplotlib state and needs no
display. Eigenvalues are dimensionless, because the network output and its
parameters are plain numbers, and every caption states it.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import zipfile
from collections.abc import Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import matplotlib
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import CenteredNorm, LogNorm, Normalize
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch, Rectangle

from . import results as res
from .cli import (
    HelpFormatter,
    UsageError,
    _Parser,
    add_logging_options,
    configure_logging,
)
from .data import DataError
from .report import IMAGE_FORMATS, FigureFile, add_figure_options, write_sweep_report

# Not __name__, which is "__main__" under python -m ntk_np.plot.
logger = logging.getLogger("ntk_np.plot")

# ---------------------------------------------------------------------------
# 1. Style
# ---------------------------------------------------------------------------

SINGLE_COLUMN = 3.4
"""Width in inches of a single-column figure in a two-column paper."""

DOUBLE_COLUMN = 7.0
"""Width in inches of a figure spanning both columns."""

DPI = 300
"""Resolution of PNG files, in dots per inch."""

STYLE: dict = {
    "font.size": 8,
    "axes.titlesize": 8,
    "axes.labelsize": 8,
    "figure.titlesize": 9,
    "xtick.labelsize": 7,
    "ytick.labelsize": 7,
    "legend.fontsize": 7,
    "legend.title_fontsize": 7,
    "axes.linewidth": 0.6,
    "xtick.major.width": 0.6,
    "ytick.major.width": 0.6,
    "xtick.minor.width": 0.4,
    "ytick.minor.width": 0.4,
    "lines.linewidth": 1.0,
    "lines.markersize": 3,
    "hatch.linewidth": 0.6,
    "legend.frameon": False,
    "image.cmap": "viridis",
    "savefig.dpi": DPI,
    "pdf.fonttype": 42,
    "svg.fonttype": "none",
    # SVG element ids derive from a random UUID by default. A fixed salt makes
    # them, and so the files, the same on every redraw.
    "svg.hashsalt": "ntk_np",
}
"""rcParams of every figure: 7-9 pt text, readable at :data:`SINGLE_COLUMN`."""

HATCH = "/////"
HATCH_COLOR = "0.35"
MISSING_COLOR = "0.85"
HIGHLIGHT_COLOR = "#d62728"

ACTIVATION_LABELS = {
    "relu": "ReLU",
    "elu": "ELU",
    "leaky_relu": "Leaky ReLU",
    "sigmoid": "Sigmoid",
}

LAMBDA_MIN = r"$\lambda_{\min}$"


@contextmanager
def figure_style():
    """Apply :data:`STYLE` while a figure is built or saved.

    Use it as a context manager or, as the figure functions here do, as a
    decorator: ``@figure_style()``.
    """
    with matplotlib.rc_context(STYLE):
        yield


def new_figure(
    width: float, height: float, nrows: int = 1, ncols: int = 1, **subplot_kw
) -> tuple[Figure, np.ndarray]:
    """Create a figure on an Agg canvas with a grid of axes.

    Parameters
    ----------
    width, height : float
        Size in inches.
    nrows, ncols : int, default=1
    **subplot_kw
        Passed to :meth:`matplotlib.figure.Figure.subplots`.

    Returns
    -------
    fig : Figure
        Laid out with matplotlib's constrained layout.
    axes : ndarray of Axes of shape (nrows, ncols)
    """
    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(nrows, ncols, squeeze=False, **subplot_kw)
    return fig, axes


@figure_style()
def save_figure(
    fig: Figure, path: str | os.PathLike, caption: str, image_format: str = "png"
) -> FigureFile:
    """Save a figure with the suffix of ``image_format``; return its record.

    PNG files are written at :data:`DPI`. PDF and SVG files carry no creation
    date, so redrawing unchanged data gives identical files.

    Raises
    ------
    ValueError
        If ``image_format`` is not one of ``IMAGE_FORMATS``.
    """
    if image_format not in IMAGE_FORMATS:
        raise ValueError(
            f"image_format must be one of {', '.join(IMAGE_FORMATS)}, "
            f"got {image_format!r}"
        )
    path = Path(path).with_suffix("." + image_format)
    metadata = {"pdf": {"CreationDate": None}, "svg": {"Date": None}}
    fig.savefig(path, format=image_format, dpi=DPI, metadata=metadata.get(image_format))
    logger.debug("wrote %s", path)
    size = tuple(float(s) for s in fig.get_size_inches())
    return FigureFile(path=path, caption=caption, size=size)


def activation_label(name: str) -> str:
    """Return the display name of an activation, such as ``Leaky ReLU``."""
    return ACTIVATION_LABELS.get(name, name)


def _thin_ticks(axis, values: Sequence, max_labels: int) -> None:
    """Label categorical cells ``0 .. len(values)-1`` with at most ``max_labels``.

    Every k-th value is labelled, counted from the end, so the largest is
    always shown.
    """
    step = max(1, -(-len(values) // max_labels))
    positions = list(range(len(values) - 1, -1, -step))[::-1]
    axis.set_ticks(positions, [str(values[i]) for i in positions])


def _floor_marker_style(color) -> dict:
    # Unresolved values are drawn as open downward triangles at the floor,
    # meaning "somewhere below this".
    return {
        "marker": "v",
        "linestyle": "none",
        "markerfacecolor": "none",
        "markeredgecolor": color,
        "markeredgewidth": 0.7,
    }


# ---------------------------------------------------------------------------
# 2. The smallest eigenvalue on a width-by-depth grid
# ---------------------------------------------------------------------------


def row_unresolved(row: dict) -> bool:
    """Return True if a results row's ``lambda_min`` is not a measured value.

    A ``lambda_min`` at or under the error bound of the route that computed it
    (the ``below_floor`` column) is rounding noise, and is drawn hatched instead
    of coloured. The bound (``lambda_min_bound``) is the resolution floor
    ``N * eps * lambda_max`` for ``eigh`` and a far smaller one for the ``qr``
    route of :mod:`ntk_np.certify`.
    """
    return bool(row["below_floor"])


@dataclass(frozen=True, eq=False)
class LambdaMinGrid:
    """Smallest eigenvalues of one activation on a width-by-depth grid.

    Attributes
    ----------
    activation : str
    widths : tuple of int
        Column labels, ascending.
    depths : tuple of int
        Row labels, ascending.
    values : ndarray of shape (len(depths), len(widths))
        Mean ``lambda_min`` over seeds; NaN where no row exists.
    unresolved : ndarray of bool, same shape
        True where any seed's row is unresolved (:func:`row_unresolved`) or
        the mean is not positive, so no log-scale colour can show it.
    floors : ndarray, same shape
        Greatest error bound of ``lambda_min`` over seeds (the ``eigh``
        resolution floor or the ``qr`` bound); NaN where no row exists.
    n_seeds : ndarray of int, same shape
        Number of rows averaged; 0 where the grid point was not computed.
    """

    activation: str
    widths: tuple[int, ...]
    depths: tuple[int, ...]
    values: np.ndarray
    unresolved: np.ndarray
    floors: np.ndarray
    n_seeds: np.ndarray

    @property
    def computed(self) -> np.ndarray:
        """True where at least one row exists."""
        return self.n_seeds > 0

    @property
    def resolved(self) -> np.ndarray:
        """True where a mean ``lambda_min`` can be drawn as a colour."""
        return self.computed & ~self.unresolved

    @property
    def max_seeds(self) -> int:
        """Greatest number of seeds at any grid point."""
        return int(self.n_seeds.max()) if self.n_seeds.size else 0

    def best_cell(self) -> tuple[int, int] | None:
        """Return ``(row, column)`` of the greatest resolved value, if any."""
        if not self.resolved.any():
            return None
        masked = np.where(self.resolved, self.values, -np.inf)
        return tuple(int(i) for i in np.unravel_index(np.argmax(masked), masked.shape))


def lambda_min_grid(
    rows: Sequence[dict],
    activation: str,
    widths: Sequence[int] | None = None,
    depths: Sequence[int] | None = None,
) -> LambdaMinGrid:
    """Average ``lambda_min`` over seeds at each width and depth of an activation.

    Parameters
    ----------
    rows : sequence of dict
        Results rows (see :data:`ntk_np.results.COLUMNS`); rows of other
        activations are ignored.
    activation : str
    widths, depths : sequence of int, optional
        Grid labels; by default those found in the activation's rows. Grid
        points without rows are left empty (``n_seeds == 0``).

    Returns
    -------
    LambdaMinGrid
    """
    mine = [r for r in rows if r["activation"] == activation]
    if widths is None:
        widths = [r["width"] for r in mine]
    if depths is None:
        depths = [r["depth"] for r in mine]
    widths = tuple(sorted(set(widths)))
    depths = tuple(sorted(set(depths)))

    shape = (len(depths), len(widths))
    sums = np.zeros(shape)
    n_seeds = np.zeros(shape, dtype=int)
    unresolved = np.zeros(shape, dtype=bool)
    floors = np.full(shape, np.nan)
    column_of = {w: j for j, w in enumerate(widths)}
    row_of = {d: i for i, d in enumerate(depths)}
    for row in mine:
        if row["width"] not in column_of or row["depth"] not in row_of:
            continue
        i, j = row_of[row["depth"]], column_of[row["width"]]
        sums[i, j] += row["lambda_min"]
        n_seeds[i, j] += 1
        unresolved[i, j] |= row_unresolved(row)
        floors[i, j] = np.fmax(floors[i, j], row["lambda_min_bound"])
    with np.errstate(invalid="ignore", divide="ignore"):
        values = np.where(n_seeds > 0, sums / n_seeds, np.nan)
    unresolved |= (n_seeds > 0) & ~(values > 0)
    return LambdaMinGrid(
        activation=activation,
        widths=widths,
        depths=depths,
        values=values,
        unresolved=unresolved,
        floors=floors,
        n_seeds=n_seeds,
    )


def lambda_min_grids(rows: Sequence[dict]) -> list[LambdaMinGrid]:
    """Return one :class:`LambdaMinGrid` per activation, all on the same labels."""
    activations = list(
        dict.fromkeys(r["activation"] for r in sorted(rows, key=res.sort_key))
    )
    widths = sorted({r["width"] for r in rows})
    depths = sorted({r["depth"] for r in rows})
    return [lambda_min_grid(rows, a, widths, depths) for a in activations]


def lambda_min_norm(grids: Sequence[LambdaMinGrid]) -> LogNorm:
    """Return a log colour scale spanning the resolved values of the grids.

    Without resolved values, the scale spans the error bounds instead;
    a single value gets a scale of one decade around it.
    """
    values = np.concatenate([g.values[g.resolved] for g in grids] or [np.empty(0)])
    if values.size == 0:
        floors = np.concatenate([g.floors[g.computed] for g in grids] or [np.empty(0)])
        values = floors[floors > 0]
    if values.size == 0:
        return LogNorm(vmin=1e-16, vmax=1.0)
    low, high = float(values.min()), float(values.max())
    if low == high:
        low, high = low / np.sqrt(10), high * np.sqrt(10)
    return LogNorm(vmin=low, vmax=high)


# ---------------------------------------------------------------------------
# 3. Sweep figures
# ---------------------------------------------------------------------------


@dataclass(eq=False)
class HeatmapArtists:
    """Artists that :func:`draw_lambda_min_heatmap` adds to an axes.

    Attributes
    ----------
    mesh : QuadMesh
        The coloured cells; unresolved and missing cells are masked.
    unresolved : list of Rectangle
        One hatched patch per unresolved cell.
    missing : list of Rectangle
        One grey patch per grid point without results.
    best : Rectangle or None
        Outline of the cell with the greatest resolved value.
    """

    mesh: object
    unresolved: list
    missing: list
    best: Rectangle | None


def draw_lambda_min_heatmap(ax, grid: LambdaMinGrid, norm: LogNorm) -> HeatmapArtists:
    """Draw ``grid`` on ``ax``: width on x, depth on y, log colours.

    Unresolved cells get a hatched patch and are never coloured, because their
    value is rounding noise and may be zero or negative.
    """
    n_depths, n_widths = grid.values.shape
    x_edges = np.arange(n_widths + 1) - 0.5
    y_edges = np.arange(n_depths + 1) - 0.5
    masked = np.ma.masked_where(~grid.resolved, grid.values)
    mesh = ax.pcolormesh(x_edges, y_edges, masked, norm=norm, cmap=STYLE["image.cmap"])

    unresolved, missing = [], []
    for i in range(n_depths):
        for j in range(n_widths):
            corner = (j - 0.5, i - 0.5)
            if not grid.computed[i, j]:
                patch = Rectangle(corner, 1, 1, facecolor=MISSING_COLOR, linewidth=0)
                missing.append(ax.add_patch(patch))
            elif grid.unresolved[i, j]:
                patch = Rectangle(
                    corner,
                    1,
                    1,
                    facecolor="white",
                    edgecolor=HATCH_COLOR,
                    hatch=HATCH,
                    linewidth=0,
                )
                unresolved.append(ax.add_patch(patch))

    best = None
    cell = grid.best_cell()
    if cell is not None:
        i, j = cell
        best = ax.add_patch(
            Rectangle(
                (j - 0.5, i - 0.5),
                1,
                1,
                fill=False,
                edgecolor=HIGHLIGHT_COLOR,
                linewidth=1.2,
            )
        )

    ax.set_xlim(x_edges[0], x_edges[-1])
    ax.set_ylim(y_edges[0], y_edges[-1])
    _thin_ticks(ax.xaxis, grid.widths, max_labels=10)
    _thin_ticks(ax.yaxis, grid.depths, max_labels=12)
    ax.tick_params(axis="x", labelrotation=90)
    ax.set_xlabel("hidden width (units)")
    ax.set_ylabel("depth (weight layers)")
    return HeatmapArtists(mesh=mesh, unresolved=unresolved, missing=missing, best=best)


def _heatmap_legend(fig: Figure, artists: Sequence[HeatmapArtists]) -> None:
    handles = []
    if any(a.best is not None for a in artists):
        handles.append(
            Patch(
                fill=False,
                edgecolor=HIGHLIGHT_COLOR,
                linewidth=1.2,
                label=f"greatest {LAMBDA_MIN}",
            )
        )
    if any(a.unresolved for a in artists):
        handles.append(
            Patch(
                facecolor="white",
                edgecolor=HATCH_COLOR,
                hatch=HATCH,
                linewidth=0,
                label="at or below error bound",
            )
        )
    if any(a.missing for a in artists):
        handles.append(Patch(facecolor=MISSING_COLOR, label="not computed"))
    if handles:
        fig.legend(handles=handles, loc="outside lower center", ncols=len(handles))


def _lambda_min_label(n_seeds: int) -> str:
    if n_seeds > 1:
        return f"{LAMBDA_MIN}, mean of {n_seeds} seeds (dimensionless)"
    return f"{LAMBDA_MIN} (dimensionless)"


def _run_label(settings: dict, rows: Sequence[dict]) -> str:
    """Return ``thesis parametrisation, N = 200`` for a results folder."""
    parametrization = settings.get("parametrization") or rows[0]["parametrization"]
    n_samples = settings.get("n_samples") or rows[0]["n_samples"]
    return f"{parametrization} parametrisation, N = {n_samples}"


@figure_style()
def lambda_min_heatmap_figure(
    grid: LambdaMinGrid, run_label: str, norm: LogNorm | None = None
) -> tuple[Figure, HeatmapArtists]:
    """Draw one activation's ``lambda_min`` heatmap with its colour bar.

    Parameters
    ----------
    grid : LambdaMinGrid
    run_label : str
        Parametrisation and sample count, for the title.
    norm : LogNorm, optional
        Colour scale; by default one fitted to this grid.

    Returns
    -------
    fig : Figure
    artists : HeatmapArtists
    """
    fig, axes = new_figure(SINGLE_COLUMN, 3.0)
    ax = axes[0, 0]
    artists = draw_lambda_min_heatmap(ax, grid, norm or lambda_min_norm([grid]))
    fig.colorbar(artists.mesh, ax=ax, label=_lambda_min_label(grid.max_seeds))
    ax.set_title(
        f"{activation_label(grid.activation)}: smallest NTK eigenvalue\n{run_label}"
    )
    _heatmap_legend(fig, [artists])
    return fig, artists


@figure_style()
def lambda_min_heatmaps_figure(
    grids: Sequence[LambdaMinGrid], run_label: str
) -> tuple[Figure, list[HeatmapArtists]]:
    """Draw the heatmaps of several activations, two per row, on one colour scale."""
    ncols = min(2, len(grids))
    nrows = -(-len(grids) // ncols)
    fig, axes = new_figure(DOUBLE_COLUMN, 0.5 + 2.35 * nrows, nrows, ncols)
    norm = lambda_min_norm(grids)
    artists = []
    for ax, grid in zip(axes.flat, grids):
        artists.append(draw_lambda_min_heatmap(ax, grid, norm))
        ax.set_title(activation_label(grid.activation))
    for ax in axes.flat[len(grids) :]:
        ax.remove()
    used = list(axes.flat[: len(grids)])
    seeds = max(g.max_seeds for g in grids)
    fig.colorbar(artists[0].mesh, ax=used, label=_lambda_min_label(seeds), shrink=0.9)
    fig.suptitle(f"Smallest NTK eigenvalue over width and depth, {run_label}")
    _heatmap_legend(fig, artists)
    return fig, artists


def _sequence_colors(n: int) -> list:
    # plasma stops at 0.85, because its last colours are too pale on white.
    cmap = matplotlib.colormaps["plasma"]
    return [cmap(x) for x in np.linspace(0.0, 0.85, max(n, 1))]


@figure_style()
def lambda_min_width_figure(grids: Sequence[LambdaMinGrid], run_label: str) -> Figure:
    """Draw ``lambda_min`` against width, one line per depth, one panel per activation.

    An unresolved grid point is drawn as an open downward triangle at the
    error bound of its ``lambda_min``.
    """
    ncols = min(2, len(grids))
    nrows = -(-len(grids) // ncols)
    fig, axes = new_figure(DOUBLE_COLUMN, 0.6 + 2.3 * nrows, nrows, ncols)
    depths = grids[0].depths
    colors = _sequence_colors(len(depths))
    any_unresolved = False
    for ax, grid in zip(axes.flat, grids):
        widths = np.array(grid.widths)
        for i, color in enumerate(colors):
            values = np.where(grid.resolved[i], grid.values[i], np.nan)
            ax.plot(widths, values, marker="o", markersize=2, color=color)
            under = grid.unresolved[i] & (grid.floors[i] > 0)
            if under.any():
                any_unresolved = True
                ax.plot(
                    widths[under], grid.floors[i][under], **_floor_marker_style(color)
                )
        ax.set_yscale("log")
        ax.set_title(activation_label(grid.activation))
        ax.set_xlabel("hidden width (units)")
        ax.set_ylabel(_lambda_min_label(grid.max_seeds))
        ax.grid(True, which="major", linewidth=0.3, alpha=0.5)
    for ax in axes.flat[len(grids) :]:
        ax.remove()
    handles = [
        Line2D([], [], color=c, marker="o", markersize=2, label=str(d))
        for d, c in zip(depths, colors)
    ]
    if any_unresolved:
        handles.append(
            Line2D(
                [],
                [],
                label="below bound,\ndrawn at bound",
                **_floor_marker_style("0.3"),
            )
        )
    fig.legend(handles=handles, loc="outside right center", title="depth")
    fig.suptitle(f"Smallest NTK eigenvalue against width, {run_label}")
    return fig


def _spread(values: Sequence[int], count: int) -> list[int]:
    """Return up to ``count`` values evenly spread from first to last."""
    if len(values) <= count:
        return list(values)
    picks = np.unique(np.round(np.linspace(0, len(values) - 1, count)).astype(int))
    return [values[i] for i in picks]


def _draw_sorted_spectrum(
    ax, eigenvalues, floor: float, color, linestyle: str = "-", label: str | None = None
) -> bool:
    """Plot eigenvalues largest first on a log axis; return True if any is <= floor.

    Eigenvalues at or below ``floor`` are drawn as open triangles at the floor,
    never dropped, because a log axis cannot show zero or negative values.
    """
    descending = np.asarray(eigenvalues)[::-1]
    rank = np.arange(1, len(descending) + 1)
    under = descending <= floor
    ax.plot(
        rank[~under], descending[~under], color=color, linestyle=linestyle, label=label
    )
    if under.any() and floor > 0:
        # Long runs at the floor would merge into a solid band. So only about
        # 25 markers are shown, but the line's data keeps every point.
        n_under = int(under.sum())
        ax.plot(
            rank[under],
            np.full(n_under, floor),
            markevery=max(1, n_under // 25),
            **_floor_marker_style(color),
        )
    return bool(under.any())


@figure_style()
def spectra_figure(
    rows: Sequence[dict],
    spectra: dict,
    run_label: str,
    n_widths: int = 3,
) -> Figure | None:
    """Draw sorted spectra of a few widths at the shallowest and deepest depth.

    One panel per activation. Colour marks the width, spread over the grid, and
    line style the depth; the seed is the smallest one. Eigenvalues at or below
    their kernel's resolution floor are drawn as open triangles at the floor.

    Returns
    -------
    Figure or None
        None if ``spectra`` contains none of the kernels needed.
    """
    activations = list(dict.fromkeys(r["activation"] for r in rows))
    widths = _spread(sorted({r["width"] for r in rows}), n_widths)
    all_depths = sorted({r["depth"] for r in rows})
    depths = sorted({all_depths[0], all_depths[-1]})
    seed = min(r["seed"] for r in rows)
    by_key = {
        res.kernel_key(r["activation"], r["width"], r["depth"], r["seed"]): r
        for r in rows
    }
    panels = []
    for activation in activations:
        lines = []
        for depth in depths:
            for width in widths:
                key = res.kernel_key(activation, width, depth, seed)
                if key in spectra and key in by_key:
                    floor = by_key[key]["resolution_floor"]
                    lines.append((width, depth, spectra[key], floor))
        if lines:
            panels.append((activation, lines))
    if not panels:
        return None

    ncols = min(2, len(panels))
    nrows = -(-len(panels) // ncols)
    fig, axes = new_figure(DOUBLE_COLUMN, 0.5 + 2.3 * nrows, nrows, ncols)
    color_of = dict(zip(widths, _sequence_colors(len(widths))))
    style_of = dict(zip(depths, ("-", "--")))
    any_under = False
    for ax, (activation, lines) in zip(axes.flat, panels):
        for width, depth, eigenvalues, floor in lines:
            any_under |= _draw_sorted_spectrum(
                ax, eigenvalues, floor, color_of[width], style_of[depth]
            )
        ax.set_yscale("log")
        ax.set_title(activation_label(activation))
        ax.set_xlabel("rank (1 = largest)")
        ax.set_ylabel("eigenvalue (dimensionless)")
        ax.grid(True, which="major", linewidth=0.3, alpha=0.5)
    for ax in axes.flat[len(panels) :]:
        ax.remove()

    handles = [Line2D([], [], color=color_of[w], label=f"width {w}") for w in widths]
    handles += [
        Line2D([], [], color="0.3", linestyle=style_of[d], label=f"depth {d}")
        for d in depths
    ]
    if any_under:
        handles.append(
            Line2D(
                [],
                [],
                label="below floor,\ndrawn at floor",
                **_floor_marker_style("0.3"),
            )
        )
    fig.legend(handles=handles, loc="outside right center")
    fig.suptitle(f"NTK spectra, seed {seed}, {run_label}")
    return fig


# ---------------------------------------------------------------------------
# 4. Figures of one network
# ---------------------------------------------------------------------------


def _network_title(result) -> str:
    network = result.network
    return (
        f"{activation_label(network.activation)}, width {network.width}, "
        f"depth {network.depth}\n{network.parametrization} parametrisation, "
        f"N = {result.theta.shape[0]}"
    )


def class_blocks(y) -> list[tuple[int, int, float]]:
    """Find the runs of equal targets when the samples are grouped by class.

    Returns
    -------
    list of (start, stop, value)
        One run per class, in sample order. The list is empty if ``y`` is
        None or has more than 10 runs. It is also empty if a value occurs in
        more than one run, because then the samples are not grouped by class.
    """
    if y is None or len(y) == 0:
        return []
    y = np.asarray(y)
    starts = np.flatnonzero(np.r_[True, y[1:] != y[:-1]])
    stops = np.r_[starts[1:], len(y)]
    values = y[starts]
    if len(starts) > 10 or len(np.unique(values)) != len(values):
        return []
    return [(int(a), int(b), float(v)) for a, b, v in zip(starts, stops, values)]


@figure_style()
def kernel_figure(result) -> Figure:
    """Draw the kernel as an image, samples in data order, classes marked.

    Class boundaries are drawn as lines and the classes named on the
    axes (by ``result.class_names`` if given, else by target value). When all
    entries lie within 1% of their mean, as for deep sigmoid networks, the
    image shows the entries minus that mean, and the colour bar label names it.
    """
    theta = result.theta
    fig, axes = new_figure(SINGLE_COLUMN, 3.0)
    ax = axes[0, 0]
    label = r"$\Theta[i, j]$"
    mean = float(theta.mean())
    if np.ptp(theta) < 0.01 * abs(mean):
        theta = theta - mean
        label += f" $-$ {mean:.6g}"
    low, high = float(theta.min()), float(theta.max())
    if low < 0 < high:
        # Entries of both signs get a diverging scale centred on zero.
        cmap, norm, line_color = "RdBu_r", CenteredNorm(vcenter=0.0), "black"
    else:
        # The scale spans the entries, not zero to the maximum: the kernels of
        # wide networks share a large offset that would hide the class blocks.
        cmap, norm = "viridis", Normalize(vmin=low, vmax=high)
        line_color = "white"
    image = ax.imshow(theta, cmap=cmap, norm=norm, interpolation="nearest")
    colorbar = fig.colorbar(image, ax=ax, label=label + " (dimensionless)")
    colorbar.formatter.set_useOffset(False)

    blocks = class_blocks(result.y)
    if len(blocks) > 1:
        for start, _, _ in blocks[1:]:
            ax.axhline(start - 0.5, color=line_color, linewidth=0.8)
            ax.axvline(start - 0.5, color=line_color, linewidth=0.8)
        names = result.class_names
        labels = []
        for _, _, value in blocks:
            index = int(value)
            if names is not None and value == index and 0 <= index < len(names):
                labels.append(names[index])
            else:
                labels.append(f"y = {value:g}")
        centres = [(start + stop - 1) / 2 for start, stop, _ in blocks]
        ax.set_xticks(centres, labels)
        ax.set_yticks(centres, labels, rotation=90, va="center")
        ax.tick_params(length=0)
        ax.set_xlabel("sample j (data order)")
        ax.set_ylabel("sample i (data order)")
    else:
        ax.set_xlabel("sample j")
        ax.set_ylabel("sample i")
    # A figure title, because the square image is narrower than its axes box
    # and an axes title would run into the colour bar.
    fig.suptitle("Empirical NTK, " + _network_title(result), fontsize=8)
    return fig


@figure_style()
def spectrum_figure(result, lambda_min=None) -> Figure:
    """Draw the sorted eigenvalues on a log axis with lambda_min and the floor.

    Eigenvalues at or below the resolution floor are drawn as open triangles at
    the floor and counted in the legend. ``lambda_min``, a
    :class:`ntk_np.certify.CertifiedEigenvalue` of the ``qr`` route, adds the
    eigenvalues from the QR factorisation of the Jacobian and its
    ``lambda_min``.
    """
    spectrum = result.spectrum
    floor = spectrum.resolution_floor
    fig, axes = new_figure(SINGLE_COLUMN, 2.8)
    ax = axes[0, 0]
    eigenvalues = spectrum.eigenvalues
    n = len(eigenvalues)
    _draw_sorted_spectrum(ax, eigenvalues, floor, "C0", label="eigenvalues")
    n_under = int((eigenvalues <= floor).sum())
    if n_under:
        ax.plot(
            [],
            [],
            label=f"{n_under} at or below floor, drawn at floor",
            **_floor_marker_style("C0"),
        )
    if floor > 0:
        ax.axhline(
            floor,
            color="0.4",
            linestyle="--",
            linewidth=0.8,
            label=rf"floor $N\varepsilon\lambda_{{\max}}$ = {floor:.2g}",
        )
    if not spectrum.below_floor:
        ax.plot(
            [n],
            [spectrum.lambda_min],
            marker="o",
            markersize=5,
            markerfacecolor="none",
            markeredgecolor=HIGHLIGHT_COLOR,
            linestyle="none",
            label=f"{LAMBDA_MIN} = {spectrum.lambda_min:.3g}",
        )
    else:
        ax.plot([], [], linestyle="none", label=f"{LAMBDA_MIN} unresolved by eigh")
    from_qr = lambda_min is not None and lambda_min.eigenvalues is not None
    if from_qr:
        ranks = np.arange(1, n + 1)
        ax.plot(
            ranks,
            lambda_min.eigenvalues[::-1],
            color="C1",
            linestyle="--",
            linewidth=1.0,
            label="QR of the Jacobian",
        )
        if lambda_min.resolved:
            ax.plot(
                [n],
                [lambda_min.value],
                marker="s",
                markersize=5,
                markerfacecolor="none",
                markeredgecolor="C1",
                linestyle="none",
                label=f"{LAMBDA_MIN} = {lambda_min.value:.3g} (QR)",
            )
    ax.set_yscale("log")
    ax.set_xlabel("rank (1 = largest)")
    ax.set_ylabel("eigenvalue (dimensionless)")
    ax.grid(True, which="major", linewidth=0.3, alpha=0.5)
    ax.legend(loc="upper right")
    ax.set_title("NTK spectrum, " + _network_title(result))
    return fig


@figure_style()
def trace_shares_figure(result) -> Figure:
    """Draw each layer's weight and bias share of the kernel's trace, in percent.

    The axis is logarithmic when the shares span more than four decades, as in
    deep sigmoid networks, where the first layers contribute almost nothing.
    Otherwise it is linear and each bar is labelled with its value.
    """
    shares = result.shares
    depth = len(shares.weights)
    fig, axes = new_figure(SINGLE_COLUMN, 2.6)
    ax = axes[0, 0]
    layers = np.arange(1, depth + 1)
    bar_width = 0.4
    percent = {
        "weights": 100 * shares.weights / shares.total,
        "biases": 100 * shares.biases / shares.total,
    }
    values = np.concatenate(list(percent.values()))
    positive = values[values > 0]
    logarithmic = positive.size > 0 and positive.max() > 1e4 * positive.min()
    for offset, kind, label, color in (
        (-bar_width / 2, "weights", "weights W(l)", "C0"),
        (bar_width / 2, "biases", "biases b(l)", "C1"),
    ):
        bars = ax.bar(
            layers + offset, percent[kind], bar_width, label=label, color=color
        )
        if not logarithmic:
            ax.bar_label(bars, fmt="%.1f", fontsize=6, padding=1)
    if logarithmic:
        ax.set_yscale("log")
        ax.set_ylim(positive.min() / 3, positive.max() * 5)
    else:
        ax.set_ylim(0, values.max() * 1.15)
    ax.set_xticks(layers)
    ax.set_xlabel("layer l")
    ax.set_ylabel("share of trace (%)")
    ax.legend(loc="upper left")
    ax.set_title("Trace by layer, " + _network_title(result))
    return fig


def write_inspection_figures(
    result, folder: str | os.PathLike, image_format: str = "png", lambda_min=None
) -> list[FigureFile]:
    """Draw and save the kernel, spectrum and trace-share figures of a network.

    Parameters
    ----------
    result : InspectResult
        From :func:`ntk_np.inspection.inspect_network`.
    folder : path
        Created if missing.
    image_format : {'png', 'pdf', 'svg'}, default='png'
    lambda_min : CertifiedEigenvalue, optional
        As for :func:`spectrum_figure`.

    Returns
    -------
    list of FigureFile
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    network = result.network
    n = result.theta.shape[0]
    name = (
        f"{network.activation} network of width {network.width}, depth {network.depth}"
    )
    floor = result.spectrum.resolution_floor
    qr_caption = ""
    if lambda_min is not None and lambda_min.eigenvalues is not None:
        qr_caption = (
            "; dashed orange line: eigenvalues from the QR factorisation of the "
            "Jacobian, resolved below the floor"
        )
    return [
        save_figure(
            kernel_figure(result),
            folder / "kernel",
            f"Empirical NTK Theta[i, j] (dimensionless) of the {name}, on {n} "
            "samples in data order; lines separate the classes.",
            image_format,
        ),
        save_figure(
            spectrum_figure(result, lambda_min),
            folder / "spectrum",
            f"Eigenvalues of the kernel (dimensionless, log scale) against rank; "
            f"dashed line: resolution floor N * eps * lambda_max = {floor:.3g}; "
            "triangles: eigenvalues at or below the floor, drawn at the floor"
            f"{qr_caption}.",
            image_format,
        ),
        save_figure(
            trace_shares_figure(result),
            folder / "trace_shares",
            "Share of the kernel's trace (%) contributed by each layer's weights "
            "and biases, from the layerwise identity.",
            image_format,
        ),
    ]


# ---------------------------------------------------------------------------
# 5. A whole results folder, and the command line
# ---------------------------------------------------------------------------


def load_results_folder(folder: str | os.PathLike) -> tuple[dict, list[dict]]:
    """Read ``settings.json`` and ``results.csv`` of a results folder.

    Returns
    -------
    settings : dict
    rows : list of dict
        In the order of :func:`ntk_np.results.sort_key`.

    Raises
    ------
    UsageError
        If the folder or either file is missing or invalid, or contains no
        rows.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise UsageError(f"results folder not found: {folder}")
    settings_path = folder / "settings.json"
    results_path = folder / "results.csv"
    for path in (settings_path, results_path):
        if not path.is_file():
            raise UsageError(
                f"{folder} is not a results folder: {path.name} not found; "
                "expected a folder written by python -m ntk_np.sweep"
            )
    try:
        settings = json.loads(settings_path.read_text())
    except (OSError, ValueError) as err:
        raise UsageError(f"failed to read {settings_path}: {err}") from None
    if not isinstance(settings, dict):
        raise UsageError(f"{settings_path} must contain a JSON object")
    try:
        rows = res.read_results(results_path)
    except (OSError, ValueError) as err:
        raise UsageError(f"failed to read {results_path}: {err}") from None
    if not rows:
        raise UsageError(f"{results_path} contains no results")
    return settings, sorted(rows, key=res.sort_key)


def _read_spectra(folder: Path, rows: Sequence[dict]) -> dict:
    keys = [
        res.kernel_key(r["activation"], r["width"], r["depth"], r["seed"]) for r in rows
    ]
    try:
        return res.read_spectra(folder, keys)
    except (OSError, ValueError, zipfile.BadZipFile) as err:
        logger.warning("failed to read spectra in %s, drawing none: %s", folder, err)
        return {}


def write_sweep_figures(
    folder: str | os.PathLike,
    settings: dict,
    rows: Sequence[dict],
    spectra: dict,
    image_format: str = "png",
    shared_scale: bool = False,
) -> list[FigureFile]:
    """Draw and save every figure of a sweep into ``folder``.

    Parameters
    ----------
    folder : path
        Output folder, created if missing.
    settings : dict
        Contents of ``settings.json``.
    rows : sequence of dict
        Results rows, at least one.
    spectra : dict of str to ndarray
        Spectra keyed by :func:`ntk_np.results.kernel_key`; the spectra figure
        is skipped if none of the ones it needs is present.
    image_format : {'png', 'pdf', 'svg'}, default='png'
    shared_scale : bool, default=False
        Draw every per-activation heatmap on one colour scale. The combined
        heatmap figure always uses one scale.

    Returns
    -------
    list of FigureFile
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    run_label = _run_label(settings, rows)
    grids = lambda_min_grids(rows)
    seeds = max(g.max_seeds for g in grids)
    averaged = f"mean of {seeds} seeds, " if seeds > 1 else ""
    shared_norm = lambda_min_norm(grids) if shared_scale else None
    scale_text = (
        "one colour scale for all activations"
        if shared_scale
        else ("colour scale of this activation")
    )
    hatch_text = (
        "hatched: lambda_min at or below its error bound (the resolution floor "
        "N * eps * lambda_max of eigh, or the bound of the QR route); "
        "outlined: greatest lambda_min"
    )
    figures = []
    for grid in grids:
        fig, _ = lambda_min_heatmap_figure(grid, run_label, shared_norm)
        figures.append(
            save_figure(
                fig,
                folder / f"lambda_min_heatmap_{grid.activation}",
                f"Smallest NTK eigenvalue lambda_min ({averaged}dimensionless, log "
                f"colour, {scale_text}) of {activation_label(grid.activation)} "
                f"networks over hidden width (units) and depth (weight layers); "
                f"{hatch_text}.",
                image_format,
            )
        )
    if len(grids) > 1:
        fig, _ = lambda_min_heatmaps_figure(grids, run_label)
        figures.append(
            save_figure(
                fig,
                folder / "lambda_min_heatmaps",
                f"Smallest NTK eigenvalue lambda_min ({averaged}dimensionless) of "
                "every activation over hidden width (units) and depth (weight "
                f"layers), on one log colour scale; {hatch_text}.",
                image_format,
            )
        )
    figures.append(
        save_figure(
            lambda_min_width_figure(grids, run_label),
            folder / "lambda_min_vs_width",
            f"Smallest NTK eigenvalue lambda_min ({averaged}dimensionless, log "
            "scale) against hidden width (units), one line per depth; open "
            "triangles: at or below the error bound, drawn at the bound.",
            image_format,
        )
    )
    fig = spectra_figure(rows, spectra, run_label)
    if fig is not None:
        figures.append(
            save_figure(
                fig,
                folder / "spectra",
                "Eigenvalues of the NTK (dimensionless, log scale) against rank, "
                "for a few hidden widths (colour) at the shallowest and deepest "
                "depth (line style); open triangles: below the resolution floor, "
                "drawn at the floor.",
                image_format,
            )
        )
    else:
        logger.warning("no spectra found for the spectra figure; it is not drawn")
    return figures


def render_results(
    folder: str | os.PathLike, image_format: str = "png", shared_scale: bool = False
) -> tuple[list[FigureFile], Path]:
    """Draw every figure of a results folder and write its ``report.md``.

    Figures go to ``folder/figures/``. Nothing is computed: the figures come
    from ``settings.json``, ``results.csv`` and the stored spectra. The report
    keeps the training section of an earlier one (see
    :func:`ntk_np.report.write_sweep_report`).

    Parameters
    ----------
    folder : path
        A results folder written by :func:`ntk_np.run_sweep`.
    image_format : {'png', 'pdf', 'svg'}, default='png'
    shared_scale : bool, default=False
        See :func:`write_sweep_figures`.

    Returns
    -------
    figures : list of FigureFile
    report : Path

    Raises
    ------
    UsageError
        If the folder is not a readable results folder, or the figures cannot
        be written.
    """
    if image_format not in IMAGE_FORMATS:
        raise UsageError(
            f"image_format must be one of {', '.join(IMAGE_FORMATS)}, "
            f"got {image_format!r}"
        )
    folder = Path(folder)
    settings, rows = load_results_folder(folder)
    spectra = _read_spectra(folder, rows)
    try:
        figures = write_sweep_figures(
            folder / "figures", settings, rows, spectra, image_format, shared_scale
        )
        report = write_sweep_report(folder, settings, rows, figures)
    except OSError as err:
        raise UsageError(f"failed to write figures into {folder}: {err}") from None
    return figures, report


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser of ``python -m ntk_np.plot``."""
    parser = _Parser(
        prog="python -m ntk_np.plot",
        description="Redraw the sweep figures of a results folder written by "
        "python -m ntk_np.sweep, and rewrite its report.md, without computing "
        "any kernel. A training section that python -m ntk_np.train added to "
        "report.md is kept. The training figures are not redrawn: rerun "
        "python -m ntk_np.train for those.",
        epilog="examples:\n"
        "  python -m ntk_np.plot results\n"
        "  python -m ntk_np.plot results --shared-scale --format pdf",
        formatter_class=HelpFormatter,
    )
    parser.add_argument(
        "folder",
        metavar="DIR",
        help="results folder containing settings.json and results.csv",
    )
    add_figure_options(parser)
    add_logging_options(parser, quiet_help="log only warnings and errors")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the plot command; return the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    configure_logging(args)
    try:
        figures, report = render_results(args.folder, args.format, args.shared_scale)
    except (UsageError, DataError) as err:
        print(f"{parser.prog}: error: {err}", file=sys.stderr)
        return 2
    if not args.quiet:
        print(
            f"{len(figures)} figures in {report.parent / 'figures'}/; report {report}"
        )
    return 0


# ---------------------------------------------------------------------------
# 6. Training figures (python -m ntk_np.train)
#
# These take the TrainingResult and KernelComparison objects of
# ntk_np.training. Losses are mean squared errors over the N samples
# (dimensionless) and the horizontal axis counts epochs.
# ---------------------------------------------------------------------------


def training_label(network) -> str:
    """Return a short label of a trained network, such as ``ReLU 800x3``."""
    return f"{activation_label(network.activation)} {network.width}x{network.depth}"


def _epoch_axis_label(result) -> str:
    if result.mode == "gd":
        return "epoch (one full-batch gradient step)"
    return f"epoch ({-(-len(result.initial_residual) // result.batch_size)} SGD steps)"


def _stop_text(result) -> str:
    if result.status == "ok":
        return ""
    return f" ({result.status} after epoch {result.epochs_completed})"


def _finite_positive(values) -> np.ndarray:
    values = np.asarray(values, dtype=np.float64)
    return values[np.isfinite(values) & (values > 0)]


@figure_style()
def loss_curves_figure(results: Sequence, run_label: str) -> Figure:
    """Draw the loss curves of several runs on one logarithmic axis.

    A run that stopped early ends in a cross, and its legend entry gives the
    status and the epoch.
    """
    fig, axes = new_figure(SINGLE_COLUMN, 2.8)
    ax = axes[0, 0]
    for i, result in enumerate(results):
        color = f"C{i % 10}"
        epochs = np.arange(len(result.losses))
        ax.plot(
            epochs,
            result.losses,
            color=color,
            label=training_label(result.network) + _stop_text(result),
        )
        if result.status != "ok":
            last = result.epochs_completed
            ax.plot([last], [result.losses[last]], marker="x", color=color)
    ax.set_yscale("log")
    ax.set_xlabel(_epoch_axis_label(results[0]) if results else "epoch")
    ax.set_ylabel("training loss (mean squared error)")
    ax.grid(True, which="major", linewidth=0.3, alpha=0.5)
    ax.legend(loc="upper right")
    ax.set_title(f"Training loss, {run_label}")
    return fig


@figure_style()
def loss_bounds_figure(result, comparison, run_label: str) -> Figure:
    """Draw one run's loss with its linearised prediction and the kernel bounds.

    The vertical range spans the measured loss and the lowest prediction. A
    bound that falls below that range, or a prediction that grows above the
    measured loss, leaves the axes.
    Bounds that do not apply are listed in the legend with the reason.
    """
    fig, axes = new_figure(DOUBLE_COLUMN * 0.62, 3.2)
    ax = axes[0, 0]
    epochs = np.arange(len(result.losses))
    ax.plot(epochs, result.losses, color="k", label="measured" + _stop_text(result))

    predicted = comparison.predicted
    finite = np.isfinite(predicted)
    label = "linearised, initial kernel"
    if not finite.all():
        label += f" (overflows after epoch {int(np.argmin(finite)) - 1})"
    ax.plot(epochs[finite], predicted[finite], color="C0", linestyle="--", label=label)

    styles = {"du": ":", "flow": "-.", "flow_study": (0, (5, 1, 1, 1)), "gd": ":"}
    colors = {"du": "C1", "flow": "C2", "flow_study": "C3", "gd": "C4"}
    certified = comparison.lambda_min
    for bound in comparison.bounds:
        if bound.values is None and not certified.resolved:
            continue  # the legend title states why no bound is drawn
        if bound.values is None:
            ax.plot(
                [],
                [],
                linestyle="none",
                label=f"{bound.label}: not drawn, {bound.note}",
            )
            continue
        ax.plot(
            epochs,
            bound.values,
            color=colors.get(bound.name, "0.5"),
            linestyle=styles.get(bound.name, ":"),
            linewidth=1.3 if bound.name == "du" else 1.0,
            zorder=2.5 if bound.name == "du" else 2.0,
            label=bound.label,
        )

    measured = _finite_positive(result.losses)
    if measured.size:
        shown = np.r_[measured, _finite_positive(predicted)]
        ax.set_ylim(shown.min() / 10, measured.max() * 10)
    ax.set_yscale("log")
    ax.set_xlabel(_epoch_axis_label(result))
    ax.set_ylabel("training loss (mean squared error)")
    ax.grid(True, which="major", linewidth=0.3, alpha=0.5)

    if not certified.resolved:
        lam = (
            f"{LAMBDA_MIN} at or under its error bound "
            f"{certified.bound:.2g} ({certified.method}): no bound drawn"
        )
    else:
        lam = (
            f"{LAMBDA_MIN} = {certified.value:.3g} ± {certified.bound:.1g} "
            f"({certified.method})"
        )
    handles, labels = ax.get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", fontsize=6, title=lam)
    ax.set_title(
        f"{training_label(result.network)}, {run_label}\n"
        rf"$\eta$ = {result.learning_rate:g}, batch {result.batch_size}, "
        f"{result.mode.upper()}"
    )
    return fig


@figure_style()
def kernel_drift_figure(results: Sequence, run_label: str) -> Figure:
    """Draw how far the kernel moved during training against the width.

    Left: the relative change ``||Theta_t - Theta_0||_F / ||Theta_0||_F``, one
    line per recorded epoch ``t``, with a dashed ``width^(-1/2)`` slope for
    reference. Right: ``lambda_min(Theta_t) / lambda_min(Theta_0)``, drawn
    only where both are resolved. Runs that stopped early are left out.
    """
    finished = sorted(
        (r for r in results if r.status == "ok" and len(r.kernels) > 1),
        key=lambda r: r.network.width,
    )
    fig, axes = new_figure(DOUBLE_COLUMN, 2.6, 1, 2)
    left, right = axes[0]
    epochs = sorted({k.epoch for r in finished for k in r.kernels if k.epoch > 0})
    cmap = matplotlib.colormaps["plasma"]
    colors = [cmap(x) for x in np.linspace(0.0, 0.85, max(len(epochs), 1))]
    for epoch, color in zip(epochs, colors):
        widths, changes, ratios = [], [], []
        for result in finished:
            snapshot = {k.epoch: k for k in result.kernels}.get(epoch)
            if snapshot is None:
                continue
            first = result.kernels[0].lambda_min
            widths.append(result.network.width)
            changes.append(snapshot.relative_change)
            resolved = first.resolved and snapshot.lambda_min.resolved
            ratios.append(
                snapshot.lambda_min.value / first.value if resolved else np.nan
            )
        left.plot(widths, changes, marker="o", color=color, label=f"epoch {epoch}")
        right.plot(widths, ratios, marker="o", color=color, label=f"epoch {epoch}")
    if finished and epochs:
        widths = np.array([r.network.width for r in finished], dtype=float)
        last = [r.kernels[-1].relative_change for r in finished]
        anchor = last[0] if last[0] > 0 else 1.0
        left.plot(
            widths,
            anchor * np.sqrt(widths[0] / widths),
            color="0.5",
            linestyle="--",
            label=r"$\propto$ width$^{-1/2}$",
        )
    left.set_xscale("log")
    left.set_yscale("log")
    left.set_ylabel(r"$\|\Theta_t - \Theta_0\|_F / \|\Theta_0\|_F$")
    right.set_xscale("log")
    right.axhline(1.0, color="0.6", linewidth=0.6)
    right.set_ylabel(rf"{LAMBDA_MIN}$(\Theta_t)$ / {LAMBDA_MIN}$(\Theta_0)$")
    for ax in (left, right):
        # Label the trained widths themselves rather than powers of ten.
        widths = sorted({r.network.width for r in finished})
        ax.set_xticks(widths, [str(w) for w in widths])
        ax.set_xticks([], minor=True)
        ax.set_xlabel("hidden width (units)")
        ax.grid(True, which="major", linewidth=0.3, alpha=0.5)
        ax.legend(loc="best")
    if finished:
        net = finished[0].network
        fig.suptitle(
            f"Kernel drift during training, {activation_label(net.activation)} "
            f"depth {net.depth}, {run_label}"
        )
    return fig


def training_figure_name(network) -> str:
    """Return the file stem of a network's bound figure, ``training_relu-w800-d3``."""
    return f"training_{network.activation}-w{network.width}-d{network.depth}"


def write_training_figures(
    runs: Sequence,
    drift_results: Sequence,
    folder: str | os.PathLike,
    run_label: str,
    image_format: str = "png",
) -> list[FigureFile]:
    """Draw and save the figures of ``python -m ntk_np.train``.

    Parameters
    ----------
    runs : sequence of (TrainingResult, KernelComparison)
        The networks whose curves and bounds are drawn.
    drift_results : sequence of TrainingResult
        Networks of one activation and depth over several widths; the drift
        figure is skipped if fewer than two finished with kernels recorded.
    folder : path
        Created if missing.
    run_label : str
        Parametrisation and sample count, for the titles.
    image_format : {'png', 'pdf', 'svg'}, default='png'

    Returns
    -------
    list of FigureFile
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    figures = []
    results = [result for result, _ in runs]
    if results:
        figures.append(
            save_figure(
                loss_curves_figure(results, run_label),
                folder / "training_losses",
                "Training loss (mean squared error over the N samples, log scale) "
                "against epochs, one line per network; a cross marks a run "
                "stopped because its loss diverged or turned non-finite.",
                image_format,
            )
        )
    for result, comparison in runs:
        name = training_label(result.network)
        figures.append(
            save_figure(
                loss_bounds_figure(result, comparison, run_label),
                folder / training_figure_name(result.network),
                f"{name}: measured training loss (log scale) against epochs, the "
                "loss the initial kernel predicts for the linearised network "
                "with the same sample order, and the bounds from lambda_min of "
                "the initial kernel; each legend entry says what its time "
                "variable counts per epoch.",
                image_format,
            )
        )
    finished = [r for r in drift_results if r.status == "ok" and len(r.kernels) > 1]
    if len({r.network.width for r in finished}) >= 2:
        figures.append(
            save_figure(
                kernel_drift_figure(finished, run_label),
                folder / "kernel_drift",
                "Relative Frobenius change of the empirical NTK during training "
                "(left, log-log) and the ratio of its smallest eigenvalue to the "
                "initial one (right) against hidden width (units), one line per "
                "recorded epoch.",
                image_format,
            )
        )
    return figures


if __name__ == "__main__":
    sys.exit(main())
