"""A training config from the model zoo and a recipe's schedule (how asr.sh assembles one).

    python -m espnet_mamba.recipe.config SCHEDULE MODEL OUT

The zoo (conf/tuning/SIZE/*.yaml at the project root) holds models only: ``model``,
``encoder``/``encoder_conf``, ``decoder``/``decoder_conf``. A recipe's schedule
(conf/train_schedule.yaml) holds everything else: front end, normalization,
SpecAugment, loss weights, optimizer, batches, epochs. OUT is the two texts one after
the other, comments kept, so that it reads like a hand-written ESPnet config; a key
in both files is an error, since a silent override would train another model than the
one the zoo's table describes.
"""

import sys
from pathlib import Path

import yaml


class ConfigError(Exception):
    pass


def load(path: Path) -> dict:
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a YAML mapping of options")
    return data


def merge(schedule: Path, model: Path) -> str:
    both = sorted(set(load(schedule)) & set(load(model)))
    if both:
        raise ConfigError(f"{', '.join(both)} set in both {schedule} and {model}: the schedule must not "
                          f"change the zoo's model, nor the model the recipe's schedule")
    return (f"# {schedule} + {model} (espnet_mamba.recipe.config)\n"
            f"{Path(schedule).read_text(encoding='utf-8').rstrip()}\n\n"
            f"{Path(model).read_text(encoding='utf-8').rstrip()}\n")


def write_merged(schedule: Path, model: Path, out: Path) -> Path:
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    Path(out).write_text(merge(schedule, model), encoding="utf-8")
    return Path(out)


def merged_file(schedule: Path, model: Path, directory: Path) -> Path:
    """The merged config written to ``directory/<model file name>``, for code that reads one file."""
    return write_merged(schedule, model, Path(directory) / Path(model).name)


def main(argv=None) -> int:
    from espnet_mamba.recipe.cli import run_reporting

    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    return run_reporting(lambda: write_merged(*map(Path, argv)), (ConfigError,))


if __name__ == "__main__":
    sys.exit(main())
