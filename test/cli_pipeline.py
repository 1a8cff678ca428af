"""A tiny ASR corpus of generated audio and the real ESPnet command lines run on it.

Used by the end-to-end tests: every step is the actual CLI a recipe runs
(``python -m espnet_mamba.bin.asr_train --collect_stats true``, training,
``python -m espnet_mamba.bin.asr_inference``), not a Python shortcut.
"""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import soundfile

ROOT = Path(__file__).resolve().parents[1]
TOKENS = ["<blank>", "<unk>", "<space>", "a", "b", "c", "<sos/eos>"]
TONES = {"a": 440.0, "b": 660.0, "c": 990.0}


def make_corpus(root: Path, n_train=12, n_valid=4, seed=0, n_test=0):
    """Utterances of 2-4 'letters', each a 0.15 s tone; text like "a c b".

    Writes Kaldi data dirs root/data/{train,valid[,test]} (wav.scp, text, utt2spk).
    """
    rng = np.random.default_rng(seed)
    fs = 16000
    sets = {"train": n_train, "valid": n_valid}
    if n_test:
        sets["test"] = n_test
    for name, count in sets.items():
        d = root / "data" / name
        (d / "wav").mkdir(parents=True, exist_ok=True)
        scp, text = [], []
        for i in range(count):
            letters = list(rng.choice(list(TONES), size=int(rng.integers(2, 5))))
            t = np.arange(int(0.15 * fs)) / fs
            wave = np.concatenate([np.concatenate([0.3 * np.sin(2 * np.pi * TONES[c] * t),
                                                   np.zeros(int(0.05 * fs))]) for c in letters])
            wave = wave + 0.01 * rng.standard_normal(len(wave))
            utt = f"{name}_{i:03d}"
            path = d / "wav" / f"{utt}.wav"
            soundfile.write(path, wave.astype(np.float32), fs)
            scp.append(f"{utt} {path}")
            text.append(f"{utt} {' '.join(letters)}")
        (d / "wav.scp").write_text("\n".join(scp) + "\n")
        (d / "text").write_text("\n".join(text) + "\n")
        (d / "utt2spk").write_text("".join(f"{line.split()[0]} {line.split()[0]}\n" for line in scp))
    (root / "tokens.txt").write_text("\n".join(TOKENS) + "\n")
    return root


def run(args, cwd, log=None, check=True):
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    out = subprocess.run([sys.executable, "-m", *map(str, args)], cwd=cwd, env=env,
                         capture_output=True, text=True)
    if log is not None:
        Path(log).write_text(out.stdout + out.stderr)
    if check and out.returncode != 0:
        raise AssertionError(f"{' '.join(map(str, args[:2]))} failed ({out.returncode}):\n"
                             + (out.stdout + out.stderr)[-4000:])
    return out


def common_args(root: Path):
    data = root / "data"
    return ["--use_preprocessor", "true", "--token_type", "char", "--token_list", root / "tokens.txt",
            "--non_linguistic_symbols", "none", "--cleaner", "none", "--g2p", "none",
            "--train_data_path_and_name_and_type", f"{data}/train/wav.scp,speech,sound",
            "--train_data_path_and_name_and_type", f"{data}/train/text,text,text",
            "--valid_data_path_and_name_and_type", f"{data}/valid/wav.scp,speech,sound",
            "--valid_data_path_and_name_and_type", f"{data}/valid/text,text,text"]


def collect_stats(root: Path, config: Path) -> Path:
    stats = root / "stats"
    run(["espnet_mamba.bin.asr_train", "--collect_stats", "true", "--config", config,
         *common_args(root), "--train_shape_file", root / "data/train/wav.scp",
         "--valid_shape_file", root / "data/valid/wav.scp", "--output_dir", stats,
         "--ngpu", "0", "--num_workers", "0"], cwd=root, log=root / "stats.log")
    return stats


def train_args(root: Path, config: Path, stats: Path, exp: Path, max_epoch: int):
    return ["espnet_mamba.bin.asr_train", "--config", config, *common_args(root),
            "--normalize", "global_mvn", "--normalize_conf", f"stats_file={stats}/train/feats_stats.npz",
            "--train_shape_file", stats / "train/speech_shape",
            "--train_shape_file", stats / "train/text_shape",
            "--valid_shape_file", stats / "valid/speech_shape",
            "--valid_shape_file", stats / "valid/text_shape",
            "--output_dir", exp, "--ngpu", "0", "--num_workers", "0", "--max_epoch", max_epoch,
            "--batch_type", "folded", "--batch_size", "4", "--fold_length", "80000",
            "--fold_length", "150", "--optim", "adam",
            "--optim_conf", "lr=0.002", "--resume", "true", "--seed", "0"]


def decode(root: Path, exp: Path, model_file: str, out: Path, beam_size=2, ctc_weight=0.3,
           module="espnet_mamba.bin.asr_inference"):
    run([module, "--ngpu", "0", "--batch_size", "1", "--beam_size", beam_size,
         "--ctc_weight", ctc_weight, "--lm_weight", "0", "--maxlenratio", "0", "--minlenratio", "0",
         "--data_path_and_name_and_type", f"{root}/data/valid/wav.scp,speech,sound",
         "--key_file", root / "data/valid/wav.scp",
         "--asr_train_config", exp / "config.yaml", "--asr_model_file", exp / model_file,
         "--output_dir", out], cwd=root, log=out.with_suffix(".log"))
    return dict(line.split(maxsplit=1) if " " in line else (line, "")
                for line in (out / "1best_recog/text").read_text().splitlines())


def copy_recipe(tmp: Path, name: str) -> Path:
    """egs2/NAME/asr1 under tmp, its files linked to the project's, so runs write only to tmp;
    tmp/conf is the project's model zoo, where the recipe's ../../../conf/tuning paths lead."""
    recipe, template = ROOT / "egs2" / name / "asr1", ROOT / "egs2" / "TEMPLATE" / "asr1"
    r = tmp / "egs2" / name / "asr1"
    r.mkdir(parents=True)
    for entry in ("asr.sh", "run_models.sh", "utils", "path.sh", "cmd.sh"):
        (r / entry).symlink_to(template / entry)
    for entry in ("run.sh", "conf", "local"):
        (r / entry).symlink_to(recipe / entry)
    if not (tmp / "conf").exists():
        (tmp / "conf").symlink_to(ROOT / "conf")
    return r


def local_data(r: Path, *args) -> subprocess.CompletedProcess:
    """The recipe's stage 1 script (local/data.sh ARGS) in the recipe copy r."""
    return subprocess.run(["bash", "local/data.sh", *map(str, args)], cwd=r, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
