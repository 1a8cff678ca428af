#!/usr/bin/env bash
# Several models of the zoo through asr.sh on one recipe, then a comparison table: what the
# recipes that compare Mamba with ESPnet's Transformer and Conformer share. A recipe's run.sh
# sets its options and calls this; every option not listed here goes on to asr.sh unchanged.
#   --models 'mamba transformer'   zoo files MODEL_DIR/train_asr_MODEL.yaml, in this order
#   --streaming_models 'M ...'     more zoo models, trained after --models and decoded as streams
#                                  (asr.sh --use_streaming true); the table adds chunk latency
#   --model_dir DIR                the zoo's size (e.g. ../../../conf/tuning/m)
#   --seeds '0 1 2'                every model once per seed. Seed 0 is the configs' own and keeps the
#                                  plain exp dir; seed N trains into exp/asr_train_asr_MODEL_TOKENS_seedN
#   --max_epoch N                  overrides max_epoch of every model
# Stages 1-5 and 10 are shared: the second model and later find them complete and skip them.
# Before stage 10 the models' parameter counts are printed; after stage 13, exp/comparison.{md,png}.
set -euo pipefail

models=""
streaming_models=""
model_dir=""
seeds=0
max_epoch=""
# asr.sh's options that this script reads too (same defaults as asr.sh's); they go on to asr.sh
stage=1
stop_stage=14
token_type=bpe
nbpe=5000
bpemode=unigram
asr_config=""
asr_args=""
inference_config=""
inference_asr_model=valid.acc.ave.pth
streaming_chunk_ms=160
help_message="Usage: $0 --models 'M ...' --model_dir DIR [--streaming_models 'M ...'] [--seeds '0 1 2'] [--max_epoch N] [asr.sh options]"
pass_unknown_options=true
. ./utils/parse_options.sh

[ -n "${models}${streaming_models}" ] || { echo "$0: --models is required" >&2; exit 1; }
[ -d "${model_dir}" ] || { echo "$0: --model_dir '${model_dir}': no such directory" >&2; exit 1; }
for seed in ${seeds}; do
  [[ "${seed}" =~ ^[0-9]+$ ]] || { echo "$0: --seeds '${seeds}': '${seed}' is not a non-negative integer" >&2; exit 1; }
done
for model in ${models} ${streaming_models}; do
  [ -f "${model_dir}/train_asr_${model}.yaml" ] || { echo "$0: no model ${model_dir}/train_asr_${model}.yaml" >&2; exit 1; }
done

if [ "${token_type}" = bpe ]; then tokens=bpe${nbpe}; token_dir=bpe_${bpemode}${nbpe}; else tokens=${token_type}; token_dir=${token_type}; fi
inference_tag=decode_$(basename "${inference_config:-default}" .yaml)_$(basename "${inference_asr_model}" .pth)
[ -z "${max_epoch}" ] || asr_args="${asr_args:+${asr_args} }--max_epoch ${max_epoch}"

if [ "${stage}" -le 11 ] && [ "${stop_stage}" -ge 10 ]; then
  . ./path.sh
  configs=""
  for model in ${models} ${streaming_models}; do configs+=" ${model_dir}/train_asr_${model}.yaml"; done
  echo "Model sizes (parameters):"
  token_list=data/token_list/${token_dir}/tokens.txt
  # shellcheck disable=SC2086
  python3 -m espnet_mamba.recipe.model_size ${configs} --schedule "${asr_config}" \
    $([ -f "${token_list}" ] && echo --token_list "${token_list}") 2>/dev/null
fi

exps=""
inference_tags=""
for seed in ${seeds}; do
  for model in ${models} ${streaming_models}; do
    tag=train_asr_${model}_${tokens}
    [ "${seed}" -eq 0 ] || tag+=_seed${seed}
    streaming=()
    model_inference_tag=${inference_tag}
    case " ${streaming_models} " in *" ${model} "*)
      streaming=(--use_streaming true)
      model_inference_tag+=_streaming${streaming_chunk_ms}ms;;   # asr.sh's name for a streamed decoding
    esac
    ./asr.sh "${unknown_options[@]}" "${streaming[@]}" --stage "${stage}" --stop_stage "${stop_stage}" \
      --token_type "${token_type}" --nbpe "${nbpe}" --bpemode "${bpemode}" \
      --asr_config "${asr_config}" --asr_model_config "${model_dir}/train_asr_${model}.yaml" \
      --asr_tag "${tag}" --asr_args "${asr_args:+${asr_args} }--seed ${seed}" \
      --inference_config "${inference_config}" --inference_asr_model "${inference_asr_model}" \
      --inference_tag "${model_inference_tag}" --streaming_chunk_ms "${streaming_chunk_ms}"
    exps+=" exp/asr_${tag}"
    inference_tags+=" ${model_inference_tag}"
  done
done
if [ "${stop_stage}" -ge 13 ]; then
  . ./path.sh
  # only the decoding made above; others (e.g. a CTC-weight sweep on dev) stay out of the table
  # shellcheck disable=SC2086
  python3 -m espnet_mamba.compare ${exps} --inference_tag ${inference_tags} --out exp/comparison
fi
