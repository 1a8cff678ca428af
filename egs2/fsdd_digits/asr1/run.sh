#!/usr/bin/env bash
# Connected digits from real speech (FSDD): speaker-disjoint train/dev and two unseen-speaker
# test sets; four models at matched size with the same schedule, then a comparison table.
#   ./run.sh                                     full run (table in README.md)
#   ./run.sh --models "mamba transformer"        a subset
#   ./run.sh --local_data_opts "--fsdd_dir DIR"  FSDD somewhere else
#   ./run.sh --seeds "0 1 2"                     every model once per seed; the table adds the means
set -euo pipefail
stage=1
stop_stage=14
models="mamba conmamba transformer conformer"
test_speakers="george lucas"
local_data_opts=""        # extra options for local/data.sh (--fsdd_dir, --n_train, ...)
max_epoch=""              # overrides max_epoch of every config
seeds=0                   # training seeds (model init, batch order). Seed 0 is the configs' own and keeps
                          # the plain exp dir name; seed N trains into exp/asr_train_asr_MODEL_word_seedN
nj=2
inference_nj=2
inference_config=conf/decode_asr.yaml   # decoding options (beam, CTC weight); its name names the decode dir
inference_model=valid.acc.ave.pth
help_message="Usage: $0 [--stage N] [--stop_stage N] [--models 'mamba conmamba transformer conformer'] [--test_speakers 'george lucas'] [--local_data_opts '--fsdd_dir DIR ...'] [--max_epoch N] [--seeds '0 1 2'] [--inference_config conf/decode_asr.yaml]"
. ./utils/parse_options.sh
for seed in ${seeds}; do
  [[ "${seed}" =~ ^[0-9]+$ ]] || { echo "$0: --seeds '${seeds}': '${seed}' is not a non-negative integer" >&2; exit 1; }
done

inference_tag=decode_$(basename "${inference_config}" .yaml)_$(basename "${inference_model}" .pth)
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
for seed in ${seeds}; do
  for model in ${models}; do
    tag=train_asr_${model}_word
    [ "${seed}" -eq 0 ] || tag+=_seed${seed}
    # stages 1-5 and 10 are shared: later models and seeds find them complete and skip them
    ./asr.sh --stage "${stage}" --stop_stage "${stop_stage}" \
      --train_set train --valid_set dev --test_sets "${test_sets}" \
      --token_type word --feats_normalize utterance_mvn --nj "${nj}" --inference_nj "${inference_nj}" \
      --asr_config "conf/train_asr_${model}.yaml" --asr_tag "${tag}" --inference_config "${inference_config}" \
      --inference_model "${inference_model}" --inference_tag "${inference_tag}" \
      --local_data_opts "--test_speakers ${test_speakers// /,} ${local_data_opts}" \
      --asr_args "${asr_args} --seed ${seed}"
    exps+=" exp/asr_${tag}"
  done
done
if [ "${stop_stage}" -ge 13 ]; then
  . ./path.sh
  # shellcheck disable=SC2086
  # only the decoding made above; others (e.g. a CTC-weight sweep on dev) stay out of the table
  python3 -m espnet_mamba.compare ${exps} --inference_tag "${inference_tag}" --out exp/comparison
fi
