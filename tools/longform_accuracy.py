#!/usr/bin/env python3
"""Long-form accuracy: one long recording made of a test set's utterances vs the same utterances one by one.

    python tools/longform_accuracy.py --model exp/asr_train_asr_mamba_char --data_dir data/test \
        --minutes 10 30 [--beam_size 4] [--gap_s 0.3 1.0] [--seed 0] [--json out.json]

The utterances of ``--data_dir`` (Kaldi wav.scp + text, the recipe's stage-1 output) are put in
a random order and joined, each followed by a pause of ``--gap_s`` seconds (uniform in the
range; digital silence, as the synthetic corpora's own pauses, or Gaussian noise of standard
deviation ``--gap_noise``), cycling through the set again until the recording is ``--minutes``
long. Then, with the same model and decoding options:

* one by one: every distinct utterance decoded on its own (``Transcriber.transcribe_samples``,
  what decoding a segmented test set does); the WER over the recording's sequence of
  utterances (an utterance used twice counts twice);
* long-form: the whole recording given to ``espnet_mamba.transcribe`` in one call (windows,
  cuts at CTC pauses, joint CTC/attention per segment, word times from the CTC alignment);
  the WER of its text against the joined references;
* boundaries: each recognised word is given to the utterance whose stretch of the recording
  (cut half-way through each pause) holds its centre; the first word's start and the last
  word's end are compared with where speech starts and ends in that utterance (10 ms frames
  above -35 dB of the utterance's loudest frame).

Prints one table row per length: WER both ways and their difference (points), boundary error
(median, p95, share within 0.2 s), decode time and RTF of the long-form pass.
"""

import argparse
import json
import random
import sys
import time
from pathlib import Path

import numpy as np


def speech_span(samples: np.ndarray, fs: int, floor_db: float = -35.0):
    """(start, end) in seconds of the frames within ``floor_db`` of the loudest 10 ms frame."""
    hop = fs // 100
    n = len(samples) // hop
    rms = np.sqrt(np.mean(samples[: n * hop].reshape(n, hop).astype(np.float64) ** 2, axis=1) + 1e-12)
    loud = np.nonzero(20 * np.log10(rms / rms.max()) > floor_db)[0]
    return loud[0] * hop / fs, (loud[-1] + 1) * hop / fs


def wer(refs, hyps) -> float:
    import jiwer

    pairs = [(r, h) for r, h in zip(refs, hyps) if r.strip()]
    return 100.0 * jiwer.wer([r for r, _ in pairs], [h for _, h in pairs])


def build_recording(utts, audio, fs, minutes, gap_s, gap_noise, rng):
    """Concatenate utterances (cycling through a shuffled order) with pauses."""
    order, pieces, spans, t = [], [], [], 0
    target = int(minutes * 60 * fs)
    ids = list(utts)
    while t < target:
        rng.shuffle(ids)
        for u in ids:
            if t >= target:
                break
            x = audio[u]
            s0, s1 = speech_span(x, fs)
            gap = int(rng.uniform(*gap_s) * fs)
            noise = np.random.default_rng(len(order)).normal(0, gap_noise, gap).astype(np.float32)
            order.append(u)
            spans.append((t / fs, (t + len(x)) / fs, t / fs + s0, t / fs + s1))
            pieces += [x, noise]
            t += len(x) + gap
    return np.concatenate(pieces), order, spans


def words_per_utterance(words, spans):
    """The recognised words of each utterance: those whose centre lies in its stretch."""
    cuts = [(spans[i][1] + spans[i + 1][0]) / 2 for i in range(len(spans) - 1)]
    owner = np.searchsorted(np.asarray(cuts), [(w.start + w.end) / 2 for w in words])
    return [[w for w, o in zip(words, owner) if o == i] for i in range(len(spans))]


