#!/usr/bin/env bash
# Everything lit_cert needs on a fresh Debian/Ubuntu machine (run as root or with sudo rights):
# the Fashion-MNIST copy from Debian's dataset-fashion-mnist package, then the package itself
# with the tested versions of torch/torchvision/lightning/... (constraints.txt) and the test extras.
set -euo pipefail
cd "$(dirname "$0")/.."
SUDO=""
if [ "$(id -u)" != "0" ] && command -v sudo >/dev/null 2>&1; then SUDO="sudo"; fi
if [ ! -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ] && command -v apt-get >/dev/null 2>&1; then
  $SUDO apt-get update -qq >/dev/null || true
  $SUDO apt-get install -y -qq dataset-fashion-mnist >/dev/null || echo "note: dataset-fashion-mnist not installed; set data.init_args.data_dir instead"
fi
python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e ".[dev]"
python -c "import torch, torchvision, lightning, lit_cert; print(f'lit_cert {lit_cert.__version__} with torch {torch.__version__}, lightning {lightning.__version__}')"
