"""model: espnet_mamba -- ESPnet's joint CTC/attention model with a non-finite-loss guard.

Training, the CTC/attention objective (ctc_weight, interctc_weight,
lsm_weight, ...) and decoding are ESPnetASRModel's, unchanged. What Mamba
models need on top: selective scans can diverge (a learning rate too high for
the exp(delta*A) decays, fp16 overflow), and ESPnet's trainer then skips every
update with a warning and trains on for hours doing nothing. This model
raises an actionable error after ``nonfinite_loss_patience`` consecutive
training batches whose loss is NaN or Inf.

The guard behaves the same on every device and every rank. While it is on, the
scan's own per-call NaN check (on by default for CPU tensors only) is off in
training, so a NaN reaches the loss on a CPU as it does on a GPU, instead of
raising at once on one and not on the other (set ESPNET_MAMBA_CHECK_FINITE to
choose for yourself). Under DDP every rank learns whether any rank's loss was
non-finite (one all-reduce of a flag per batch), so all ranks count the same
batches and raise the same error at the same step, instead of one rank raising
and the others waiting in the next all-reduce until the NCCL timeout.

One validation statistic differs: ESPnet's ``cer_ctc`` reads the CTC argmax of
every frame, padding included. Our encoders zero their padded frames, whose
CTC output is then the output layer's bias, which can be a non-blank token: a
ConMamba whose greedy CTC CER on FSDD dev is 1.5% was logged at 18%. Here padded
frames count as blank.
"""

import contextlib
import inspect
import logging
import os

import torch

from espnet_mamba.asr.conf_keys import checked_conf
from espnet_mamba.asr.espnet_compat import ESPnetASRModel
from espnet_mamba.nn.lengths import valid_mask
from espnet_mamba.ops.selective_scan import CHECK_FINITE_ENV

logger = logging.getLogger("espnet_mamba")


class MambaASRModel(ESPnetASRModel):
    """ESPnetASRModel plus ``model_conf`` key ``nonfinite_loss_patience`` (0 disables the guard)."""

    def __init__(self, *args, nonfinite_loss_patience: int = 20, **kwargs):
        if nonfinite_loss_patience < 0:
            raise ValueError(f"model_conf: nonfinite_loss_patience must be >= 0, got {nonfinite_loss_patience}")
        super().__init__(*args, **kwargs)
        self.nonfinite_loss_patience = nonfinite_loss_patience
        self._nonfinite_in_a_row = 0

    def forward(self, *args, **kwargs):
        if not (self.training and self.nonfinite_loss_patience):
            return super().forward(*args, **kwargs)
        with _scan_nan_check_left_to_the_guard():
            loss, stats, weight = super().forward(*args, **kwargs)
        bad_ranks = _ranks_with_nonfinite(loss.detach())
        if not bad_ranks:
            self._nonfinite_in_a_row = 0
            return loss, stats, weight
        self._nonfinite_in_a_row += 1
        parts = {k: float(v) for k, v in stats.items() if k.startswith("loss") and v is not None}
        where = f" on rank {', '.join(map(str, bad_ranks))}" if _world_size() > 1 else ""
        logger.warning("non-finite loss%s (%d in a row); this rank's losses: %s",
                       where, self._nonfinite_in_a_row, parts)
        if self._nonfinite_in_a_row >= self.nonfinite_loss_patience:
            raise FloatingPointError(
                f"{self._nonfinite_in_a_row} training batches in a row had a NaN/Inf loss{where} "
                f"(last on this rank: {parts}). Training is not progressing. Try a lower optim_conf.lr "
                f"or more scheduler warmup, grad_clip, use_amp: false (or bf16), and check the "
                f"data for empty or corrupt audio. Resume from the last good checkpoint with "
                f"--resume true. (model_conf.nonfinite_loss_patience sets this limit.)")
        return loss, stats, weight

    def _calc_ctc_loss(self, encoder_out, encoder_out_lens, ys_pad, ys_pad_lens):
        loss_ctc = self.ctc(encoder_out, encoder_out_lens, ys_pad, ys_pad_lens)
        cer_ctc = None
        if not self.training and self.error_calculator is not None:
            ys_hat = self.ctc.argmax(encoder_out)                              # batch, T
            ys_hat = ys_hat.masked_fill(~valid_mask(encoder_out_lens, ys_hat.size(1)), self.blank_id)
            cer_ctc = self.error_calculator(ys_hat.cpu(), ys_pad.cpu(), is_ctc=True)
        return loss_ctc, cer_ctc


def _world_size() -> int:
    dist = torch.distributed
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def _ranks_with_nonfinite(loss: torch.Tensor) -> list:
    """The ranks whose loss is NaN/Inf ([0] or [] outside DDP): one all-reduce of a flag per rank,
    so every rank gets the same answer and takes the same decision."""
    flag = (~torch.isfinite(loss)).any().float()
    world = _world_size()
    if world == 1:
        return [0] if bool(flag) else []
    flags = torch.zeros(world, dtype=torch.float32, device=loss.device)
    flags[torch.distributed.get_rank()] = flag
    torch.distributed.all_reduce(flags)
    return [rank for rank, value in enumerate(flags.tolist()) if value]


@contextlib.contextmanager
def _scan_nan_check_left_to_the_guard():
    """Turn the scan's per-call NaN check off (it raises at once, and only for CPU tensors by
    default), unless the user set ESPNET_MAMBA_CHECK_FINITE: the guard then sees the NaN loss."""
    if CHECK_FINITE_ENV in os.environ:
        yield
        return
    os.environ[CHECK_FINITE_ENV] = "0"
    try:
        yield
    finally:
        os.environ.pop(CHECK_FINITE_ENV, None)


# Expose ESPnetASRModel's keyword arguments (plus ours) in the signature, so that
# ESPnet's --print_config and config dumps list every model_conf key with its default.
_base = inspect.signature(ESPnetASRModel.__init__)
_ours = inspect.signature(MambaASRModel.__init__).parameters["nonfinite_loss_patience"]
MambaASRModel.__init__.__signature__ = _base.replace(
    parameters=list(_base.parameters.values()) + [_ours])
MambaASRModel = checked_conf("model_conf")(MambaASRModel)
