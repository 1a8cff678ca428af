#!/usr/bin/env bash
# CMU AN4 (census) in ESPnet's convention: train on train_nodev (848), validate on train_dev (the first
# 100 training utterances), decode train_dev and test (130, 10 unseen speakers); BPE 30 and speed
# perturbation 0.9/1.0/1.1 as ESPnet's egs2/an4. Four models at matched size, one CPU schedule, then
# a comparison table and plot (exp/comparison.{md,png}).
#   ./run.sh --local_data_opts "--an4_root DIR"   AN4 already extracted (else downloaded from CMU)
#   ./run.sh --models "mamba transformer"         a subset
#   ./run.sh --seeds "0 1 2"                      every model once per seed; the table adds the means
#   ./run.sh --max_epoch N                        overrides max_epoch of every config
set -euo pipefail
stage=1
stop_stage=14
models="mamba conmamba transformer conformer"
local_data_opts=""        # options for local/data.sh (--an4_root DIR, --max_words N, ...)
max_epoch=""
seeds=0                   # seed 0 is the configs' own (plain exp dir); seed N trains into ..._seedN
nbpe=30
speed_perturb_factors="0.9 1.0 1.1"
nj=2
inference_nj=2
inference_config=conf/decode_asr.yaml
inference_model=valid.acc.ave.pth
conf_dir=conf             # where conf/train_asr_MODEL.yaml are looked up
help_message="Usage: $0 [--stage N] [--stop_stage N] [--models 'mamba conmamba transformer conformer'] [--local_data_opts '--an4_root DIR'] [--max_epoch N] [--seeds '0 1 2'] [--nbpe 30] [--speed_perturb_factors '0.9 1.0 1.1'] [--inference_config FILE] [--conf_dir DIR]"
. ./utils/parse_options.sh
for seed in ${seeds}; do
  [[ "${seed}" =~ ^[0-9]+$ ]] || { echo "$0: --seeds '${seeds}': '${seed}' is not a non-negative integer" >&2; exit 1; }
done

inference_tag=decode_$(basename "${inference_config}" .yaml)_$(basename "${inference_model}" .pth)
asr_args=""
[ -z "${max_epoch}" ] || asr_args="--max_epoch ${max_epoch}"
if [ "${stage}" -le 11 ] && [ "${stop_stage}" -ge 10 ]; then
  . ./path.sh
  configs=""
  for model in ${models}; do configs+=" ${conf_dir}/train_asr_${model}.yaml"; done
  echo "Model sizes (parameters):"
  tokens=data/token_list/bpe_unigram${nbpe}/tokens.txt
  # shellcheck disable=SC2086
  python3 -m espnet_mamba.recipe.model_size ${configs} $([ -f "${tokens}" ] && echo --token_list "${tokens}") 2>/dev/null
fi

exps=""
for seed in ${seeds}; do
  for model in ${models}; do
    tag=train_asr_${model}_bpe${nbpe}
    [ "${seed}" -eq 0 ] || tag+=_seed${seed}
    # stages 1-5 and 10 are shared: later models and seeds find them complete and skip them
    ./asr.sh --stage "${stage}" --stop_stage "${stop_stage}" \
      --train_set train_nodev --valid_set train_dev --test_sets "train_dev test" \
      --token_type bpe --nbpe "${nbpe}" --speed_perturb_factors "${speed_perturb_factors}" \
      --nj "${nj}" --inference_nj "${inference_nj}" \
      --asr_config "${conf_dir}/train_asr_${model}.yaml" --asr_tag "${tag}" \
      --inference_config "${inference_config}" --inference_model "${inference_model}" \
      --inference_tag "${inference_tag}" --local_data_opts "${local_data_opts}" \
      --asr_args "${asr_args} --seed ${seed}"
    exps+=" exp/asr_${tag}"
  done
done
if [ "${stop_stage}" -ge 13 ]; then
  . ./path.sh
  # shellcheck disable=SC2086
  python3 -m espnet_mamba.compare ${exps} --inference_tag "${inference_tag}" --out exp/comparison
fi
