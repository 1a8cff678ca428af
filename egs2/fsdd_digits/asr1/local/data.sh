#!/usr/bin/env bash
# Stage 1: connected-digit utterances from the Free Spoken Digit Dataset (FSDD).
#   local/data.sh [--fsdd_dir DIR] [options of espnet_mamba.recipe.corpora.fsdd]
# e.g. --n_train N --n_dev N --n_test N --seed S --train_speakers a,b,c --test_speakers d,e
# --augment true|false --speed_factors f1,f2,... --onset_clip_ms N --n_synthetic N; their
# defaults are the module's (python -m espnet_mamba.recipe.corpora.fsdd --help), kept in one place.
# Writes data/train, data/dev (train speakers) and data/test_<speaker> per held-out speaker.
set -euo pipefail
log() { echo "$(date '+%Y-%m-%dT%H:%M:%S') (local/data.sh) $*"; }

fsdd_dir=""               # default: ../shared/data/fsdd beside the project root
help_message="Usage: $0 [--fsdd_dir DIR] [options of python -m espnet_mamba.recipe.corpora.fsdd]"
pass_unknown_options=true
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
log "building connected-digit utterances from ${fsdd_dir} ${unknown_options[*]}"
python3 -m espnet_mamba.recipe.corpora.fsdd --fsdd_dir "${fsdd_dir}" --out data "${unknown_options[@]}"
