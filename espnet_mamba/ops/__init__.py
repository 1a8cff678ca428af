"""Selective scan and causal conv: CUDA kernels on a GPU, compiled kernels on a CPU, PyTorch anywhere."""

from espnet_mamba.ops.causal_conv1d import causal_conv1d, causal_conv1d_step
from espnet_mamba.ops.selective_scan import selective_scan, selective_state_step

__all__ = ["selective_scan", "selective_state_step", "causal_conv1d", "causal_conv1d_step"]
