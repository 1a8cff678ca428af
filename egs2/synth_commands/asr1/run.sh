#!/usr/bin/env bash
# Offline demo, no data and no GPU needed: synthesize spoken commands with espeak-ng and
# flite (held-out voices for test), train a Mamba model and ESPnet's Transformer at
# matched size (../../../conf/tuning/demo) with one schedule (conf/train_schedule.yaml),
# decode, score, and print the comparison table.
#   ./run.sh                        full demo
#   ./run.sh --n_train 40 --max_epoch 1   a quick smoke run
#   ./run.sh --streaming_models "mamba_streaming contextual_block_transformer"
#                                   also train a causal Mamba and ESPnet's contextual block
#                                   Transformer (matched size) and decode them as streams
#                                   (asr.sh --use_streaming true, 160 ms chunks): the table
#                                   then adds compute per chunk (p50/p95) and stream RTF
#   ./run.sh --seeds "0 1 2"        every model once per seed; the table adds the means
# Any other option goes to asr.sh (through run_models.sh), e.g. --stage 12 --stop_stage 13.
set -euo pipefail
n_train=400
n_valid=40
n_test=80
max_epoch=10
models="mamba transformer"
streaming_models=""       # e.g. "mamba_streaming contextual_block_transformer"
model_dir=../../../conf/tuning/demo
help_message="Usage: $0 [--n_train N] [--n_valid N] [--n_test N] [--max_epoch N] [--models 'mamba transformer'] [--streaming_models 'mamba_streaming contextual_block_transformer'] [--model_dir DIR] [options of run_models.sh and asr.sh]"
pass_unknown_options=true
. ./utils/parse_options.sh

./run_models.sh \
    --models "${models}" --streaming_models "${streaming_models}" --model_dir "${model_dir}" \
    --max_epoch "${max_epoch}" \
    --train_set train --valid_set valid --test_sets test \
    --token_type char --nj 2 --inference_nj 2 --min_wav_duration 0.3 \
    --asr_config conf/train_schedule.yaml --inference_config conf/decode_asr.yaml \
    --local_data_opts "--n_train ${n_train} --n_valid ${n_valid} --n_test ${n_test}" \
    "${unknown_options[@]}"
