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

import importlib

from .activations import ACTIVATIONS, activation
from .certify import (
    CERTIFY_POLICIES,
    CertifiedEigenvalue,
    certified_lambda_min,
    certify_lambda_min,
    jacobian_singular_values,
)
from .data import DataError, load_sample, read_idx
from .inspection import (
    InspectResult,
    TraceShares,
    inspect_network,
    kernel_trace_shares,
)
from .kernel import (
    METHODS,
    empirical_ntk,
    jacobian_blocks,
    jacobian_ntk,
    layerwise_ntk,
    ntk_over_depths,
    per_sample_gradients,
)
from .network import (
    PARAMETRIZATIONS,
    Network,
    backward,
    forward,
    make_network,
)
from .spectrum import Spectrum, kernel_spectrum, resolution_floor
from .training import (
    KernelComparison,
    TrainingResult,
    compare_with_kernel,
    kernel_drift_over_widths,
    linearized_losses,
    loss_bounds,
    mse_gradient,
    mse_loss,
    sgd_step,
    train_network,
)

__version__ = "0.1.0"

# Names from the command modules load on first use: importing a command module
# here would make ``python -m ntk_np.<command>`` warn that it is already loaded.
_LAZY = {"run_sweep": "sweep", "SweepResult": "sweep"}


def __getattr__(name: str):
    if name in _LAZY:
        module = importlib.import_module(f".{_LAZY[name]}", __name__)
        return getattr(module, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


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
