"""Precision and quantization on a CPU (issue 31, findings 1, 4, 8, 9).

Every encoder and the decoder run in fp16, bf16, fp32 and fp64 and are compared
with the same weights in fp64; ESPnet's Speech2Text decodes with ``dtype=...``
and with ``quantize_asr_model=True`` (dynamic int8), as ``asr_inference
--dtype`` and ``--quantize_asr_model true`` do; bf16 autocast training runs
forward and backward.
"""

import copy
from pathlib import Path

import pytest
import torch
import yaml

import espnet_mamba  # noqa: F401  (registers)
from espnet2.bin.asr_inference import Speech2Text
from espnet2.tasks.asr import ASRTask
from espnet_mamba.asr.decoder import MambaDecoder
from espnet_mamba.asr.encoder import ConMambaEncoder, MambaEncoder
from espnet_mamba.nn import Mamba, MambaBlock, build_mixer

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ROOT / "test" / "configs"
TOKENS = ["<blank>", "<unk>", "<space>", "a", "b", "c", "<sos/eos>"]
DTYPES = [torch.float16, torch.bfloat16, torch.float32, torch.float64]
DTYPE_IDS = ["fp16", "bf16", "fp32", "fp64"]
# largest |error| relative to the largest |reference value|, reference = same weights in fp64
TOLERANCE = {torch.float16: 2e-2, torch.bfloat16: 1e-1, torch.float32: 1e-4, torch.float64: 1e-9}
QDYNAMIC_LINEAR = torch.ao.nn.quantized.dynamic.Linear


def relative_error(out: torch.Tensor, ref: torch.Tensor) -> float:
    return float((out.double() - ref.double()).abs().max() / ref.double().abs().max())


def rms_norm_reference(x, weight, eps):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * weight


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_blocks_with_fp32_residual_run_in_every_dtype(dtype):
    """Finding 1: block 2's norm receives block 1's fp32 residual; a model in fp16/bf16/fp64 failed."""
    blocks = [MambaBlock(16, build_mixer(16, "add"), residual_in_fp32=True) for _ in range(2)]
    x = torch.randn(2, 11, 16, dtype=torch.float64)
    lengths = torch.tensor([11, 7])
    with torch.no_grad():
        ref = x
        for block in blocks:  # reference: the block written out, in fp64
            b = copy.deepcopy(block).double()
            ref = ref + b.mixer(rms_norm_reference(ref, b.norm.weight, b.norm.eps), lengths)
        out = x.to(dtype)
        for block in blocks:
            out = copy.deepcopy(block).to(dtype)(out, lengths)
    assert out.dtype == torch.promote_types(dtype, torch.float32)  # fp64 is never narrowed to fp32
    assert relative_error(out, ref) < TOLERANCE[dtype]


ENCODERS = {
    "mamba-causal": lambda **kw: MambaEncoder(20, output_size=32, num_blocks=2, bidirectional="none",
                                              dropout_rate=0.0, **kw),
    "mamba-add-interctc": lambda **kw: MambaEncoder(20, output_size=32, num_blocks=2, bidirectional="add",
                                                    dropout_rate=0.0, interctc_layer_idx=[1], **kw),
    "mamba-concat-linear": lambda **kw: MambaEncoder(20, output_size=32, num_blocks=2, bidirectional="concat",
                                                     input_layer="linear", dropout_rate=0.0, **kw),
    "conmamba": lambda **kw: ConMambaEncoder(20, output_size=32, num_blocks=2, linear_units=64,
                                             cnn_module_kernel=7, dropout_rate=0.0, **kw),
}


