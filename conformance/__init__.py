"""Conformance suite for object-detection losses.

Public entry points: :func:`conforms_to` (declare a callable's spec),
:func:`conformance.runner.replay` (re-run one property on one example), the
``conformance`` CLI and the pytest plugin.
"""

from __future__ import annotations

from conformance.targets import conforms_to

__all__ = ["conforms_to", "__version__"]
__version__ = "0.1.0"
