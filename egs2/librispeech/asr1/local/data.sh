#!/usr/bin/env bash
# Stage 1 of the LibriSpeech recipes: get the corpus and make Kaldi data dirs.
#   local/data.sh [--librispeech_dir DIR] [--parts "dev-clean ..."] [--download_dir DIR] [--base_url URL]
# Without --librispeech_dir the archives are downloaded from OpenSLR (resource 12)
# into --download_dir, resuming interrupted downloads and checking MD5 sums.
set -euo pipefail
log() { echo "$(date '+%Y-%m-%dT%H:%M:%S') (local/data.sh) $*"; }

librispeech_dir=""
download_dir=downloads
base_url=https://www.openslr.org/resources/12
parts="train-clean-100 train-clean-360 train-other-500 dev-clean dev-other test-clean test-other"
train_parts="train_clean_100 train_clean_360 train_other_500"
train_set=train_960
help_message="Usage: $0 [--librispeech_dir DIR] [--download_dir DIR] [--parts 'P ...'] [--base_url URL]"
. ./utils/parse_options.sh
. ./path.sh

if [ -z "${librispeech_dir}" ]; then
  log "downloading ${parts} from ${base_url} into ${download_dir}"
  # shellcheck disable=SC2086
  python3 -m espnet_mamba.recipe.corpora.librispeech download --parts ${parts} --dest "${download_dir}" --base_url "${base_url}"
  librispeech_dir=${download_dir}/LibriSpeech
fi
log "making Kaldi data dirs from ${librispeech_dir}"
# shellcheck disable=SC2086
python3 -m espnet_mamba.recipe.corpora.librispeech prepare --corpus "${librispeech_dir}" --parts ${parts} --data_dir data
# the training set (several parts for 960 h) and one validation set made of both dev halves
srcs=""
for p in ${train_parts}; do [ -d "data/${p}" ] && srcs+=" data/${p}"; done
if [ -n "${srcs}" ] && [ "${train_set}" != "${train_parts}" ]; then
  # shellcheck disable=SC2086
  python3 -m espnet_mamba.recipe.corpora.librispeech combine "data/${train_set}" ${srcs}
fi
if [ -d data/dev_clean ] && [ -d data/dev_other ]; then
  python3 -m espnet_mamba.recipe.corpora.librispeech combine data/dev data/dev_clean data/dev_other
fi
log "done"
