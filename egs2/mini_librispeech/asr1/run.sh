#!/usr/bin/env bash
# Mini LibriSpeech (16 speakers of train-clean-5, FLAC) through the LibriSpeech recipe's data path,
# split by speaker (README.md): train (10 speakers), dev (2), test (4); BPE; speed perturbation
# 0.9/1.0/1.1. The AN4 recipe's four models of the zoo at matched size (../../../conf/tuning/m),
# one CPU schedule (conf/train_schedule.yaml), then a comparison table and plot (exp/comparison.{md,png}).
#   ./run.sh --local_data_opts "--librispeech_dir DIR"   (default: ../shared/data/mini_librispeech/LibriSpeech)
#   ./run.sh --models "mamba transformer"         a subset
#   ./run.sh --seeds "0 1 2"                      every model once per seed; the table adds the means
#   ./run.sh --max_epoch N                        overrides max_epoch of every model
# Any other option goes to asr.sh (through run_models.sh), e.g. --stage 12 --stop_stage 13.
set -euo pipefail
# nbpe 300: a first choice for 456 training sentences; to be set on dev
./run_models.sh \
    --models "mamba conmamba transformer conformer" --model_dir ../../../conf/tuning/m \
    --train_set train --valid_set dev --test_sets "dev test" \
    --token_type bpe --nbpe 300 --speed_perturb_factors "0.9 1.0 1.1" \
    --nj 2 --inference_nj 2 \
    --asr_config conf/train_schedule.yaml --inference_config conf/decode_asr.yaml \
    "$@"
