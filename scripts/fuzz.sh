#!/usr/bin/env bash
# Coverage-guided fuzzing (cargo-fuzz / libFuzzer) of every surface that takes outside input:
# the record decoders and cleaning, raw objects, Kinesis, Kafka, S3 and SQS events, keys, names
# and ARNs, and the ingest API's requests. The targets and what each asserts are in fuzz/.
#
#   scripts/fuzz.sh                       # each target for 60 s, optimised build
#   scripts/fuzz.sh --runs 1000000        # each target for a million inputs
#   scripts/fuzz.sh --seconds 600 kinesis_event kafka_event
#   scripts/fuzz.sh --smoke               # what the test command runs: a few seconds each
#
# Each run starts from the committed corpus (fuzz/corpus/<target>); what it adds goes to
# ~/.cache/pinpipe/fuzz-corpus/<target> (merge it into the committed corpus with
# `--merge`). A crash is written to fuzz/artifacts/<target>/ and the run fails, printing how to
# reproduce it. Builds with the project's toolchain (set PINPIPE_FUZZ_TOOLCHAIN=nightly to use
# another: without a sanitizer, libFuzzer's coverage instrumentation needs no nightly flags)
# and cargo-fuzz (installed once into the cache).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
TOOLS="${PINPIPE_TOOLS:-$HOME/.cache/pinpipe/tools}"
export CARGO_TARGET_DIR="${PINPIPE_FUZZ_TARGET_DIR:-$HOME/.cache/pinpipe/fuzz-target}"
FOUND="$HOME/.cache/pinpipe/fuzz-corpus"
TARGETS=(clean_record batch_object kinesis_event kafka_event s3_sqs_event names ingest_http)

limit=(-max_total_time=60)
profile=()
merge=0
chosen=()
while [ $# -gt 0 ]; do
  case "$1" in
    --seconds) limit=(-max_total_time="$2"); shift 2 ;;
    --runs) limit=(-runs="$2"); shift 2 ;;
    --smoke) limit=(-max_total_time="${PINPIPE_FUZZ_SMOKE_SECONDS:-4}"); profile=(--dev); shift ;;
    --merge) merge=1; shift ;;
    -h|--help) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) echo "unknown option $1 (see --help)" >&2; exit 2 ;;
    *) chosen+=("$1"); shift ;;
  esac
done
[ ${#chosen[@]} -gt 0 ] || chosen=("${TARGETS[@]}")

toolchain=()
[ -z "${PINPIPE_FUZZ_TOOLCHAIN:-}" ] || toolchain=("+$PINPIPE_FUZZ_TOOLCHAIN")
if [ ! -x "$TOOLS/bin/cargo-fuzz" ]; then
  echo "==> installing cargo-fuzz into $TOOLS (once)"
  cargo install cargo-fuzz --version 0.13.1 --locked --quiet --root "$TOOLS"
fi
export PATH="$TOOLS/bin:$PATH"
cd fuzz
# No AddressSanitizer: the code is safe Rust, and without it each input runs several times
# faster; panics and failed assertions are what the targets report.
echo "==> building the fuzz targets (${profile[*]:-optimised})"
cargo "${toolchain[@]}" fuzz build "${profile[@]}" --sanitizer none

printf '%-15s %12s %10s %8s %8s\n' target inputs "inputs/s" corpus crashes >"$ROOT/fuzz/.last-run"
failed=0
for target in "${chosen[@]}"; do
  mkdir -p "$FOUND/$target"
  log=$(mktemp)
  status=0
  # New inputs go to the first folder (outside the clone); the committed corpus is read only.
  cargo "${toolchain[@]}" fuzz run "${profile[@]}" --sanitizer none "$target" "$FOUND/$target" "corpus/$target" -- \
    "${limit[@]}" -print_final_stats=1 -timeout=10 -rss_limit_mb=2048 >"$log" 2>&1 || status=$?
  runs=$(awk '/stat::number_of_executed_units/ { print $NF }' "$log" | tail -n 1)
  secs=$(awk '/^Done [0-9]+ runs in [0-9]+ second/ { print $5 }' "$log" | tail -n 1)
  corpus=$(find "$FOUND/$target" "corpus/$target" -type f -printf '%f\n' | sort -u | wc -l)
  crashes=0
  if [ "$status" -ne 0 ]; then
    crashes=1
    failed=1
    echo "--- $target failed:" >&2
    grep -E "panicked|thread '|SUMMARY|Test unit written|Running:|ERROR" "$log" | head -n 20 >&2 || tail -n 30 "$log" >&2
    echo "reproduce with: (cd fuzz && cargo ${toolchain[*]} fuzz run ${profile[*]} --sanitizer none $target <the artifact above>)" >&2
  fi
  rate=$(( ${secs:-0} > 0 ? ${runs:-0} / ${secs:-1} : ${runs:-0} ))
  printf '%-15s %12s %10s %8s %8s\n' "$target" "${runs:-?}" "$rate" "$corpus" "$crashes" | tee -a "$ROOT/fuzz/.last-run"
  rm -f "$log"
  if [ "$merge" = 1 ] && [ "$status" -eq 0 ]; then
    # libFuzzer's merge adds to the first folder only the inputs that reach new code.
    cargo "${toolchain[@]}" fuzz run "${profile[@]}" --sanitizer none "$target" "corpus/$target" "$FOUND/$target" -- \
      -merge=1 >/dev/null 2>&1 || echo "merging $target's new inputs failed" >&2
  fi
done
echo
cat "$ROOT/fuzz/.last-run"
exit "$failed"
