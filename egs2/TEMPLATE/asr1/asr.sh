#!/usr/bin/env bash
# Stage-numbered ASR recipe engine for espnet-mamba (ESPnet's asr.sh, rewritten:
# the ESPnet wheel ships no recipes). A recipe's run.sh sets options and calls it.
#
#   1 data preparation (local/data.sh)        10 collect feature statistics
#   2 speed perturbation                       11 training
#   3 format audio into dump/                  12 decoding
#   4 filter short/long/empty utterances       13 scoring (WER/CER/TER, RESULTS.md)
#   5 token list (bpe or char)                 14 pack the model
#   (ESPnet's 6-9, language models: not supported yet; asked for, they are an error)
#
# Every stage can be rerun on its own (--stage N --stop-stage N). One "done" scheme:
# a stage that makes a directory writes DIR/.done last, holding a fingerprint of the
# options it was made with; with the same fingerprint the stage is skipped, otherwise the
# marker is removed before the work starts, so a stage killed half-way is done again,
# never taken for complete. Training (11) instead resumes from its last epoch.

# The whole script is one { ... } block ending in `exit`: bash parses it completely
# before running any of it, so editing or updating this file while a long training
# runs cannot change or break that run (bash otherwise reads a script as it goes).
{
set -euo pipefail

log() { echo -e "$(date '+%Y-%m-%dT%H:%M:%S') (${0##*/}:${BASH_LINENO[0]}) $*"; }
die() { log "ERROR: $*" >&2; exit 1; }

# ---- options (each can be given as --name value) ----
stage=1
stop_stage=14
nj=4                      # parallel jobs for data formatting and statistics
inference_nj=4            # parallel decoding jobs
ngpu=0                    # GPUs for training (0: CPU)
num_nodes=1               # nodes for multi-node training (Slurm backend)
gpu_inference=false
dumpdir=dump
expdir=exp
fs=16000                  # sampling rate of the dump: Hz, or ESPnet's form 16k
min_wav_duration=0.1
max_wav_duration=20
skip_bad_utts=false       # true: stage 3 moves utterances with unusable audio to removed_utts and goes on
speed_perturb_factors=""  # e.g. "0.9 1.0 1.1"
train_set=""
valid_set=""
test_sets=""
local_data_opts=""
token_type=bpe            # bpe, char or word
nbpe=5000
bpemode=unigram
asr_config=""             # training config; with --asr_model_config, the schedule only (all but the model)
asr_model_config=""       # a model of the zoo (conf/tuning/SIZE/*.yaml at the project root), added to --asr_config
asr_tag=""
asr_args=""               # extra arguments for asr_train
inference_config=""
inference_asr_model=valid.acc.ave.pth
inference_tag=""
inference_args=""
use_streaming=false       # true: stage 12 decodes chunk by chunk (espnet_mamba.bin.asr_inference_streaming; causal models)
streaming_chunk_ms=160    # with --use_streaming true: audio per call
feats_normalize=global_mvn  # global_mvn (stage 10 statistics), utterance_mvn or none
resume=true
skip_packing=false
use_lm=false              # ESPnet's LM switches, accepted as false only (see below)
use_word_lm=false
use_ngram=false

help_message="Usage: $0 --train_set SET --valid_set SET --test_sets 'SET ...' --asr_config CONF [options]
Options (defaults in brackets):
  --stage N --stop_stage M   stages to run [1 14]
  --nj N --inference_nj N    parallel jobs [4 4]
  --ngpu N --num_nodes N     training GPUs per node / nodes [0 1]
  --gpu_inference BOOL       decode on GPU [false]
  --train_set --valid_set --test_sets   data sets under data/
  --speed_perturb_factors 'F ...'       e.g. '0.9 1.0 1.1' [none]
  --token_type bpe|char|word --nbpe N   [bpe 5000]
  --feats_normalize global_mvn|utterance_mvn|none   [global_mvn]
  --asr_config FILE --asr_tag TAG --asr_args 'ARGS'
  --asr_model_config FILE    a model of the zoo (conf/tuning/SIZE/); --asr_config then holds the
                             schedule, and stages 10-11 train on the two merged into EXP/train_config.yaml
  --inference_config FILE --inference_asr_model FILE --inference_args 'ARGS'
  --use_streaming BOOL       stage 12 decodes as a stream: chunks of --streaming_chunk_ms, carried
                             encoder state, partial CTC hypotheses, attention rescoring at the end
                             (causal models: bidirectional: none) [false]
  --streaming_chunk_ms MS    [160]
  --dumpdir DIR --expdir DIR [dump exp]   --fs HZ (16000 or 16k) [16000]
  --min_wav_duration S --max_wav_duration S [0.1 20]
  --skip_bad_utts BOOL       stage 3: drop utterances whose audio is unusable (missing, empty,
                             undecodable, NaN/Inf, not mono) instead of stopping [false]
Job launching is configured in cmd.sh (cmd_backend=local|slurm).
Language models (ESPnet's stages 6-9, --use_lm true, --lm_*, --use_ngram true, --ngram_*): not supported yet."

# ESPnet's LM options would otherwise be "unknown option"s, or be accepted and ignored
lm_unsupported() { die "$1: language models (ESPnet's asr.sh stages 6-9) are not supported yet; decode without one (lm_weight: 0 in --inference_config)"; }
args=("$@")
for (( i = 0; i + 1 < ${#args[@]}; i += 2 )); do   # option names only: values may mention --lm_weight
  case "${args[i]}" in
    --help|-h) break ;;
    --use_lm|--use-lm|--use_ngram|--use-ngram|--use_word_lm|--use-word-lm)
      [ "${args[i + 1]}" = false ] || lm_unsupported "${args[i]} ${args[i + 1]}" ;;
    --lm_*|--lm-*|--ngram_*|--ngram-*|--inference_lm|--inference-lm|--inference_ngram|--inference-ngram|--word_vocab_size|--word-vocab-size)
      lm_unsupported "${args[i]}" ;;
  esac
done

. ./utils/parse_options.sh

[ -f ./path.sh ] && . ./path.sh
[ -f ./cmd.sh ] && . ./cmd.sh
: "${train_cmd:=utils/run.pl}" "${cuda_cmd:=utils/run.pl}" "${decode_cmd:=utils/run.pl}"

[ -n "${train_set}" ] || die "--train_set is required"
[ -n "${valid_set}" ] || die "--valid_set is required"
[ -n "${asr_config}" ] || [ "${stop_stage}" -lt 10 ] || die "--asr_config is required for stages 10-14"
[ -z "${asr_config}" ] || [ -f "${asr_config}" ] || die "--asr_config ${asr_config}: no such file"
[ -z "${asr_model_config}" ] || [ -f "${asr_model_config}" ] || die "--asr_model_config ${asr_model_config}: no such file"
case "${fs}" in
  *[0-9]k) fs=$(awk -v f="${fs%k}" 'BEGIN { printf "%d", f * 1000 }') ;;   # ESPnet's 16k, 22.05k
esac
[[ "${fs}" =~ ^[1-9][0-9]*$ ]] || die "--fs ${fs}: expected a rate in Hz (16000) or kHz (16k)"
# ESPnet's stages 6-9 build a language model: a range of nothing but them would otherwise do nothing
if [ "${stage}" -ge 6 ] && [ "${stop_stage}" -le 9 ] && [ "${stage}" -le "${stop_stage}" ]; then
  die "stages ${stage}-${stop_stage}: ESPnet's language-model stages (6-9) are not supported yet"
fi

if [ -n "${speed_perturb_factors}" ]; then
  train_sp=${train_set}_sp
else
  train_sp=${train_set}
fi
if [ "${token_type}" = bpe ]; then
  token_dir=data/token_list/bpe_${bpemode}${nbpe}
  bpemodel=${token_dir}/bpe.model
  token_suffix=${nbpe}
  bpe_opt="--bpemodel ${bpemodel}"
else
  token_dir=data/token_list/${token_type}
  bpemodel=none
  token_suffix=""
  bpe_opt=""
fi
token_list=${token_dir}/tokens.txt
data_feats=${dumpdir}/raw
if [ -z "${asr_tag}" ]; then
  asr_tag=$(basename "${asr_model_config:-${asr_config:-none}}" .yaml)_${token_type}${token_suffix}
  if [ -n "${speed_perturb_factors}" ]; then asr_tag+=_sp; fi
fi
asr_exp=${expdir}/asr_${asr_tag}
asr_train_config=${asr_config}
if [ -n "${asr_model_config}" ]; then
  asr_train_config=${asr_exp}/train_config.yaml
  if [ "${stage}" -le 11 ] && [ "${stop_stage}" -ge 10 ]; then
    python3 -m espnet_mamba.recipe.config "${asr_config}" "${asr_model_config}" "${asr_train_config}"
  fi
fi
asr_stats_dir=${expdir}/asr_stats_raw_${token_type}${token_suffix}
case "${use_streaming}" in true|false) ;; *) die "--use_streaming must be true or false, got '${use_streaming}'";; esac
if [ -z "${inference_tag}" ]; then
  inference_tag=decode_$(basename "${inference_config:-default}" .yaml)_$(basename "${inference_asr_model}" .pth)
  if [ "${use_streaming}" = true ]; then inference_tag+=_streaming${streaming_chunk_ms}ms; fi
