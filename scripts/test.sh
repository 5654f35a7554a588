#!/usr/bin/env bash
# Every check and test of the project, as CI runs it: the SAM template's lint, formatting,
# clippy, then the whole test suite against local services it starts here (PostgreSQL, moto
# for S3/SQS/Kinesis, and the Tansu broker for Kafka) and stops on exit, then every fuzz
# target briefly. Needs the Rust toolchain and python3; builds into a cache outside the clone
# so repeated runs are fast (override with CARGO_TARGET_DIR).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/pinpipe/target}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

# --- Services the tests talk to, on 127.0.0.1 only, started here and stopped on exit -------
cleanup() {
  if [ -n "${MOTO_PID:-}" ]; then kill "$MOTO_PID" 2>/dev/null || true; fi
  if [ -n "${TANSU_PID:-}" ]; then kill "$TANSU_PID" 2>/dev/null || true; fi
  if [ -n "${TANSU_BUILD:-}" ]; then kill "$TANSU_BUILD" 2>/dev/null || true; fi
  if [ -n "${PGDATA_DIR:-}" ]; then
    runuser -u postgres -- "$PGBIN/pg_ctl" -D "$PGDATA_DIR" -m fast stop >/dev/null 2>&1 || true
    rm -rf "$PGDATA_DIR"
  fi
  rm -f "${log:-}"
}
trap cleanup EXIT

# PostgreSQL: the source database for `pinpipe emulate --db-url` (like the original RDS).
PGBIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
if [ -z "$PGBIN" ]; then
  echo "==> installing PostgreSQL (Debian package)"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
  PGBIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
fi
# Headless Chromium renders the HTML report in its tests (cli/tests/report.rs).
if ! command -v chromium >/dev/null 2>&1; then
  echo "==> installing Chromium (Debian package)"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi
PGPORT=${PINPIPE_TEST_PGPORT:-54329}
PGDATA_DIR=$(mktemp -d /tmp/pinpipe-pg.XXXXXX)
chown postgres "$PGDATA_DIR"
echo "==> starting PostgreSQL on 127.0.0.1:$PGPORT"
runuser -u postgres -- "$PGBIN/initdb" -D "$PGDATA_DIR" -A trust -U pinpipe >/dev/null
runuser -u postgres -- "$PGBIN/pg_ctl" -D "$PGDATA_DIR" -l "$PGDATA_DIR/server.log" -w \
  -o "-p $PGPORT -k $PGDATA_DIR -c listen_addresses=127.0.0.1" start >/dev/null
export PINPIPE_TEST_POSTGRES_URL="postgres://pinpipe@127.0.0.1:$PGPORT/postgres"

# moto: an S3-, SQS- and Kinesis-compatible server (with S3 conditional puts, which Delta
# commits rely on), and the SAM CLI for `sam validate --lint`; both from PyPI, in a venv kept
# in the cache so later runs skip the install.
VENV="${PINPIPE_VENV:-$HOME/.cache/pinpipe/venv}"
# duckdb and polars are the peer engines of `pinpipe bench --peers` and, with deltalake, the
# readers users point at the lake.
if ! "$VENV/bin/python" -c 'import moto, samcli, duckdb, polars, deltalake, pyarrow' 2>/dev/null; then
  echo "==> installing moto[server], aws-sam-cli, duckdb, polars, deltalake and pyarrow into $VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --upgrade pip
  "$VENV/bin/pip" install -q 'moto[server]>=5.1,<6' 'aws-sam-cli>=1.130' 'cfn-lint>=1.20' \
    'duckdb>=1.2' 'polars>=1.20' 'deltalake>=1.0' 'pyarrow>=15'
fi
export PINPIPE_TEST_PYTHON="$VENV/bin/python"
MOTO_PORT=${PINPIPE_TEST_MOTO_PORT:-5055}
echo "==> starting moto on 127.0.0.1:$MOTO_PORT"
"$VENV/bin/moto_server" -H 127.0.0.1 -p "$MOTO_PORT" >/tmp/pinpipe-moto.log 2>&1 &
MOTO_PID=$!
for _ in $(seq 1 100); do
  if python3 -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$MOTO_PORT/moto-api/')" 2>/dev/null; then break; fi
  sleep 0.2
done
python3 -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$MOTO_PORT/moto-api/')" \
  || { echo "moto did not start; see /tmp/pinpipe-moto.log" >&2; exit 1; }
export PINPIPE_TEST_AWS_ENDPOINT="http://127.0.0.1:$MOTO_PORT"

# Tansu: a Kafka-compatible broker in Rust, from crates.io, with in-memory storage (the
# `dynostore` feature; its default build has no storage engine). Built once into the cache
# (about 15 minutes on 2 cores, in the background while the rest of the checks run).
TOOLS="${PINPIPE_TOOLS:-$HOME/.cache/pinpipe/tools}"
TANSU_VERSION=0.6.0
TANSU="$TOOLS/tansu-$TANSU_VERSION/bin/tansu"
if [ ! -x "$TANSU" ]; then
  echo "==> building the Tansu broker $TANSU_VERSION from crates.io into $TOOLS (once)"
  cargo install tansu --version "$TANSU_VERSION" --no-default-features --features dynostore \
    --locked --quiet --root "$TOOLS/tansu-$TANSU_VERSION" --target-dir "$TOOLS/tansu-target" \
    >/tmp/pinpipe-tansu-build.log 2>&1 &
  TANSU_BUILD=$!
