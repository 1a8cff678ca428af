# How jobs are launched. Choose a backend for this machine:
#   local: jobs run here, in parallel (utils/run.pl)
#   slurm: jobs are submitted with sbatch and waited for (utils/slurm.pl);
#          add partitions etc. with --sbatch_opts "-p gpu --time 24:00:00"
cmd_backend=${cmd_backend:-local}

case "${cmd_backend}" in
  local)
    train_cmd="utils/run.pl"
    cuda_cmd="utils/run.pl"
    decode_cmd="utils/run.pl" ;;
  slurm)
    train_cmd="utils/slurm.pl --mem 4G"
    cuda_cmd="utils/slurm.pl --mem 16G"
    decode_cmd="utils/slurm.pl --mem 8G" ;;
  *) echo "cmd.sh: unknown cmd_backend=${cmd_backend} (local or slurm)" >&2; return 1 ;;
esac
