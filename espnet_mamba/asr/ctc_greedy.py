"""Pure CTC greedy decoding: best class per frame, merge repeats, drop blanks.

The fastest way to read out a joint CTC/attention model (no decoder, no beam).
"""

from typing import List

import torch


@torch.no_grad()
def ctc_greedy_search(model, speech: torch.Tensor, speech_lengths: torch.Tensor,
                      blank_id: int = 0) -> List[List[int]]:
    """speech (batch, samples) -> token ids per utterance, using model.encode and model.ctc."""
    encoder_out, encoder_lens = model.encode(speech, speech_lengths)
    if isinstance(encoder_out, tuple):  # intermediate CTC outputs ride along
        encoder_out = encoder_out[0]
    best = model.ctc.argmax(encoder_out)                                # batch, T
    hyps = []
    for row, length in zip(best, encoder_lens):
        ids = torch.unique_consecutive(row[: int(length)]).tolist()
        hyps.append([i for i in ids if i != blank_id])
    return hyps
