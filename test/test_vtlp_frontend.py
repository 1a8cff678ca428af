"""VTLP front end: the warp moves tones where the forward warp formula says, and is ESPnet's
DefaultFrontend exactly whenever it is not training."""

import math

import pytest
import torch
from espnet2.asr.frontend.default import DefaultFrontend

import espnet_mamba  # noqa: F401  (registers)
from espnet2.tasks.asr import ASRTask, frontend_choices
from espnet_mamba.asr.frontend import VtlpFrontend
from espnet_mamba.asr.frontend.vtlp import warp_power_spectrum

FS = 16000
N_FFT = 512
FRONTEND = dict(fs=FS, n_fft=N_FFT, win_length=400, hop_length=160, n_mels=40, fmax=4000)


def forward_warp(f: float, alpha: float, boundary: float, nyquist: float = FS / 2) -> float:
    """Where frequency f lands: the textbook piecewise-linear VTLP warp, written forwards."""
    f0 = boundary * min(alpha, 1.0) / alpha
    if f <= f0:
        return alpha * f
    return alpha * f0 + (nyquist - alpha * f0) * (f - f0) / (nyquist - f0)


def tone_power(freq_hz: float) -> torch.Tensor:
    t = torch.arange(FS, dtype=torch.float64) / FS
    spec = torch.stft(torch.sin(2 * math.pi * freq_hz * t), N_FFT, hop_length=160,
                      window=torch.hann_window(N_FFT, dtype=torch.float64), return_complex=True)
    return spec.abs().pow(2).T[None]  # (1, T, F)


@pytest.mark.parametrize("freq_hz, alpha", [(1000, 1.2), (1000, 0.8), (3000, 1.25), (6000, 1.25),
                                            (6000, 0.8), (500, 0.9), (7500, 1.1)])
def test_a_tone_moves_where_the_forward_warp_sends_it(freq_hz, alpha):
    warped = warp_power_spectrum(tone_power(freq_hz), torch.tensor([alpha]), FS, boundary_hz=4800)
    peak_bin = int(warped[0, 20].argmax())
    expected_bin = forward_warp(freq_hz, alpha, 4800) / (FS / N_FFT)
    assert abs(peak_bin - expected_bin) <= 1.0, (peak_bin, expected_bin)


def test_alpha_one_is_the_identity_and_the_band_edges_stay():
    power = torch.rand(3, 7, N_FFT // 2 + 1, dtype=torch.float64)
    same = warp_power_spectrum(power, torch.ones(3), FS, boundary_hz=4800)
    torch.testing.assert_close(same, power)
    for alpha in (0.8, 1.25):
        warped = warp_power_spectrum(power, torch.tensor([alpha] * 3), FS, boundary_hz=4800)
        torch.testing.assert_close(warped[..., 0], power[..., 0])    # 0 Hz stays at 0 Hz
        torch.testing.assert_close(warped[..., -1], power[..., -1])  # fs/2 stays at fs/2
        assert torch.isfinite(warped).all()


def test_each_utterance_gets_its_own_alpha():
    power = tone_power(1000).expand(2, -1, -1)
    warped = warp_power_spectrum(power, torch.tensor([0.8, 1.25]), FS, boundary_hz=4800)
    assert int(warped[0, 20].argmax()) < int(warped[1, 20].argmax())


def test_outside_training_it_is_espnets_default_frontend():
    torch.manual_seed(0)
    speech, lengths = torch.randn(2, 8000), torch.tensor([8000, 6000])
    reference, ref_lengths = DefaultFrontend(**FRONTEND)(speech, lengths)
    vtlp = VtlpFrontend(warp_factor_range=[0.8, 1.25], **FRONTEND).eval()
    feats, feat_lengths = vtlp(speech, lengths)
    assert torch.equal(feats, reference) and torch.equal(feat_lengths, ref_lengths)
    off = VtlpFrontend(warp_factor_range=[1, 1], **FRONTEND).train()
    assert off.warp_factor_range is None and torch.equal(off(speech, lengths)[0], reference)
    on = VtlpFrontend(warp_factor_range=[0.8, 1.25], **FRONTEND).train()
    warped, _ = on(speech, lengths)
    assert warped.shape == reference.shape and not torch.allclose(warped, reference)


@pytest.mark.parametrize("conf, message", [
    (dict(warp_factor_range=[1.2, 0.9]), "warp_factor_range must be \\[low, high\\]"),
    (dict(warp_factor_range=[0.9]), "warp_factor_range must be \\[low, high\\]"),
    (dict(warp_boundary_hz=8000), "warp_boundary_hz must lie in \\(0, fs/2 = 8000\\)"),
    (dict(warp_factr_range=[0.9, 1.1]), "frontend_conf: unknown key 'warp_factr_range' for VtlpFrontend"),
])
def test_bad_settings_name_the_key(conf, message):
    with pytest.raises(ValueError, match=message):
        VtlpFrontend(**conf, **FRONTEND)


def test_yaml_frontend_vtlp_builds_and_trains(tmp_path):
    assert frontend_choices.get_class("vtlp") is VtlpFrontend
    cfg = tmp_path / "vtlp.yaml"
    cfg.write_text("frontend: vtlp\nfrontend_conf:\n    warp_factor_range: [0.9, 1.1]\n    n_mels: 20\n"
                   "encoder: conmamba\nencoder_conf:\n    output_size: 16\n    linear_units: 32\n"
                   "    num_blocks: 1\n    input_layer: conv2d\ndecoder: transformer\n"
                   "decoder_conf:\n    attention_heads: 2\n    linear_units: 32\n    num_blocks: 1\n")
    args = ASRTask.get_parser().parse_args(["--config", str(cfg)])
    args.token_list = ["<blank>", "<unk>", "a", "b", "<sos/eos>"]
    model = ASRTask.build_model(args)
    assert isinstance(model.frontend, VtlpFrontend) and model.frontend.warp_factor_range == (0.9, 1.1)
    loss, _, _ = model(torch.randn(2, 8000), torch.tensor([8000, 6000]),
                       torch.tensor([[2, 3], [3, -1]]), torch.tensor([2, 1]))
    loss.backward()
    assert torch.isfinite(loss)
