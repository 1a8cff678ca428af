"""Every model config the recipes ship builds in ESPnet, with encoders matched in size."""

from pathlib import Path

import pytest

import espnet_mamba  # noqa: F401
from espnet2.tasks.asr import ASRTask

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = sorted(ROOT.glob("egs2/librispeech*/asr1/conf/tuning/train_asr_*.yaml"))


def build(config: Path):
    args = ASRTask.get_parser().parse_args(["--config", str(config)])
    args.token_list = ["<blank>", "<unk>"] + [f"t{i}" for i in range(98)] + ["<sos/eos>"]
    return ASRTask.build_model(args)


def params(module) -> float:
    return sum(p.numel() for p in module.parameters()) / 1e6


@pytest.mark.parametrize("recipe", ["librispeech", "librispeech_100"])
def test_recipe_configs_build_and_match_the_conformer(recipe, capsys):
    tuning = ROOT / "egs2" / recipe / "asr1" / "conf" / "tuning"
    sizes = {}
    for config in sorted(tuning.glob("train_asr_*.yaml")):
        model = build(config)
        sizes[config.stem] = (params(model.encoder), params(model))
    with capsys.disabled():
        print(f"\n{recipe}: " + ", ".join(f"{k} enc {e:.1f}M / total {t:.1f}M" for k, (e, t) in sizes.items()))
    reference = sizes["train_asr_conformer"][0]
    for name in ("train_asr_mamba", "train_asr_conmamba"):
        assert abs(sizes[name][0] - reference) / reference < 0.05, (name, sizes[name][0], reference)
    assert len(sizes) == 6


def test_decode_configs_exist():
    for recipe in ("librispeech", "librispeech_100"):
        text = (ROOT / "egs2" / recipe / "asr1" / "conf" / "decode_asr.yaml").read_text()
        assert "beam_size: 20" in text and "ctc_weight: 0.3" in text


def test_fsdd_configs_are_matched_in_size_and_share_the_schedule():
    from espnet_mamba.recipe.model_size import count

    conf = ROOT / "egs2" / "fsdd_digits" / "asr1" / "conf"
    tokens = ["<blank>", "<unk>", *"zero one two three four five six seven eight nine".split(), "<sos/eos>"]
    totals = {c.stem: count(c, tokens)["total"] for c in sorted(conf.glob("train_asr_*.yaml"))}
    assert set(totals) == {f"train_asr_{m}" for m in ("mamba", "conmamba", "transformer", "conformer")}
    assert max(totals.values()) / min(totals.values()) < 1.1, totals
    # only the model differs: everything above the model section is the same text in all four
    heads = {c.read_text().split("\nmodel:")[0].split("\nencoder:")[0].split("\n", 1)[1]
             for c in conf.glob("train_asr_*.yaml")}
    assert len(heads) == 1


def test_model_size_command_prints_a_row_per_config(capsys):
    from espnet_mamba.recipe.model_size import main

    conf = ROOT / "egs2" / "fsdd_digits" / "asr1" / "conf"
    assert main([str(conf / "train_asr_mamba.yaml"), str(conf / "train_asr_transformer.yaml")]) == 0
    rows = [r for r in capsys.readouterr().out.splitlines() if r.startswith("| ") and "yaml" in r]
    assert len(rows) == 2 and rows[0].endswith("M |")
    assert main([str(conf / "nope.yaml")]) == 1
