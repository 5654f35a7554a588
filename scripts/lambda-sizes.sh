#!/usr/bin/env bash
# Builds Lambda functions as `sam build` ships them (release, zipped by cargo-lambda) and prints
# each artifact's size, as in the README's "Artifact sizes" table. Fails if ingest-api's zip
# grows past INGEST_API_MAX_ZIP_BYTES (default 10 MB): it must stay free of delta-rs and
# DataFusion.
#
#   scripts/lambda-sizes.sh                         # all four, arm64, as deployed
#   scripts/lambda-sizes.sh --arch x86_64 ingest-api
#
# Each function is built as `sam build` builds it: `cargo lambda build --bin <name>` run in the
# function's own crate (its CodeUri), so cargo resolves that package's features alone and the
# cleaners never link DataFusion.
# Needs python3, and for arm64 the aarch64-unknown-linux-gnu standard library (rustup target
# add aarch64-unknown-linux-gnu). A cold build of all four takes about an hour on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/pinpipe/lambda-target}"
max_zip=${INGEST_API_MAX_ZIP_BYTES:-10000000}

arch=arm64
functions=()
while [ $# -gt 0 ]; do
  case "$1" in
    --arch) arch=${2:-}; shift 2 || { echo "--arch needs arm64 or x86_64" >&2; exit 2; } ;;
    --arch=*) arch=${1#--arch=}; shift ;;
    -h|--help) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    ingest-api|batch-clean|stream-clean|run-queries) functions+=("$1"); shift ;;
    *) echo "unknown argument '$1': expected --arch arm64|x86_64 and function names" \
         "(ingest-api batch-clean stream-clean run-queries)" >&2; exit 2 ;;
  esac
done
case "$arch" in
  arm64) arch_flag=--arm64; triple=aarch64-unknown-linux-gnu ;;
  x86_64) arch_flag=--x86-64; triple=x86_64-unknown-linux-gnu ;;
  *) echo "unknown --arch '$arch': use arm64 or x86_64" >&2; exit 2 ;;
esac
[ ${#functions[@]} -gt 0 ] || functions=(ingest-api batch-clean stream-clean run-queries)
if ! rustup target list --installed 2>/dev/null | grep -qx "$triple"; then
  echo "the $triple standard library is missing: rustup target add $triple" >&2; exit 1
fi

# cargo-lambda cross-compiles with zig; both come from PyPI, into the project's cached venv.
VENV="${PINPIPE_VENV:-$HOME/.cache/pinpipe/venv}"
if ! [ -x "$VENV/bin/cargo-lambda" ] || ! "$VENV/bin/python" -c 'import ziglang' 2>/dev/null; then
  echo "==> installing cargo-lambda and ziglang into $VENV"
  [ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q 'cargo-lambda>=1.8' ziglang
fi
export PATH="$VENV/bin:$PATH"

for f in "${functions[@]}"; do
  echo "==> (cd functions/$f && cargo lambda build --release $arch_flag --bin $f)"
  start=$SECONDS
  (cd "functions/$f" && cargo lambda build --release "$arch_flag" --locked --bin "$f" --output-format zip)
  echo "    built in $(( (SECONDS - start) / 60 )) min $(( (SECONDS - start) % 60 )) s"
done

echo
python3 - "$CARGO_TARGET_DIR/lambda" "$max_zip" "$arch" "${functions[@]}" <<'PY'
import os, sys, zipfile
root, max_zip, arch, names = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4:]
print(f"{'function':<14} {'zipped':>10} {'unzipped':>10}   ({arch})")
for name in names:
    path = os.path.join(root, name, "bootstrap.zip")
    with zipfile.ZipFile(path) as z:
        entries = z.infolist()
        if [i.filename for i in entries] != ["bootstrap"]:
            sys.exit(f"{path} should hold exactly one file, bootstrap; it holds "
                     f"{[i.filename for i in entries]}")
        with z.open("bootstrap") as bootstrap:
            header = bootstrap.read(20)
    machine = int.from_bytes(header[18:20], "little") if header[:4] == b"\x7fELF" else None
    if machine != {"arm64": 0xB7, "x86_64": 0x3E}[arch]:
        sys.exit(f"{path}: bootstrap is not an {arch} Linux executable (ELF machine {machine})")
    zipped = os.path.getsize(path)
    unzipped = sum(i.file_size for i in entries)
    print(f"{name:<14} {zipped / 1e6:7.1f} MB {unzipped / 1e6:7.1f} MB")
    if name == "ingest-api" and zipped > max_zip:
        sys.exit(f"ingest-api's zip is {zipped} bytes, over {max_zip}: "
                 "keep delta-rs, DataFusion and Arrow out of it")
PY
