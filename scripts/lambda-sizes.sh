#!/usr/bin/env bash
# Builds the four Lambda functions as `sam build` ships them (release, arm64, zipped by
# cargo-lambda) and prints each artifact's size, as in the README's "Artifact sizes" table.
# Fails if ingest-api's zip grows past INGEST_API_MAX_ZIP_BYTES (default 10 MB): it must
# stay free of delta-rs and DataFusion.
#
# Each function is built in its own cargo invocation, as `sam build` does: one invocation for
# several packages would unify their features and link DataFusion into the cleaners.
# Needs python3 and the aarch64-unknown-linux-gnu standard library (rustup target add
# aarch64-unknown-linux-gnu). A cold build takes about an hour on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/pinpipe/lambda-target}"
max_zip=${INGEST_API_MAX_ZIP_BYTES:-10000000}

# cargo-lambda cross-compiles with zig; both come from PyPI, into the project's cached venv.
VENV="${PINPIPE_VENV:-$HOME/.cache/pinpipe/venv}"
if ! [ -x "$VENV/bin/cargo-lambda" ] || ! "$VENV/bin/python" -c 'import ziglang' 2>/dev/null; then
  echo "==> installing cargo-lambda and ziglang into $VENV"
  [ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q 'cargo-lambda>=1.8' ziglang
fi
export PATH="$VENV/bin:$PATH"

functions=(ingest-api batch-clean stream-clean run-queries)
for f in "${functions[@]}"; do
  echo "==> cargo lambda build --release --arm64 -p $f"
  start=$SECONDS
  cargo lambda build --release --arm64 --locked -p "$f" --output-format zip
  echo "    built in $(( (SECONDS - start) / 60 )) min $(( (SECONDS - start) % 60 )) s"
done

echo
python3 - "$CARGO_TARGET_DIR/lambda" "$max_zip" "${functions[@]}" <<'PY'
import os, sys, zipfile
root, max_zip, names = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
print(f"{'function':<14} {'zipped':>10} {'unzipped':>10}")
for name in names:
    path = os.path.join(root, name, "bootstrap.zip")
    zipped = os.path.getsize(path)
    unzipped = sum(i.file_size for i in zipfile.ZipFile(path).infolist())
    print(f"{name:<14} {zipped / 1e6:7.1f} MB {unzipped / 1e6:7.1f} MB")
    if name == "ingest-api" and zipped > max_zip:
        sys.exit(f"ingest-api's zip is {zipped} bytes, over {max_zip}: "
                 "keep delta-rs, DataFusion and Arrow out of it")
PY
