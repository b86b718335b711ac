"""Tests for ntk_np.plot: figures of a real results folder and the plot command.

The results folder comes from a small real sweep on 10 embedded Fashion-MNIST
images: ReLU and sigmoid networks of widths 20 and 40, depths 2 and 12, seeds
0 and 1. The deep sigmoid kernels have lambda_min under the resolution floor,
which the hatching tests need.
"""

from __future__ import annotations

import json
import shutil

import matplotlib.image
import numpy as np
import pytest

import ntk_np
from ntk_np import plot, run_sweep
from ntk_np import results as res
from ntk_np.train import REPORT_BEGIN, REPORT_END, write_report_section

ACTIVATIONS = ("relu", "sigmoid")
FIGURE_NAMES = {
    "lambda_min_heatmap_relu.png",
    "lambda_min_heatmap_sigmoid.png",
    "lambda_min_heatmaps.png",
    "lambda_min_vs_width.png",
    "spectra.png",
}


@pytest.fixture(scope="module")
def sweep_dir(tmp_path_factory):
    """A results folder of 16 real kernels, some of them below the floor."""
    X, _ = ntk_np.load_sample(n_per_class=5)
    out = tmp_path_factory.mktemp("sweep")
    run_sweep(
        X,
        widths=(20, 40),
        depths=(2, 12),
        activations=ACTIVATIONS,
        seeds=(0, 1),
        certify="never",
        out=out,
        data_source="embedded Fashion-MNIST, 5 images per class",
    )
    return out


@pytest.fixture(scope="module")
def rows(sweep_dir):
    return res.read_results(sweep_dir)


@pytest.fixture(scope="module")
def rendered(sweep_dir):
    return plot.render_results(sweep_dir)


@pytest.fixture
def copied_dir(sweep_dir, tmp_path):
    """A copy of the results folder that a test may change."""
    target = tmp_path / "results"
    shutil.copytree(sweep_dir, target)
    return target


def unresolved_cells(rows, activation):
    """(width, depth) of grid points where any seed is below the floor."""
    return {
        (r["width"], r["depth"])
        for r in rows
        if r["activation"] == activation and r["below_floor"]
    }


def hatched_patches(ax):
    return [p for p in ax.patches if p.get_hatch()]


def test_sweep_has_unresolved_cell(rows):
    assert unresolved_cells(rows, "sigmoid")


def test_sweep_relu_fully_resolved(rows):
    assert not unresolved_cells(rows, "relu")


def test_render_writes_every_figure(rendered, sweep_dir):
    figures, _ = rendered
    names = {f.path.name for f in figures}
    assert names == FIGURE_NAMES
    for figure in figures:
        assert figure.path.parent == sweep_dir / "figures"


def test_render_writes_report(rendered, sweep_dir):
    _, report = rendered
    assert report == sweep_dir / "report.md"
    assert report.is_file()


@pytest.mark.parametrize("name", sorted(FIGURE_NAMES))
def test_figure_pixel_size(rendered, name):
    figure = next(f for f in rendered[0] if f.path.name == name)
    image = matplotlib.image.imread(figure.path)
    width, height = figure.size
    assert image.shape[:2] == (round(height * plot.DPI), round(width * plot.DPI))


def test_heatmap_single_column_width(rendered):
    figure = next(
        f for f in rendered[0] if f.path.name == "lambda_min_heatmap_relu.png"
    )
    assert figure.size[0] == plot.SINGLE_COLUMN


def test_captions_name_units(rendered):
    for figure in rendered[0]:
        assert "dimensionless" in figure.caption


def test_grid_mean_over_seeds(rows):
    grid = plot.lambda_min_grid(rows, "relu")
    i, j = grid.depths.index(2), grid.widths.index(40)
    values = [
        r["lambda_min"]
        for r in rows
        if (r["activation"], r["width"], r["depth"]) == ("relu", 40, 2)
    ]
    assert grid.n_seeds[i, j] == 2
    np.testing.assert_allclose(grid.values[i, j], np.mean(values), rtol=1e-15)


def test_grid_flags_unresolved(rows):
    grid = plot.lambda_min_grid(rows, "sigmoid")
    flagged = {
        (grid.widths[j], grid.depths[i]) for i, j in zip(*np.nonzero(grid.unresolved))
    }
    assert flagged == unresolved_cells(rows, "sigmoid")


