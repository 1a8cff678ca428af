#!/usr/bin/env bash
# Kaldi's run.pl interface, implemented by espnet_mamba.recipe.launch (not Perl: ESPnet's
# espnet2.bin.launch chooses its multi-node code path by this file's name).
#   utils/run.pl [--gpu N] [--num_threads N] [--mem M] [JOB=1:N] LOGFILE COMMAND...
exec python3 -m espnet_mamba.recipe.launch --backend local "$@"
