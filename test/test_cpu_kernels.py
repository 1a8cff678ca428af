"""The compiled CPU kernels against the sequential reference, and how they are built and run."""

import multiprocessing
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from espnet_mamba.ops import causal_conv1d, selective_scan
from espnet_mamba.ops import cpu_kernels
from test_selective_scan import make, sequential_scan

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.skipif(cpu_kernels.load()[0] is None,
                                reason=f"compiled CPU kernels unavailable: {cpu_kernels.load()[1]}")


def full_inputs(batch, dim, length, n, bc, dtype=torch.float32):
    u, delta, A, B, C = make(batch, dim, length, n, bc, dtype=dtype)
    extra = [torch.randn(dim, dtype=dtype), torch.randn(batch, dim, length, dtype=dtype),
             torch.randn(dim, dtype=dtype), torch.randn(batch, dim, n, dtype=dtype)]
    return [u, delta, A, B, C] + extra  # ..., D, z, delta_bias, initial_state


@pytest.mark.parametrize("length", [1, 31, 32, 33, 200])
@pytest.mark.parametrize("bc", ["invariant", "variable", "grouped"])
def test_gradients_of_every_argument_match_sequential(length, bc):
    """Values and gradients for u, delta, A, B, C, D, z, delta_bias and the initial
    state, with a loss on the output and on the last state, several checkpoint chunks."""
    inputs = full_inputs(2, 6, length, 5, bc)
    w_y, w_last = torch.randn(2, 6, length, dtype=torch.float64), torch.randn(2, 6, 5, dtype=torch.float64)
    ref = [t.double().requires_grad_() for t in inputs]
    y_ref, last_ref = sequential_scan(*ref[:7], delta_bias=ref[7], delta_softplus=True,
                                      initial_state=ref[8])
    ((y_ref * w_y).sum() + (last_ref * w_last).sum()).backward()
    ours = [t.clone().requires_grad_() for t in inputs]
    y, last = selective_scan(*ours[:7], delta_bias=ours[7], delta_softplus=True,
                             initial_state=ours[8], return_last_state=True, backend="cpu", chunk=32)
    ((y.double() * w_y).sum() + (last.double() * w_last).sum()).backward()
    assert torch.allclose(y.double(), y_ref, atol=1e-5, rtol=1e-5)
    assert torch.allclose(last.double(), last_ref, atol=1e-5, rtol=1e-5)
    names = ["u", "delta", "A", "B", "C", "D", "z", "delta_bias", "initial_state"]
    for name, r, o in zip(names, ref, ours):
        assert torch.allclose(o.grad.double(), r.grad, atol=2e-4, rtol=2e-4), name


@pytest.mark.parametrize("bc", ["invariant", "grouped"])
def test_gradcheck_float64(bc):
    inputs = [t.requires_grad_() for t in full_inputs(2, 4, 13, 3, bc, dtype=torch.float64)]

    def f(u, delta, A, B, C, D, z, bias, h0):
        return selective_scan(u, delta, A, B, C, D, z, bias, True, h0, return_last_state=True,
                              backend="cpu", chunk=4)

    assert torch.autograd.gradcheck(f, inputs)


def test_long_sequence_many_threads_and_channel_last_layout():
    """Mamba's tensors are (batch, L, D) transposed: the kernel reads them in place."""
    u, delta, A, B, C = make(2, 64, 1500, 16)
    u_cl = u.transpose(1, 2).contiguous().transpose(1, 2)  # same values, channel-last memory
    y_ref, _ = sequential_scan(u, delta, A, B, C, delta_softplus=True)
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        y_one = selective_scan(u_cl, delta, A, B, C, delta_softplus=True, backend="cpu")
        torch.set_num_threads(max(2, threads))
        y_many = selective_scan(u_cl, delta, A, B, C, delta_softplus=True, backend="cpu")
    finally:
        torch.set_num_threads(threads)
    assert y_many.stride(1) == 1  # returned in u's layout, ready for (batch, L, D)
    assert torch.equal(y_one, y_many)
    assert torch.allclose(y_many.double(), y_ref, atol=1e-4, rtol=1e-4)


