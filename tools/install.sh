#!/usr/bin/env bash
# One idempotent set-up command for espnet-mamba.
#
#   tools/install.sh            Debian packages + virtualenv tools/venv + pinned Python packages
#   tools/install.sh --cuda     ... and build the mamba-ssm / causal-conv1d CUDA kernels
#
# Options:
#   --cuda          build the CUDA kernels from their PyPI sdists (needs a GPU and nvcc)
#   --python EXE    interpreter for the virtualenv (default: python3, must be >= 3.10)
#   --no-apt        do not touch Debian packages (recipes that synthesize audio need them)
#   --venv DIR      where the virtualenv lives (default: tools/venv in the checkout)
# Environment: TORCH_CUDA_ARCH_LIST (e.g. "9.0") limits the kernel build to those GPUs.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
venv=$root/tools/venv
python=python3
cuda=false
apt=true
APT_PACKAGES=(sox espeak-ng flite gcc libc6-dev)
CUDA_PACKAGES=("causal-conv1d==1.7.0" "mamba-ssm==2.3.2.post1")

log() { echo "[install.sh $(date +%H:%M:%S)] $*"; }
die() { echo "[install.sh] ERROR: $*" >&2; exit 1; }

while [ $# -gt 0 ]; do
  case $1 in
    --cuda) cuda=true ;;
    --python) python=$2; shift ;;
    --venv) venv=$2; shift ;;
    --no-apt) apt=false ;;
    -h|--help) sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown option '$1' (see $0 --help)" ;;
  esac
  shift
done

# 1. Debian packages: sox (audio conversion), espeak-ng and flite (speech synthesis) for the
#    recipes; gcc and libc6-dev build the compiled CPU kernels (without them: the PyTorch path)
if $apt; then
  missing=()
  for p in "${APT_PACKAGES[@]}"; do
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
  done
  if [ ${#missing[@]} -eq 0 ]; then
    log "Debian packages present: ${APT_PACKAGES[*]}"
  elif [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
    log "installing Debian packages: ${missing[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    log "WARNING: missing Debian packages ${missing[*]} and not root."
    log "         Ask an administrator to run: sudo apt-get install ${missing[*]}"
    log "         (the Python package works without them; the synthetic demo recipe does not)"
  fi
fi

# 2. virtualenv at a fixed place, so recipes and tests find it
"$python" -c 'import sys; sys.exit(sys.version_info < (3, 10))' \
  || die "$python is $("$python" --version 2>&1); espnet-mamba needs Python >= 3.10 (use --python)"
if [ ! -x "$venv/bin/python" ]; then
  log "creating virtualenv $venv"
  "$python" -m venv "$venv"
fi
pip=("$venv/bin/python" -m pip --disable-pip-version-check)

# 3. the package with its pins. torch/torchaudio are pinned in setup.py, so pip cannot
#    pick a newer torch for espnet's open-ended requirement. The wheel of torch on PyPI
#    is the CUDA build (several GB); it runs on CPU-only machines too.
log "installing espnet_mamba and its pinned dependencies (espnet, torch 2.11.0, ...)"
"${pip[@]}" install -q -e "$root[test]"

# 4. optional CUDA kernels
if $cuda; then
  if ! "$venv/bin/python" -c 'import torch, sys; sys.exit(not torch.cuda.is_available())'; then
    log "--cuda: no CUDA GPU visible to torch on this machine; not building the kernels."
    log "        Everything runs on the pure-PyTorch path. Rerun with --cuda on a GPU machine."
  else
    command -v nvcc >/dev/null || die "--cuda: nvcc not found; install the CUDA toolkit matching torch $("$venv/bin/python" -c 'import torch; print(torch.version.cuda)')"
    if [ -z "${TORCH_CUDA_ARCH_LIST:-}" ]; then
      TORCH_CUDA_ARCH_LIST=$("$venv/bin/python" -c 'import torch; print("%d.%d" % torch.cuda.get_device_capability())')
      export TORCH_CUDA_ARCH_LIST
    fi
    log "--cuda: building ${CUDA_PACKAGES[*]} from source for TORCH_CUDA_ARCH_LIST=$TORCH_CUDA_ARCH_LIST"
    log "        (their setup.py would download a prebuilt wheel from GitHub; those exist only for"
    log "         torch 2.6-2.10, so we force a local build against this torch. Takes 10-30 minutes.)"
    "${pip[@]}" install -q packaging ninja wheel
    # no build isolation: the kernels must compile against *this* torch; torch stays pinned
    MAMBA_FORCE_BUILD=TRUE CAUSAL_CONV1D_FORCE_BUILD=TRUE MAX_JOBS=${MAX_JOBS:-$(nproc)} \
      "${pip[@]}" install --no-build-isolation "${CUDA_PACKAGES[@]}" "torch==2.11.0"
    "$venv/bin/python" -c 'import causal_conv1d, mamba_ssm.ops.selective_scan_interface' \
      || die "--cuda: the kernels built but do not import; see the messages above"
    log "--cuda: kernels import"
  fi
fi

log "building the compiled CPU kernels (one C file, a few seconds; cached per machine)"
"$venv/bin/python" -c 'from espnet_mamba.ops import cpu_kernels as k; libs, err = k.load(); print("  " + (err or "built in " + str(k.cache_dir())))'

log "checking the installation"
"$venv/bin/python" "$root/tools/check_install.py"
log "done. Activate with: source $venv/bin/activate"