fi
# the one "done" scheme (top of the file): is_done DIR [FINGERPRINT], start DIR, mark_done DIR [FINGERPRINT]
is_done() { [ -f "$1/.done" ] && [ "$(cat "$1/.done")" = "${2:-}" ]; }
start() { mkdir -p "$1"; rm -f "$1/.done"; }
mark_done() { printf '%s' "${2:-}" > "$1/.done"; }

# ---- 1: data preparation ----
if [ "${stage}" -le 1 ] && [ "${stop_stage}" -ge 1 ]; then
  # the fingerprint is local/data.sh's options: other options can make other data in the same files
  if is_done data "${local_data_opts}"; then
    log "Stage 1: data/ is complete (local/data.sh ${local_data_opts}), skipping"
  else
    log "Stage 1: data preparation (local/data.sh ${local_data_opts})"
    start data
    # shellcheck disable=SC2086
    local/data.sh ${local_data_opts}
    for s in ${train_set} ${valid_set} ${test_sets}; do
      python3 -m espnet_mamba.recipe.data_dir validate "data/${s}" >/dev/null
    done
    # everything derived from data/ is stale now: later stages must redo it
    find "${dumpdir}" "${expdir}" data -mindepth 2 -maxdepth 5 -name .done -delete 2>/dev/null || true
    mark_done data "${local_data_opts}"
  fi
