"""The ``report.md`` that each command writes next to its figures.

A report lists the settings of the run, its numbers as markdown tables, every
figure with a one-line caption, and the versions of the software that made it.
The figures themselves are drawn by :mod:`ntk_np.plot`; this module imports no
plotting library, so the commands can build their parsers without one.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import os
import platform
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from . import results as res

IMAGE_FORMATS: tuple[str, ...] = ("png", "pdf", "svg")
"""File formats the figures can be written in."""

SOFTWARE: tuple[str, ...] = ("numpy", "scipy", "numba", "matplotlib", "ntk_np")
"""Packages whose versions every report lists, after Python."""

TRAINING_BEGIN = "<!-- ntk_np.train: begin -->"
"""Line before the training section that ``python -m ntk_np.train`` adds."""

TRAINING_END = "<!-- ntk_np.train: end -->"
"""Line after the training section that ``python -m ntk_np.train`` adds."""


@dataclass(frozen=True)
class FigureFile:
    """A figure written to disk and its caption.

    Attributes
    ----------
    path : Path
        The image file.
    caption : str
        One line: what is plotted and in what units.
    size : tuple of float
        ``(width, height)`` of the figure in inches.
    """

    path: Path
    caption: str
    size: tuple[float, float]


def add_figure_options(
    parser: argparse.ArgumentParser, shared_scale: bool = True
) -> argparse._ArgumentGroup:
    """Add ``--format`` and, if ``shared_scale``, ``--shared-scale`` to a parser.

    Returns
    -------
    argparse group
        The new ``figures`` group, so a command can add its own options to it.
    """
    group = parser.add_argument_group("figures")
    group.add_argument(
        "--format",
        choices=IMAGE_FORMATS,
        default="png",
        help="file format of the figures; PNG is written at 300 dpi (default: png)",
    )
    if shared_scale:
        group.add_argument(
            "--shared-scale",
            action="store_true",
            help="draw the lambda_min heatmaps of all activations on one colour "
            "scale, so colours compare across files (default: one scale each)",
        )
    return group


def software_versions() -> dict[str, str]:
    """Return the versions of Python and of :data:`SOFTWARE`, by name."""
    versions = {"python": platform.python_version()}
    for name in SOFTWARE:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def markdown_table(header: Sequence[str], rows: Iterable[Sequence]) -> str:
    """Format rows as a GitHub-flavoured markdown table.

    Cells are converted with ``str``; a ``|`` inside a cell is escaped.
    """

    def line(cells):
        text = (str(c).replace("|", r"\|") for c in cells)
        return "| " + " | ".join(text) + " |"

    lines = [line(header), "|" + "|".join("---" for _ in header) + "|"]
    lines.extend(line(cells) for cells in rows)
    return "\n".join(lines)


def format_int_list(values: Iterable[int]) -> str:
    """Format integers as the commands' list syntax, such as ``50:1000:50``.

    An evenly spaced list of three or more values becomes ``START:STOP:STEP``
    (inclusive), or ``START:STOP`` for a step of 1; any other list is written
    out with commas.
    """
    values = sorted(set(values))
    if len(values) >= 3:
        steps = {b - a for a, b in zip(values, values[1:])}
        if len(steps) == 1:
            step = steps.pop()
            suffix = f":{step}" if step != 1 else ""
            return f"{values[0]}:{values[-1]}{suffix}"
    return ",".join(str(v) for v in values)


def _number(value: float) -> str:
    return f"{value:.4g}"


def summary_markdown(summary: Sequence[dict]) -> str:
    """Format :func:`ntk_np.results.summarize` rows as a markdown table.

    The standard deviation over seeds is shown when any grid point has more
    than one seed.
    """
    with_std = any(entry["n_seeds"] > 1 for entry in summary)
    header = ["activation", "max lambda_min", "width", "depth", "resolved"]
    if with_std:
        header[1:2] = ["max mean lambda_min", "std over seeds", "seeds"]
    rows = []
    for entry in summary:
        cells = [
            entry["activation"],
            _number(entry["lambda_min"]),
            entry["width"],
            entry["depth"],
            "no, at or below its error bound" if entry["below_floor"] else "yes",
        ]
        if with_std:
            cells[2:2] = [_number(entry["lambda_min_std"]), entry["n_seeds"]]
        rows.append(cells)
    return markdown_table(header, rows)


def figures_markdown(figures: Sequence[FigureFile], base: str | os.PathLike) -> str:
    """Return a markdown section body that shows each figure under its caption.

    PNG and SVG files are embedded as images. PDF files are linked, because
    markdown viewers do not display them inline.
    """
    base = Path(base)
    blocks = []
    for number, figure in enumerate(figures, start=1):
        target = Path(os.path.relpath(figure.path, base)).as_posix()
        caption = f"**Figure {number}.** {figure.caption}"
        if figure.path.suffix == ".pdf":
            blocks.append(f"{caption} File: [{target}]({target})")
        else:
            blocks.append(f"{caption}\n\n![{figure.path.stem}]({target})")
    return "\n\n".join(blocks)


def software_markdown() -> str:
    """Return :func:`software_versions` as a markdown table."""
    return markdown_table(["software", "version"], software_versions().items())


def training_section_span(text: str) -> tuple[int, int] | None:
    """Find the training section of a report, markers included.

    Returns
    -------
    tuple of int or None
        ``(start, stop)`` such that ``text[start:stop]`` runs from
        :data:`TRAINING_BEGIN` to the end of :data:`TRAINING_END`, or None if
        ``text`` lacks either marker or has them in the wrong order.
    """
    start = text.find(TRAINING_BEGIN)
    if start < 0:
        return None
    end = text.find(TRAINING_END, start)
    if end < 0:
        return None
    return start, end + len(TRAINING_END)


def _join_sections(title: str, sections: Sequence[tuple[str, str]]) -> str:
    parts = [f"# {title}"]
    for heading, body in sections:
        parts.append(f"## {heading}\n\n{body}")
    return "\n\n".join(parts) + "\n"


# ---------------------------------------------------------------------------
# Sweep reports
# ---------------------------------------------------------------------------


def sweep_settings_rows(settings: dict, rows: Sequence[dict]) -> list[tuple]:
    """Return ``(setting, value)`` pairs describing a sweep's results folder."""
    activations = list(dict.fromkeys(r["activation"] for r in rows))
    return [
        ("parametrization", settings.get("parametrization", "unknown")),
        ("kernel route (method)", settings.get("method", "unknown")),
        ("data", settings.get("data_source", "unknown")),
        ("samples N", settings.get("n_samples", "unknown")),
        ("input features", settings.get("n_inputs", "unknown")),
        ("data SHA-256", settings.get("data_sha256", "unknown")),
        ("activations", ", ".join(activations)),
        ("widths (units per hidden layer)", format_int_list(r["width"] for r in rows)),
        ("depths (weight layers)", format_int_list(r["depth"] for r in rows)),
        ("seeds", format_int_list(r["seed"] for r in rows)),
    ]


