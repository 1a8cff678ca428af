#!/usr/bin/env bash
# LibriSpeech 960 h. Swap models with --asr_config, e.g.
#   ./run.sh --asr_config conf/tuning/train_asr_conformer.yaml
set -euo pipefail
./asr.sh \
    --train_set train_960 --valid_set dev \
    --test_sets "test_clean test_other dev_clean dev_other" \
    --token_type bpe --nbpe 5000 \
    --speed_perturb_factors "0.9 1.0 1.1" \
    --max_wav_duration 30 \
    --asr_config conf/tuning/train_asr_mamba.yaml \
    --inference_config conf/decode_asr.yaml \
    --inference_model valid.acc.ave.pth \
    --local_data_opts "${local_data_opts:-}" \
    "$@"
