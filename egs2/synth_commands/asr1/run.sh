#!/usr/bin/env bash
# Offline demo, no data and no GPU needed: synthesize spoken commands with espeak-ng and
# flite (held-out voices for test), train a Mamba model and ESPnet's Transformer at
# matched size, decode, score, and print the comparison table.
#   ./run.sh                        full demo
#   ./run.sh --n_train 40 --max_epoch 1   a quick smoke run
#   ./run.sh --streaming_models "mamba_streaming contextual_block_transformer"
#                                   also train a causal Mamba and ESPnet's contextual block
#                                   Transformer (matched size) and decode them as streams
#                                   (asr.sh --use_streaming true, 160 ms chunks): the table
#                                   then adds compute per chunk (p50/p95) and stream RTF
set -euo pipefail
stage=1
stop_stage=14
n_train=400
n_valid=40
n_test=80
max_epoch=10
models="mamba transformer"
streaming_models=""       # e.g. "mamba_streaming contextual_block_transformer"
model_dir=../../../conf/tuning/demo   # the models (train_asr_<name>.yaml); conf/train_schedule.yaml the rest
help_message="Usage: $0 [--stage N] [--stop_stage N] [--n_train N] [--n_valid N] [--n_test N] [--max_epoch N] [--models 'mamba transformer'] [--streaming_models 'mamba_streaming contextual_block_transformer'] [--model_dir DIR]"
. ./utils/parse_options.sh

exps=""
for model in ${models} ${streaming_models}; do
  streaming=false
  case " ${streaming_models} " in *" ${model} "*) streaming=true;; esac
  # stages 1-5 and 10 are shared: the second model finds them complete and skips them
  ./asr.sh --stage "${stage}" --stop_stage "${stop_stage}" \
    --train_set train --valid_set valid --test_sets test \
    --token_type char --nj 2 --inference_nj 2 --min_wav_duration 0.3 \
    --asr_config conf/train_schedule.yaml --asr_model_config "${model_dir}/train_asr_${model}.yaml" \
    --inference_config conf/decode_asr.yaml \
    --inference_asr_model valid.acc.ave.pth \
    --local_data_opts "--n_train ${n_train} --n_valid ${n_valid} --n_test ${n_test}" \
    --asr_args "--max_epoch ${max_epoch}" --use_streaming "${streaming}"
  exps+=" exp/asr_train_asr_${model}_char"
done
if [ "${stop_stage}" -ge 13 ]; then
  . ./path.sh
  # shellcheck disable=SC2086
  python3 -m espnet_mamba.compare ${exps} --out exp/comparison
fi