def test_heatmap_hatches_unresolved(rows):
    grid = plot.lambda_min_grid(rows, "sigmoid")
    fig, artists = plot.lambda_min_heatmap_figure(grid, "test")
    hatched = hatched_patches(fig.axes[0])
    corners = {
        (grid.widths[round(p.get_x() + 0.5)], grid.depths[round(p.get_y() + 0.5)])
        for p in hatched
    }
    assert len(artists.unresolved) == len(unresolved_cells(rows, "sigmoid"))
    assert corners == unresolved_cells(rows, "sigmoid")


def test_heatmap_masks_unresolved_colour(rows):
    grid = plot.lambda_min_grid(rows, "sigmoid")
    _, artists = plot.lambda_min_heatmap_figure(grid, "test")
    mask = np.ma.getmaskarray(artists.mesh.get_array()).reshape(grid.values.shape)
    np.testing.assert_array_equal(mask, grid.unresolved)


def test_heatmap_legend_names_floor(rows):
    grid = plot.lambda_min_grid(rows, "sigmoid")
    fig, _ = plot.lambda_min_heatmap_figure(grid, "test")
    labels = [t.get_text() for t in fig.legends[0].get_texts()]
    assert "at or below error bound" in labels


def test_heatmap_no_hatch_when_resolved(rows):
    grid = plot.lambda_min_grid(rows, "relu")
    fig, _ = plot.lambda_min_heatmap_figure(grid, "test")
    assert hatched_patches(fig.axes[0]) == []


def test_heatmap_negative_lambda_min(rows):
    # eigh can return a negative lambda_min under the floor; the log scale
    # must neither fail nor colour it.
    changed = [dict(r) for r in rows]
    target = next(r for r in changed if r["below_floor"])
    target["lambda_min"] = -1e-15
    grid = plot.lambda_min_grid(changed, "sigmoid")
    fig, artists = plot.lambda_min_heatmap_figure(grid, "test")
    fig.canvas.draw()
    assert artists.mesh.norm.vmin > 0
    assert len(artists.unresolved) == len(unresolved_cells(rows, "sigmoid"))


def test_heatmap_missing_cell(rows):
    kept = [r for r in rows if not (r["activation"] == "relu" and r["width"] == 40)]
    grid = plot.lambda_min_grid(kept, "relu", widths=(20, 40), depths=(2, 12))
    _, artists = plot.lambda_min_heatmap_figure(grid, "test")
    assert len(artists.missing) == 2


def test_heatmap_best_cell(rows):
    grid = plot.lambda_min_grid(rows, "relu")
    _, artists = plot.lambda_min_heatmap_figure(grid, "test")
    best = next(e for e in res.summarize(rows) if e["activation"] == "relu")
    x, y = artists.best.get_xy()
    assert grid.widths[round(x + 0.5)] == best["width"]
    assert grid.depths[round(y + 0.5)] == best["depth"]


def test_shared_norm_spans_all(rows):
    groups = {}
    for r in rows:
        groups.setdefault((r["activation"], r["width"], r["depth"]), []).append(r)
    means = [
        np.mean([r["lambda_min"] for r in members])
        for members in groups.values()
        if not any(r["below_floor"] for r in members)
    ]
    norm = plot.lambda_min_norm(plot.lambda_min_grids(rows))
    np.testing.assert_allclose(norm.vmin, min(means), rtol=1e-15)
    np.testing.assert_allclose(norm.vmax, max(means), rtol=1e-15)


def test_combined_heatmap_one_scale(rows):
    grids = plot.lambda_min_grids(rows)
    _, artists = plot.lambda_min_heatmaps_figure(grids, "test")
    norms = {(a.mesh.norm.vmin, a.mesh.norm.vmax) for a in artists}
    assert len(norms) == 1


def test_width_figure_marks_floor(rows):
    grids = plot.lambda_min_grids(rows)
    fig = plot.lambda_min_width_figure(grids, "test")
    sigmoid_ax = fig.axes[1]
    markers = [line for line in sigmoid_ax.lines if line.get_marker() == "v"]
    n_points = sum(len(line.get_xdata()) for line in markers)
    assert n_points == len(unresolved_cells(rows, "sigmoid"))


def test_spectra_figure_panels(rows, sweep_dir):
    spectra = res.read_spectra(sweep_dir)
    fig = plot.spectra_figure(rows, spectra, "test")
    titles = [ax.get_title() for ax in fig.axes]
    assert titles == ["ReLU", "Sigmoid"]


def test_spectra_figure_without_spectra(rows):
    assert plot.spectra_figure(rows, {}, "test") is None


def test_class_blocks_grouped():
    y = np.repeat([0.0, 1.0], 5)
    assert plot.class_blocks(y) == [(0, 5, 0.0), (5, 10, 1.0)]


