#!/usr/bin/env bash
# LibriSpeech 100 h (train-clean-100), what most papers compare on: the 960 h recipe's run.sh, run
# here (this directory's data/, dump/, exp/, conf/) on train_clean_100 with ESPnet's librispeech_100
# schedule (conf/train_schedule.yaml) and the zoo's models of that size (../../../conf/tuning/l).
# Swap models with
#   ./run.sh --asr_model_config ../../../conf/tuning/l/train_asr_conformer.yaml
set -euo pipefail
../../librispeech/asr1/run.sh \
    --train_set train_clean_100 \
    --asr_model_config ../../../conf/tuning/l/train_asr_mamba.yaml \
    "$@"