fi

echo "==> sam validate --lint"
SAM_CLI_TELEMETRY=0 AWS_REGION=us-east-1 "$VENV/bin/sam" validate --lint --template template.yaml
echo "==> sam validate --lint, with the Kafka event sources, provisioned mode and the Kafka landing on"
kafka_template=$(mktemp /tmp/pinpipe-template-kafka.XXXXXX.yaml)
python3 scripts/kafka-template.py template.yaml >"$kafka_template"
SAM_CLI_TELEMETRY=0 AWS_REGION=us-east-1 "$VENV/bin/sam" validate --lint --template "$kafka_template"
rm -f "$kafka_template"

echo "==> ingest-api links neither delta-rs nor DataFusion; the cleaners link no DataFusion"
# Resolved exactly where `sam build` runs cargo-lambda: in each function's CodeUri, without -p
# (cli/tests/template.rs checks the same from the template itself).
if (cd functions/ingest-api && cargo tree -e normal --prefix none --locked) | grep -qE '^(deltalake|datafusion|arrow|parquet) '; then
  echo "ingest-api depends on delta-rs/DataFusion/Arrow: keep them out of shared" >&2; exit 1
fi
for f in batch-clean stream-clean; do
  if (cd "functions/$f" && cargo tree -e normal --prefix none --locked) | grep -qE '^datafusion '; then
    echo "$f depends on DataFusion: only run-queries and the CLI may enable lake's queries feature" >&2; exit 1
  fi
done

# The packaging path `sam build` takes (cargo-lambda, zig, a zipped `bootstrap`), for ingest-api
# on x86_64: the aarch64 standard library is not on every machine, and a release build of the
# delta-rs functions takes too long for every run. scripts/lambda-sizes.sh builds all four for
# arm64, as deployed.
echo "==> cargo lambda build --release --x86-64 -p ingest-api: a zip under 10 MB"
CARGO_TARGET_DIR="$HOME/.cache/pinpipe/lambda-target" scripts/lambda-sizes.sh --arch x86_64 ingest-api

echo "==> cargo fmt --check"
cargo fmt --all --check
cargo fmt --manifest-path fuzz/Cargo.toml --check
echo "==> unused dependencies (cargo-machete, installed once into the cache)"
if [ ! -x "$TOOLS/bin/cargo-machete" ]; then
  cargo install cargo-machete --version 0.9.2 --locked --quiet --root "$TOOLS"
fi
"$TOOLS/bin/cargo-machete"
echo "==> cargo clippy (warnings are errors)"
cargo clippy --workspace --all-targets --locked -- -D warnings
if [ -n "${TANSU_BUILD:-}" ]; then
  echo "==> waiting for the Tansu build"
  wait "$TANSU_BUILD" || { cat /tmp/pinpipe-tansu-build.log >&2; echo "building Tansu failed" >&2; exit 1; }
  TANSU_BUILD=
  rm -rf "$TOOLS/tansu-target"
fi
KAFKA_PORT=${PINPIPE_TEST_KAFKA_PORT:-19092}
echo "==> starting Tansu (Kafka API) on 127.0.0.1:$KAFKA_PORT"
"$TANSU" broker --listener-url "tcp://127.0.0.1:$KAFKA_PORT" \
  --advertised-listener-url "tcp://127.0.0.1:$KAFKA_PORT" --storage-engine memory://tansu/ \
  >/tmp/pinpipe-tansu.log 2>&1 &
TANSU_PID=$!
for _ in $(seq 1 100); do
  if python3 -c "import socket; socket.create_connection(('127.0.0.1', $KAFKA_PORT), 1)" 2>/dev/null; then break; fi
  sleep 0.1
done
python3 -c "import socket; socket.create_connection(('127.0.0.1', $KAFKA_PORT), 1)" \
  || { echo "Tansu did not start; see /tmp/pinpipe-tansu.log" >&2; exit 1; }
export PINPIPE_TEST_KAFKA="127.0.0.1:$KAFKA_PORT"

echo "==> cargo test"
log=$(mktemp)
status=0
cargo test --workspace --locked 2>&1 | tee "$log" || status=$?
# One closing line for the whole suite (cargo prints one per test binary).
awk '/^test result:/ { p += $4; f += $6 } END { printf "tests: %d passed, %d failed\n", p, f }' "$log"

# Every fuzz target from its committed corpus, for a few seconds each (scripts/fuzz.sh runs
# them longer). Unoptimised, so the instrumented build stays near ten minutes.
echo "==> fuzz targets, a few seconds each (scripts/fuzz.sh --smoke)"
fuzz_status=0
scripts/fuzz.sh --smoke || fuzz_status=$?
[ "$status" -ne 0 ] || status=$fuzz_status
exit "$status"
