"""Streaming encoder (espnet_mamba.asr.streaming): chunk by chunk equals the offline encoder.

The reference is ESPnet's own offline path, ``ESPnetASRModel.encode`` on the whole
utterance (ESPnet's front end with torch.stft's reflect padding, its
normalisation, the encoder's forward): the streaming encoder never runs it.
"""

from pathlib import Path

import numpy as np
import pytest
import torch

from transcribe_model import ROOT, build_random_model

FS = 16000
HOP = 80     # test/configs/mamba_mamba.yaml: n_fft 256, hop_length 80


def causal_config(tmp: Path, text: str = None, **replace) -> Path:
    text = text or (ROOT / "test/configs/mamba_mamba.yaml").read_text()
    text = text.replace("bidirectional: add", "bidirectional: none")
    for old, new in replace.items():
        assert old in text, old
        text = text.replace(old, new)
    path = tmp / "config.yaml"
    path.write_text(text)
    return path


def load(exp: Path):
    import espnet_mamba  # noqa: F401
    from espnet2.tasks.asr import ASRTask

    model, _ = ASRTask.build_model_from_file(exp / "config.yaml", exp / "valid.acc.ave.pth", "cpu")
    return model.eval()


def make_model(tmp: Path, seed=0, stats_file=None, **replace):
    tmp.mkdir(parents=True, exist_ok=True)
    return load(build_random_model(tmp / "exp", config=causal_config(tmp, **replace), seed=seed,
                                   stats_file=stats_file))


