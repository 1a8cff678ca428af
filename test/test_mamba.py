import pytest
import torch

from espnet_mamba.nn import BidirectionalMamba, Mamba, MambaBlock, build_mixer, reverse_within_lengths

# mamba_ssm.modules.mamba_simple.Mamba(d_model=32) with its defaults (d_state 16,
# d_conv 4, expand 2, dt_rank ceil(32/16)=2, bias False, conv_bias True), in
# state_dict order, as read from mamba-ssm 2.x's source.
MAMBA_SSM_KEYS_D32 = [
    ("A_log", (64, 16)),
    ("D", (64,)),
    ("in_proj.weight", (128, 32)),
    ("conv1d.weight", (64, 1, 4)),
    ("conv1d.bias", (64,)),
    ("x_proj.weight", (34, 64)),
    ("dt_proj.weight", (64, 2)),
    ("dt_proj.bias", (64,)),
    ("out_proj.weight", (32, 64)),
]


def test_state_dict_matches_mamba_ssm():
    got = [(k, tuple(v.shape)) for k, v in Mamba(32).state_dict().items()]
    assert got == MAMBA_SSM_KEYS_D32


def test_initialisation_matches_mamba_ssm_defaults():
    m = Mamba(32)
    assert torch.allclose(-torch.exp(m.A_log), -torch.arange(1, 17.0).repeat(64, 1))
    dt = torch.nn.functional.softplus(m.dt_proj.bias)
    assert dt.min() >= 1e-4 and dt.max() <= 0.1 + 1e-6
    assert torch.all(m.D == 1)


def test_step_by_step_equals_forward():
    m = Mamba(16, d_state=8)
    x = torch.randn(2, 25, 16)
    state = m.allocate_state(2)
    steps = []
    for t in range(25):
        y_t, state = m.step(x[:, t], state)
        steps.append(y_t)
    assert torch.allclose(torch.stack(steps, 1), m(x), atol=1e-5)


def test_forward_state_continues_with_step():
    m = Mamba(16)
    x = torch.randn(3, 12, 16)
    lengths = torch.tensor([12, 9, 4])
    _, state = m(x, lengths, return_state=True)
    nxt = torch.randn(3, 16)
    y_cont, _ = m.step(nxt, state)
    for b in range(3):
        ref_state = m.allocate_state(1)
        for t in range(int(lengths[b])):
            m.step(x[b:b + 1, t], ref_state)
        y_ref, _ = m.step(nxt[b:b + 1], ref_state)
        assert torch.allclose(y_cont[b], y_ref[0], atol=1e-5)


@pytest.mark.parametrize("mixer", ["none", "add", "mean", "concat"])
def test_padding_invariance(mixer):
    m = build_mixer(16, bidirectional=mixer, d_state=4)
    x = torch.randn(3, 15, 16)
    lengths = torch.tensor([15, 8, 3])
    x[1, 8:] = 1e3  # garbage in the padding must not leak
    x[2, 3:] = -7.0
    y = m(x, lengths)
    for b in range(3):
        alone = m(x[b:b + 1, :lengths[b]])
        assert torch.allclose(y[b, :lengths[b]], alone[0], atol=1e-5)
        assert torch.all(y[b, lengths[b]:] == 0)


def test_reverse_within_lengths():
    x = torch.arange(10.0).view(2, 5, 1)
    r = reverse_within_lengths(x, torch.tensor([5, 3]))
    assert r[0, :, 0].tolist() == [4, 3, 2, 1, 0]
    assert r[1, :, 0].tolist() == [7, 6, 5, 8, 9]
    assert torch.equal(reverse_within_lengths(r, torch.tensor([5, 3])), x)


def test_bidirectional_sees_the_future():
    bi = BidirectionalMamba(8, combine="add")
    x = torch.randn(1, 10, 8)
    x2 = x.clone()
    x2[0, 9] += 1.0
    assert not torch.allclose(bi(x)[0, 0], bi(x2)[0, 0])  # first frame depends on the last
    uni = Mamba(8)
    assert torch.allclose(uni(x)[0, :9], uni(x2)[0, :9])  # causal: it does not


def test_shared_input_projection():
    bi = BidirectionalMamba(8, share_input_projection=True)
    assert bi.forward_mixer.in_proj is bi.backward_mixer.in_proj
    separate = BidirectionalMamba(8)
    n = lambda mod: sum(p.numel() for p in mod.parameters())  # noqa: E731
    assert n(separate) - n(bi) == bi.forward_mixer.in_proj.weight.numel()


def test_block_residual_and_fp32_residual():
    block = MambaBlock(8, Mamba(8), residual_in_fp32=True)
    x = torch.randn(2, 6, 8)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = block(x.bfloat16())
    assert y.dtype == torch.float32 and torch.isfinite(y).all()
    plain = MambaBlock(8, Mamba(8))
    with torch.no_grad():
        plain.mixer.out_proj.weight.zero_()
    assert torch.equal(plain(x), x)  # zero mixer output: pure residual


def test_fp16_directions_sum_without_overflow():
    bi = BidirectionalMamba(8, combine="add")
    big = torch.full((1, 4, 8), 40000.0, dtype=torch.float16)
    ahead, behind = big, big
    total = (ahead.float() + behind.float())
    assert torch.isinf((ahead + behind)).all()  # what a plain fp16 add would do
    assert torch.isfinite(total).all()
    bi.forward_mixer.forward = lambda h, lengths=None: big  # noqa: E731
    bi.backward_mixer.forward = lambda h, lengths=None: big  # noqa: E731
    bi.combine = "mean"
    assert torch.isfinite(bi(torch.zeros(1, 4, 8, dtype=torch.float16))).all()


def test_mixed_precision_training_step_has_finite_gradients():
    block = MambaBlock(16, build_mixer(16, bidirectional="add"), residual_in_fp32=True)
    x = torch.randn(2, 20, 16, requires_grad=True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = block(x, torch.tensor([20, 13])).float().pow(2).mean()
    loss.backward()
    grads = [p.grad for p in block.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)


def test_bad_input_errors():
    m = Mamba(8)
    with pytest.raises(ValueError, match="'hidden' must be \\(batch, L, d_model=8\\)"):
        m(torch.randn(2, 5, 7))
    with pytest.raises(ValueError, match="'lengths' must be a 1-D tensor"):
        m(torch.randn(2, 5, 8), torch.tensor([5]))
    with pytest.raises(ValueError, match="'lengths' has values in \\[3, 9\\]"):
        m(torch.randn(2, 5, 8), torch.tensor([9, 3]))
    with pytest.raises(ValueError, match="'hidden_t' must be"):
        m.step(torch.randn(2, 1, 8), m.allocate_state(2))
    with pytest.raises(ValueError, match="'u' contains NaN"):
        m(torch.full((1, 4, 8), float("nan")))
    with pytest.raises(ValueError, match="bidirectional='both'"):
        build_mixer(8, bidirectional="both")
