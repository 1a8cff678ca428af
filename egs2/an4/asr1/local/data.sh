#!/usr/bin/env bash
# Stage 1 of the AN4 recipe: get the CMU AN4 corpus and make Kaldi data dirs the way ESPnet's
# egs2/an4 does (train_nodev 848 / train_dev = first 100 training utterances / test 130).
#   local/data.sh [--an4_root DIR] [--download_dir DIR] [--url URL] [--sha256 HEX] [--n_dev N]
#                 [--max_words N]   (N > 0: only utterances of <= N words, a reduced corpus for quick checks)
# Without --an4_root, an4_sphere.tar.gz is downloaded from CMU into --download_dir (resuming an
# interrupted download) and extracted there. SPHERE audio is read by libsndfile (no sph2pipe).
set -euo pipefail
log() { echo "$(date '+%Y-%m-%dT%H:%M:%S') (local/data.sh) $*"; }

an4_root=""               # a folder holding etc/ and wav/ (e.g. ../shared/data/an4)
download_dir=downloads
url=http://www.speech.cs.cmu.edu/databases/an4/an4_sphere.tar.gz
sha256=""                 # pin the archive's SHA-256 (CMU publishes none; its digest is printed)
n_dev=100
max_words=0
help_message="Usage: $0 [--an4_root DIR] [--download_dir DIR] [--url URL] [--sha256 HEX] [--n_dev N] [--max_words N]"
. ./utils/parse_options.sh
. ./path.sh

if [ -z "${an4_root}" ]; then
  log "downloading ${url} into ${download_dir}"
  python3 -m espnet_mamba.recipe.corpora.an4 download --dest "${download_dir}" --url "${url}" --sha256 "${sha256}"
  an4_root=${download_dir}/an4
fi
log "making Kaldi data dirs from ${an4_root} (every SPHERE file checked against its header)"
python3 -m espnet_mamba.recipe.corpora.an4 prepare --an4_root "${an4_root}" --data_dir data --n_dev "${n_dev}" \
  --max_words "${max_words}"
log "done"
