"""Helpers for right-padded batches: masks and per-sequence reversal."""

from typing import Optional

import torch


def check_lengths(lengths: Optional[torch.Tensor], batch: int, max_len: int,
                  name: str = "lengths") -> Optional[torch.Tensor]:
    if lengths is None:
        return None
    if not isinstance(lengths, torch.Tensor) or lengths.dim() != 1 or lengths.shape[0] != batch:
        shape = tuple(lengths.shape) if isinstance(lengths, torch.Tensor) else type(lengths).__name__
        raise ValueError(f"argument '{name}' must be a 1-D tensor with one length per "
                         f"utterance (batch={batch}), got {shape}")
    if lengths.numel() and (int(lengths.min()) < 0 or int(lengths.max()) > max_len):
        raise ValueError(f"argument '{name}' has values in [{int(lengths.min())}, "
                         f"{int(lengths.max())}] but the input has only {max_len} frames")
    return lengths


def valid_mask(lengths: torch.Tensor, max_len: int) -> torch.Tensor:
    """(batch, max_len) bool, True on real frames."""
    return torch.arange(max_len, device=lengths.device)[None, :] < lengths[:, None]


def reverse_within_lengths(x: torch.Tensor, lengths: Optional[torch.Tensor]) -> torch.Tensor:
    """Reverse each sequence of x (batch, L, ...) inside its own length.

    Frame t < len becomes frame len-1-t; padding stays where it is, after the
    real frames, so a forward scan over the result never sees padding before
    real frames. Applying it twice is the identity.
    """
    batch, max_len = x.shape[:2]
    if lengths is None:
        return x.flip(1)
    t = torch.arange(max_len, device=x.device)[None, :]
    index = torch.where(t < lengths[:, None], lengths[:, None] - 1 - t, t)  # batch, L
    index = index.view(batch, max_len, *([1] * (x.dim() - 2))).expand_as(x)
    return torch.gather(x, 1, index)
