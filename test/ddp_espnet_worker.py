"""One rank of ESPnet's own DDP training on a CPU (test_ddp_training.py).

python ddp_espnet_worker.py OUT_DIR ASR_TRAIN_ARGS...

Runs ``espnet_mamba.bin.asr_train`` (ESPnet's trainer and its DDP set-up, rank and
world size from the environment as an external launcher sets them) and, when the
trainer returns, saves this rank's parameters to OUT_DIR/rank{RANK}.pth: ESPnet
itself saves only rank 0's.
"""

import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from espnet2.train.trainer import Trainer  # noqa: E402

from espnet_mamba.bin import asr_train  # noqa: E402


def main(out: Path, argv):
    run = Trainer.run.__func__

    def run_and_save(cls, model, *args, **kwargs):
        run(cls, model, *args, **kwargs)
        rank = torch.distributed.get_rank() if torch.distributed.is_initialized() else 0
        torch.save({k: v.detach().cpu() for k, v in model.state_dict().items()}, out / f"rank{rank}.pth")

    Trainer.run = classmethod(run_and_save)
    asr_train.main(argv)


if __name__ == "__main__":
    main(Path(sys.argv[1]), sys.argv[2:])
