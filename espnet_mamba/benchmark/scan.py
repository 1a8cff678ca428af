"""Selective-scan benchmark: our PyTorch scan vs a sequential per-step loop.

The sequential loop is what mamba-ssm's ``selective_scan_ref`` does:
materialise exp(delta A) and delta B u for every step, then one Python-level
step per time index. Inputs follow Mamba's initialisation (A = -[1..N],
delta = softplus(dt_proj) with dt in [1e-3, 1e-1]) so the numbers describe a
real model, not an artificial worst case.
"""

import argparse
import json
import math

import torch

from espnet_mamba.benchmark.timing import format_table, median_seconds
from espnet_mamba.ops import backend as _backend
from espnet_mamba.ops.selective_scan import selective_scan
from espnet_mamba.ops.selective_scan_torch import DEFAULT_CHUNK


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


def run(lengths=(500, 2000, 8000), batch=4, d_inner=512, d_state=16, device="cpu",
        repeats=3, chunk=DEFAULT_CHUNK):
    device = torch.device(device)
    rows = []
    for length in lengths:
        u, delta, A, B, C = make_inputs(batch, d_inner, d_state, length, device)
        with torch.no_grad():
            ours = lambda: selective_scan(u, delta, A, B, C, backend="torch", chunk=chunk)  # noqa: E731
            seq = lambda: sequential_scan(u, delta, A, B, C)  # noqa: E731
            t_ours = median_seconds(ours, device, repeats)
            t_seq = median_seconds(seq, device, repeats=1 if length > 2000 else repeats)
            err = (ours().float() - seq().float()).abs().max().item()
            row = {"T": length, "batch": batch, "d_inner": d_inner, "d_state": d_state,
                   "torch_scan_s": t_ours, "sequential_s": t_seq,
                   "speedup": t_seq / t_ours, "max_abs_err": err}
            if device.type == "cuda" and _backend.selective_scan_kernel()[0] is not None:
                kern = lambda: selective_scan(u, delta, A, B, C, backend="cuda")  # noqa: E731
                row["kernel_s"] = median_seconds(kern, device, repeats)
                row["kernel_vs_torch"] = t_ours / row["kernel_s"]
                row["kernel_err"] = (kern().float() - seq().float()).abs().max().item()
        rows.append(row)
    return rows


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m espnet_mamba.benchmark scan", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--lengths", type=int, nargs="+", default=[500, 2000, 8000])
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--d_inner", type=int, default=512)
    p.add_argument("--d_state", type=int, default=16)
    p.add_argument("--chunk", type=int, default=DEFAULT_CHUNK)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--json", action="store_true", help="print the rows as JSON")
    a = p.parse_args(argv)
    rows = run(a.lengths, a.batch, a.d_inner, a.d_state, a.device, a.repeats, a.chunk)
    if a.json:
        print(json.dumps(rows, indent=2))
        return
    print(f"selective scan, {a.device}, torch {torch.__version__}, {torch.get_num_threads()} threads "
          f"(median of {a.repeats}; speedup = sequential / torch_scan)")
    headers = list(rows[0].keys())
    print(format_table(headers, [[r.get(h, "") for h in headers] for r in rows]))
