"""Long-form decoding helpers: encoder windows, cuts at CTC blank runs, CTC word times.

Pure functions on arrays, used by :mod:`espnet_mamba.transcribe`:

* :func:`window_plan`: equal overlapping windows over a long recording, each owning
  the middle of its span, so every encoder frame is taken from a window that saw
  context on both sides (memory bounded by the window, not the recording).
* :func:`split_at_pauses`: cut a frame sequence into decoder-sized segments at
  runs of CTC blank frames (pauses): every run of at least ``pause_frames`` is a
  cut, and a piece still longer than ``max_frames`` is cut again at its longest
  run (at ``max_frames`` when it has none).
* :func:`token_spans` / :func:`group_words`: frames of each token in a CTC
  forced alignment, and words (start, end) from them.
"""

from dataclasses import dataclass
from typing import Callable, List, Optional, Sequence, Tuple

import numpy as np


# ---- windows --------------------------------------------------------------------------

@dataclass(frozen=True)
class Window:
    start: int        # samples [start, end) are encoded together
    end: int
    keep_start: int   # frames whose centre lies in [keep_start, keep_end) samples are kept
    keep_end: int


def window_plan(n: int, window: int, overlap: int) -> List[Window]:
    """The fewest windows of at most ``window`` samples, overlapping by at least ``overlap``,
    that cover [0, n), all of one length (to a sample) and evenly spaced.

    Equal windows keep the encoded total close to n for every length: a fixed window
    with a last one pushed back to the end would encode up to ``window`` samples twice
    (at 5 minutes in 120 s windows, 360 s of audio for 300). Each window keeps what
    lies between the middles of its overlaps with its neighbours, so the kept parts
    tile [0, n) exactly once.
    """
    if n <= window:
        return [Window(0, n, 0, n)]
    if not 0 <= overlap < window:
        raise ValueError(f"overlap {overlap} must be in [0, window {window})")
    count = -(-(n - overlap) // (window - overlap))        # ceil: the fewest windows that fit
    length = -(-(n + (count - 1) * overlap) // count)      # <= window, by the choice of count
    starts = [round(i * (n - length) / (count - 1)) for i in range(count)]
    out = []
    for i, s in enumerate(starts):
        e = s + length
        keep_s = 0 if i == 0 else (s + out[-1].end) // 2
        keep_e = n if i == count - 1 else (e + starts[i + 1]) // 2
        out.append(Window(s, e, keep_s, keep_e))
    return out


# ---- segmentation at blank runs --------------------------------------------------------

def blank_runs(is_blank: np.ndarray) -> List[Tuple[int, int]]:
    """[start, end) of each maximal run of True."""
    b = np.concatenate([[False], np.asarray(is_blank, dtype=bool), [False]])
    d = np.diff(b.astype(np.int8))
    return list(zip(np.flatnonzero(d == 1).tolist(), np.flatnonzero(d == -1).tolist()))


def split_at_pauses(is_blank: np.ndarray, max_frames: int, pause_frames: int) -> List[Tuple[int, int]]:
    """Cut frames [0, T) into segments [start, end) no longer than ``max_frames``.

    Cuts fall in the middle of blank runs: at every interior run of at least
    ``pause_frames`` frames, then, while a piece is longer than ``max_frames``,
    at the middle of its longest interior run that leaves both sides non-empty
    (ties: the one nearest the piece's middle); a piece with no blank frame at
    all is cut at ``max_frames``. Segments tile [0, T) in order.
    """
    is_blank = np.asarray(is_blank, dtype=bool)
    T = len(is_blank)
    if T == 0:
        return []
    if max_frames < 1:
        raise ValueError("max_frames must be >= 1")
    runs = blank_runs(is_blank)
    cuts = [(s + e) // 2 for s, e in runs if e - s >= pause_frames and s > 0 and e < T]
    pieces, prev = [], 0
    for c in cuts:
        if c > prev:
            pieces.append((prev, c))
            prev = c
    pieces.append((prev, T))

    out = []
    stack = list(reversed(pieces))
    while stack:
        a, b = stack.pop()
        if b - a <= max_frames:
            out.append((a, b))
            continue
        best = None
        for s, e in runs:
            s, e = max(s, a), min(e, b)
            if e <= s:
                continue
            c = (s + e) // 2
            if not a < c < b:
                continue
            key = (e - s, -abs(c - (a + b) / 2))
            if best is None or key > best[0]:
                best = (key, c)
        c = best[1] if best is not None else a + max_frames
        stack.append((c, b))
        stack.append((a, c))
    return out


# ---- CTC alignment -> token and word times ------------------------------------------------

def token_spans(alignment: Sequence[int], blank: int = 0) -> List[Tuple[int, int, int]]:
    """(token, first frame, end frame) of each token in a CTC frame alignment.

    A token's span is its run of frames; a repeated token is a new token only
    after a blank (CTC's rule), which a forced alignment always has.
    """
    out = []
    prev = blank
    for t, lab in enumerate(int(x) for x in alignment):
        if lab != blank and lab != prev:
            out.append([lab, t, t + 1])
        elif lab != blank and lab == prev:
            out[-1][2] = t + 1
        prev = lab
    return [tuple(x) for x in out]


def group_words(tokens: Sequence[str], spans: Sequence[Tuple[int, int]],
                detokenize: Callable[[List[str]], str], space: str = "<space>",
                word_start: str = "\u2581", each_token_a_word: bool = False):
    """[(word, start_frame, end_frame)] from tokens and their frame spans.

    Words are separated by the ``space`` token (character models) or begin at a
    token starting with ``word_start`` (SentencePiece's U+2581); with
    ``each_token_a_word`` every token is a word (word-level models).
    """
    words, cur, cur_span = [], [], None

    def flush():
        if cur:
            text = detokenize(cur).strip()
            if text:
                words.append((text, cur_span[0], cur_span[1]))

    for tok, (s, e) in zip(tokens, spans):
        if tok == space:
            flush()
            cur, cur_span = [], None
            continue
        if cur and (each_token_a_word or tok.startswith(word_start)):
            flush()
            cur, cur_span = [], None
        cur.append(tok)
        cur_span = (s, e) if cur_span is None else (cur_span[0], e)
    flush()
    return words


def ctc_word_times(log_probs, token_ids: Sequence[int], tokens: Sequence[str],
                   detokenize: Callable[[List[str]], str], blank: int = 0,
                   frame_seconds: float = 0.04, offset: float = 0.0,
                   each_token_a_word: bool = False) -> Optional[List[Tuple[str, float, float]]]:
    """Words with (start, end) seconds from a CTC forced alignment of ``token_ids``.

    log_probs: (T, V) CTC log-posteriors of the audio the tokens were decoded
    from. None when the tokens cannot be aligned (more tokens than frames).
    """
    import torch
    import torchaudio.functional as F

    ids = [int(i) for i in token_ids]
    if not ids:
        return []
    lp = torch.as_tensor(log_probs, dtype=torch.float32)
    repeats = sum(1 for a, b in zip(ids, ids[1:]) if a == b)
    if lp.shape[0] < len(ids) + repeats:
        return None
    align, _ = F.forced_align(lp.unsqueeze(0), torch.tensor([ids], dtype=torch.int32), blank=blank)
    spans = token_spans(align[0].tolist(), blank)
    if len(spans) != len(ids):
        return None
    words = group_words(tokens, [(s, e) for _, s, e in spans], detokenize,
                        each_token_a_word=each_token_a_word)
    return [(w, offset + s * frame_seconds, offset + e * frame_seconds) for w, s, e in words]