def sweep_report(
    settings: dict, rows: Sequence[dict], figures: Sequence[FigureFile], base
) -> str:
    """Return the markdown report of a sweep.

    Parameters
    ----------
    settings : dict
        The contents of ``settings.json``.
    rows : sequence of dict
        Rows of ``results.csv``, as :func:`ntk_np.results.read_results` returns.
    figures : sequence of FigureFile
    base : path
        Folder of the report; figure paths are written relative to it.
    """
    summary = res.summarize(rows)
    n_unresolved = sum(bool(r["below_floor"]) for r in rows)
    n_qr = sum(r.get("lambda_min_method") == "qr" for r in rows)
    summary_text = (
        f"{len(rows)} kernels. {n_qr} have lambda_min from the QR factorisation "
        "of the Jacobian, because eigh could not resolve them (at or below its "
        f"floor N * eps * lambda_max). {n_unresolved} remain at or below the "
        "error bound of their route. "
        "Per activation, the table gives the grid point whose smallest NTK "
        "eigenvalue lambda_min (mean over seeds, dimensionless) is greatest. A "
        "grid point counts as resolved when lambda_min exceeds its error bound "
        "for every seed.\n\n" + summary_markdown(summary)
    )
    sections = [
        (
            "Settings",
            markdown_table(["setting", "value"], sweep_settings_rows(settings, rows)),
        ),
        ("Summary", summary_text),
        ("Figures", figures_markdown(figures, base) if figures else "None drawn."),
        ("Software", software_markdown()),
    ]
    return _join_sections("Empirical NTK sweep", sections)


