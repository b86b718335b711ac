"""Tests for ntk_np.inspection (trace shares, inspect_network) and its command.

Networks are small (width 20 to 40) and run on 10 embedded Fashion-MNIST
images. A sigmoid network of width 20 and depth 12 has lambda_min under the
resolution floor on these images.
"""

from __future__ import annotations

import contextlib
import csv
import io

import matplotlib.image
import numpy as np
import pytest
from numpy.testing import assert_allclose

import ntk_np
from ntk_np import inspect as insp
from ntk_np import inspection, plot
from ntk_np.data import CLASS_NAMES

ACTIVATIONS = ("relu", "elu", "leaky_relu", "sigmoid")


@pytest.fixture(scope="module")
def sample():
    return ntk_np.load_sample(n_per_class=5)


@pytest.fixture(scope="module")
def deep_sigmoid(sample):
    """An inspected network whose lambda_min is under the resolution floor."""
    X, y = sample
    network = ntk_np.make_network(20, 12, "sigmoid")
    return inspection.inspect_network(network, X, y=y)


@pytest.mark.parametrize("parametrization", ("thesis", "ntk"))
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_shares_sum_to_trace(sample, activation, parametrization):
    X, _ = sample
    network = ntk_np.make_network(30, 4, activation, parametrization, seed=3)
    shares = inspection.kernel_trace_shares(network, X)
    theta = ntk_np.empirical_ntk(network, X)
    assert_allclose(shares.total, np.trace(theta), rtol=1e-12)


@pytest.mark.parametrize("activation", ("relu", "sigmoid"))
def test_shares_match_jacobian(sample, activation):
    # Each share is the squared norm of the Jacobian columns of its parameters.
    X, _ = sample
    network = ntk_np.make_network(25, 3, activation, seed=1)
    shares = inspection.kernel_trace_shares(network, X)
    J = ntk_np.per_sample_gradients(network, X)
    offset = 0
    for l in range(network.depth):
        n_w, n_b = network.weights[l].size, network.biases[l].size
        weight_part = np.sum(J[:, offset : offset + n_w] ** 2)
        bias_part = np.sum(J[:, offset + n_w : offset + n_w + n_b] ** 2)
        assert_allclose(shares.weights[l], weight_part, rtol=1e-12)
        assert_allclose(shares.biases[l], bias_part, rtol=1e-12)
        offset += n_w + n_b


def test_output_bias_share_is_n(sample):
    # df/db(D) = 1 for every sample, so its trace contribution is N.
    X, _ = sample
    network = ntk_np.make_network(20, 3, "elu")
    shares = inspection.kernel_trace_shares(network, X)
    assert shares.biases[-1] == len(X)


def test_share_rows_sum_to_one(sample):
    X, _ = sample
    shares = inspection.kernel_trace_shares(ntk_np.make_network(20, 3, "relu"), X)
    rows = shares.rows()
    assert len(rows) == 6
    assert_allclose(sum(r["share"] for r in rows), 1.0, rtol=1e-14)


def test_share_rows_count_params(sample):
    X, _ = sample
    network = ntk_np.make_network(20, 3, "relu")
    rows = inspection.kernel_trace_shares(network, X).rows()
    assert sum(r["n_params"] for r in rows) == network.n_params


def test_inspect_spectrum_of_kernel(sample):
    X, y = sample
    network = ntk_np.make_network(30, 3, "relu")
    result = inspection.inspect_network(network, X, y=y)
    expected = ntk_np.kernel_spectrum(ntk_np.empirical_ntk(network, X))
    assert_allclose(result.spectrum.eigenvalues, expected.eigenvalues, rtol=1e-13)


def test_inspect_jacobian_route(sample):
    X, _ = sample
    network = ntk_np.make_network(30, 3, "relu")
    layerwise = inspection.inspect_network(network, X)
    jacobian = inspection.inspect_network(network, X, method="jacobian")
    scale = layerwise.spectrum.lambda_max
    assert_allclose(jacobian.theta, layerwise.theta, rtol=0, atol=1e-12 * scale)


