#!/usr/bin/env bash
# LibriSpeech 100 h: the 960 h recipe's data preparation, restricted to train-clean-100
# (plus dev/test). Takes the same options, e.g. --librispeech_dir DIR.
exec ../../librispeech/asr1/local/data.sh \
    --parts "train-clean-100 dev-clean dev-other test-clean test-other" \
    --train_parts train_clean_100 --train_set train_clean_100 "$@"