fi

# ---- 2: speed perturbation ----
if [ "${stage}" -le 2 ] && [ "${stop_stage}" -ge 2 ]; then
  if [ -z "${speed_perturb_factors}" ]; then
    log "Stage 2: no --speed_perturb_factors, nothing to do"
  elif is_done "data/${train_sp}" "${speed_perturb_factors}"; then
    log "Stage 2: data/${train_sp} is complete, skipping"
  else
    log "Stage 2: speed perturbation of data/${train_set} by ${speed_perturb_factors} -> data/${train_sp}"
    rm -rf "data/${train_sp}"
    # shellcheck disable=SC2086
    python3 -m espnet_mamba.recipe.data_dir speed_perturb "data/${train_set}" "data/${train_sp}" \
      --factors ${speed_perturb_factors}
    mark_done "data/${train_sp}" "${speed_perturb_factors}"
  fi
fi

# ---- 3: format audio ----
if [ "${stage}" -le 3 ] && [ "${stop_stage}" -ge 3 ]; then
  for s in ${train_sp} ${valid_set} ${test_sets}; do
    out=${data_feats}/org/${s}
    [ "${s}" = "${train_sp}" ] || [ "${s}" = "${valid_set}" ] || out=${data_feats}/${s}
    if is_done "${out}"; then log "Stage 3: ${out} is complete, skipping"; continue; fi
    log "Stage 3: format data/${s} -> ${out} (fs=${fs}, nj=${nj})"
    rm -rf "${out}"
    python3 -m espnet_mamba.recipe.data_dir format "data/${s}" "${out}" --fs "${fs}" --nj "${nj}" \
      --skip_bad_utts "${skip_bad_utts}"
    mark_done "${out}"
  done
fi

# ---- 4: filter ----
if [ "${stage}" -le 4 ] && [ "${stop_stage}" -ge 4 ]; then
  for s in ${train_sp} ${valid_set}; do
    out=${data_feats}/${s}
    if is_done "${out}"; then log "Stage 4: ${out} is complete, skipping"; continue; fi
    log "Stage 4: drop utterances outside ${min_wav_duration}-${max_wav_duration} s or with empty text: ${s}"
    rm -rf "${out}"
    python3 -m espnet_mamba.recipe.data_dir filter "${data_feats}/org/${s}" "${out}" --fs "${fs}" \
      --min_wav_duration "${min_wav_duration}" --max_wav_duration "${max_wav_duration}"
    mark_done "${out}"
  done
