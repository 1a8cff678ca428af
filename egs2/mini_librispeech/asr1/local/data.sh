#!/usr/bin/env bash
# Stage 1 of the Mini LibriSpeech recipe: the LibriSpeech recipe's own data path (FLAC +
# .trans.txt -> Kaldi data dir) on train-clean-5, then a speaker-disjoint train/dev/test split
# balanced by sex (rule and speakers: README.md).
#   local/data.sh [--librispeech_dir DIR] [--n_test_per_sex N] [--n_dev_per_sex N]
#                 [--download true --download_dir DIR --base_url URL]
# Default --librispeech_dir: ../shared/data/mini_librispeech/LibriSpeech beside the project (16 of
# train-clean-5's 28 speakers). --download true fetches the whole train-clean-5 from --base_url
# (OpenSLR resource 31) with the LibriSpeech recipe's resumable, MD5-checked download (the mirror
# must serve md5sum.txt) and uses it instead.
set -euo pipefail
log() { echo "$(date '+%Y-%m-%dT%H:%M:%S') (local/data.sh) $*"; }

librispeech_dir=""
download=false
download_dir=downloads
base_url=https://www.openslr.org/resources/31
part=train-clean-5
n_test_per_sex=2
n_dev_per_sex=1
help_message="Usage: $0 [--librispeech_dir DIR] [--n_test_per_sex N] [--n_dev_per_sex N] [--download true --download_dir DIR --base_url URL]"
. ./utils/parse_options.sh
. ./path.sh

if [ "${download}" = true ]; then
  log "downloading ${part} from ${base_url} into ${download_dir}"
  python3 -m espnet_mamba.recipe.corpora.librispeech download --parts "${part}" --dest "${download_dir}" --base_url "${base_url}"
  librispeech_dir=${download_dir}/LibriSpeech
elif [ -z "${librispeech_dir}" ]; then
  librispeech_dir=$(readlink -f "${MAIN_ROOT}/../shared/data/mini_librispeech/LibriSpeech" || true)
  if [ ! -d "${librispeech_dir}/${part}" ]; then
    echo "ERROR: no --librispeech_dir given and ${MAIN_ROOT}/../shared/data/mini_librispeech/LibriSpeech/${part} does not exist." >&2
    echo "Pass --local_data_opts '--librispeech_dir DIR' (the folder holding ${part}/ and SPEAKERS.TXT)," >&2
    echo "or --local_data_opts '--download true' to download ${part} from ${base_url}." >&2
    exit 1
  fi
fi
log "making Kaldi data dirs from ${librispeech_dir}/${part}"
python3 -m espnet_mamba.recipe.corpora.librispeech prepare --corpus "${librispeech_dir}" --parts "${part}" --data_dir data
log "speaker-disjoint split (${n_test_per_sex} test and ${n_dev_per_sex} dev speakers of each sex)"
python3 -m espnet_mamba.recipe.corpora.mini_librispeech split --src "data/${part//-/_}" \
  --speakers_txt "${librispeech_dir}/SPEAKERS.TXT" --data_dir data \
  --n_test_per_sex "${n_test_per_sex}" --n_dev_per_sex "${n_dev_per_sex}"
log "done"
