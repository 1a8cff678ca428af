#!/usr/bin/env bash
# LibriSpeech 960 h: ESPnet's conformer schedule (conf/train_schedule.yaml) with a model of the
# zoo (../../../conf/tuning/xl). Swap models with --asr_model_config, e.g.
#   ./run.sh --asr_model_config ../../../conf/tuning/xl/train_asr_conformer.yaml
# egs2/librispeech_100 runs this script with its own subset, schedule and model size.
set -euo pipefail
./asr.sh \
    --train_set train_960 --valid_set dev \
    --test_sets "test_clean test_other dev_clean dev_other" \
    --token_type bpe --nbpe 5000 \
    --speed_perturb_factors "0.9 1.0 1.1" \
    --max_wav_duration 30 \
    --asr_config conf/train_schedule.yaml \
    --asr_model_config ../../../conf/tuning/xl/train_asr_mamba.yaml \
    --inference_config conf/decode_asr.yaml \
    --inference_asr_model valid.acc.ave.pth \
    --local_data_opts "${local_data_opts:-}" \
    "$@"
