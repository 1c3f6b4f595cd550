"""Reference PyTorch implementations of detection losses.

One module per loss family; function names equal the spec ids of the conformance
suite (``impls.focal.sigmoid_focal`` is the reference of spec ``sigmoid_focal``).
References are vectorised, differentiable, device- and dtype-preserving, and reject
bad input with a ``ValueError`` that names the argument and what was expected.
"""