def test_inspect_rejects_y_length(sample):
    X, y = sample
    network = ntk_np.make_network(20, 2, "relu")
    with pytest.raises(ValueError, match=r"y must have shape \(10,\)"):
        inspection.inspect_network(network, X, y=y[:-1])


def test_deep_sigmoid_below_floor(deep_sigmoid):
    assert deep_sigmoid.spectrum.below_floor


def test_spectrum_figure_marks_under_floor(deep_sigmoid):
    spectrum = deep_sigmoid.spectrum
    fig = plot.spectrum_figure(deep_sigmoid)
    markers = [
        line
        for line in fig.axes[0].lines
        if line.get_marker() == "v" and len(line.get_ydata())
    ]
    n_under = int((spectrum.eigenvalues <= spectrum.resolution_floor).sum())
    assert len(markers) == 1
    assert len(markers[0].get_ydata()) == n_under
    assert_allclose(markers[0].get_ydata(), spectrum.resolution_floor)


def test_spectrum_figure_keeps_all(deep_sigmoid):
    fig = plot.spectrum_figure(deep_sigmoid)
    drawn = sum(
        len(line.get_xdata())
        for line in fig.axes[0].lines
        if line.get_label() == "eigenvalues" or line.get_marker() == "v"
    )
    assert drawn == len(deep_sigmoid.spectrum.eigenvalues)


def test_shares_figure_log_when_deep(deep_sigmoid):
    fig = plot.trace_shares_figure(deep_sigmoid)
    assert fig.axes[0].get_yscale() == "log"


def test_shares_figure_linear_labels(sample):
    X, y = sample
    result = inspection.inspect_network(ntk_np.make_network(20, 3, "relu"), X, y=y)
    fig = plot.trace_shares_figure(result)
    assert fig.axes[0].get_yscale() == "linear"
    assert len(fig.axes[0].texts) == 6


def test_kernel_figure_class_names(sample):
    X, y = sample
    network = ntk_np.make_network(20, 3, "relu")
    names = (CLASS_NAMES[0], CLASS_NAMES[9])
    result = inspection.inspect_network(network, X, y=y, class_names=names)
    fig = plot.kernel_figure(result)
    labels = [t.get_text() for t in fig.axes[0].get_xticklabels()]
    assert labels == ["T-shirt/top", "Ankle boot"]


def test_kernel_figure_boundary(sample):
    X, y = sample
    result = inspection.inspect_network(ntk_np.make_network(20, 3, "relu"), X, y=y)
    fig = plot.kernel_figure(result)
    vertical = [line.get_xdata()[0] for line in fig.axes[0].lines]
    assert 4.5 in vertical


@pytest.fixture(scope="module")
def inspected(tmp_path_factory):
    """Output folder and standard output of one run of the inspect command."""
    out = tmp_path_factory.mktemp("inspect")
    argv = ["--width", "30", "--depth", "3", "--n-per-class", "5", "--out", str(out)]
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        status = insp.main([*argv, "-q"])
    return status, out, stdout.getvalue()


def test_main_status(inspected):
    assert inspected[0] == 0


@pytest.mark.parametrize(
    "text", ["smallest eigenvalue", "largest eigenvalue", "condition number", "floor"]
)
def test_main_prints_numbers(inspected, text):
    assert text in inspected[2]


@pytest.mark.parametrize("name", ["kernel", "spectrum", "trace_shares"])
def test_main_figure_width(inspected, name):
    image = matplotlib.image.imread(inspected[1] / "figures" / f"{name}.png")
    assert image.shape[1] == round(plot.SINGLE_COLUMN * plot.DPI)


def test_main_report(inspected):
    text = (inspected[1] / "report.md").read_text()
    assert "(figures/spectrum.png)" in text
    assert "| width (units per hidden layer) | 30 |" in text