def write_sweep_report(
    folder: str | os.PathLike,
    settings: dict,
    rows: Sequence[dict],
    figures: Sequence[FigureFile],
) -> Path:
    """Write ``report.md`` of a sweep into its results folder; return its path.

    A training section that ``python -m ntk_np.train`` added to an earlier
    ``report.md`` (between :data:`TRAINING_BEGIN` and :data:`TRAINING_END`) is
    kept at the end. The rest of the earlier file is replaced.
    """
    path = Path(folder) / "report.md"
    text = sweep_report(settings, rows, figures, folder)
    earlier = path.read_text() if path.is_file() else ""
    span = training_section_span(earlier)
    if span is not None:
        start, stop = span
        text += "\n" + earlier[start:stop] + "\n"
    path.write_text(text)
    return path


# ---------------------------------------------------------------------------
# Reports on one network
# ---------------------------------------------------------------------------


def inspection_report(
    result, figures: Sequence[FigureFile], files, base, lambda_min=None
) -> str:
    """Return the markdown report of :func:`ntk_np.inspection.inspect_network`.

    Parameters
    ----------
    result : InspectResult
    figures : sequence of FigureFile
    files : sequence of path
        Data files written next to the report, listed by name.
    base : path
        Folder of the report; paths are written relative to it.
    """
    network = result.network
    spectrum = result.spectrum
    settings = [
        ("activation", network.activation),
        ("width (units per hidden layer)", network.width),
        ("depth (weight layers)", network.depth),
        ("parametrization", network.parametrization),
        ("seed", network.seed if network.seed is not None else "not recorded"),
        ("kernel route (method)", result.method),
        ("data", result.data_source or "not recorded"),
        ("samples N", result.theta.shape[0]),
        ("input features", network.n_inputs),
        ("parameters P", network.n_params),
    ]
    n_under = int((spectrum.eigenvalues <= spectrum.resolution_floor).sum())
    certified = (
        lambda_min if lambda_min is not None and lambda_min.method == "qr" else None
    )
    lambda_text = _number(spectrum.lambda_min)
    condition = _number(spectrum.condition_number)
    if spectrum.below_floor:
        # The eigh value under the floor is rounding noise, so only the floor shows.
        lambda_text = (
            f"< {_number(spectrum.resolution_floor)} (at or below the resolution "
            "floor, so unresolved by eigh)"
        )
        condition += " (lambda_min is unresolved)"
    if certified is not None and certified.resolved:
        condition = _number(spectrum.lambda_max / certified.value) + " (QR lambda_min)"
    numbers = [("smallest eigenvalue lambda_min, eigh", lambda_text)]
    if certified is not None:
        numbers.append(
            ("smallest eigenvalue lambda_min, QR of the Jacobian", certified.format())
        )
    numbers += [
        ("largest eigenvalue lambda_max", _number(spectrum.lambda_max)),
        ("condition number lambda_max / lambda_min", condition),
        ("resolution floor N * eps * lambda_max", _number(spectrum.resolution_floor)),
        ("eigenvalues at or below the floor", n_under),
        ("trace", _number(spectrum.trace)),
    ]
    shares = result.shares
    share_rows = [
        (
            row["layer"],
            row["parameter"],
            row["n_params"],
            _number(row["trace_contribution"]),
            f"{100 * row['share']:.3g}",
        )
        for row in shares.rows()
    ]
    share_text = (
        "Contribution of each layer's weights and biases to the trace of the "
        "kernel (dimensionless), from the layerwise identity.\n\n"
        + markdown_table(
            ["layer", "parameter", "count", "trace contribution", "share (%)"],
            share_rows,
        )
    )
    names = ", ".join(f"`{Path(os.path.relpath(f, base)).as_posix()}`" for f in files)
    sections = [
        ("Settings", markdown_table(["setting", "value"], settings)),
        (
            "Spectrum",
            "Eigenvalues of the empirical NTK (dimensionless).\n\n"
            + markdown_table(["quantity", "value"], numbers),
        ),
        ("Trace by layer", share_text),
        ("Figures", figures_markdown(figures, base) if figures else "None drawn."),
        ("Data files", names or "None written."),
        ("Software", software_markdown()),
    ]
    return _join_sections(
        f"Empirical NTK of one network: {network.describe()}", sections
    )


def write_inspection_report(
    folder: str | os.PathLike,
    result,
    figures: Sequence[FigureFile],
    files,
    lambda_min=None,
) -> Path:
    """Write ``report.md`` of one inspected network into ``folder``; return its path.

    ``lambda_min`` is as for :func:`inspection_report`.
    """
    path = Path(folder) / "report.md"
    path.write_text(inspection_report(result, figures, files, folder, lambda_min))
    return path
