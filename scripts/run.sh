#!/usr/bin/env bash
# The whole pipeline locally on the embedded default: generated posts → ingest API →
# raw landing (./raw) → batch-clean → Delta tables (./lake), then a summary.
# Extra arguments go to `pinpipe run` (see `scripts/run.sh --help`).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/pinpipe/target}"
exec cargo run --quiet --locked -p pinpipe -- run "$@"
