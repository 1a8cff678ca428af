"""Benchmarks printed as tables of ratios measured in one process.

    python -m espnet_mamba.benchmark scan      # selective scan: compiled / PyTorch / sequential
    python -m espnet_mamba.benchmark encoder   # encoder inference vs ESPnet's Transformer/Conformer
    python -m espnet_mamba.benchmark decoder   # beam-search step vs hypothesis length
    python -m espnet_mamba.benchmark train     # one training step (forward + backward)
"""