@pytest.mark.skipif(not torch.backends.openmp.is_available(), reason="PyTorch without OpenMP")
def test_pytorchs_openmp_pool_and_threads_of_our_own_give_the_same_results():
    """The kernels run on PyTorch's OpenMP pool; the fallback (forked children) on
    threads of their own. Every job keeps its gradient buffer whichever thread runs it."""
    address = cpu_kernels.openmp_parallel_address()
    assert address, "torch has OpenMP but no GOMP_parallel was found in the loaded libraries"
    lib = cpu_kernels.library(torch.float32)
    inputs = full_inputs(3, 40, 300, 8, "variable")

    def run():
        leaves = [t.clone().requires_grad_() for t in inputs]
        y = selective_scan(*leaves[:7], delta_bias=leaves[7], delta_softplus=True,
                           initial_state=leaves[8], backend="cpu")
        y.pow(2).sum().backward()
        return [y.detach()] + [t.grad for t in leaves]

    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(4)  # more jobs than cores: some thread runs two
        on_pool = run()
        lib.use_openmp_pool(None)
        on_own_threads = run()
    finally:
        lib.use_openmp_pool(address)
        torch.set_num_threads(threads)
    for a, b in zip(on_pool, on_own_threads):
        assert torch.equal(a, b)


@pytest.mark.skipif(not torch.backends.openmp.is_available(), reason="torch without OpenMP")
def test_the_pool_is_pytorchs_when_another_openmp_runtime_is_loaded_first(tmp_path):
    """ESPnet's imports bring scikit-learn's libgomp; a runtime whose path sorts first
    must not be taken for PyTorch's (its workers would spin against PyTorch's)."""
    torch_dir = os.path.dirname(torch.__file__)
    bundled = [p for p in cpu_kernels._loaded_libraries() if p.startswith(torch_dir)
               and os.path.basename(p).startswith(("libgomp", "libiomp", "libomp"))]
    if not bundled:
        pytest.skip("this torch links a system OpenMP runtime, not one of its own")
    torch_runtime = bundled[0]
    decoy = tmp_path / "aaa" / ("libgomp-decoy" + Path(torch_runtime).suffix)
    decoy.parent.mkdir()
    decoy.write_bytes(Path(torch_runtime).read_bytes())
    # loaded after torch, as scikit-learn's is (before it, torch would link to it itself)
    code = (f"import ctypes, torch; ctypes.CDLL({str(decoy)!r}); "
            "from espnet_mamba.ops import cpu_kernels as k; "
            "a = k.openmp_parallel_address(); print(k.library_containing(a))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         timeout=120).stdout.strip()
    assert out == torch_runtime, out
    assert str(decoy) in subprocess.run(  # the test's premise: the decoy is loaded and sorts first
        [sys.executable, "-c", code.replace("print(k.library_containing(a))",
                                            "print(sorted(k._loaded_libraries()))")],
        capture_output=True, text=True, check=True, timeout=120).stdout


def test_openmp_pool_ab_tool_times_both_pools():
    pytest.importorskip("sklearn")
    out = subprocess.run([sys.executable, str(ROOT / "tools" / "openmp_pool_ab.py"), "--rounds", "1",
                          "--seconds", "0.5", "--batch", "2", "--scale", "0.1"],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert "kernels on PyTorch's pool" in out.stdout and "ratio" in out.stdout


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_half_inputs_are_computed_in_fp32(dtype):
    u, delta, A, B, C = (t.to(dtype) for t in make(2, 8, 300, 16))
    y = selective_scan(u, delta, A.float(), B, C, delta_softplus=True, backend="cpu")
    y_ref, _ = sequential_scan(u, delta, A, B, C, delta_softplus=True)
    assert y.dtype == dtype
    assert ((y.double() - y_ref).abs().max() / y_ref.abs().max()) < 1e-2


@pytest.mark.parametrize("dim, width", [(5, 4), (37, 2), (20, 5)])
def test_causal_conv1d_gradients_match_direct_convolution(dim, width):
    """Channel counts across a 16-channel block boundary, widths beyond the CUDA kernel's."""
    x = torch.randn(2, dim, 17, dtype=torch.float64).transpose(1, 2).contiguous().transpose(1, 2)
    weight, bias = torch.randn(dim, width, dtype=torch.float64), torch.randn(dim, dtype=torch.float64)
    history = torch.randn(2, dim, width - 1, dtype=torch.float64)
    leaves = [t.clone().requires_grad_() for t in (x, weight, bias, history)]
    y = causal_conv1d(*leaves[:3], activation="silu", initial_state=leaves[3], backend="cpu")
    refs = [t.clone().requires_grad_() for t in (x, weight, bias, history)]
    padded = torch.cat([refs[3], refs[0]], -1)
    y_ref = F.silu(sum(refs[1][:, k, None] * padded[:, :, k:k + 17] for k in range(width))
                   + refs[2][:, None])
    assert torch.allclose(y, y_ref, atol=1e-12)
    weights = torch.randn_like(y_ref)
    (y * weights).sum().backward()
    (y_ref * weights).sum().backward()
    for got, ref in zip(leaves, refs):
        assert torch.allclose(got.grad, ref.grad, atol=1e-10)
    assert torch.autograd.gradcheck(
        lambda *a: causal_conv1d(a[0], a[1], a[2], "silu", initial_state=a[3], backend="cpu"),
        [t.detach().requires_grad_() for t in (x, weight, bias, history)])


@pytest.mark.parametrize("grad_mode", ["no_grad", "leaves_without_grad"])
def test_inference_calls_skip_autograd_and_match_the_references(grad_mode):
    """Without a gradient to record (streaming, decoding) the kernels are called directly,
    not through autograd.Function: same values as the sequential scan / direct convolution,
    the last state included, and no graph left behind."""
    inputs = full_inputs(2, 20, 7, 5, "grouped")
    x, weight, bias = torch.randn(2, 20, 7), torch.randn(20, 4), torch.randn(20)
    history = torch.randn(2, 20, 3)
    if grad_mode == "no_grad":
        inputs = [t.requires_grad_() for t in inputs]
        x.requires_grad_()
    context = torch.no_grad() if grad_mode == "no_grad" else torch.enable_grad()
    with context:
        y, last = selective_scan(*inputs[:7], delta_bias=inputs[7], delta_softplus=True,
                                 initial_state=inputs[8], return_last_state=True, backend="cpu")
        conv = causal_conv1d(x, weight, bias, "silu", initial_state=history, backend="cpu")
    assert y.grad_fn is None and last.grad_fn is None and conv.grad_fn is None
    plain = [t.detach().double() for t in inputs]
    y_ref, last_ref = sequential_scan(*plain[:7], delta_bias=plain[7], delta_softplus=True,
                                      initial_state=plain[8])
    assert torch.allclose(y.double(), y_ref, atol=1e-5, rtol=1e-5)
    assert torch.allclose(last.double(), last_ref, atol=1e-5, rtol=1e-5)
    padded = torch.cat([history, x.detach()], -1)
    conv_ref = F.silu(sum(weight[:, k, None] * padded[:, :, k:k + 7] for k in range(4)) + bias[:, None])
    assert torch.allclose(conv, conv_ref, atol=1e-5)


def _scan_in_child(queue, inputs):
    # as torch's DataLoader does in its workers: PyTorch's own OpenMP pool cannot be
    # used in a child forked after the parent used it (a PyTorch limitation, not ours)
    torch.set_num_threads(1)
    queue.put(selective_scan(*inputs, backend="cpu").tolist())  # plain data: the child exits first


def test_works_in_a_forked_child_after_the_parent_used_threads():
    inputs = make(2, 64, 400, 16)
    expected = selective_scan(*inputs, backend="cpu")  # the parent loads and runs the kernel first
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    child = ctx.Process(target=_scan_in_child, args=(queue, inputs))
    child.start()
    got = queue.get(timeout=60)
    child.join(timeout=60)
    assert child.exitcode == 0
    assert torch.equal(torch.tensor(got), expected)


def _run(code: str, **env):
    full_env = dict(os.environ, **env)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=ROOT, env=full_env, timeout=300)


@pytest.mark.parametrize("mode", [["--own_threads"], ["--rev", "HEAD"]])
def test_kernel_ab_tool_times_both_sides(mode):
    if mode[0] == "--own_threads" and not torch.backends.openmp.is_available():
        pytest.skip("PyTorch without OpenMP")
    out = subprocess.run([sys.executable, str(ROOT / "tools" / "kernel_ab.py"), *mode, "--rounds", "1",
                          "--batch", "1", "--dim", "32", "--length", "40", "--threads", "2"],
                         capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    lines = out.stdout.strip().splitlines()
    assert [line.split()[0] for line in lines[1:]] == ["forward", "forward+backward"]
    assert all("A/B" in line for line in lines[1:])


def test_unwritable_cache_falls_back_to_a_temporary_directory(tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a directory")
    out = _run("from espnet_mamba.ops import cpu_kernels as k; libs, err = k.load(); "
               "print(err); print(k.cache_dir())", ESPNET_MAMBA_CACHE=str(blocker / "cache"))
    assert out.returncode == 0, out.stderr[-2000:]
    error, where = out.stdout.splitlines()[-2:]
    assert error == "None"
    assert "espnet_mamba-" in where


def test_without_a_compiler_auto_uses_pytorch_and_cpu_says_why(tmp_path):
    code = ("import torch\n"
            "from espnet_mamba.ops import backend, selective_scan\n"
            "info = backend.describe()\n"
            "print(info['cpu_kernels'][:60])\n"
            "x = torch.randn(1, 2, 5); A = -torch.ones(2, 3); B = torch.randn(1, 3, 5)\n"
            "y = selective_scan(x, x.abs(), A, B, B)\n"
            "ref = selective_scan(x, x.abs(), A, B, B, backend='torch')\n"
            "print(torch.equal(y, ref))\n"
            "try:\n"
            "    selective_scan(x, x.abs(), A, B, B, backend='cpu')\n"
            "except RuntimeError as e:\n"
            "    print(e)\n")
    out = _run(code, CC=str(tmp_path / "no-such-cc"), ESPNET_MAMBA_CACHE=str(tmp_path / "cache"))
    assert out.returncode == 0, out.stderr[-2000:]
    lines = out.stdout.splitlines()
    assert lines[0].startswith("missing: no C compiler found")
    assert lines[1] == "True"
    assert "backend 'cpu' was forced" in lines[2] and "Install a C compiler" in lines[2]


@pytest.mark.parametrize("bidirectional", ["none", "add"])
def test_encoder_and_decoder_agree_across_backends(monkeypatch, bidirectional):
    from espnet_mamba.asr.decoder import MambaDecoder
    from espnet_mamba.asr.encoder import MambaEncoder

    encoder = MambaEncoder(20, output_size=32, num_blocks=2, bidirectional=bidirectional,
                           input_layer="conv2d").eval()
    decoder = MambaDecoder(vocab_size=9, encoder_output_size=32, num_blocks=2,
                           attention_heads=2).eval()
    feats, feat_lens = torch.randn(3, 50, 20), torch.tensor([50, 41, 23])
    tokens, token_lens = torch.randint(1, 8, (3, 6)), torch.tensor([6, 4, 2])
    results = {}
    for name in ("torch", "auto"):
        monkeypatch.setenv("ESPNET_MAMBA_BACKEND", name)
        with torch.no_grad():
            enc, enc_lens, _ = encoder(feats, feat_lens)
            dec, _ = decoder(enc, enc_lens, tokens, token_lens)
        results[name] = (enc, dec)
    for a, b in zip(results["torch"], results["auto"]):
        assert torch.allclose(a, b, atol=1e-5, rtol=1e-5)


def test_state_larger_than_the_kernel_takes_goes_to_pytorch():
    u, delta, A, B, C = make(1, 3, 9, 300)
    y = selective_scan(u, delta, A, B, C)  # auto: PyTorch, with the reason logged
    y_ref, _ = sequential_scan(u, delta, A, B, C)
    assert torch.allclose(y.double(), y_ref, atol=1e-5, rtol=1e-5)
    with pytest.raises(RuntimeError, match="d_state=300"):
        selective_scan(u, delta, A, B, C, backend="cpu")


@pytest.mark.parametrize("dim, bc", [(40, "grouped"), (33, "invariant"), (17, "variable")])
def test_channel_counts_across_16_channel_blocks(dim, bc):
    """The kernel computes 16 channels at a time, never across a group boundary."""
    inputs = full_inputs(2, dim, 21, 4, bc)
    ref = [t.double().requires_grad_() for t in inputs]
    y_ref, _ = sequential_scan(*ref[:7], delta_bias=ref[7], delta_softplus=True, initial_state=ref[8])
    y_ref.sum().backward()
    ours = [t.clone().requires_grad_() for t in inputs]
    y = selective_scan(*ours[:7], delta_bias=ours[7], delta_softplus=True, initial_state=ours[8],
                       backend="cpu", chunk=8)
    y.sum().backward()
    assert torch.allclose(y.double(), y_ref, atol=1e-5, rtol=1e-5)
    for r, o in zip(ref, ours):
        assert torch.allclose(o.grad.double(), r.grad, atol=2e-4, rtol=2e-4)
