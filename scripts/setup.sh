#!/usr/bin/env bash
# Installs the Debian packages moetrain needs (idempotent: skips what is already installed);
# --test adds what only the tests need: GoogleTest, clang with its sanitizer and libFuzzer
# runtimes (the sanitized build), a local Slurm (the slurm test), iproute2 (ip and tc: the
# cluster test's network namespaces) and python3-venv (export_hf's venv with transformers).
# usage: setup.sh [--test]
set -euo pipefail

# ocl-icd-opencl-dev: libdnnl-dev's CMake package asks for OpenCL (only recommended by the
# package, so --no-install-recommends would leave it out).
PKGS=(
  build-essential cmake pkg-config clang-format
  libopenmpi-dev openmpi-bin
  libhdf5-dev hdf5-tools
  libboost-program-options-dev libfmt-dev libdnnl-dev ocl-icd-opencl-dev libopenblas-openmp-dev
  libsentencepiece-dev sentencepiece
  python3-h5py python3-matplotlib python3-torch python3-numpy
  libsword-utils diatheke sword-comm-tdavid sword-text-web sword-text-kjv
)
if [ "${1:-}" = --test ]; then
  PKGS+=(libgtest-dev clang libclang-rt-dev libomp-dev slurm-wlm slurmctld slurmd munge iproute2
        python3-venv)
fi

missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: all ${#PKGS[@]} packages present"
  exit 0
fi

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
echo "setup: installing ${missing[*]}"
$SUDO apt-get update -q
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
