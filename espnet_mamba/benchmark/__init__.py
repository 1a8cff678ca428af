"""Benchmarks printed as tables of ratios measured in one process.

    python -m espnet_mamba.benchmark scan [--json]
"""