def _encode(enc, xs, ilens):
    out, olens, _ = enc(xs, ilens)
    if isinstance(out, tuple):  # (output, [(layer, hidden)]) with intermediate CTC
        out, inter = out
        return out, olens, inter[0][1]
    return out, olens, None


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("name", ENCODERS)
def test_encoder_inference_in_every_dtype(name, dtype):
    enc = ENCODERS[name]().eval()
    xs, ilens = torch.randn(2, 60, 20), torch.tensor([60, 41])
    with torch.no_grad():
        ref, ref_lens, ref_inter = _encode(copy.deepcopy(enc).double(), xs.double(), ilens)
        out, olens, inter = _encode(copy.deepcopy(enc).to(dtype), xs.to(dtype), ilens)
    assert out.dtype == dtype and torch.equal(olens, ref_lens)
    assert relative_error(out, ref) < TOLERANCE[dtype]
    if ref_inter is not None:
        assert inter.dtype == dtype and relative_error(inter, ref_inter) < TOLERANCE[dtype]


def _decoder():
    return MambaDecoder(len(TOKENS), 32, attention_heads=4, linear_units=64, num_blocks=2,
                        dropout_rate=0.0, src_attention_dropout_rate=0.0).eval()


YS = torch.tensor([[6, 3, 2, 4, 5, 3], [6, 5, 5, 3, 2, 4]])


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_decoder_inference_in_every_dtype(dtype):
    dec = _decoder()
    memory, memory_lens = torch.randn(2, 17, 32), torch.tensor([17, 11])
    ys_lens = torch.tensor([6, 6])
    with torch.no_grad():
        ref = torch.log_softmax(copy.deepcopy(dec).double()(memory.double(), memory_lens, YS, ys_lens)[0], -1)
        low = copy.deepcopy(dec).to(dtype)
        logits, _ = low(memory.to(dtype), memory_lens, YS, ys_lens)
        assert logits.dtype == dtype
        assert relative_error(torch.log_softmax(logits.to(torch.promote_types(dtype, torch.float32)), -1),
                              ref) < TOLERANCE[dtype]
        for b in range(2):  # recurrent scoring in the same dtype follows the fp64 teacher forcing
            x = memory[b, :memory_lens[b]].to(dtype)
            states = [low.init_state(x)]
            assert all(s.conv.dtype == dtype for s in states[0].layers)
            for t in range(YS.size(1)):
                logp, states = low.batch_score(YS[b:b + 1, :t + 1], states, x[None])
                assert relative_error(logp[0], ref[b, t]) < TOLERANCE[dtype]


def _conv_input_dtype(mixer: Mamba, like: torch.Tensor) -> torch.dtype:
    """What the CUDA conv-update kernel receives as x: the dtype in_proj produces right now."""
    return mixer.in_proj(like.new_zeros(1, mixer.d_model)).dtype


@pytest.mark.parametrize("encoder_dtype", [torch.float64, torch.float16], ids=["enc-fp64", "enc-fp16"])
def test_decoder_conv_state_takes_the_decoders_dtype_not_the_encoders(encoder_dtype):
    """Finding 4: the conv state was allocated in the encoder output's dtype; the CUDA update
    kernel needs the conv input's dtype (the decoder's, or autocast's)."""
    dec = _decoder()
    x = torch.randn(13, 32)
    with torch.no_grad():
        ref_logp, _ = dec.batch_score(YS[:1, :1], [dec.init_state(x)], x[None])
        state = dec.init_state(x.to(encoder_dtype))
        want = _conv_input_dtype(dec.decoders[0].mixer, torch.zeros(1))
        assert want == torch.float32 and all(s.conv.dtype == want for s in state.layers)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            auto_state = dec.init_state(x)
            want = _conv_input_dtype(dec.decoders[0].mixer, torch.zeros(1))
            assert want == torch.bfloat16 and all(s.conv.dtype == want for s in auto_state.layers)
            logp, new = dec.batch_score(YS[:1, :1], [auto_state], x[None])
            assert all(s.conv.dtype == torch.bfloat16 for s in new[0].layers)
            # a state allocated outside autocast and used under it is converted, not mixed
            logp2, new2 = dec.batch_score(YS[:1, :1], [dec.init_state(x)], x[None])
            assert all(s.conv.dtype == torch.bfloat16 for s in new2[0].layers)
    assert relative_error(logp[0], ref_logp[0]) < TOLERANCE[torch.bfloat16]
    assert torch.equal(logp, logp2)