fi

# ---- 5: token list ----
if [ "${stage}" -le 5 ] && [ "${stop_stage}" -ge 5 ]; then
  if is_done "${token_dir}"; then
    log "Stage 5: ${token_list} is complete, skipping"
  else
    log "Stage 5: ${token_type} token list from ${data_feats}/${train_sp}/text -> ${token_list}"
    start "${token_dir}"
    python3 -m espnet_mamba.recipe.tokens --text "${data_feats}/${train_sp}/text" \
      --token_type "${token_type}" --nbpe "${nbpe}" --bpemode "${bpemode}" --out_dir "${token_dir}"
    mark_done "${token_dir}"
  fi
fi

if [ "${stage}" -le 9 ] && [ "${stop_stage}" -ge 6 ]; then
  log "Stages 6-9 (language model): not supported yet, skipped (decoding uses no LM)"
fi

# what stages 10 and 11 both give asr_train: the data, the tokens and the text preprocessing
common_opts="--use_preprocessor true --token_type ${token_type} --token_list ${token_list}
  --bpemodel ${bpemodel} --non_linguistic_symbols none --cleaner none --g2p none"
data_opts=(
  --train_data_path_and_name_and_type "${data_feats}/${train_sp}/wav.scp,speech,sound"
  --train_data_path_and_name_and_type "${data_feats}/${train_sp}/text,text,text"
  --valid_data_path_and_name_and_type "${data_feats}/${valid_set}/wav.scp,speech,sound"
  --valid_data_path_and_name_and_type "${data_feats}/${valid_set}/text,text,text"
)

# ---- 10: statistics ----
if [ "${stage}" -le 10 ] && [ "${stop_stage}" -ge 10 ]; then
  if is_done "${asr_stats_dir}"; then
    log "Stage 10: ${asr_stats_dir} is complete, skipping"
  else
    log "Stage 10: collect feature statistics (${nj} jobs) -> ${asr_stats_dir}"
    start "${asr_stats_dir}"
    logdir=${asr_stats_dir}/logdir
    mkdir -p "${logdir}"
    _nj=$(( $(wc -l < "${data_feats}/${valid_set}/wav.scp") < nj ? $(wc -l < "${data_feats}/${valid_set}/wav.scp") : nj ))
    train_split=""; valid_split=""
    for n in $(seq "${_nj}"); do train_split+=" ${logdir}/train.${n}.scp"; valid_split+=" ${logdir}/valid.${n}.scp"; done
    # shellcheck disable=SC2086
    python3 -m espnet_mamba.recipe.split_scp "${data_feats}/${train_sp}/wav.scp" ${train_split}
    # shellcheck disable=SC2086
    python3 -m espnet_mamba.recipe.split_scp "${data_feats}/${valid_set}/wav.scp" ${valid_split}
    # shellcheck disable=SC2086
    ${train_cmd} JOB=1:"${_nj}" "${logdir}/stats.JOB.log" \
      python3 -m espnet_mamba.bin.asr_train --collect_stats true --config "${asr_train_config}" ${common_opts} \
        "${data_opts[@]}" --train_shape_file "${logdir}/train.JOB.scp" --valid_shape_file "${logdir}/valid.JOB.scp" \
        --output_dir "${logdir}/stats.JOB" --ngpu 0 --num_workers 0 ${asr_args}
    inputs=""
    for n in $(seq "${_nj}"); do inputs+=" --input_dir ${logdir}/stats.${n}"; done
    # shellcheck disable=SC2086
    python3 -m espnet2.bin.aggregate_stats_dirs ${inputs} --output_dir "${asr_stats_dir}"
    mark_done "${asr_stats_dir}"
  fi
fi

