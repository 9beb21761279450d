#!/usr/bin/env bash
# Runs twill's benchmark (examples/bench.rs) against the throwaway OpenSSH
# server, beside the OpenSSH client on the same server.
set -euo pipefail
cd "$(dirname "$0")"
. ./scripts/ensure-deps.sh

STATE_DIR=${TWILL_SSHD_DIR:-/tmp/twill-bench-sshd}
cargo build --quiet --release --example bench
trap './tests-remote/sshd-server.sh stop "$STATE_DIR" >/dev/null 2>&1 || true' EXIT
TWILL_SSHD_HOSTS=200 ./tests-remote/sshd-server.sh start "$STATE_DIR" >/dev/null
# shellcheck disable=SC1091
. "$STATE_DIR/env.sh"
./target/release/examples/bench
# Stopping checks that nothing of the server remains; say so if it fails.
if ! out=$(./tests-remote/sshd-server.sh stop "$STATE_DIR" 2>&1); then
    printf '%s\n' "$out" >&2
    exit 1
fi
