#!/usr/bin/env bash
# One GPU check, about 10 minutes on one GPU from a clean checkout:
#   1. tools/install.sh --cuda     virtualenv + the mamba-ssm / causal-conv1d kernels, built
#                                  for the visible GPU (skipped when they already import)
#   2. pytest -m gpu               kernels vs the PyTorch path, checkpoints vs mamba_ssm
#   3. tools/gpu_check.py          scan kernel GB/s vs the memory bandwidth, bf16 encoder
#                                  training step (Mamba / Conformer / Transformer at 10, 30,
#                                  60 s), beam-search step, 200 demo training steps under
#                                  bf16 and fp16
# Writes OUT/gpu_check.json, OUT/gpu_check.md (the numbers, targets met or missed) and the
# logs of each phase; prints the Markdown at the end.
#
# Usage: tools/gpu_check.sh [--out DIR] [--no-build]
#   --out DIR     where the results go (default: exp/gpu_check in the checkout)
#   --no-build    do not run tools/install.sh (use the existing tools/venv as it is)
# Exit status: 0 every check passed and every target met; 1 a test failed or a target was
# missed (see OUT/gpu_check.md); 0 with "SKIPPED" when this machine has no NVIDIA GPU.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
out=$root/exp/gpu_check
build=true
while [ $# -gt 0 ]; do
  case $1 in
    --out) out=$2; shift 2 ;;
    --no-build) build=false; shift ;;
    -h|--help) sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "gpu_check.sh: unknown option '$1' (see $0 --help)" >&2; exit 2 ;;
  esac
done

log() { echo "[gpu_check.sh $(date +%H:%M:%S)] $*"; }
phase_start=$SECONDS
phase() { log "$1 done in $((SECONDS - phase_start)) s"; phase_start=$SECONDS; }

# 0. is there a GPU at all? (cheap, before anything is installed)
gpus=$( (command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L 2>/dev/null) || true)
if ! grep -q '^GPU' <<<"$gpus"; then
  echo "gpu_check.sh: SKIPPED: no NVIDIA GPU on this machine (nvidia-smi is missing or lists no GPU)."
  echo "  Nothing was checked. Run this script on a machine with a CUDA GPU."
  echo "  Without a GPU: tools/install.sh && tools/venv/bin/python -m pytest -q test"
  exit 0
fi
mkdir -p "$out"
out=$(cd "$out" && pwd)
log "GPU: ${gpus%%$'\n'*}; results in $out"
python=$root/tools/venv/bin/python
status=0

# 1. virtualenv and kernels
if $build; then
  log "1/3 tools/install.sh --cuda (kernel build: minutes; log: $out/install.log)"
  if ! MAX_JOBS=${MAX_JOBS:-$(nproc)} "$root/tools/install.sh" --cuda --no-apt >"$out/install.log" 2>&1; then
    tail -n 30 "$out/install.log"
    echo "gpu_check.sh: tools/install.sh --cuda failed (full log: $out/install.log)" >&2
    exit 1
  fi
  phase "install"
fi
[ -x "$python" ] || { echo "gpu_check.sh: $python missing: run tools/install.sh --cuda (or drop --no-build)" >&2; exit 1; }
if ! "$python" -c 'import sys, torch; sys.exit(not torch.cuda.is_available())'; then
  echo "gpu_check.sh: nvidia-smi lists a GPU but torch in tools/venv cannot use it" \
       "(torch $("$python" -c 'import torch; print(torch.__version__, "built for CUDA", torch.version.cuda)')):" \
       "is the driver older than that CUDA? nvidia-smi says: $(nvidia-smi 2>&1 | grep -o 'CUDA Version: [0-9.]*' || true)" >&2
  exit 1
fi
"$python" "$root/tools/check_install.py" >"$out/check_install.log" 2>&1 || true
sed 's/^/  /' "$out/check_install.log" | tail -n 8

# 2. the GPU tests
log "2/3 pytest -m gpu (log: $out/pytest_gpu.log)"
if (cd "$root" && "$python" -m pytest -q -ra -m gpu test >"$out/pytest_gpu.log" 2>&1); then
  tail -n 3 "$out/pytest_gpu.log"
else
  tail -n 30 "$out/pytest_gpu.log"
  log "GPU tests FAILED; measuring anyway"
  status=1
fi
phase "pytest -m gpu"

# 3. measurements
log "3/3 measurements (log: $out/measure.log)"
if ! "$python" "$root/tools/gpu_check.py" --out "$out" --device cuda >"$out/measure.log" 2>&1; then
  status=1
fi
phase "measurements"
if [ -f "$out/gpu_check.md" ]; then
  cat "$out/gpu_check.md"
else
  tail -n 40 "$out/measure.log"
  echo "gpu_check.sh: the measurements did not finish (log: $out/measure.log)" >&2
  status=1
fi
log "total $SECONDS s; exit status $status ($([ $status -eq 0 ] && echo 'all checks passed, targets met' || echo 'see above'))"
exit $status
