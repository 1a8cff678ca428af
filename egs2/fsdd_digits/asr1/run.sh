#!/usr/bin/env bash
# Connected digits from real speech (FSDD): speaker-disjoint train/dev and two unseen-speaker
# test sets; four models of the zoo at matched size (../../../conf/tuning/s) with the same
# schedule (conf/train_schedule.yaml), then a comparison table.
#   ./run.sh                                     full run (table in README.md)
#   ./run.sh --models "mamba transformer"        a subset
#   ./run.sh --local_data_opts "--fsdd_dir DIR"  FSDD somewhere else
#   ./run.sh --seeds "0 1 2"                     every model once per seed; the table adds the means
#   ./run.sh --test_speakers "george lucas"      the held-out speakers, one test set each
# Any other option goes to asr.sh (through run_models.sh), e.g. --stage 12 --stop_stage 13.
set -euo pipefail
test_speakers="george lucas"
local_data_opts=""        # options for local/data.sh (--fsdd_dir, --n_train, ...)
help_message="Usage: $0 [--test_speakers 'george lucas'] [--local_data_opts '--fsdd_dir DIR ...'] [options of run_models.sh and asr.sh]"
pass_unknown_options=true
. ./utils/parse_options.sh

test_sets=""
for spk in ${test_speakers}; do test_sets+=" test_${spk}"; done
./run_models.sh \
    --models "mamba conmamba transformer conformer" --model_dir ../../../conf/tuning/s \
    --train_set train --valid_set dev --test_sets "${test_sets# }" \
    --token_type word --feats_normalize utterance_mvn --nj 2 --inference_nj 2 \
    --asr_config conf/train_schedule.yaml --inference_config conf/decode_asr.yaml \
    --local_data_opts "--test_speakers ${test_speakers// /,} ${local_data_opts}" \
    "${unknown_options[@]}"
