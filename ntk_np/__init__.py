"""Empirical Neural Tangent Kernels of fully connected networks.

The main entry points:

- :func:`load_sample` returns the Fashion-MNIST sample of the study;
- :func:`make_network` draws a network's weights from a seed;
- :func:`empirical_ntk` forms the kernel ``J J^T``;
- :func:`kernel_spectrum` returns its eigenvalues and resolution floor;
- :func:`run_sweep` computes kernels over a grid of widths, depths and
  activations (the command ``python -m ntk_np.sweep``).
"""

from .activations import ACTIVATIONS, activation
from .data import DataError, load_sample, read_idx
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

__version__ = "0.1.0"

__all__ = [
    "ACTIVATIONS",
    "METHODS",
    "PARAMETRIZATIONS",
    "DataError",
    "Network",
    "Spectrum",
    "activation",
    "backward",
    "empirical_ntk",
    "forward",
    "jacobian_blocks",
    "jacobian_ntk",
    "kernel_spectrum",
    "layerwise_ntk",
    "load_sample",
    "make_network",
    "ntk_over_depths",
    "per_sample_gradients",
    "read_idx",
    "resolution_floor",
]
