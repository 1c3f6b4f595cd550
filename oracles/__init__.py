"""Independent oracles: NumPy float64 closed forms, exact values (mpmath), TensorFlow/Keras.

Each oracle mirrors the reference's function names and states the domain where
it can be trusted. TensorFlow is imported lazily, inside the functions.
"""
