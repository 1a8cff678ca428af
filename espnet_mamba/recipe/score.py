"""Stage 13: score a decoding directory against the reference, ESPnet/sclite style.

    python -m espnet_mamba.recipe.score --ref data/test/text --hyp DECODE_DIR/text \
        --out_dir DECODE_DIR [--token_type bpe --bpemodel m.model]

Writes, for each of WER (words), CER (characters, spaces excluded) and TER
(the model's own tokens):
    score_{wer,cer,ter}/result.txt    per-utterance REF/HYP/Eval alignment (S, I, D marked)
    score_{wer,cer,ter}/summary.json  counts and rates
and prints one Markdown table row per metric, as ESPnet's RESULTS.md shows them:
|dataset|Snt|Wrd|Corr|Sub|Del|Ins|Err|S.Err|.
"""

import argparse
import json
from pathlib import Path
from typing import Callable, Dict, List

import jiwer

from espnet_mamba.recipe.data_dir import read_table


def word_units(text: str) -> List[str]:
    return text.split()


def char_units(text: str) -> List[str]:
    return [c for c in text if not c.isspace()]


def make_token_units(token_type: str, bpemodel: str = None) -> Callable[[str], List[str]]:
    if token_type == "bpe":
        if not bpemodel:
            raise ValueError("--token_type bpe needs --bpemodel")
        import sentencepiece

        sp = sentencepiece.SentencePieceProcessor(model_file=str(bpemodel))
        return lambda text: sp.encode(text, out_type=str)
    if token_type == "char":
        return lambda text: ["<space>" if c == " " else c for c in text]
    if token_type == "word":
        return word_units
    raise ValueError(f"unknown token_type {token_type!r}: expected bpe, char or word")


def score(refs: Dict[str, str], hyps: Dict[str, str], units: Callable[[str], List[str]]):
    """Counts over all utterances plus one sclite-style alignment block per utterance."""
    missing = sorted(set(refs) - set(hyps))
    if missing:
        raise ValueError(f"{len(missing)} utterances have no hypothesis (first: {missing[0]}); "
                         f"did decoding finish for every job?")
    totals = dict(snt=0, wrd=0, cor=0, sub=0, dele=0, ins=0, snt_err=0)
    blocks = []
    for utt in sorted(refs):
        ref, hyp = units(refs[utt]), units(hyps.get(utt, ""))
        if ref:
            out = jiwer.process_words(" ".join(ref), " ".join(hyp) if hyp else "")
            cor, sub, dele, ins = out.hits, out.substitutions, out.deletions, out.insertions
            ref_line, hyp_line, eval_line = _align(ref, hyp, out.alignments[0])
        else:  # empty reference: every hypothesis token is an insertion
            cor, sub, dele, ins = 0, 0, 0, len(hyp)
            ref_line, hyp_line, eval_line = ["*" * len(h) for h in hyp], hyp, ["I"] * len(hyp)
        totals["snt"] += 1
        totals["wrd"] += len(ref)
        totals["cor"] += cor
        totals["sub"] += sub
        totals["dele"] += dele
        totals["ins"] += ins
        totals["snt_err"] += int(sub + dele + ins > 0)
        blocks.append(f"id: ({utt})\nScores: (#C #S #D #I) {cor} {sub} {dele} {ins}\n"
                      f"REF:  {' '.join(ref_line)}\nHYP:  {' '.join(hyp_line)}\n"
                      f"Eval: {' '.join(eval_line)}\n")
    return totals, blocks


def _align(ref, hyp, chunks):
    """Padded REF/HYP/Eval columns from jiwer's alignment chunks."""
    r_out, h_out, e_out = [], [], []
    for c in chunks:
        if c.type in ("equal", "substitute"):
            for r, h in zip(ref[c.ref_start_idx:c.ref_end_idx], hyp[c.hyp_start_idx:c.hyp_end_idx]):
                w = max(len(r), len(h))
                same = c.type == "equal"
                r_out.append(r.ljust(w) if same else r.upper().ljust(w))
                h_out.append(h.ljust(w) if same else h.upper().ljust(w))
                e_out.append(" " * w if same else "S".ljust(w))
        elif c.type == "delete":
            for r in ref[c.ref_start_idx:c.ref_end_idx]:
                r_out.append(r.upper())
                h_out.append("*" * len(r))
                e_out.append("D".ljust(len(r)))
        elif c.type == "insert":
            for h in hyp[c.hyp_start_idx:c.hyp_end_idx]:
                r_out.append("*" * len(h))
                h_out.append(h.upper())
                e_out.append("I".ljust(len(h)))
    return r_out, h_out, e_out


def summary_row(name: str, t: Dict[str, int]) -> Dict[str, float]:
    wrd = max(t["wrd"], 1)
    pct = lambda x: round(100.0 * x / wrd, 1)  # noqa: E731
    return {"dataset": name, "Snt": t["snt"], "Wrd": t["wrd"], "Corr": pct(t["cor"]),
            "Sub": pct(t["sub"]), "Del": pct(t["dele"]), "Ins": pct(t["ins"]),
            "Err": pct(t["sub"] + t["dele"] + t["ins"]),
            "S.Err": round(100.0 * t["snt_err"] / max(t["snt"], 1), 1)}


COLUMNS = ["dataset", "Snt", "Wrd", "Corr", "Sub", "Del", "Ins", "Err", "S.Err"]


def markdown_row(row) -> str:
    return "|" + "|".join(str(row[c]) for c in COLUMNS) + "|"


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--ref", required=True, help="Kaldi-style reference text")
    p.add_argument("--hyp", required=True, help="Kaldi-style hypothesis text")
    p.add_argument("--out_dir", required=True)
    p.add_argument("--name", default=None, help="dataset column (default: the decode dir)")
    p.add_argument("--token_type", default="char", choices=["bpe", "char", "word"])
    p.add_argument("--bpemodel", default=None)
    a = p.parse_args(argv)
    refs, hyps = (read_table(Path(f), allow_empty_value=True) for f in (a.ref, a.hyp))
    out_dir = Path(a.out_dir)
    name = a.name or out_dir.name
    metrics = {"wer": word_units, "cer": char_units, "ter": make_token_units(a.token_type, a.bpemodel)}
    for metric, units in metrics.items():
        totals, blocks = score(refs, hyps, units)
        d = out_dir / f"score_{metric}"
        d.mkdir(parents=True, exist_ok=True)
        (d / "result.txt").write_text("\n".join(blocks), encoding="utf-8")
        row = summary_row(name, totals)
        (d / "summary.json").write_text(json.dumps({"metric": metric, **row, "counts": totals}, indent=2))
        print(f"{metric.upper()} {markdown_row(row)}")


if __name__ == "__main__":
    main()
