"""Parameter counts of recipe configs, as ESPnet builds them (for matching model sizes).

    python -m espnet_mamba.recipe.model_size conf/train_asr_*.yaml [--token_list tokens.txt]

Prints one Markdown row per config: encoder, decoder, CTC and total parameters.
Without --token_list a 100-token vocabulary stands in (output layers scale with it).
"""

import argparse
import sys
from pathlib import Path
from typing import Dict, List, Optional


def count(config: Path, token_list: Optional[List[str]] = None) -> Dict[str, float]:
    import espnet_mamba  # noqa: F401 - registers the Mamba classes with ESPnet
    from espnet2.tasks.asr import ASRTask

    args = ASRTask.get_parser().parse_args(["--config", str(config)])
    args.token_list = token_list or ["<blank>", "<unk>"] + [f"t{i}" for i in range(97)] + ["<sos/eos>"]
    model = ASRTask.build_model(args)

    def millions(module):
        return sum(p.numel() for p in module.parameters()) / 1e6 if module is not None else 0.0

    return {"encoder": millions(model.encoder), "decoder": millions(getattr(model, "decoder", None)),
            "ctc": millions(getattr(model, "ctc", None)), "total": millions(model)}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("configs", nargs="+", type=Path)
    p.add_argument("--token_list", type=Path, help="tokens.txt of the recipe (default: 100 stand-in tokens)")
    a = p.parse_args(argv)
    tokens = a.token_list.read_text(encoding="utf-8").split() if a.token_list else None
    missing = [str(c) for c in a.configs if not c.is_file()]
    if missing:
        print(f"ERROR: no such config: {', '.join(missing)}", file=sys.stderr)
        return 1
    # count everything before printing: ESPnet prints notices to stdout while building
    sizes = [(config, count(config, tokens)) for config in a.configs]
    print("| config | encoder | decoder | CTC | total |")
    print("|---|---:|---:|---:|---:|")
    for config, n in sizes:
        print(f"| {config} | {n['encoder']:.2f}M | {n['decoder']:.2f}M | {n['ctc']:.3f}M | {n['total']:.2f}M |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
