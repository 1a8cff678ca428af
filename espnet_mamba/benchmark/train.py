"""One training step (forward + backward) of each encoder with ESPnet's CTC loss.

The encoders of ``benchmark encoder`` (~30M parameters each, conv2d 4x
subsampling), a batch of ``--batch`` utterances of ``--seconds`` of 80-dim
features with lengths spread from 70% to 100% (padding as in real batches),
ESPnet's CTC head and loss on random targets, then ``backward()``. Ratios are
to ESPnet's transformer, measured in the same process.
"""

import torch

from espnet_mamba.asr.espnet_compat import CTC
from espnet_mamba.benchmark.encoder import FRAMES_PER_SECOND
from espnet_mamba.benchmark.memory import peak_memory_mb
from espnet_mamba.benchmark.models import ENCODERS, FEATURE_DIM, build
from espnet_mamba.benchmark.timing import command_parser, median_seconds, print_rows

VOCAB = 300           # a BPE-sized output layer
TOKENS_PER_SECOND = 3


def make_batch(batch: int, seconds: float, device, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    frames = int(seconds * FRAMES_PER_SECOND)
    feats = torch.randn(batch, frames, FEATURE_DIM, generator=g)
    lens = torch.linspace(frames, int(0.7 * frames), batch).long()
    n_tok = max(1, int(seconds * TOKENS_PER_SECOND))
    targets = torch.randint(1, VOCAB, (batch, n_tok), generator=g)
    target_lens = torch.full((batch,), n_tok)
    return [t.to(device) for t in (feats, lens, targets, target_lens)]


def run(seconds=10.0, batch=8, names=("mamba", "transformer", "conformer"), device="cpu",
        repeats=1, scale=1.0):
    device = torch.device(device)
    feats, lens, targets, target_lens = make_batch(batch, seconds, device)
    rows = []
    for name in names:
        encoder = build(ENCODERS, name, FEATURE_DIM, scale=scale).to(device).train()
        ctc = CTC(VOCAB, encoder.output_size()).to(device)
        params = sum(p.numel() for p in encoder.parameters())

        def step():
            encoder.zero_grad(set_to_none=True)
            ctc.zero_grad(set_to_none=True)
            out, out_lens, _ = encoder(feats, lens)
            loss = ctc(out, out_lens, targets, target_lens)
            loss.backward()
            return loss

        _, mem = peak_memory_mb(step, device)
        rows.append({"encoder": name, "params_M": params / 1e6, "batch": batch, "audio_s": seconds,
                     "step_s": median_seconds(step, device, repeats, warmup=0),
                     "peak_mem_MB": mem})
    base = next((r for r in rows if r["encoder"] == "transformer"), None)
    for r in rows:
        if base is not None:
            r["speedup_vs_transformer"] = base["step_s"] / r["step_s"]
    return rows


def main(argv=None):
    p = command_parser("train", __doc__)
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--encoders", nargs="+", default=["mamba", "transformer", "conformer"],
                   choices=list(ENCODERS))
    p.add_argument("--repeats", type=int, default=1)
    p.add_argument("--scale", type=float, default=1.0, help="shrink models (for quick checks)")
    a = p.parse_args(argv)
    print_rows(run(a.seconds, a.batch, a.encoders, a.device, a.repeats, a.scale), a.json,
               f"training step (forward + backward, CTC loss), {a.device}, torch {torch.__version__}, "
               f"{torch.get_num_threads()} threads; first step includes warm-up (peak memory), "
               f"median of {a.repeats} after it",
               ["encoder", "params_M", "batch", "audio_s", "step_s", "peak_mem_MB", "speedup_vs_transformer"])
