"""Parameter counts of recipe configs, as ESPnet builds them (for matching model sizes).

    python -m espnet_mamba.recipe.model_size CONFIG ... [--schedule SCHEDULE] [--token_list tokens.txt]

Prints one Markdown row per config: encoder, decoder, CTC and total parameters.
With --schedule, each CONFIG is a model of the zoo (conf/tuning/SIZE/) and is counted as
asr.sh trains it: merged with that recipe schedule (its front end sets the input size).
Without --token_list a 100-token vocabulary stands in (output layers scale with it).
"""

import argparse
import sys
import tempfile
from pathlib import Path
from typing import Dict, List, Optional

from espnet_mamba.recipe.config import write_merged


def count(config: Path, token_list: Optional[List[str]] = None,
          schedule: Optional[Path] = None) -> Dict[str, float]:
    from espnet_mamba.asr.espnet_compat import ASRTask   # importing the package registers our classes

    if schedule is not None:
        with tempfile.TemporaryDirectory() as tmp:
            return count(write_merged(schedule, config, Path(tmp) / "train_config.yaml"), token_list)
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
    p.add_argument("--schedule", type=Path, help="a recipe's conf/train_schedule.yaml: CONFIGs are zoo models")
    a = p.parse_args(argv)
    tokens = a.token_list.read_text(encoding="utf-8").split() if a.token_list else None
    missing = [str(c) for c in a.configs + ([a.schedule] if a.schedule else []) if not c.is_file()]
    if missing:
        print(f"ERROR: no such config: {', '.join(missing)}", file=sys.stderr)
        return 1
    # count everything before printing: ESPnet prints notices to stdout while building
    sizes = [(config, count(config, tokens, a.schedule)) for config in a.configs]
    print("| config | encoder | decoder | CTC | total |")
    print("|---|---:|---:|---:|---:|")
    for config, n in sizes:
        print(f"| {config} | {n['encoder']:.2f}M | {n['decoder']:.2f}M | {n['ctc']:.3f}M | {n['total']:.2f}M |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
