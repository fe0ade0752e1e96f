#!/usr/bin/env bash
# Prepare Flickr1024 (+ optional Middlebury_train) for NAFSSR: bash scripts/data_preparation/process_Flickr1024.sh [ROOT] [options]
# ROOT (default: datasets) holds Flickr1024.zip or Flickr1024/{Train,Validation,Test}; output goes to ROOT/StereoSR.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PY="${PYTHON:-$HERE/../../.venv/bin/python}"
[ -x "$PY" ] || PY=python3
ROOT="datasets"
if [ $# -gt 0 ] && [ "${1#-}" = "$1" ]; then ROOT="$1"; shift; fi  # an optional ROOT first, then options
exec "$PY" "$HERE/prepare_flickr1024.py" --root "$ROOT" "$@"
