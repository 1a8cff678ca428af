"""Frame-synchronous CTC prefix beam search that can be fed frames chunk by chunk.

The classic prefix search (Graves 2012; Hannun et al. 2014): every prefix in
the beam carries two log probabilities, of all alignments of the frames seen so
far that spell the prefix and end in blank (``pb``) or in its last token
(``pnb``). Each new frame extends them; the ``beam_size`` best prefixes survive.
Because the search is frame-synchronous, its state after N frames does not
depend on how the frames were grouped into chunks, so a partial hypothesis is
available after every chunk and the final n-best equals that of one call on
all frames.

Prefixes shared by every hypothesis in the beam can never change any more; they
are moved out of the beam (``committed``) so that the work per frame does not
grow with the length of the stream.
"""

import math
from typing import Dict, List, Optional, Sequence, Tuple

import torch

NEG_INF = float("-inf")


def log_add(a: float, b: float) -> float:
    if a == NEG_INF:
        return b
    if b == NEG_INF:
        return a
    if a > b:
        return a + math.log1p(math.exp(b - a))
    return b + math.log1p(math.exp(a - b))


class CTCPrefixBeamSearch:
    """Args:
        beam_size: prefixes kept after each frame.
        blank: the CTC blank id.
        excluded: ids never emitted (ESPnet's <sos/eos>).
        token_beam: per frame, only the ``token_beam`` most likely tokens extend a
            prefix (blank and the repetition of a prefix's last token are always
            scored); None scores every token (exact prefix probabilities).
    """

    def __init__(self, beam_size: int, blank: int = 0, excluded: Sequence[int] = (),
                 token_beam: Optional[int] = None):
        if beam_size < 1:
            raise ValueError(f"beam_size must be >= 1, got {beam_size}")
        self.beam_size = beam_size
        self.blank = blank
        self.excluded = tuple(i for i in excluded if i != blank)
        self.token_beam = token_beam
        self.reset()

    def reset(self):
        self.committed: List[int] = []
        self.beam: Dict[Tuple[int, ...], Tuple[float, float]] = {(): (0.0, NEG_INF)}
        self.frames = 0

    def __call__(self, logp: torch.Tensor) -> None:
        """logp (frames, vocab): CTC log posteriors of the new frames."""
        if logp.dim() != 2:
            raise ValueError(f"logp must be (frames, vocab), got {tuple(logp.shape)}")
        if logp.shape[0] == 0:
            return
        logp = logp.detach().to("cpu", torch.float64)
        if self.excluded:
            logp = logp.clone()
            logp[:, list(self.excluded)] = NEG_INF
        vocab = logp.shape[1]
        k = vocab if self.token_beam is None else min(self.token_beam, vocab)
        top_values, top_ids = logp.topk(k, dim=1)
        rows, top_values, top_ids = logp.tolist(), top_values.tolist(), top_ids.tolist()
        for row, values, ids in zip(rows, top_values, top_ids):
            self._frame(row, list(zip(ids, values)))
        self.frames += len(rows)
        self._commit()

    def _frame(self, row: List[float], candidates: List[Tuple[int, float]]):
        blank = self.blank
        p_blank = row[blank]
        nxt: Dict[Tuple[int, ...], List[float]] = {}
        base = self.committed[-1] if self.committed else None

        def entry(prefix):
            e = nxt.get(prefix)
            if e is None:
                e = nxt[prefix] = [NEG_INF, NEG_INF]
            return e

        for prefix, (pb, pnb) in self.beam.items():
            total = log_add(pb, pnb)
            last = prefix[-1] if prefix else base
            e = entry(prefix)
            e[0] = log_add(e[0], total + p_blank)
            if last is not None:           # the last token again, collapsed into the prefix
                e[1] = log_add(e[1], pnb + row[last])
            for token, p in candidates:
                if token == blank or p == NEG_INF:
                    continue
                child = entry(prefix + (token,))
                # a repeated token needs a blank in between
                child[1] = log_add(child[1], (pb if token == last else total) + p)
            if last is not None and all(t != last for t, _ in candidates) and row[last] != NEG_INF:
                child = entry(prefix + (last,))
                child[1] = log_add(child[1], pb + row[last])
        ranked = sorted(nxt.items(), key=lambda kv: log_add(kv[1][0], kv[1][1]), reverse=True)
        self.beam = {prefix: (pb, pnb) for prefix, (pb, pnb) in ranked[: self.beam_size]}

    def _commit(self):
        prefixes = list(self.beam)
        shortest = min(len(p) for p in prefixes)
        n = 0
        while n < shortest and all(p[n] == prefixes[0][n] for p in prefixes):
            n += 1
        if n:
            self.committed.extend(prefixes[0][:n])
            self.beam = {p[n:]: v for p, v in self.beam.items()}

    def nbest(self, n: Optional[int] = None) -> List[Tuple[List[int], float]]:
        """[(tokens, log p(tokens | frames so far)), ...], best first."""
        ranked = sorted(((p, log_add(pb, pnb)) for p, (pb, pnb) in self.beam.items()),
                        key=lambda item: item[1], reverse=True)
        # only the returned prefixes are joined to the committed tokens: a partial result after
        # every chunk then copies the transcript once, not once per hypothesis in the beam
        return [(self.committed + list(p), score) for p, score in (ranked if n is None else ranked[:n])]
