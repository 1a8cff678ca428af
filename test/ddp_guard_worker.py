"""One rank of the 2-process DDP test of the non-finite-loss guard (test_nonfinite_guard.py).

python ddp_guard_worker.py RANK WORLD_SIZE PORT OUT_DIR NAN_RANK

Builds the tiny Mamba model from test/configs/mamba_mamba.yaml with
nonfinite_loss_patience 2, wraps it in DistributedDataParallel (gloo, CPU) and
trains on random batches; rank NAN_RANK's speech is NaN from the second batch
on (-1: no rank). Writes OUT_DIR/rank{RANK}.json: the batch at which it stopped,
the error it raised, and a checksum of its parameters.
"""

import json
import os
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import espnet_mamba  # noqa: E402,F401  (registers)
from espnet2.tasks.asr import ASRTask  # noqa: E402

TOKENS = ["<blank>", "<unk>", "<space>", "a", "b", "c", "<sos/eos>"]


def main(rank: int, world: int, port: int, out: Path, nan_rank: int):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.distributed.init_process_group("gloo", rank=rank, world_size=world)
    torch.manual_seed(0)  # the same initial weights on every rank, as after DDP's broadcast
    args = ASRTask.get_parser().parse_args(["--config", str(ROOT / "test/configs/mamba_mamba.yaml")])
    args.token_list = TOKENS
    args.model_conf = dict(args.model_conf, nonfinite_loss_patience=2)
    model = torch.nn.parallel.DistributedDataParallel(ASRTask.build_model(args).train())
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    generator = torch.Generator().manual_seed(100 + rank)  # each rank its own data
    result = {"rank": rank, "stopped_at": None, "error": None}
    for step in range(4):
        speech = torch.randn(2, 4000, generator=generator)
        if rank == nan_rank and step >= 1:
            speech[0, 100] = float("nan")
        text, text_lengths = torch.tensor([[3, 4], [5, -1]]), torch.tensor([2, 1])
        try:
            loss, _, _ = model(speech, torch.tensor([4000, 3000]), text, text_lengths)
        except FloatingPointError as exc:
            result.update(stopped_at=step, error=str(exc))
            break
        optimizer.zero_grad()
        loss.backward()
        grads = [p.grad for p in model.parameters() if p.grad is not None]
        if all(bool(torch.isfinite(g).all()) for g in grads):  # as ESPnet's trainer: skip bad steps
            optimizer.step()
    result["checksum"] = float(sum(p.detach().double().sum() for p in model.parameters()))
    (out / f"rank{rank}.json").write_text(json.dumps(result))
    torch.distributed.destroy_process_group()


if __name__ == "__main__":
    main(int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), Path(sys.argv[4]), int(sys.argv[5]))
