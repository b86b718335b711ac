"""Names and defaults that the options of every module choose from.

This module imports nothing heavier than the standard library, so that the
command-line parsers can be built, and ``--help`` printed, without loading
Numba or SciPy. The modules that implement each choice re-export its names.
"""

from __future__ import annotations

ACTIVATIONS: tuple[str, ...] = ("relu", "elu", "leaky_relu", "sigmoid")
"""Names of the supported activations, in the order of their codes."""

PARAMETRIZATIONS: tuple[str, ...] = ("thesis", "ntk")
"""Names of the supported parametrisations."""

METHODS: tuple[str, ...] = ("layerwise", "jacobian")
"""Names of the kernel routes."""

CERTIFY_POLICIES: tuple[str, ...] = ("never", "auto", "always")
"""When to run the ``qr`` route: never, when ``eigh`` is unresolved, or always."""

MODES: tuple[str, ...] = ("sgd", "gd")
"""Training modes: stochastic gradient descent and full-batch gradient descent."""

BOUND_NAMES: tuple[str, ...] = ("du", "flow", "flow_study", "gd")
"""Names of the loss bounds of :func:`ntk_np.training.loss_bounds`, in order."""

DEFAULT_MEMORY_BUDGET = 1 << 30
"""Default memory budget of the ``jacobian`` and ``qr`` routes, in bytes (1 GiB)."""

DEFAULT_WIDTHS: tuple[int, ...] = tuple(range(50, 1001, 50))
"""Widths of the study's grid: 50 to 1000 units in steps of 50."""

DEFAULT_DEPTHS: tuple[int, ...] = tuple(range(2, 11))
"""Depths of the study's grid: 2 to 10 weight layers."""
