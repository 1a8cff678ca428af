"""Selective-scan benchmark: the compiled CPU kernel and the PyTorch scan vs a sequential loop.

Columns per backend, forward (inference) and forward+backward (training), all
measured in one process. The sequential loop is what mamba-ssm's
``selective_scan_ref`` does:
materialise exp(delta A) and delta B u for every step, then one Python-level
step per time index. Inputs follow Mamba's initialisation (A = -[1..N],
delta = softplus(dt_proj) with dt in [1e-3, 1e-1]) so the numbers describe a
real model, not an artificial worst case.

GFLOP/s counts 7 floating-point operations per (batch, channel, state, step)
element of the forward (delta*A, exp counted as one, decay*h, delta*B*u added,
C*h accumulated: 1+1+1+2+2) and is printed next to this machine's fp32 matmul
rate (torch.mm, 1024x1024, measured here): the FMA peak in practice.
"""

import math

import torch

from espnet_mamba.benchmark.timing import command_parser, median_seconds, print_rows
from espnet_mamba.ops import backend as _backend
from espnet_mamba.ops.selective_scan import selective_scan


def sequential_scan(u, delta, A, B, C):
    """Per-step loop, variable B/C (batch, N, L), no D/z."""
    decay = torch.exp(torch.einsum("bdl,dn->bdln", delta, A))
    inputs = torch.einsum("bdl,bnl,bdl->bdln", delta, B, u)
    h = u.new_zeros(u.shape[0], u.shape[1], A.shape[1])
    ys = []
    for t in range(u.shape[2]):
        h = decay[:, :, t] * h + inputs[:, :, t]
        ys.append(torch.einsum("bdn,bn->bd", h, C[:, :, t]))
    return torch.stack(ys, dim=2)


def make_inputs(batch, d_inner, d_state, length, device, seed=0):
    g = torch.Generator(device="cpu").manual_seed(seed)
    u = torch.randn(batch, d_inner, length, generator=g)
    dt = torch.exp(torch.rand(d_inner, generator=g) * (math.log(0.1) - math.log(1e-3)) + math.log(1e-3))
    dt_bias = dt + torch.log(-torch.expm1(-dt))
    delta = torch.nn.functional.softplus(0.5 * torch.randn(batch, d_inner, length, generator=g)
                                         + dt_bias[:, None])
    A = -torch.arange(1, d_state + 1, dtype=torch.float32).repeat(d_inner, 1)
    B = torch.randn(batch, d_state, length, generator=g)
    C = torch.randn(batch, d_state, length, generator=g)
    return [x.to(device) for x in (u, delta, A, B, C)]


FLOPS_PER_ELEMENT = 7


def matmul_gflops(device, size=1024, repeats=5) -> float:
    """fp32 matmul rate in this process: the machine's practical FMA peak."""
    a = torch.randn(size, size, device=device)
    b = torch.randn(size, size, device=device)
    return 2 * size ** 3 / median_seconds(lambda: a @ b, device, repeats) / 1e9


def _forward_backward(fn, inputs):
    leaves = [t.clone().requires_grad_() for t in inputs]
    fn(*leaves).sum().backward()


def run(lengths=(500, 2000, 8000), batch=4, d_inner=512, d_state=16, device="cpu",
        repeats=3, chunk=None, backward_max_T=2000):
    """backward_max_T: forward+backward columns up to this length (the sequential loop's
    autograd graph at T=8000 holds ~8 GB and takes many minutes); 0 turns them off."""
    device = torch.device(device)
    compiled = "cuda" if device.type == "cuda" else "cpu"
    have_compiled = (_backend.selective_scan_kernel()[0] is not None if compiled == "cuda"
                     else _backend.cpu_kernels()[0] is not None)
    peak = matmul_gflops(device)
    rows = []
    for length in lengths:
        u, delta, A, B, C = make_inputs(batch, d_inner, d_state, length, device)
        row = {"T": length}

        def scan(which):
            return lambda *x: selective_scan(*x, backend=which, chunk=chunk)

        seq_repeats = 1 if length > 2000 else repeats
        with torch.no_grad():
            row["torch_s"] = median_seconds(lambda: scan("torch")(u, delta, A, B, C), device, repeats)
            if have_compiled:
                row[f"{compiled}_s"] = median_seconds(lambda: scan(compiled)(u, delta, A, B, C),
                                                      device, repeats)
            row["sequential_s"] = median_seconds(lambda: sequential_scan(u, delta, A, B, C),
                                                 device, seq_repeats)
            reference = sequential_scan(u, delta, A, B, C).float()
            best = compiled if have_compiled else "torch"
            row["max_abs_err"] = (scan(best)(u, delta, A, B, C).float() - reference).abs().max().item()
        if have_compiled:
            row[f"{compiled}_vs_seq"] = row["sequential_s"] / row[f"{compiled}_s"]
            row[f"{compiled}_vs_torch"] = row["torch_s"] / row[f"{compiled}_s"]
        row["torch_vs_seq"] = row["sequential_s"] / row["torch_s"]
        flops = FLOPS_PER_ELEMENT * batch * d_inner * d_state * length
        row["GFLOP/s"] = flops / row.get(f"{compiled}_s", row["torch_s"]) / 1e9
        row["peak_GFLOP/s"] = peak
        row["pct_of_peak"] = 100 * row["GFLOP/s"] / peak
        if length <= backward_max_T:
            inputs = (u, delta, A, B, C)
            row["train_torch_s"] = median_seconds(lambda: _forward_backward(scan("torch"), inputs),
                                                  device, repeats)
            if have_compiled:
                row[f"train_{compiled}_s"] = median_seconds(
                    lambda: _forward_backward(scan(compiled), inputs), device, repeats)
            row["train_sequential_s"] = median_seconds(
                lambda: _forward_backward(sequential_scan, inputs), device, 1, warmup=0)
            if have_compiled:
                row[f"train_{compiled}_vs_seq"] = row["train_sequential_s"] / row[f"train_{compiled}_s"]
                row[f"train_{compiled}_vs_torch"] = row["train_torch_s"] / row[f"train_{compiled}_s"]
        rows.append(row)
    return rows


def main(argv=None):
    p = command_parser("scan", __doc__)
    p.add_argument("--lengths", type=int, nargs="+", default=[500, 2000, 8000])
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--d_inner", type=int, default=512)
    p.add_argument("--d_state", type=int, default=16)
    p.add_argument("--chunk", type=int, default=None, help="each path's default when not given")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--backward_max_T", type=int, default=2000,
                   help="forward+backward columns for lengths up to this (0: forward only)")
    a = p.parse_args(argv)
    rows = run(a.lengths, a.batch, a.d_inner, a.d_state, a.device, a.repeats, a.chunk,
               a.backward_max_T)
    print_rows(rows, a.json,
               f"selective scan, {a.device}, torch {torch.__version__}, {torch.get_num_threads()} threads, "
               f"batch {a.batch}, d_inner {a.d_inner}, d_state {a.d_state} (median of {a.repeats}; "
               f"X_vs_Y = time of Y / time of X; train_* = forward + backward)",
               list(dict.fromkeys(h for r in rows for h in r)))