def boundary_errors(mine_per_utt, spans):
    """|start error| and |end error| per utterance that received at least one word."""
    errs, missing = [], 0
    for mine, (_, _, s0, s1) in zip(mine_per_utt, spans):
        if not mine:
            missing += 1
            continue
        errs += [abs(mine[0].start - s0), abs(mine[-1].end - s1)]
    return np.asarray(errs), missing


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", required=True, help="experiment directory or packed asr_model.zip")
    p.add_argument("--data_dir", required=True, type=Path, help="Kaldi data dir with wav.scp and text")
    p.add_argument("--minutes", type=float, nargs="+", default=[10, 30])
    p.add_argument("--gap_s", type=float, nargs=2, default=[0.3, 1.0], help="pause after each utterance")
    p.add_argument("--gap_noise", type=float, default=0.0, help="noise level (std) in the pauses")
    p.add_argument("--beam_size", type=int, default=4)
    p.add_argument("--ctc_weight", type=float, default=0.3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", type=Path, help="also write the rows here")
    a = p.parse_args(argv)

    import soundfile

    from espnet_mamba.recipe.data_dir import read_table
    from espnet_mamba.transcribe import Transcriber

    wav, text = read_table(a.data_dir / "wav.scp"), read_table(a.data_dir / "text", allow_empty_value=True)
    tr = Transcriber(a.model, beam_size=a.beam_size, ctc_weight=a.ctc_weight, device="cpu")
    audio = {}
    for u, path in wav.items():
        x, fs = soundfile.read(path, dtype="float32", always_2d=True)
        if fs != tr.fs:
            sys.exit(f"{path}: {fs} Hz, the model wants {tr.fs} Hz (use the recipe's dump/raw data dir)")
        audio[u] = x.mean(axis=1)

    alone, t = {}, time.perf_counter()
    for u in sorted(audio):
        alone[u] = tr.transcribe_samples(audio[u], u).text
    t_alone = time.perf_counter() - t
    dur_alone = sum(len(x) for x in audio.values()) / tr.fs
    print(f"one by one: {len(audio)} utterances, {dur_alone:.1f} s in {t_alone:.1f} s (RTF {t_alone / dur_alone:.3f})",
          file=sys.stderr)

    rows = []
    for minutes in a.minutes:
        rng = random.Random(a.seed)
        rec, order, spans = build_recording(list(audio), audio, tr.fs, minutes, a.gap_s, a.gap_noise, rng)
        t = time.perf_counter()
        result = tr.transcribe_samples(rec, f"{minutes:g} min")
        seconds = time.perf_counter() - t
        refs = [text[u] for u in order]
        w_alone = wer([" ".join(refs)], [" ".join(alone[u] for u in order)])
        w_long = wer([" ".join(refs)], [result.text])
        words = [w for s in result.segments for w in (s.words or [])]
        mine = words_per_utterance(words, spans)
        errs, missing = boundary_errors(mine, spans)
        changed = [(u, alone[u], " ".join(w.word for w in m)) for u, m in zip(order, mine)
                   if " ".join(w.word for w in m) != alone[u]]
        for u, one, long in changed[:10]:
            print(f"  {u}: alone '{one}' / long-form '{long}'", file=sys.stderr)
        rows.append(dict(minutes=minutes, utterances=len(order), seconds=round(len(rec) / tr.fs, 1),
                         wer_one_by_one=round(w_alone, 2), wer_long_form=round(w_long, 2),
                         wer_diff=round(w_long - w_alone, 2), segments=len(result.segments),
                         boundary_median_s=round(float(np.median(errs)), 3) if len(errs) else None,
                         boundary_p95_s=round(float(np.percentile(errs, 95)), 3) if len(errs) else None,
                         boundary_within_0_2s=round(float(np.mean(errs <= 0.2)), 3) if len(errs) else None,
                         utterances_without_words=missing,
                         utterances_changed=len(changed), decode_s=round(seconds, 1),
                         rtf=round(seconds / (len(rec) / tr.fs), 3)))
        print(json.dumps(rows[-1]), file=sys.stderr)

    cols = ["minutes", "utterances", "wer_one_by_one", "wer_long_form", "wer_diff", "segments",
            "boundary_median_s", "boundary_p95_s", "boundary_within_0_2s", "utterances_without_words", "utterances_changed", "rtf"]
    print("| " + " | ".join(cols) + " |")
    print("|" + "---:|" * len(cols))
    for r in rows:
        print("| " + " | ".join(str(r[c]) for c in cols) + " |")
    if a.json:
        a.json.write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
