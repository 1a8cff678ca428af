#!/usr/bin/env bash
# CMU AN4 (census) in ESPnet's convention: train on train_nodev (848), validate on train_dev (the first
# 100 training utterances), decode train_dev and test (130, 10 unseen speakers); BPE 30 and speed
# perturbation 0.9/1.0/1.1 as ESPnet's egs2/an4. Four models of the zoo at matched size
# (../../../conf/tuning/m), one CPU schedule (conf/train_schedule.yaml), then a comparison table
# and plot (exp/comparison.{md,png}).
#   ./run.sh --local_data_opts "--an4_root DIR"   AN4 already extracted (else downloaded from CMU)
#   ./run.sh --models "mamba transformer"         a subset
#   ./run.sh --seeds "0 1 2"                      every model once per seed; the table adds the means
#   ./run.sh --max_epoch N                        overrides max_epoch of every model
# Any other option goes to asr.sh (through run_models.sh), e.g. --stage 12 --stop_stage 13.
set -euo pipefail
./run_models.sh \
    --models "mamba conmamba transformer conformer" --model_dir ../../../conf/tuning/m \
    --train_set train_nodev --valid_set train_dev --test_sets "train_dev test" \
    --token_type bpe --nbpe 30 --speed_perturb_factors "0.9 1.0 1.1" \
    --nj 2 --inference_nj 2 \
    --asr_config conf/train_schedule.yaml --inference_config conf/decode_asr.yaml \
    "$@"
