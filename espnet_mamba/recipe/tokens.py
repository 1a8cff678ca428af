"""Stage 5: the token inventory, as ESPnet's asr.sh builds it.

    python -m espnet_mamba.recipe.tokens --text dump/raw/train/text --token_type bpe \
        --nbpe 5000 --out_dir data/token_list/bpe_unigram5000

bpe: trains a SentencePiece unigram model with its Python API (bpe.model);
char: characters, with <space>; word: whitespace-separated words. The list (tokens.txt) is written by ESPnet's own
espnet2.bin.tokenize_text: <blank> first, <unk> second, then tokens by
frequency, <sos/eos> last.
"""

import argparse
import subprocess
import sys
from pathlib import Path


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--text", type=Path, required=True, help="Kaldi text of the training set")
    p.add_argument("--token_type", choices=["bpe", "char", "word"], required=True)
    p.add_argument("--nbpe", type=int, default=5000)
    p.add_argument("--bpemode", default="unigram", choices=["unigram", "bpe"])
    p.add_argument("--out_dir", type=Path, required=True)
    a = p.parse_args(argv)
    a.out_dir.mkdir(parents=True, exist_ok=True)
    sentences = [line.split(maxsplit=1)[1] for line in a.text.read_text(encoding="utf-8").splitlines()
                 if len(line.split(maxsplit=1)) == 2]
    if not sentences:
        print(f"ERROR: {a.text} has no transcripts", file=sys.stderr)
        return 1
    plain = a.out_dir / "train.txt"
    plain.write_text("\n".join(sentences) + "\n", encoding="utf-8")
    extra = []
    if a.token_type == "bpe":
        import sentencepiece

        prefix = a.out_dir / "bpe"
        sentencepiece.SentencePieceTrainer.train(
            input=str(plain), vocab_size=a.nbpe, model_type=a.bpemode, model_prefix=str(prefix),
            character_coverage=1.0, input_sentence_size=100_000_000, hard_vocab_limit=False,
            bos_id=-1, eos_id=-1, unk_id=0, minloglevel=2)
        extra = ["--bpemodel", f"{prefix}.model"]
    cmd = [sys.executable, "-m", "espnet2.bin.tokenize_text", "--token_type", a.token_type,
           "--input", str(plain), "--output", str(a.out_dir / "tokens.txt"), "--field", "1-",
           "--cleaner", "none", "--write_vocabulary", "true", "--add_symbol", "<blank>:0",
           "--add_symbol", "<unk>:1", "--add_symbol", "<sos/eos>:-1", *extra]
    return subprocess.run(cmd).returncode


if __name__ == "__main__":
    sys.exit(main())
