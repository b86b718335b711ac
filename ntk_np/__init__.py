"""Empirical Neural Tangent Kernels of fully connected networks.

The main entry points:

- :func:`load_sample` returns the Fashion-MNIST sample of the study;
- :func:`make_network` draws a network's weights from a seed;
- :func:`empirical_ntk` forms the kernel ``J J^T``;
- :func:`kernel_spectrum` returns its eigenvalues and resolution floor;
- :func:`certified_lambda_min` computes the smallest eigenvalue with an error
  bound from a QR factorisation of the Jacobian, below that floor;
- :func:`run_sweep` computes kernels over a grid of widths, depths and
  activations (the command ``python -m ntk_np.sweep``);
- :func:`inspect_network` computes one network's kernel, spectrum and trace by
  layer (the command ``python -m ntk_np.inspect``);
- :func:`train_network` trains a network from its initial weights and
  :func:`compare_with_kernel` sets the loss curve against the linearised
  prediction and the bounds of its initial kernel (the command
  ``python -m ntk_np.train``).

Figures are drawn by :mod:`ntk_np.plot`, which is not imported here, so that
``import ntk_np`` does not load matplotlib. ``python -m ntk_np.plot DIR``
redraws the figures and report of a results folder.
"""

import importlib as _importlib

__version__ = "0.1.0"

# Every name loads its module on first use, so that ``import ntk_np`` and the
# ``--help`` of the commands do not load Numba and SciPy, and so that
# ``python -m ntk_np.<command>`` does not find its module already imported.
_EXPORTS = {
    "activation": "activations",
    "certified_lambda_min": "certify",
    "CertifiedEigenvalue": "certify",
    "certify_lambda_min": "certify",
    "jacobian_singular_values": "certify",
    "ACTIVATIONS": "choices",
    "CERTIFY_POLICIES": "choices",
    "METHODS": "choices",
    "PARAMETRIZATIONS": "choices",
    "DataError": "data",
    "load_sample": "data",
    "read_idx": "data",
    "inspect_network": "inspection",
    "InspectResult": "inspection",
    "kernel_trace_shares": "inspection",
    "TraceShares": "inspection",
    "empirical_ntk": "kernel",
    "jacobian_blocks": "kernel",
    "jacobian_ntk": "kernel",
    "layerwise_ntk": "kernel",
    "ntk_over_depths": "kernel",
    "per_sample_gradients": "kernel",
    "backward": "network",
    "forward": "network",
    "make_network": "network",
    "Network": "network",
    "kernel_spectrum": "spectrum",
    "resolution_floor": "spectrum",
    "Spectrum": "spectrum",
    "run_sweep": "sweeping",
    "SweepResult": "sweeping",
    "compare_with_kernel": "training",
    "kernel_drift_over_widths": "training",
    "KernelComparison": "training",
    "linearized_losses": "training",
    "loss_bounds": "training",
    "mse_gradient": "training",
    "mse_loss": "training",
    "sgd_step": "training",
    "train_network": "training",
    "TrainingResult": "training",
}

# Submodules reachable as attributes, such as ``ntk_np.results``, without an
# import of their own.
_SUBMODULES = frozenset(
    {
        "activations",
        "certify",
        "choices",
        "data",
        "inspection",
        "kernel",
        "network",
        "plot",
        "report",
        "results",
        "spectrum",
        "sweeping",
        "training",
    }
)


def __getattr__(name: str):
    if name in _EXPORTS:
        module = _importlib.import_module(f".{_EXPORTS[name]}", __name__)
        value = getattr(module, name)
        globals()[name] = value
        return value
    if name in _SUBMODULES:
        return _importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_EXPORTS) | _SUBMODULES)


__all__ = [
    "ACTIVATIONS",
    "CERTIFY_POLICIES",
    "METHODS",
    "PARAMETRIZATIONS",
    "CertifiedEigenvalue",
    "DataError",
    "InspectResult",
    "KernelComparison",
    "Network",
    "Spectrum",
    "SweepResult",
    "TraceShares",
    "TrainingResult",
    "activation",
    "backward",
    "certified_lambda_min",
    "certify_lambda_min",
    "compare_with_kernel",
    "empirical_ntk",
    "forward",
    "inspect_network",
    "jacobian_blocks",
    "jacobian_ntk",
    "jacobian_singular_values",
    "kernel_drift_over_widths",
    "kernel_spectrum",
    "kernel_trace_shares",
    "layerwise_ntk",
    "linearized_losses",
    "load_sample",
    "loss_bounds",
    "make_network",
    "mse_gradient",
    "mse_loss",
    "ntk_over_depths",
    "per_sample_gradients",
    "read_idx",
    "resolution_floor",
    "run_sweep",
    "sgd_step",
    "train_network",
]
