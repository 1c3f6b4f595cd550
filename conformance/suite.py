"""The collection root used by ``conformance run``: pytest collects the suite from here.

In a project's own tests, ``from conformance.suite import test_conformance`` in
any test module adds the suite to that module's collection.
"""

from __future__ import annotations

from conformance.plugin import SUITE as test_conformance

__all__ = ["test_conformance"]