# ---- 11: training ----
if [ "${stage}" -le 11 ] && [ "${stop_stage}" -ge 11 ]; then
  log "Stage 11: training ${asr_train_config} -> ${asr_exp} (ngpu=${ngpu}, num_nodes=${num_nodes}, resume=${resume})"
  mkdir -p "${asr_exp}"
  # what a training was started on: resuming a checkpoint of other data would end at once and hand back
  # the old model as if it were new, so changed data is an error here, never a silent resume. The options
  # (stage 1's fingerprint, data/.done) count too: they can change the audio behind the same wav.scp paths
  training_data_id=$( { cat data/.done 2>/dev/null; echo;
                        cat "${data_feats}/${train_sp}/wav.scp" "${data_feats}/${train_sp}/text" \
                            "${data_feats}/${valid_set}/wav.scp" "${data_feats}/${valid_set}/text" \
                            "${asr_stats_dir}/train/speech_shape" "${token_list}"; } | cksum)
  if [ "${resume}" = true ] && [ -f "${asr_exp}/checkpoint.pth" ] && [ -f "${asr_exp}/.training_data" ] \
     && [ "$(cat "${asr_exp}/.training_data")" != "${training_data_id}" ]; then
    die "${asr_exp} holds a training (checkpoint.pth) of other data: data/, the token list or local/data.sh's options (--local_data_opts) changed since it started. Resuming would return the old model. Move it away (mv ${asr_exp} ${asr_exp}.old) or train into another directory (--asr_tag), then rerun from stage 11."
  fi
  printf '%s' "${training_data_id}" > "${asr_exp}/.training_data"
  normalize_opts=""
  case "${feats_normalize}" in
    global_mvn) normalize_opts="--normalize global_mvn --normalize_conf stats_file=${asr_stats_dir}/train/feats_stats.npz" ;;
    utterance_mvn|none) normalize_opts="--normalize ${feats_normalize}" ;;
    *) die "--feats_normalize ${feats_normalize}: expected global_mvn, utterance_mvn or none" ;;
  esac
  shape_suffix=""
  if [ -f "${asr_stats_dir}/train/text_shape.${token_type}" ]; then shape_suffix=.${token_type}; fi
  # shellcheck disable=SC2086
  python3 -m espnet2.bin.launch --cmd "${cuda_cmd}" --log "${asr_exp}/train.log" \
    --ngpu "${ngpu}" --num_nodes "${num_nodes}" --init_file_prefix "${asr_exp}/.dist_init_" \
    --multiprocessing_distributed true -- \
    python3 -m espnet_mamba.bin.asr_train --config "${asr_train_config}" ${common_opts} ${normalize_opts} \
      "${data_opts[@]}" --train_shape_file "${asr_stats_dir}/train/speech_shape" \
      --train_shape_file "${asr_stats_dir}/train/text_shape${shape_suffix}" \
      --valid_shape_file "${asr_stats_dir}/valid/speech_shape" \
      --valid_shape_file "${asr_stats_dir}/valid/text_shape${shape_suffix}" \
      --resume "${resume}" --fold_length 80000 --fold_length 150 \
      --output_dir "${asr_exp}" ${asr_args} \
    || die "training failed; see ${asr_exp}/train.log (rerun with --stage 11: it resumes from the last epoch)"
fi

