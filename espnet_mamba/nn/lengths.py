"""Right-padded batches: lengths checked and turned into a mask once, per-sequence reversal.

An encoder or decoder calls :func:`padding` once per forward and hands the
:class:`Padding` to every layer; a layer given a plain lengths tensor (a mixer
used on its own) builds one itself.
"""

from typing import NamedTuple, Optional, Union

import torch


class Padding(NamedTuple):
    """Lengths of a right-padded batch and its masks, validated when built (:func:`padding`)."""
    lengths: torch.Tensor  # (batch,)
    valid: torch.Tensor    # (batch, max_len) bool, True on real frames
    pad: torch.Tensor      # (batch, max_len, 1) bool, True on padded frames (masked_fill of (batch, L, C))


def valid_mask(lengths: torch.Tensor, max_len: int) -> torch.Tensor:
    """(batch, max_len) bool, True on real frames. The one mask helper of the package."""
    return torch.arange(max_len, device=lengths.device)[None, :] < lengths[:, None]


def padding(lengths: Union[torch.Tensor, Padding, None], batch: int, max_len: int,
            name: str = "lengths", check: bool = True) -> Optional[Padding]:
    """Check ``lengths`` against a (batch, max_len, ...) input and build its masks.

    A :class:`Padding` is returned as it is (checked when it was built), None stays None.
    ``check=False``: lengths derived from checked ones (after subsampling) are not read again.
    """
    if lengths is None:
        return None
    if isinstance(lengths, Padding):
        if tuple(lengths.valid.shape) != (batch, max_len):
            raise ValueError(f"argument '{name}': a mask of shape {tuple(lengths.valid.shape)} for an "
                             f"input of batch {batch} and {max_len} frames")
        return lengths
    if not isinstance(lengths, torch.Tensor) or lengths.dim() != 1 or lengths.shape[0] != batch:
        shape = tuple(lengths.shape) if isinstance(lengths, torch.Tensor) else type(lengths).__name__
        raise ValueError(f"argument '{name}' must be a 1-D tensor with one length per "
                         f"utterance (batch={batch}), got {shape}")
    if check and lengths.numel():
        _check_range(lengths, max_len, name)
    valid = valid_mask(lengths, max_len)
    return Padding(lengths, valid, ~valid[:, :, None])


def _check_range(lengths: torch.Tensor, max_len: int, name: str) -> None:
    if lengths.device.type == "cpu":
        # reading CPU values costs nothing: say which values are wrong
        low, high = int(lengths.min()), int(lengths.max())
        if low < 0 or high > max_len:
            raise ValueError(f"argument '{name}' has values in [{low}, {high}] but the input has "
                             f"only {max_len} frames")
    elif lengths.device.type == "cuda":
        # reading them back would make the host wait for the GPU once per forward; an
        # asynchronous device assert stops a bad batch (at the next sync) without waiting
        torch._assert_async(((lengths >= 0) & (lengths <= max_len)).all(),
                            f"argument '{name}' has values outside [0, {max_len}]")


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
