"""Tests for ntk_np.report and the report.md that the commands write."""

from __future__ import annotations

from pathlib import Path

import pytest

import ntk_np
from ntk_np import report, run_sweep, sweep
from ntk_np import results as res
from ntk_np.cli import parse_int_list
from ntk_np.inspection import inspect_network
from ntk_np.report import FigureFile


@pytest.fixture(scope="module")
def sample():
    return ntk_np.load_sample(n_per_class=5)


@pytest.fixture(scope="module")
def seeded_rows(sample):
    """Rows of a real two-seed sweep of ReLU and ELU networks."""
    X, _ = sample
    result = run_sweep(
        X, widths=(20, 30), depths=(2, 3), activations=("relu", "elu"), seeds=(0, 1)
    )
    return result.rows


@pytest.mark.parametrize(
    ("values", "text"),
    [
        (range(50, 1001, 50), "50:1000:50"),
        ([2, 3, 4, 5], "2:5"),
        ([0], "0"),
        ([20, 40], "20,40"),
        ([1, 2, 4], "1,2,4"),
        ([3, 1, 2, 2], "1:3"),
    ],
)
def test_format_int_list(values, text):
    assert report.format_int_list(values) == text


def test_format_int_list_parses_back():
    text = report.format_int_list(range(50, 1001, 50))
    assert parse_int_list(text) == list(range(50, 1001, 50))


def test_markdown_table_layout():
    table = report.markdown_table(["a", "b"], [(1, "x")])
    assert table.splitlines() == ["| a | b |", "|---|---|", "| 1 | x |"]


def test_markdown_table_escapes_pipe():
    table = report.markdown_table(["a"], [("x|y",)])
    assert table.splitlines()[-1] == r"| x\|y |"


def test_software_versions_names():
    versions = report.software_versions()
    expected = ["python", "numpy", "scipy", "numba", "matplotlib", "ntk_np"]
    assert list(versions) == expected


def test_software_versions_ntk_np():
    assert report.software_versions()["ntk_np"] == ntk_np.__version__


def test_summary_with_std(seeded_rows):
    table = report.summary_markdown(res.summarize(seeded_rows))
    header = table.splitlines()[0]
    assert "std over seeds" in header
    assert len(table.splitlines()) == 4


def test_summary_std_value(seeded_rows):
    summary = res.summarize(seeded_rows)
    relu = next(e for e in summary if e["activation"] == "relu")
    line = next(s for s in report.summary_markdown(summary).splitlines() if "relu" in s)
    assert f"{relu['lambda_min_std']:.4g}" in line


def test_summary_one_seed(seeded_rows):
    rows = [r for r in seeded_rows if r["seed"] == 0]
    table = report.summary_markdown(res.summarize(rows))
    assert "std" not in table


def test_figures_png_embedded(tmp_path):
    figure = FigureFile(tmp_path / "figures" / "a.png", "A caption.", (1.0, 1.0))
    text = report.figures_markdown([figure], tmp_path)
    assert "**Figure 1.** A caption." in text
    assert "![a](figures/a.png)" in text


def test_figures_pdf_linked(tmp_path):
    figure = FigureFile(tmp_path / "figures" / "a.pdf", "A caption.", (1.0, 1.0))
    text = report.figures_markdown([figure], tmp_path)
    assert "[figures/a.pdf](figures/a.pdf)" in text
    assert "![" not in text


def test_sweep_report_sections(seeded_rows, tmp_path):
    settings = {"parametrization": "thesis", "method": "layerwise", "n_samples": 10}
    text = report.sweep_report(settings, seeded_rows, [], tmp_path)
    headings = [line for line in text.splitlines() if line.startswith("## ")]
    assert headings == ["## Settings", "## Summary", "## Figures", "## Software"]


def test_sweep_report_grid(seeded_rows, tmp_path):
    text = report.sweep_report({}, seeded_rows, [], tmp_path)
    assert "| widths (units per hidden layer) | 20,30 |" in text
    assert "| seeds | 0,1 |" in text


def run_sweep_main(tmp_path, *extra):
    out = tmp_path / "results"
    argv = [
        "--widths",
        "20,30",
        "--depths",
        "2,3",
        "--activations",
        "relu",
        "sigmoid",
        "--n-per-class",
        "5",
        "--jobs",
        "1",
        "--out",
        str(out),
        "-q",
        *extra,
    ]
    return sweep.main(argv), out


