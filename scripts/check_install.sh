#!/usr/bin/env bash
# A user's install, measured: a fresh virtual environment (no system packages) that already holds
# another supported torch (2.13.0, CPU build), then `pip install <this tree>` without the tested
# pins. Checks that the user's torch is kept (nothing pulls another one), that the installed
# `lit_cert` command runs, and prints the install's time and size. CI runs it after the tests.
set -euo pipefail
quiet() { "$@" 2> >(grep -v "^WARNING: Location" >&2); }  # this machine's pip config names absent local indexes
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT
PY="${LIT_CERT_PYTHON:-python3}"
"$PY" -m venv "$TMP/venv"
V="$TMP/venv/bin"
quiet "$V/python" -m pip install --quiet --disable-pip-version-check "torch==2.13.*"
before="$("$V/python" -W ignore -c 'import torch; print(torch.__version__)' 2>/dev/null)"
size_torch=$(du -sm "$TMP/venv" | cut -f1)
start=$(date +%s)
quiet "$V/python" -m pip install --quiet --disable-pip-version-check "$ROOT"
seconds=$(( $(date +%s) - start ))
after="$("$V/python" -c 'import torch; print(torch.__version__)')"
size=$(du -sm "$TMP/venv" | cut -f1)
if [ "$before" != "$after" ]; then
  echo "check_install: FAILED: installing lit_cert replaced torch $before by $after" >&2
  exit 1
fi
(cd "$TMP" && "$V/lit_cert" --version && WANDB_MODE=disabled "$V/lit_cert" certify --help >/dev/null && "$V/lit_cert" fit --help >/dev/null)
echo "check_install: ok: torch $after kept; lit_cert and its dependencies installed in ${seconds} s, adding $((size - size_torch)) MB (venv ${size} MB with torch)"