def test_class_blocks_interleaved():
    y = np.tile([0.0, 1.0], 5)
    assert plot.class_blocks(y) == []


def test_save_rejects_format(tmp_path):
    fig, _ = plot.new_figure(1.0, 1.0)
    with pytest.raises(ValueError, match="image_format"):
        plot.save_figure(fig, tmp_path / "x", "caption", "bmp")


@pytest.mark.parametrize("image_format", ["pdf", "svg"])
def test_save_reproducible(rows, tmp_path, image_format):
    grid = plot.lambda_min_grid(rows, "sigmoid")
    contents = []
    for name in ("a", "b"):
        fig, _ = plot.lambda_min_heatmap_figure(grid, "test")
        saved = plot.save_figure(fig, tmp_path / name, "caption", image_format)
        contents.append(saved.path.read_bytes())
    assert contents[0] == contents[1]


def test_main_redraws_shared_scale(copied_dir, capsys):
    before = (copied_dir / "results.csv").read_bytes()
    status = plot.main([str(copied_dir), "--shared-scale", "-q"])
    text = (copied_dir / "report.md").read_text()
    assert status == 0
    assert "one colour scale for all activations" in text
    assert (copied_dir / "results.csv").read_bytes() == before


def test_main_keeps_training_section(copied_dir):
    section = (
        f"{REPORT_BEGIN}\n## Training from the measured initial weights\n\n"
        f"table\n{REPORT_END}\n"
    )
    write_report_section(copied_dir, section)
    assert plot.main([str(copied_dir), "-q"]) == 0
    text = (copied_dir / "report.md").read_text()
    assert text.startswith("# Empirical NTK sweep\n")
    assert text.count("## Training from the measured initial weights") == 1
    assert text.endswith("\n\n" + section)


def test_main_quiet_prints_nothing(copied_dir, capsys):
    assert plot.main([str(copied_dir), "-q"]) == 0
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == ""


def test_main_prints_figures_and_report(copied_dir, capsys):
    assert plot.main([str(copied_dir), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert out == (
        f"{len(FIGURE_NAMES)} figures in {copied_dir / 'figures'}/; "
        f"report {copied_dir / 'report.md'}\n"
    )


def test_main_without_spectra(copied_dir):
    shutil.rmtree(copied_dir / "spectra")
    (copied_dir / "spectra.npz").unlink()
    figures, report = plot.render_results(copied_dir)
    names = {f.path.name for f in figures}
    assert names == FIGURE_NAMES - {"spectra.png"}
    assert "spectra.png" not in report.read_text()


def run_main(argv, capsys):
    """Run plot.main, also when argparse exits; return (status, stderr lines)."""
    try:
        status = plot.main(argv)
    except SystemExit as exit_:
        status = exit_.code
    return status, capsys.readouterr().err.splitlines()


def test_main_missing_dir(tmp_path, capsys):
    status, err = run_main([str(tmp_path / "none")], capsys)
    assert status == 2
    assert len(err) == 1
    assert err[0].startswith("python -m ntk_np.plot: error: results folder not found")


def test_main_dir_without_results(tmp_path, capsys):
    status, err = run_main([str(tmp_path)], capsys)
    assert status == 2
    assert err == [
        f"python -m ntk_np.plot: error: {tmp_path} is not a results folder: "
        "settings.json not found; expected a folder written by python -m ntk_np.sweep"
    ]


def test_main_invalid_results(copied_dir, capsys):
    (copied_dir / "results.csv").write_text("width,depth\n1,2\n")
    status, err = run_main([str(copied_dir)], capsys)
    assert status == 2
    assert len(err) == 1
    assert "missing" in err[0]


def test_main_empty_results(copied_dir, capsys):
    header = (copied_dir / "results.csv").read_text().splitlines()[0]
    (copied_dir / "results.csv").write_text(header + "\n")
    status, err = run_main([str(copied_dir)], capsys)
    assert status == 2
    assert err[0].endswith("contains no results")


def test_main_invalid_settings(copied_dir, capsys):
    (copied_dir / "settings.json").write_text("{not json")
    status, err = run_main([str(copied_dir)], capsys)
    assert status == 2
    assert len(err) == 1


def test_main_invalid_format(copied_dir, capsys):
    status, err = run_main([str(copied_dir), "--format", "bmp"], capsys)
    assert status == 2
    assert len(err) == 1
    assert "invalid choice: 'bmp'" in err[0]


def test_settings_read(sweep_dir):
    settings, rows = plot.load_results_folder(sweep_dir)
    assert settings == json.loads((sweep_dir / "settings.json").read_text())
    assert len(rows) == 16
