#!/usr/bin/env bash
# Connected digits from real speech (FSDD): speaker-disjoint train/dev and two unseen-speaker
# test sets; four models at matched size with the same schedule, then a comparison table.
#   ./run.sh                                     full run (table in README.md)
#   ./run.sh --models "mamba transformer"        a subset
#   ./run.sh --local_data_opts "--fsdd_dir DIR"  FSDD somewhere else
set -euo pipefail
stage=1
stop_stage=14
models="mamba conmamba transformer conformer"
test_speakers="george lucas"
local_data_opts=""        # extra options for local/data.sh (--fsdd_dir, --n_train, ...)
max_epoch=""              # overrides max_epoch of every config
nj=2
inference_nj=2
help_message="Usage: $0 [--stage N] [--stop_stage N] [--models 'mamba conmamba transformer conformer'] [--test_speakers 'george lucas'] [--local_data_opts '--fsdd_dir DIR ...'] [--max_epoch N]"
. ./utils/parse_options.sh

test_sets=""
for spk in ${test_speakers}; do test_sets+=" test_${spk}"; done
asr_args=""
[ -z "${max_epoch}" ] || asr_args="--max_epoch ${max_epoch}"
if [ "${stage}" -le 11 ] && [ "${stop_stage}" -ge 10 ]; then
  . ./path.sh
  configs=""
  for model in ${models}; do configs+=" conf/train_asr_${model}.yaml"; done
  echo "Model sizes (parameters):"
  # shellcheck disable=SC2086
  python3 -m espnet_mamba.recipe.model_size ${configs} \
    $([ -f data/token_list/word/tokens.txt ] && echo --token_list data/token_list/word/tokens.txt) 2>/dev/null
fi

exps=""
for model in ${models}; do
  # stages 1-5 and 10 are shared: later models find them complete and skip them
  ./asr.sh --stage "${stage}" --stop_stage "${stop_stage}" \
    --train_set train --valid_set dev --test_sets "${test_sets}" \
    --token_type word --feats_normalize utterance_mvn --nj "${nj}" --inference_nj "${inference_nj}" \
    --asr_config "conf/train_asr_${model}.yaml" --inference_config conf/decode_asr.yaml \
    --inference_model valid.acc.ave.pth \
    --local_data_opts "--test_speakers ${test_speakers// /,} ${local_data_opts}" \
    --asr_args "${asr_args}"
  exps+=" exp/asr_train_asr_${model}_word"
done
if [ "${stop_stage}" -ge 13 ]; then
  . ./path.sh
  # shellcheck disable=SC2086
  python3 -m espnet_mamba.compare ${exps} --out exp/comparison
fi
