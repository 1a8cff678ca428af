"""Beam-search time per output token versus hypothesis length.

Runs each decoder's own ``batch_score`` (what ESPnet's BatchBeamSearch
calls) for a beam of hypotheses over 20 s of encoder output, one token at a
time up to the longest length, and reports the mean time of the steps just
before each reported length. Our Mamba decoder carries fixed-size recurrent
state; ESPnet's transformer decoder re-attends over its growing prefix.
Both decoders have matched size (printed).
"""

import time

import torch

from espnet_mamba.benchmark.models import DECODERS, build
from espnet_mamba.benchmark.timing import command_parser, print_rows

VOCAB = 5000
ENCODER_DIM = 256


@torch.no_grad()
def per_token_times(decoder, memory: torch.Tensor, beam: int, max_len: int, seed: int = 0):
    """Seconds of each batch_score call, for prefixes of 1..max_len tokens."""
    g = torch.Generator().manual_seed(seed)
    x = memory[0]
    states = [decoder.batch_init_state(x) for _ in range(beam)]
    ys = torch.full((beam, 1), decoder_vocab(decoder) - 1, dtype=torch.long)
    xs = x.unsqueeze(0).expand(beam, -1, -1)
    times = []
    for _ in range(max_len):
        start = time.perf_counter()
        logp, states = decoder.batch_score(ys, states, xs)
        times.append(time.perf_counter() - start)
        nxt = torch.randint(1, decoder_vocab(decoder) - 1, (beam, 1), generator=g)
        ys = torch.cat([ys, nxt], dim=1)
    return times


def decoder_vocab(decoder) -> int:
    return decoder.output_layer.out_features


def run(lengths=(10, 50, 200, 500), beam=10, encoder_seconds=20.0, names=tuple(DECODERS),
        window=5, scale=1.0, vocab=VOCAB, encoder_dim=ENCODER_DIM):
    torch.manual_seed(0)
    frames = int(encoder_seconds * 25)  # 40 ms per encoder frame after 4x subsampling
    memory = torch.randn(1, frames, encoder_dim)
    rows = []
    for name in names:
        decoder = build(DECODERS, name, vocab, encoder_dim, scale=scale)
        params = sum(p.numel() for p in decoder.parameters())
        per_token_times(decoder, memory, beam, 3)  # warm-up
        times = per_token_times(decoder, memory, beam, max(lengths))
        first = None
        for length in lengths:
            span = times[max(0, length - window):length]
            ms = 1e3 * sum(span) / len(span)
            first = ms if first is None else first
            rows.append({"decoder": name, "params_M": params / 1e6, "hyp_len": length, "beam": beam,
                         "ms_per_step": ms, "vs_first_length": ms / first})
    return rows


def main(argv=None):
    p = command_parser("decoder", __doc__, device=None)
    p.add_argument("--lengths", type=int, nargs="+", default=[10, 50, 200, 500])
    p.add_argument("--beam", type=int, default=10)
    p.add_argument("--encoder_seconds", type=float, default=20.0)
    p.add_argument("--decoders", nargs="+", default=list(DECODERS), choices=list(DECODERS))
    a = p.parse_args(argv)
    print_rows(run(a.lengths, a.beam, a.encoder_seconds, a.decoders), a.json,
               f"beam-search step time (batch_score over {a.beam} hypotheses, {a.encoder_seconds:g} s of "
               f"encoder output, cpu, {torch.get_num_threads()} threads); vs_first_length = "
               f"time at this length / time at {a.lengths[0]} tokens",
               ["decoder", "params_M", "hyp_len", "beam", "ms_per_step", "vs_first_length"])