def offline(model, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        enc, _ = model.encode(x[None], torch.tensor([x.numel()]))
    return enc[0] if isinstance(enc, tuple) else enc


def stream(encoder, x: torch.Tensor, sizes) -> torch.Tensor:
    """Feed x in chunks of the given sizes (the last one final), concatenate the outputs."""
    outs, pos = [], 0
    for i, n in enumerate(sizes):
        outs.append(encoder(x[pos:pos + n], is_final=i == len(sizes) - 1))
        pos += n
    assert pos == x.numel()
    return torch.cat(outs, dim=1)


def fixed(total, size):
    return [size] * (total // size) + ([total % size] if total % size else [])


def random_sizes(total, seed, high=3000):
    rng = np.random.default_rng(seed)
    sizes = []
    while sum(sizes) < total:
        sizes.append(int(rng.integers(0, high)))   # zero-sample chunks included
    sizes[-1] -= sum(sizes) - total
    return sizes + [0]


def speech(seconds, seed=0):
    g = torch.Generator().manual_seed(seed)
    n = int(seconds * FS)
    t = torch.arange(n) / FS
    return 0.2 * torch.sin(2 * torch.pi * 300 * t) * torch.rand(n, generator=g) + 0.05 * torch.randn(n, generator=g)


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Many tiny chunks: one thread is several times faster than two on a shared CPU."""
    saved = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(saved)


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return make_model(tmp_path_factory.mktemp("causal"))


def max_err(a, b):
    assert a.shape == b.shape, (a.shape, b.shape)
    return float((a - b).abs().max())


@pytest.mark.parametrize("chunk", ["one_frame", "160ms", "640ms", "random", "one_sample_start"])
def test_stream_equals_offline(model, chunk):
    """Chunks of one STFT hop, 160 ms, 640 ms, random sizes (zero-sample chunks among them);
    the utterance ends mid-frame (a length that is no multiple of the hop)."""
    from espnet_mamba.asr.streaming import StreamingEncoder

    x = speech(1.2345, seed=1)
    assert x.numel() % HOP
    sizes = {"one_frame": fixed(x.numel(), HOP), "160ms": fixed(x.numel(), FS * 160 // 1000),
             "640ms": fixed(x.numel(), FS * 640 // 1000), "random": random_sizes(x.numel(), 0),
             "one_sample_start": [1] * 200 + fixed(x.numel() - 200, 777)}[chunk]
    ref = offline(model, x)
    assert max_err(stream(StreamingEncoder(model), x, sizes), ref) < 1e-4


def test_several_streams_and_random_models(tmp_path):
    """Random models (other seeds, other input layers), several streams one after another
    through one StreamingEncoder (each final chunk resets it)."""
    from espnet_mamba.asr.streaming import StreamingEncoder

    for seed, layer in [(1, "conv2d6"), (2, "linear"), (3, "conv2d8")]:
        model = make_model(tmp_path / f"m{seed}", seed=seed, **{"input_layer: conv2d": f"input_layer: {layer}"})
        encoder = StreamingEncoder(model)
        for k in range(2):
            x = speech(0.9 + 0.3 * k, seed=seed + k)
            got = stream(encoder, x, random_sizes(x.numel(), seed + k, high=5000))
            assert max_err(got, offline(model, x)) < 1e-4, (seed, layer, k)


@pytest.mark.parametrize("frontend", ["n_fft: 512\n    win_length: 400\n    hop_length: 160\n    n_mels: 40",
                                      "n_fft: 255\n    hop_length: 64\n    n_mels: 20",
                                      "n_fft: 256\n    hop_length: 80\n    n_mels: 20\n    center: false"])
def test_other_front_ends(tmp_path, frontend):
    """The demo's front end (win_length 400 < n_fft 512, hop 160), an odd n_fft, center: false."""
    from espnet_mamba.asr.streaming import StreamingEncoder

    model = make_model(tmp_path, seed=9, **{"n_fft: 256\n    hop_length: 80\n    n_mels: 20": frontend})
    encoder = StreamingEncoder(model)
    x = speech(1.3, seed=9)
    for sizes in (fixed(x.numel(), 160), fixed(x.numel(), 2560), random_sizes(x.numel(), 9)):
        assert max_err(stream(encoder, x, sizes), offline(model, x)) < 1e-4


def test_global_mvn_streams(tmp_path):
    from espnet_mamba.asr.streaming import StreamingEncoder

    stats = tmp_path / "feats_stats.npz"
    rng = np.random.default_rng(0)
    np.savez(stats, count=np.array(1000.0), sum=rng.standard_normal(20) * 1000 - 5000,
             sum_square=np.full(20, 40000.0))
    model = make_model(tmp_path, stats_file=str(stats))
    assert type(model.normalize).__name__ == "GlobalMVN"
    x = speech(1.0, seed=4)
    assert max_err(stream(StreamingEncoder(model), x, fixed(x.numel(), 2560)), offline(model, x)) < 1e-4


def test_causal_conmamba_streams(tmp_path):
    """ConMamba with cnn_module_causal: true and bidirectional: none (its BatchNorm in eval
    mode, with non-trivial running statistics, is per frame)."""
    from espnet_mamba.asr.streaming import StreamingEncoder

    text = (ROOT / "test/configs/conmamba_transformer.yaml").read_text()
    assert "cnn_module_kernel" in text
    cfg = causal_config(tmp_path, text=text)
    text = cfg.read_text().replace("cnn_module_kernel:", "cnn_module_causal: true\n    cnn_module_kernel:")
    if "bidirectional:" not in text:
        text = text.replace("encoder_conf:", "encoder_conf:\n    bidirectional: none")
    cfg.write_text(text)
    model = load(build_random_model(tmp_path / "exp", config=cfg, seed=5))
    for layer in model.encoder.encoders:
        assert layer.conv_module.causal
        layer.conv_module.norm.running_mean.uniform_(-1, 1)
        layer.conv_module.norm.running_var.uniform_(0.5, 2)
    x = speech(1.1, seed=5)
    ref = offline(model, x)
    encoder = StreamingEncoder(model)
    for sizes in (fixed(x.numel(), HOP * 4), fixed(x.numel(), 2560), random_sizes(x.numel(), 5)):
        assert max_err(stream(encoder, x, sizes), ref) < 1e-4


def test_causal_conmamba_offline_output_ignores_the_future(tmp_path):
    """The causal conv really is causal: cutting the audio leaves earlier frames unchanged."""
    text = (ROOT / "test/configs/conmamba_transformer.yaml").read_text()
    cfg = causal_config(tmp_path, text=text)
    text = cfg.read_text().replace("cnn_module_kernel:", "cnn_module_causal: true\n    cnn_module_kernel:")
    if "bidirectional:" not in text:
        text = text.replace("encoder_conf:", "encoder_conf:\n    bidirectional: none")
    cfg.write_text(text)
    model = load(build_random_model(tmp_path / "exp", config=cfg, seed=6))
    feats = torch.randn(1, 200, 20)
    with torch.no_grad():
        full, _, _ = model.encoder(feats, torch.tensor([200]))
        part, _, _ = model.encoder(feats[:, :120], torch.tensor([120]))
    full = full[0] if isinstance(full, tuple) else full
    part = part[0] if isinstance(part, tuple) else part
    assert max_err(full[:, :part.shape[1]], part) < 1e-5


def test_bidirectional_model_is_refused(tmp_path):
    import espnet_mamba  # noqa: F401
    from espnet_mamba.asr.streaming import NotStreamableError, StreamingEncoder

    model = load(build_random_model(tmp_path / "exp"))   # mamba_mamba.yaml: bidirectional: add
    with pytest.raises(NotStreamableError, match="bidirectional: none"):
        StreamingEncoder(model)


def test_non_causal_conmamba_is_refused(tmp_path):
    from espnet_mamba.asr.streaming import NotStreamableError, StreamingEncoder

    text = (ROOT / "test/configs/conmamba_transformer.yaml").read_text()
    cfg = causal_config(tmp_path, text=text)
    text = cfg.read_text()
    if "bidirectional:" not in text:
        text = text.replace("encoder_conf:", "encoder_conf:\n    bidirectional: none")
    cfg.write_text(text)
    model = load(build_random_model(tmp_path / "exp", config=cfg))
    with pytest.raises(NotStreamableError, match="cnn_module_causal"):
        StreamingEncoder(model)


def test_utterance_mvn_is_refused(model):
    from espnet2.layers.utterance_mvn import UtteranceMVN

    from espnet_mamba.asr.streaming import NotStreamableError, StreamingEncoder

    saved = model.normalize
    model.normalize = UtteranceMVN()
    try:
        with pytest.raises(NotStreamableError, match="utterance_mvn"):
            StreamingEncoder(model)
    finally:
        model.normalize = saved


def test_nan_chunk_raises_and_leaves_the_stream_intact(model):
    from espnet_mamba.asr.streaming import StreamingEncoder

    x = speech(1.0, seed=7)
    encoder = StreamingEncoder(model)
    first = encoder(x[:5000])
    bad = x[5000:6000].clone()
    bad[17] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        encoder(bad)
    with pytest.raises(ValueError, match="NaN"):
        encoder(torch.full((10,), float("inf")), is_final=True)   # a failed final call resets
    encoder(x[:5000])
    rest = encoder(x[5000:], is_final=True)
    assert max_err(torch.cat([first, rest], 1), offline(model, x)) < 1e-4


def test_too_short_streams_raise_too_short(model):
    from espnet_mamba.asr.espnet_compat import TooShortUttError
    from espnet_mamba.asr.streaming import StreamingEncoder

    encoder = StreamingEncoder(model)
    with pytest.raises(TooShortUttError):
        encoder(torch.zeros(0), is_final=True)            # an empty stream
    with pytest.raises(TooShortUttError, match="reflect padding"):
        encoder(torch.zeros(100), is_final=True)          # torch.stft offline: a RuntimeError
    with pytest.raises(RuntimeError):
        offline(model, torch.zeros(100))
    with pytest.raises(TooShortUttError, match="subsampling"):
        encoder(torch.zeros(200), is_final=True)          # 3 feature frames, conv2d needs 7
    with pytest.raises(TooShortUttError):                 # offline refuses it too
        offline(model, torch.zeros(200))
    x = speech(0.3)
    assert max_err(stream(encoder, x, [0, 0, x.numel(), 0]), offline(model, x)) < 1e-4


def test_bad_chunk_shapes(model):
    from espnet_mamba.asr.streaming import StreamingEncoder

    encoder = StreamingEncoder(model)
    with pytest.raises(ValueError, match="one channel"):
        encoder(torch.zeros(100, 2))
    x = speech(0.5, seed=8)
    got = torch.cat([encoder(x[:3000, None].numpy()),
                     encoder((x[3000:] * 32768).round().to(torch.int16), is_final=True)], 1)
    ref = offline(model, torch.cat([x[:3000], (x[3000:] * 32768).round() / 32768]))
    assert max_err(got, ref) < 1e-4


def test_float64_model_streams(model):
    """A model converted to float64 (asr_inference --dtype float64): chunks are cast to it."""
    import copy

    from espnet_mamba.asr.streaming import StreamingEncoder

    wide = copy.deepcopy(model).double()
    x = speech(0.8, seed=12)
    got = stream(StreamingEncoder(wide), x.float(), fixed(x.numel(), 1000))
    assert got.dtype == torch.float64
    assert max_err(got, offline(wide, x.double())) < 1e-9


def test_state_does_not_grow_with_the_stream(model):
    """Constant memory: what the encoder holds between chunks after 20 s equals what it holds
    after 1 s (samples kept for the STFT, frames for conv2d, each layer's conv and SSM state)."""
    from espnet_mamba.asr.streaming import StreamingEncoder

    encoder = StreamingEncoder(model)
    x = speech(20.0, seed=13)
    sizes = []
    for begin in range(0, x.numel(), 2560):
        encoder(x[begin:begin + 2560])
        sizes.append(encoder.state_numel())
    first_second = sizes[: FS // 2560]
    assert max(sizes) == max(first_second) and max(sizes) > 0
    assert encoder.frames_out > 400 and len(set(sizes[10:])) <= 3   # a few buffer phases, no growth