def test_bf16_autocast_training_of_every_encoder_and_the_decoder():
    torch.manual_seed(0)
    xs, ilens = torch.randn(2, 60, 20), torch.tensor([60, 41])
    dec = MambaDecoder(len(TOKENS), 32, attention_heads=4, linear_units=64, num_blocks=1)
    for name, factory in ENCODERS.items():
        enc = factory().train()
        modules = torch.nn.ModuleList([enc, dec])
        losses = {}
        for autocast in (False, True):
            modules.zero_grad()
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
                hs, hlens, _ = _encode(enc, xs, ilens)
                logits, _ = dec(hs, hlens, YS, torch.tensor([6, 4]))
                loss = torch.nn.functional.cross_entropy(logits.float().transpose(1, 2), YS)
            loss.backward()
            grads = [p.grad for p in modules.parameters()]
            assert all(g is not None and torch.isfinite(g).all() for g in grads), name
            losses[autocast] = float(loss)
        assert abs(losses[True] - losses[False]) < 0.05 * abs(losses[False]), (name, losses)


@pytest.mark.parametrize("config", ["mamba_mamba.yaml", "conmamba_transformer.yaml"])
def test_asr_model_bf16_autocast_training_step(config):
    args = ASRTask.get_parser().parse_args(["--config", str(CONFIGS / config)])
    args.token_list = TOKENS
    model = ASRTask.build_model(args).train()
    speech, speech_lengths = torch.randn(2, 8000), torch.tensor([8000, 6000])
    text, text_lengths = torch.tensor([[3, 2, 4], [5, -1, -1]]), torch.tensor([3, 1])
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss, _, _ = model(speech, speech_lengths, text, text_lengths)
    loss.backward()
    assert torch.isfinite(loss)
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)
    assert model.encoder.encoders[0].mixer.forward_mixer.in_proj.weight.grad.abs().sum() > 0


# ---- ESPnet's Speech2Text: --dtype and --quantize_asr_model ----

@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    """config.yaml + model.pth of a randomly initialised model, written like ESPnet's trainer does."""
    out = tmp_path_factory.mktemp("tiny_model")
    args = ASRTask.get_parser().parse_args(["--config", str(CONFIGS / "mamba_mamba.yaml")])
    args.token_list = TOKENS
    torch.manual_seed(0)
    model = ASRTask.build_model(args)
    with torch.no_grad():  # a sharper output layer makes the beam's choices far apart
        model.decoder.output_layer.weight.mul_(8.0)
    torch.save(model.state_dict(), out / "model.pth")
    (out / "config.yaml").write_text(yaml.safe_dump(vars(args)))
    return out


def _decode(model_dir, speech, **kwargs):
    s2t = Speech2Text(str(model_dir / "config.yaml"), str(model_dir / "model.pth"), device="cpu",
                      beam_size=3, maxlenratio=0.0, minlenratio=0.0, nbest=1, **kwargs)
    result = s2t(speech)
    if isinstance(result, tuple):  # (n-best, intermediate CTC) when interctc is on
        result = result[0]
    text, tokens, token_ids, hyp = result[0]
    return s2t, token_ids, float(hyp.score)


SPEECH = torch.randn(6000, generator=torch.Generator().manual_seed(1))


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_speech2text_decodes_in_every_dtype(tiny_model, dtype):
    """Finding 8: --dtype float64 (and half) batch beam search failed with a dtype mismatch.

    ESPnet's own CTC prefix scorer cannot run in fp16 (its -1e10 'log zero' overflows),
    so fp16 decodes with the attention decoder alone."""
    ctc_weight = 0.0 if dtype == torch.float16 else 0.3
    _, ref_ids, ref_score = _decode(tiny_model, SPEECH, dtype="float64", ctc_weight=ctc_weight)
    s2t, ids, score = _decode(tiny_model, SPEECH, dtype=str(dtype).split(".")[1], ctc_weight=ctc_weight)
    assert next(s2t.asr_model.parameters()).dtype == dtype
    assert ids == ref_ids and len(ids) > 0
    score_tolerance = {torch.float16: 2e-2, torch.bfloat16: 2e-2, torch.float32: 1e-5, torch.float64: 1e-9}
    assert abs(score - ref_score) <= score_tolerance[dtype] * abs(ref_score)