# ---- 12: decoding ----
if [ "${stage}" -le 12 ] && [ "${stop_stage}" -ge 12 ]; then
  [ -f "${asr_exp}/${inference_asr_model}" ] || die "${asr_exp}/${inference_asr_model} not found: did stage 11 finish?"
  _ngpu=$([ "${gpu_inference}" = true ] && echo 1 || echo 0)
  # what a decoding depends on: a changed decoding config, --inference_args or model means decoding again
  if [ "${use_streaming}" = true ]; then
    inference_module=espnet_mamba.bin.asr_inference_streaming
    streaming_opts="--sim_chunk_length $(( fs * streaming_chunk_ms / 1000 )) --fs ${fs}"
  else
    inference_module=espnet_mamba.bin.asr_inference
    streaming_opts=""
  fi
  decoding_id=$( { [ -z "${inference_config}" ] || cat "${inference_config}"; echo "${inference_args}";
                   echo "${inference_module} ${streaming_opts}";
                   cat "${asr_exp}/${inference_asr_model}"; } | cksum)
  for s in ${test_sets}; do
    dir=${asr_exp}/${inference_tag}/${s}
    if is_done "${dir}" "${decoding_id}"; then log "Stage 12: ${dir} is complete, skipping"; continue; fi
    [ ! -f "${dir}/.done" ] || log "Stage 12: ${dir} was decoded with another model or other options; decoding again"
    log "Stage 12: decoding ${s} (${inference_nj} jobs) -> ${dir}"
    start "${dir}"
    # scores of an earlier decoding would otherwise outlive it and be reported until stage 13 reruns
    rm -rf "${dir}"/score_*
    logdir=${dir}/logdir
    mkdir -p "${logdir}"
    n_utt=$(wc -l < "${data_feats}/${s}/wav.scp")
    _nj=$(( n_utt < inference_nj ? n_utt : inference_nj ))
    split=""
    for n in $(seq "${_nj}"); do split+=" ${logdir}/keys.${n}.scp"; done
    # shellcheck disable=SC2086
    python3 -m espnet_mamba.recipe.split_scp "${data_feats}/${s}/wav.scp" ${split}
    config_opt=""
    [ -n "${inference_config}" ] && config_opt="--config ${inference_config}"
    # shellcheck disable=SC2086
    ${decode_cmd} --gpu "${_ngpu}" JOB=1:"${_nj}" "${logdir}/asr_inference.JOB.log" \
      python3 -m "${inference_module}" --batch_size 1 --ngpu "${_ngpu}" ${config_opt} ${streaming_opts} \
        --data_path_and_name_and_type "${data_feats}/${s}/wav.scp,speech,sound" \
        --key_file "${logdir}/keys.JOB.scp" --asr_train_config "${asr_exp}/config.yaml" \
        --asr_model_file "${asr_exp}/${inference_asr_model}" --output_dir "${logdir}/output.JOB" \
        ${inference_args} \
      || die "decoding ${s} failed; see ${logdir}/asr_inference.*.log"
    for f in text token token_int score; do
      for n in $(seq "${_nj}"); do
        cat "${logdir}/output.${n}/1best_recog/${f}" 2>/dev/null || true
      done | sort -k1,1 > "${dir}/${f}"
    done
    if [ "${use_streaming}" = true ]; then
      # per utterance: compute time per chunk (ms: p50 p95 max, chunks), real-time factor, the ms of
      # every chunk but the last, the last chunk's ms (it runs the end-of-stream search)
      for f in latency rtf chunk_ms final_ms; do
        cat "${logdir}"/output.*/streaming/"${f}" 2>/dev/null | sort -k1,1 > "${dir}/streaming_${f}" || true
      done
    fi
    # audio duration, for the real-time factor that espnet_mamba.compare reports
    awk -v fs="${fs}" '{s += $2} END {printf "%.3f\n", s / fs}' "${data_feats}/${s}/utt2num_samples" \
      > "${dir}/audio_seconds"
    mark_done "${dir}" "${decoding_id}"
  done
fi

# ---- 13: scoring ----
if [ "${stage}" -le 13 ] && [ "${stop_stage}" -ge 13 ]; then
  for s in ${test_sets}; do
    dir=${asr_exp}/${inference_tag}/${s}
    log "Stage 13: scoring ${dir}"
    python3 -m espnet_mamba.recipe.score --ref "${data_feats}/${s}/text" --hyp "${dir}/text" \
      --out_dir "${dir}" --name "${inference_tag}/${s}" --token_type "${token_type}" ${bpe_opt}
  done
  python3 -m espnet_mamba.recipe.results "${asr_exp}" > "${asr_exp}/RESULTS.md"
  log "Stage 13: results in ${asr_exp}/RESULTS.md"
  cat "${asr_exp}/RESULTS.md"
fi

# ---- 14: packing ----
if [ "${stage}" -le 14 ] && [ "${stop_stage}" -ge 14 ] && [ "${skip_packing}" = false ]; then
  log "Stage 14: pack ${asr_exp} -> ${asr_exp}/asr_model.zip"
  options="--option ${asr_exp}/RESULTS.md --option ${asr_stats_dir}/train/feats_stats.npz"
  if [ "${token_type}" = bpe ]; then options+=" --option ${bpemodel}"; fi
  # shellcheck disable=SC2086
  python3 -m espnet2.bin.pack asr --asr_train_config "${asr_exp}/config.yaml" \
    --asr_model_file "${asr_exp}/${inference_asr_model}" ${options} --outpath "${asr_exp}/asr_model.zip"
fi

log "Successfully finished stages ${stage}-${stop_stage}"
exit
}
