#!/usr/bin/env bash
# Everything lit_cert needs on a fresh Debian/Ubuntu machine (run as root or with sudo rights):
#   * Debian's python3-venv (when `python3 -m venv` is missing) and dataset-fashion-mnist (the full
#     Fashion-MNIST, found automatically);
#   * a virtual environment .venv in this folder (unless one is active already: then that one),
#     made with --system-site-packages so that a torch you already installed is reused, not
#     downloaded again;
#   * lit_cert with the tested versions of torch/lightning/... (constraints.txt) and the test extras.
# Afterwards: .venv/bin/lit_cert ... (or `source .venv/bin/activate`).
# LIT_CERT_PYTHON picks the interpreter (default python3); LIT_CERT_EXTRA_INDEX adds a package index
# (e.g. https://download.pytorch.org/whl/cpu for a CPU-only torch, much smaller than PyPI's CUDA build).
set -euo pipefail
cd "$(dirname "$0")/.."
SUDO=""
if [ "$(id -u)" != "0" ] && command -v sudo >/dev/null 2>&1; then SUDO="sudo"; fi
apt_install() {
  if command -v apt-get >/dev/null 2>&1; then
    $SUDO apt-get update -qq >/dev/null || true
    $SUDO apt-get install -y -qq "$@" >/dev/null || echo "note: could not install $* with apt-get"
  fi
}
if [ ! -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ]; then
  apt_install dataset-fashion-mnist || true
  [ -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ] \
    || echo "note: dataset-fashion-mnist not installed; set data.init_args.data_dir instead"
fi
PY="${LIT_CERT_PYTHON:-python3}"
command -v "$PY" >/dev/null 2>&1 || PY=python
if [ -n "${VIRTUAL_ENV:-}" ]; then
  VENV_PY="$VIRTUAL_ENV/bin/python"
else
  if [ ! -x .venv/bin/python ]; then
    if ! "$PY" -m venv --system-site-packages .venv >/dev/null 2>&1; then
      rm -rf .venv
      apt_install python3-venv python3-pip
      "$PY" -m venv --system-site-packages .venv
    fi
  fi
  VENV_PY="$PWD/.venv/bin/python"
fi
EXTRA=()
if [ -n "${LIT_CERT_EXTRA_INDEX:-}" ]; then EXTRA=(--extra-index-url "$LIT_CERT_EXTRA_INDEX"); fi
"$VENV_PY" -m pip install --quiet --disable-pip-version-check ${EXTRA[@]+"${EXTRA[@]}"} -c constraints.txt -e ".[dev,docs]"
"$VENV_PY" -c "import torch, lightning, lit_cert; print(f'lit_cert {lit_cert.__version__} with torch {torch.__version__}, lightning {lightning.__version__} in {__import__(\"sys\").prefix}')"