def test_speech2text_with_quantized_model(tiny_model):
    """Finding 9: --quantize_asr_model true failed in Mamba._ssm_inputs (dt_proj.weight.t())."""
    s2t, ids, score = _decode(tiny_model, SPEECH, quantize_asr_model=True, ctc_weight=0.3)
    model = s2t.asr_model
    assert isinstance(model.decoder.decoders[0].mixer.dt_proj, QDYNAMIC_LINEAR)
    assert isinstance(model.encoder.encoders[0].mixer.forward_mixer.in_proj, QDYNAMIC_LINEAR)
    _, ref_ids, ref_score = _decode(tiny_model, SPEECH, ctc_weight=0.3)
    assert ids == ref_ids and len(ids) > 0
    assert abs(score - ref_score) < 0.05 * abs(ref_score)


def test_quantized_dt_proj_is_read_exactly():
    """Only dt_proj quantized: the scan and the step must equal a float mixer whose dt_proj
    holds the dequantized int8 weight (no activation rounding is involved on this path)."""
    mixer = Mamba(32).eval()
    qmixer = torch.ao.quantization.quantize_dynamic(
        copy.deepcopy(mixer), {"dt_proj": torch.ao.quantization.default_dynamic_qconfig}, torch.qint8)
    assert isinstance(qmixer.dt_proj, QDYNAMIC_LINEAR) and not isinstance(qmixer.in_proj, QDYNAMIC_LINEAR)
    with torch.no_grad():
        mixer.dt_proj.weight.copy_(qmixer.dt_proj.weight().dequantize())
        assert not torch.equal(mixer.dt_proj.weight, qmixer.dt_proj.weight().int_repr().float())
    x = torch.randn(2, 9, 32)
    with torch.no_grad():
        ref = mixer(x)
        assert torch.allclose(qmixer(x), ref, atol=1e-6)
        state, qstate = mixer.allocate_state(2), qmixer.allocate_state(2)
        for t in range(9):
            assert torch.allclose(qmixer.step(x[:, t], qstate)[0], mixer.step(x[:, t], state)[0], atol=1e-6)
            assert torch.allclose(qstate.ssm, state.ssm, atol=1e-6)


@pytest.mark.parametrize("qdtype", [torch.qint8, torch.float16], ids=["qint8", "float16"])
def test_quantized_mamba_forward_and_step_stay_close_to_float(qdtype):
    """Every Linear quantized (ESPnet's --quantize_dtype qint8 or float16): the scan and the
    recurrent step (allocate_state, step) both run and stay close to the float mixer
    (dynamic int8 quantization scales each call's activations by their own range, so scan
    and step differ by rounding, not more)."""
    mixer = Mamba(32).eval()
    qmixer = torch.ao.quantization.quantize_dynamic(copy.deepcopy(mixer), {torch.nn.Linear}, qdtype)
    assert isinstance(qmixer.dt_proj, QDYNAMIC_LINEAR) and isinstance(qmixer.in_proj, QDYNAMIC_LINEAR)
    x = torch.randn(2, 9, 32)
    with torch.no_grad():
        ref = mixer(x)
        full = qmixer(x)
        state = qmixer.allocate_state(2)
        assert state.conv.dtype == torch.float32 and state.ssm.dtype == torch.float32
        steps = torch.stack([qmixer.step(x[:, t], state)[0] for t in range(9)], dim=1)
    assert relative_error(full, ref) < 0.1
    assert relative_error(steps, ref) < 0.1
