"""Reliability proofs: fault, crash and concurrency suites run against the sandbox.

`python -m reliability.run [--quick]` (`make reliability`) prints one row per scenario:
trials, faults injected, rows compared and differences from a clean run (must be 0).
"""
