#!/usr/bin/env bash
# Stage 1: synthesize the spoken-commands corpus on this machine (espeak-ng + flite).
#   local/data.sh [--n_train N] [--n_valid N] [--n_test N] [--seed S]
set -euo pipefail
n_train=400
n_valid=40
n_test=80
seed=0
help_message="Usage: $0 [--n_train N] [--n_valid N] [--n_test N] [--seed S]"
. ./utils/parse_options.sh
. ./path.sh
python3 -m espnet_mamba.recipe.corpora.synth_commands --out data --n_train "${n_train}" --n_valid "${n_valid}" \
  --n_test "${n_test}" --seed "${seed}"
