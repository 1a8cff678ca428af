"""The model zoo (conf/tuning/SIZE/) and the recipes' schedules: every model builds in ESPnet on the
schedule of the recipes that use it, at the parameter counts conf/README.md states, matched in size."""

import re
from pathlib import Path

import pytest
import yaml

import espnet_mamba  # noqa: F401
from espnet_mamba.recipe.config import ConfigError, merge
from espnet_mamba.recipe.model_size import count

ROOT = Path(__file__).resolve().parents[1]
ZOO = ROOT / "conf" / "tuning"
# which recipes train each size; the first one's schedule (its front end) is the one counted
USERS = {"s": ["fsdd_digits"], "m": ["an4", "mini_librispeech"], "l": ["librispeech_100"], "xl": ["librispeech"],
         "demo": ["synth_commands"]}
MODEL_KEYS = {"model", "encoder", "encoder_conf", "decoder", "decoder_conf"}


def schedule(recipe: str) -> Path:
    return ROOT / "egs2" / recipe / "asr1" / "conf" / "train_schedule.yaml"


def table_rows():
    """(size, file, encoder, decoder, ctc, total) of conf/README.md's parameter table."""
    row = re.compile(r"^\| `(\w+)/(train_asr_\w+\.yaml)` \|.*\| ([0-9.]+M) \| ([0-9.]+M) \| ([0-9.]+M) \| ([0-9.]+M) \|$")
    return [m.groups() for m in map(row.match, (ROOT / "conf" / "README.md").read_text().splitlines()) if m]


def test_zoo_holds_models_only_and_schedules_hold_no_model():
    assert sorted(p.name for p in ZOO.iterdir()) == sorted(USERS)
    for size, recipes in USERS.items():
        for model in ZOO.glob(f"{size}/*.yaml"):
            assert set(yaml.safe_load(model.read_text())) <= MODEL_KEYS, model
        for recipe in recipes:
            assert not set(yaml.safe_load(schedule(recipe).read_text())) & MODEL_KEYS, recipe


def test_merge_refuses_a_key_in_both(tmp_path):
    (tmp_path / "s.yaml").write_text("max_epoch: 3\nencoder: conformer\n")
    (tmp_path / "m.yaml").write_text("encoder: mamba\n")
    with pytest.raises(ConfigError, match="encoder set in both"):
        merge(tmp_path / "s.yaml", tmp_path / "m.yaml")


@pytest.mark.parametrize("size", sorted(USERS))
def test_parameter_table_is_what_espnet_builds(size):
    rows = [r for r in table_rows() if r[0] == size]
    assert sorted(r[1] for r in rows) == sorted(p.name for p in ZOO.glob(f"{size}/*.yaml"))
    for _, name, *stated in rows:
        n = count(ZOO / size / name, schedule=schedule(USERS[size][0]))
        built = [f"{n['encoder']:.2f}M", f"{n['decoder']:.2f}M", f"{n['ctc']:.3f}M", f"{n['total']:.2f}M"]
        assert built == stated, (size, name)


@pytest.mark.parametrize("size", sorted(set(USERS) - {"demo"}))   # the demo has no Conformer
def test_mamba_encoders_are_matched_to_the_conformer(size):
    sizes = {r[1]: float(r[2][:-1]) for r in table_rows() if r[0] == size}
    reference = sizes["train_asr_conformer.yaml"]
    for name, encoder in sizes.items():
        if "mamba" in name:
            assert abs(encoder - reference) / reference < 0.08, (size, name, encoder, reference)


def test_decode_configs_exist():
    for recipe in ("librispeech", "librispeech_100"):
        text = (ROOT / "egs2" / recipe / "asr1" / "conf" / "decode_asr.yaml").read_text()
        assert "beam_size: 20" in text and "ctc_weight: 0.3" in text


def test_model_size_command_prints_a_row_per_config(capsys):
    from espnet_mamba.recipe.model_size import main

    zoo = ZOO / "s"
    assert main([str(zoo / "train_asr_mamba.yaml"), str(zoo / "train_asr_transformer.yaml"),
                 "--schedule", str(schedule("fsdd_digits"))]) == 0
    rows = [r for r in capsys.readouterr().out.splitlines() if r.startswith("| ") and "yaml" in r]
    assert len(rows) == 2 and rows[0].endswith("M |")
    assert main([str(zoo / "nope.yaml")]) == 1
