"""A tiny randomly-initialised ASR model saved like a trained one (exp dir and packed zip).

The model is built by ESPnet's own ASRTask from test/configs/mamba_mamba.yaml,
its arguments saved as config.yaml the way training saves them, so
``Speech2Text`` and ``espnet_mamba.transcribe`` load it like any experiment.
"""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TOKENS = ["<blank>", "<unk>", "<space>", "a", "b", "c", "<sos/eos>"]


def build_random_model(exp: Path, config: Path = ROOT / "test/configs/mamba_mamba.yaml", seed: int = 0,
                       blank_bias: float = 0.0, stats_file: str = None) -> Path:
    """exp/config.yaml + exp/valid.acc.ave.pth of a random model; returns exp.

    blank_bias is added to the CTC output's blank logit, so that CTC hears
    pauses (blank runs) as a trained model does instead of random tokens.
    stats_file: global_mvn statistics, named in config.yaml as given (a recipe
    gives a path relative to the recipe directory).
    """
    import torch

    import espnet_mamba  # noqa: F401
    from espnet2.tasks.asr import ASRTask
    from espnet2.utils.yaml_no_alias_safe_dump import yaml_no_alias_safe_dump

    exp.mkdir(parents=True, exist_ok=True)
    (exp / "tokens.txt").write_text("\n".join(TOKENS) + "\n")
    args = ASRTask.get_parser().parse_args([
        "--config", str(config), "--token_list", str(exp / "tokens.txt"), "--token_type", "char",
        "--output_dir", str(exp), "--ngpu", "0",
        *(["--normalize", "global_mvn", "--normalize_conf", f"stats_file={stats_file}"] if stats_file
          else ["--normalize", "none"])])
    torch.manual_seed(seed)
    model = ASRTask.build_model(args)
    with torch.no_grad():
        model.ctc.ctc_lo.bias[model.blank_id] += blank_bias
    torch.save(model.state_dict(), exp / "valid.acc.ave.pth")
    with (exp / "config.yaml").open("w") as f:
        yaml_no_alias_safe_dump(vars(args), f, indent=4, sort_keys=False)
    return exp


def pack_model(exp: Path, out: Path) -> Path:
    """exp packed with espnet2.bin.pack's own function, as stage 14 does."""
    from espnet2.main_funcs.pack_funcs import pack

    pack(files={"asr_model_file": str(exp / "valid.acc.ave.pth")},
         yaml_files={"asr_train_config": str(exp / "config.yaml")}, outpath=str(out), option=[])
    return out
