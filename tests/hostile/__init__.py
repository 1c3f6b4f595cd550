"""Hostile targets: implementations that misbehave in every way the engine must survive.

They are run by ``tests/test_hostile.py`` through ``conformance run`` in a
subprocess (several end their process on purpose); nothing here is collected.
"""
