"""ESPnet's log-mel front end plus vocal tract length perturbation (VTLP) in training.

VTLP (Jaitly & Hinton, ICML 2013 workshop) stretches each training utterance's
spectrum along the frequency axis by a random factor alpha, as if a shorter
(alpha > 1) or longer (alpha < 1) vocal tract had spoken it: formants and pitch
harmonics move, the timing does not. Speed perturbation moves both together and
is drawn once per utterance when the data are written; VTLP is redrawn every
time an utterance is seen, so a corpus with few voices shows the model a new
voice per epoch. In eval mode (decoding, validation) the front end is exactly
ESPnet's ``DefaultFrontend``.

    frontend: vtlp
    frontend_conf:
        warp_factor_range: [0.9, 1.1]   # alpha ~ uniform per training utterance; null or [1, 1]: off
        warp_boundary_hz: 4800          # frequencies up to this (times min(alpha, 1)) scale by alpha,
                                        # the rest maps linearly so that fs/2 stays at fs/2
        n_fft: 512                      # ... and every key of ESPnet's default frontend
        n_mels: 80
"""

from typing import Optional, Sequence

import torch
from espnet2.asr.frontend.default import DefaultFrontend

from espnet_mamba.asr.conf_keys import checked_conf


def warp_power_spectrum(power: torch.Tensor, alphas: torch.Tensor, fs: float,
                        boundary_hz: float) -> torch.Tensor:
    """The spectrum each utterance would have with its frequencies f scaled to alpha * f.

    power: (B, T, F) power spectrum with F bins evenly spaced on 0..fs/2; alphas: (B,).
    Returns (B, T, F). The warp is piecewise linear: alpha * f up to f0 = boundary_hz *
    min(alpha, 1) / alpha, then a straight line from (f0, alpha * f0) to (fs/2, fs/2), so
    no energy leaves the band and none is invented at its top.
    """
    nyquist = fs / 2
    n_bins = power.size(-1)
    freqs = torch.linspace(0.0, nyquist, n_bins, device=power.device, dtype=power.dtype)  # (F,)
    alpha = alphas.to(power.dtype)[:, None]                                     # (B, 1)
    f0 = boundary_hz * torch.clamp(alpha, max=1.0) / alpha                      # (B, 1)
    # each output bin reads the input at the frequency the warp sends to it (the inverse warp)
    above = f0 + (freqs - alpha * f0) * (nyquist - f0) / (nyquist - alpha * f0)
    source = torch.where(freqs <= alpha * f0, freqs / alpha, above)             # (B, F) in Hz
    position = (source / nyquist * (n_bins - 1)).clamp(0, n_bins - 1)           # (B, F) in bins
    left = position.floor().clamp(max=n_bins - 2)
    weight = (position - left)[:, None, :]                                      # (B, 1, F)
    index = left.long()[:, None, :].expand(-1, power.size(1), -1)               # (B, T, F)
    below, upper = power.gather(-1, index), power.gather(-1, index + 1)
    return below + (upper - below) * weight


@checked_conf("frontend_conf", passes_rest_to=DefaultFrontend)
class VtlpFrontend(DefaultFrontend):
    """``DefaultFrontend`` whose power spectrum is frequency-warped in training.

    Args:
        warp_factor_range: [low, high]; each training utterance draws alpha uniformly
            from it. None or [1, 1] switches VTLP off.
        warp_boundary_hz: where the plain scaling by alpha ends (see ``warp_power_spectrum``);
            must lie below fs/2.
        **default_frontend_conf: ESPnet's ``DefaultFrontend`` keys (fs, n_fft, hop_length,
            n_mels, fmin, fmax, ...).
    """

    def __init__(self, warp_factor_range: Optional[Sequence[float]] = (0.9, 1.1),
                 warp_boundary_hz: float = 4800.0, **default_frontend_conf):
        super().__init__(**default_frontend_conf)
        self.fs = float(self.logmel.mel_options["sr"])  # DefaultFrontend parses "16k" but keeps it only here
        if warp_factor_range is not None:
            if (len(warp_factor_range) != 2 or not 0 < warp_factor_range[0] <= warp_factor_range[1]):
                raise ValueError(f"frontend_conf: warp_factor_range must be [low, high] with "
                                 f"0 < low <= high, got {list(warp_factor_range)}")
            warp_factor_range = (float(warp_factor_range[0]), float(warp_factor_range[1]))
            if warp_factor_range == (1.0, 1.0):
                warp_factor_range = None
        if not 0 < warp_boundary_hz < self.fs / 2:
            raise ValueError(f"frontend_conf: warp_boundary_hz must lie in (0, fs/2 = {self.fs / 2:g}), "
                             f"got {warp_boundary_hz}")
        self.warp_factor_range = warp_factor_range
        self.warp_boundary_hz = float(warp_boundary_hz)
        # DefaultFrontend hands the power spectrum straight to LogMel; a pre-hook there is the one
        # place to warp it without re-implementing ESPnet's STFT and channel handling
        self.logmel.register_forward_pre_hook(self._warp_in_training)

    def _warp_in_training(self, logmel, args):
        if not self.training or self.warp_factor_range is None:
            return None
        power = args[0]                                                         # (B, T, F)
        low, high = self.warp_factor_range
        alphas = low + (high - low) * torch.rand(power.size(0), device=power.device)
        return (warp_power_spectrum(power, alphas, self.fs, self.warp_boundary_hz),) + tuple(args[1:])

    def extra_repr(self) -> str:
        return f"warp_factor_range={self.warp_factor_range}, warp_boundary_hz={self.warp_boundary_hz:g}"
