"""Configuration of the pytest-benchmark suite in ``bench/``.

Run every benchmark, or the short subset marked ``quick`` (under a minute)::

    python -m pytest bench/ -p no:cacheprovider
    python -m pytest bench/ -p no:cacheprovider --quick
    python -m pytest bench/ -p no:cacheprovider --benchmark-json=bench.json

The default test command (``python -m pytest``, testpaths = tests) never
collects this folder. Files here are named ``bench_*.py``; this conftest adds
that pattern to ``python_files``.

Every target of the suite is a ratio of two benchmarks of the same run, so that
a slower or busier machine shifts both sides. A benchmark takes part in a
ratio through ``benchmark.extra_info``:

``id``
    The name the :data:`RATIOS` table refers to.
``scale``
    A factor applied to the measured time before the ratio is taken (default
    1): the number of blocks for one ``dsyrk`` call, the extrapolation factor
    of a benchmark run on a subset.

The ratios use each benchmark's minimum time, the least disturbed by other
processes on a shared machine. They are printed after the benchmark table and
stored under ``"ratios"`` in the ``--benchmark-json`` file.

BLAS runs with one thread in every benchmark (as the sweep runs each kernel),
except the sweep itself, which runs one worker process per core.
"""

from __future__ import annotations

import operator

import pytest
from bench_certify import MAX_QR_RATIO
from bench_certify import NETWORKS as CERTIFY_NETWORKS
from threadpoolctl import threadpool_limits

RATIOS = (
    # (label, numerator id, denominator id, comparison, target)
    ("layerwise / forward, 200x3", "layerwise[200x3]", "forward[200x3]", None, None),
    ("layerwise / forward, 1000x4", "layerwise[1000x4]", "forward[1000x4]", None, None),
    (
        "layerwise / forward, 1000x10",
        "layerwise[1000x10]",
        "forward[1000x10]",
        "<=",
        2.0,
    ),
    (
        "forward / its GEMMs, 1000x10",
        "forward[1000x10]",
        "forward_blas[1000x10]",
        None,
        None,
    ),
    (
        "layerwise / its GEMMs and syrks, 1000x10",
        "layerwise[1000x10]",
        "layerwise_blas[1000x10]",
        None,
        None,
    ),
    (
        "layerwise BLAS calls / forward GEMMs, 1000x10",
        "layerwise_blas[1000x10]",
        "forward_blas[1000x10]",
        None,
        None,
    ),
    (
        "jacobian / (dsyrk block x blocks), 200x3",
        "jacobian[200x3]",
        "syrk_floor[200x3]",
        "<=",
        1.5,
    ),
    (
        "jacobian / (dsyrk block x blocks), 1000x4",
        "jacobian[1000x4]",
        "syrk_floor[1000x4]",
        "<=",
        1.5,
    ),
    (
        "jacobian / (dsyrk block x blocks), 1000x10",
        "jacobian[1000x10]",
        "syrk_floor[1000x10]",
        "<=",
        1.5,
    ),
    (
        "draw per network / draw shared per width, sweep grid",
        "draw_per_network",
        "draw_shared",
        None,
        None,
    ),
    (
        "plain NumPy sweep (extrapolated) / run_sweep",
        "sweep_plain_numpy",
        "sweep",
        None,
        None,
    ),
    ("run_sweep wall time / 60 s", "sweep", "sixty_seconds", "<", 1.0),
    (
        "python -m ntk_np.sweep --help wall time / 1 s",
        "help_sweep",
        "one_second",
        "<",
        1.0,
    ),
    (
        "python -m ntk_np.sweep --help / python -c pass",
        "help_sweep",
        "python_startup",
        None,
        None,
    ),
    (
        "import ntk_np.kernel / python -c pass",
        "import_kernel",
        "python_startup",
        None,
        None,
    ),
    (
        "SGD step / memory floor (3 P float64 at copy bandwidth), relu 1000x4",
        "sgd_step",
        "memory_floor",
        "<=",
        1.5,
    ),
)
"""Ratios reported after a run: ``numerator / denominator`` of scaled minimum times."""

