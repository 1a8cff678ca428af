#!/usr/bin/env bash
# Stage 1: connected-digit utterances from the Free Spoken Digit Dataset (FSDD).
#   local/data.sh [--fsdd_dir DIR] [--n_train N] [--n_dev N] [--n_test N] [--seed S]
#                 [--train_speakers a,b,c] [--test_speakers d,e] [--augment true|false]
#                 [--speed_factors 0.9,0.95,1.0,1.05,1.1] [--channel_eq true|false]
#                 [--onset_clip_ms N] [--n_synthetic N]
# Writes data/train, data/dev (train speakers) and data/test_<speaker> per held-out speaker.
set -euo pipefail
log() { echo "$(date '+%Y-%m-%dT%H:%M:%S') (local/data.sh) $*"; }

fsdd_dir=""               # default: ../shared/data/fsdd beside the project root
n_train=1300
n_dev=150
n_test=150
seed=0
train_speakers=jackson,nicolas,yweweler   # comma-separated
test_speakers=george,lucas
augment=true
speed_factors=0.9,0.95,1.0,1.05,1.1       # training speed perturbation, one factor drawn per utterance
channel_eq=false         # training only: random spectral tilt (+-10 dB at 4 kHz) and high-pass (20-300 Hz)
onset_clip_ms=0          # training only: half of the digits lose a random 0..N ms of their start (0: off)
n_synthetic=0            # training only: N more utterances spoken by espeak-ng voices (0: off)
help_message="Usage: $0 [--fsdd_dir DIR] [--n_train N] [--n_dev N] [--n_test N] [--seed S] [--train_speakers a,b,c] [--test_speakers d,e] [--augment true|false] [--speed_factors f1,f2,...] [--channel_eq true|false] [--onset_clip_ms N] [--n_synthetic N]"
. ./utils/parse_options.sh
. ./path.sh

if [ -z "${fsdd_dir}" ]; then
  fsdd_dir=$(readlink -f "${MAIN_ROOT}/../shared/data/fsdd" || true)
  if [ ! -d "${fsdd_dir}/recordings" ]; then
    echo "ERROR: no --fsdd_dir given and ${MAIN_ROOT}/../shared/data/fsdd/recordings does not exist." >&2
    echo "Get the Free Spoken Digit Dataset (CC BY-SA 4.0), e.g." >&2
    echo "  git clone https://github.com/Jakobovski/free-spoken-digit-dataset  (or Zenodo DOI 10.5281/zenodo.1342401)" >&2
    echo "and rerun with --local_data_opts '--fsdd_dir /path/to/free-spoken-digit-dataset'." >&2
    exit 1
  fi
fi
log "building connected-digit utterances from ${fsdd_dir} (train/dev: ${train_speakers}; test: ${test_speakers})"
python3 -m espnet_mamba.recipe.fsdd --fsdd_dir "${fsdd_dir}" --out data --n_train "${n_train}" --n_dev "${n_dev}" \
  --n_test "${n_test}" --seed "${seed}" --train_speakers "${train_speakers}" --test_speakers "${test_speakers}" \
  --augment "${augment}" --speed_factors "${speed_factors}" \
  --channel_eq "${channel_eq}" --onset_clip_ms "${onset_clip_ms}" --n_synthetic "${n_synthetic}"
