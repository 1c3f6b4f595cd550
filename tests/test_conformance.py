"""The conformance suite itself, collected here: by default on our references.

`pytest --target mymod:fn --spec sigmoid_focal` runs it on another implementation.
"""

from conformance.suite import test_conformance  # noqa: F401  (collected as the suite)