def test_sweep_main_writes_report(tmp_path):
    status, out = run_sweep_main(tmp_path)
    text = (out / "report.md").read_text()
    figures = sorted(p.name for p in (out / "figures").iterdir())
    assert status == 0
    for name in figures:
        assert f"(figures/{name})" in text
    assert "| relu |" in text
    assert "| matplotlib |" in text


def test_sweep_main_no_figures(tmp_path):
    status, out = run_sweep_main(tmp_path, "--no-figures")
    assert status == 0
    assert not (out / "figures").exists()
    assert not (out / "report.md").exists()


def test_sweep_main_svg_shared(tmp_path):
    options = ("--activations", "relu", "--format", "svg", "--shared-scale")
    status, out = run_sweep_main(tmp_path, *options)
    names = {p.suffix for p in (out / "figures").iterdir()}
    assert status == 0
    assert names == {".svg"}
    assert "one colour scale for all activations" in (out / "report.md").read_text()


def test_inspect_report_numbers(sample, tmp_path):
    X, y = sample
    network = ntk_np.make_network(20, 3, "relu")
    result = inspect_network(network, X, y=y, data_source="test")
    text = report.inspection_report(result, [], [tmp_path / "a.csv"], tmp_path)
    assert (
        f"| smallest eigenvalue lambda_min, eigh | {result.spectrum.lambda_min:.4g} |"
        in text
    )
    assert "| parameters P | " + str(network.n_params) + " |" in text
    assert "`a.csv`" in text


def test_inspect_report_unresolved(sample, tmp_path):
    X, y = sample
    network = ntk_np.make_network(20, 12, "sigmoid")
    result = inspect_network(network, X, y=y)
    text = report.inspection_report(result, [], [], tmp_path)
    assert "below the resolution floor, so unresolved" in text
    assert "inf (lambda_min is unresolved)" in text
    # The eigh value under the floor is noise: only the floor is printed.
    floor = f"< {result.spectrum.resolution_floor:.4g} (at or below" in text
    assert floor
    assert f"{result.spectrum.lambda_min:.4g} (" not in text


def test_report_paths_relative(tmp_path):
    figure = FigureFile(Path(tmp_path) / "figures" / "k.svg", "K.", (1.0, 1.0))
    text = report.figures_markdown([figure], tmp_path)
    assert str(tmp_path) not in text


TRAINING_BLOCK = f"{report.TRAINING_BEGIN}\n## Training\n\ntext\n{report.TRAINING_END}"


def test_training_section_span_found():
    text = f"# Sweep\n\n{TRAINING_BLOCK}\n"
    start, stop = report.training_section_span(text)
    assert text[start:stop] == TRAINING_BLOCK


@pytest.mark.parametrize(
    "text",
    [
        "# Sweep\n",
        f"# Sweep\n\n{report.TRAINING_BEGIN}\nno end\n",
        f"{report.TRAINING_END}\n{report.TRAINING_BEGIN}\n",
    ],
    ids=["no-markers", "no-end", "end-first"],
)
def test_training_section_span_absent(text):
    assert report.training_section_span(text) is None


def test_sweep_report_keeps_training_section(seeded_rows, tmp_path):
    (tmp_path / "report.md").write_text(
        f"# Old sweep\n\nold text\n\n{TRAINING_BLOCK}\n"
    )
    path = report.write_sweep_report(tmp_path, {}, seeded_rows, [])
    text = path.read_text()
    assert text.startswith("# Empirical NTK sweep\n")
    assert "old text" not in text
    assert text.count(report.TRAINING_BEGIN) == 1
    assert text.endswith(
        f"## Software\n\n{report.software_markdown()}\n\n{TRAINING_BLOCK}\n"
    )


def test_sweep_report_without_training_section(seeded_rows, tmp_path):
    (tmp_path / "report.md").write_text("# Old sweep\n")
    path = report.write_sweep_report(tmp_path, {}, seeded_rows, [])
    assert path.read_text() == report.sweep_report({}, seeded_rows, [], tmp_path)