def test_main_trace_csv(inspected):
    with open(inspected[1] / "trace_shares.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    network = ntk_np.make_network(30, 3, "relu")
    X, _ = ntk_np.load_sample(n_per_class=5)
    trace = np.trace(ntk_np.empirical_ntk(network, X))
    total = sum(float(r["trace_contribution"]) for r in rows)
    assert len(rows) == 6
    assert_allclose(total, trace, rtol=1e-12)


def test_main_eigenvalue_csv(inspected):
    with open(inspected[1] / "eigenvalues.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    values = [float(r["eigenvalue"]) for r in rows]
    assert len(rows) == 10
    assert values == sorted(values)


def test_main_pdf(tmp_path):
    out = tmp_path / "inspect"
    argv = ["--width", "20", "--n-per-class", "5", "--format", "pdf", "--out", str(out)]
    assert insp.main([*argv, "-q"]) == 0
    assert (out / "figures" / "spectrum.pdf").read_bytes().startswith(b"%PDF")


def test_main_defaults():
    args = insp.build_parser().parse_args([])
    assert (args.activation, args.width, args.depth) == ("relu", 800, 3)
    assert (args.parametrization, args.seed, args.method) == ("thesis", 0, "layerwise")
    assert args.format == "png"


def run_main(argv, capsys):
    """Run inspect.main, also when argparse exits; return (status, stderr lines)."""
    try:
        status = insp.main(argv)
    except SystemExit as exit_:
        status = exit_.code
    return status, capsys.readouterr().err.splitlines()


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--width", "0", "--width must be at least 1, got 0"),
        ("--depth", "1", "--depth must be at least 2, got 1"),
        ("--seed", "-1", "--seed must be at least 0, got -1"),
        (
            "--memory-budget",
            "nan",
            "--memory-budget must be a positive, finite number of MiB, got nan",
        ),
    ],
)
def test_main_invalid_value(tmp_path, capsys, option, value, message):
    argv = [option, value, "--n-per-class", "5", "--out", str(tmp_path)]
    status, err = run_main(argv, capsys)
    assert status == 2
    assert err == [f"python -m ntk_np.inspect: error: {message}"]


def test_main_budget_too_small_for_qr(tmp_path, capsys):
    argv = ["--activation", "sigmoid", "--width", "30", "--depth", "8"]
    argv += ["--certify", "always", "--memory-budget", "0.01"]
    status, err = run_main(
        [*argv, "--n-per-class", "5", "--out", str(tmp_path)], capsys
    )
    assert status == 2
    assert len(err) == 1
    assert "too small" in err[0]


def test_main_missing_data(tmp_path, capsys):
    status, err = run_main(["--data", str(tmp_path / "none.npz")], capsys)
    assert status == 2
    assert len(err) == 1
    assert "data file not found" in err[0]


def test_main_out_is_file(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("")
    argv = ["--width", "20", "--n-per-class", "5", "--out", str(blocker / "out")]
    status, err = run_main(argv, capsys)
    assert status == 2
    assert len(err) == 1
    assert "cannot create output folder" in err[0]


def test_main_out_file_fails_before_kernel(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("")
    argv = ["--width", "20", "--n-per-class", "5", "--out", str(blocker)]
    status, err = run_main(argv, capsys)
    assert status == 2
    assert err == [
        f"python -m ntk_np.inspect: error: --out {blocker} exists and is not a folder"
    ]


def test_main_invalid_format(capsys):
    status, err = run_main(["--format", "bmp"], capsys)
    assert status == 2
    assert len(err) == 1


def test_report_shows_certified_lambda_min(tmp_path):
    # eigh cannot resolve this kernel's lambda_min; the QR route can.
    out = tmp_path / "deep-sigmoid"
    argv = "--activation sigmoid --width 20 --depth 12 --n-per-class 5 -q".split()
    with contextlib.redirect_stdout(io.StringIO()):
        assert insp.main([*argv, "--out", str(out)]) == 0
    report = (out / "report.md").read_text()
    assert "unresolved by eigh" in report
    assert "lambda_min, QR of the Jacobian" in report
    assert "(QR lambda_min)" in report
    assert "eigenvalues from the QR factorisation of the Jacobian" in report


def test_spectrum_figure_draws_qr_eigenvalues():
    X, _ = ntk_np.load_sample(n_per_class=5)
    net = ntk_np.make_network(20, 12, "sigmoid")
    result = ntk_np.inspect_network(net, X)
    certified = ntk_np.certified_lambda_min(net, X)
    fig = plot.spectrum_figure(result, certified)
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert "QR of the Jacobian" in labels
    assert any(label.endswith("(QR)") for label in labels)