RATIOS += tuple(
    (
        f"qr route ({source} source) / jacobian route, {label}",
        f"qr_{source}[{label}]",
        f"jacobian_route[{label}]",
        "<",
        MAX_QR_RATIO[source],
    )
    for label in CERTIFY_NETWORKS
    for source in ("layers", "jacobian")
)

_COMPARISONS = {"<=": operator.le, "<": operator.lt, ">=": operator.ge}


def pytest_addoption(parser):
    parser.addoption(
        "--quick",
        action="store_true",
        default=False,
        help="run only the benchmarks marked quick (under a minute in all)",
    )


def pytest_configure(config):
    config.addinivalue_line("python_files", "bench_*.py")
    config.addinivalue_line(
        "markers", "quick: part of the short subset that --quick selects"
    )
    config.addinivalue_line(
        "markers", "all_threads: run without the one-thread BLAS limit"
    )


def pytest_collection_modifyitems(config, items):
    if not config.getoption("--quick"):
        return
    skip = pytest.mark.skip(reason="not in the --quick subset")
    for item in items:
        if "quick" not in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def one_blas_thread(request):
    """Limit BLAS to one thread, unless the test is marked ``all_threads``."""
    if "all_threads" in request.keywords:
        yield
        return
    with threadpool_limits(1, user_api="blas"):
        yield


def _scaled_minimum(bench) -> float | None:
    stats = getattr(bench, "stats", None)
    if stats is None:
        return None
    return stats.min * bench.extra_info.get("scale", 1.0)


def compute_ratios(benchmarks) -> list[dict]:
    """Return one entry per :data:`RATIOS` row whose two benchmarks ran."""
    times = {}
    for bench in benchmarks:
        key = bench.extra_info.get("id")
        value = _scaled_minimum(bench)
        if key is not None and value is not None:
            times[key] = value
    # Fixed denominators for absolute wall-time targets.
    times.setdefault("sixty_seconds", 60.0)
    times.setdefault("one_second", 1.0)
    entries = []
    for label, numerator, denominator, comparison, target in RATIOS:
        if numerator not in times or denominator not in times:
            continue
        ratio = times[numerator] / times[denominator]
        entry = {
            "label": label,
            "numerator": numerator,
            "denominator": denominator,
            "numerator_seconds": times[numerator],
            "denominator_seconds": times[denominator],
            "ratio": ratio,
            "target": None if target is None else f"{comparison} {target:g}",
        }
        if target is not None:
            entry["met"] = bool(_COMPARISONS[comparison](ratio, target))
        entries.append(entry)
    return entries


def _benchmarks(config):
    session = getattr(config, "_benchmarksession", None)
    return [] if session is None else session.benchmarks


_MEMORY: list[dict] = []


@pytest.fixture
def memory_report():
    """Return a function ``record(label, nbytes, limit=None)`` for the summary."""

    def record(label: str, nbytes: int, limit: int | None = None) -> None:
        _MEMORY.append({"label": label, "bytes": int(nbytes), "limit": limit})

    return record


def pytest_benchmark_update_json(config, benchmarks, output_json):
    output_json["ratios"] = compute_ratios(_benchmarks(config))
    output_json["memory"] = list(_MEMORY)


@pytest.hookimpl(trylast=True)
def pytest_terminal_summary(terminalreporter, config):
    if _MEMORY:
        terminalreporter.section("peak memory")
        for record in _MEMORY:
            limit = ""
            if record["limit"] is not None:
                limit = f"  (limit {record['limit'] / 2**20:.1f} MiB)"
            terminalreporter.write_line(
                f"{record['bytes'] / 2**20:10.1f} MiB  {record['label']}{limit}"
            )
    entries = compute_ratios(_benchmarks(config))
    if not entries:
        return
    terminalreporter.section("ratios (scaled minimum times)")
    for entry in entries:
        verdict = ""
        if entry["target"] is not None:
            outcome = "met" if entry["met"] else "MISSED"
            verdict = f"  target {entry['target']}: {outcome}"
        terminalreporter.write_line(
            f"{entry['ratio']:9.3f}  {entry['label']}  "
            f"({entry['numerator_seconds']:.4g} s / "
            f"{entry['denominator_seconds']:.4g} s){verdict}"
        )
