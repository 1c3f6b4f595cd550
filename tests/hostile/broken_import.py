"""A target module whose import raises (a missing dependency, a syntax-level bug)."""

from __future__ import annotations

raise RuntimeError("broken_import: this module fails while being imported")
