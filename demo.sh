#!/usr/bin/env bash
# A real deployment with twill: starts the throwaway OpenSSH server of
# tests-remote/ on loopback, deploys a small application to it with
# examples/deploy.rs, and stops the server again (its test accounts exist
# only inside the server's mount namespaces; see tests-remote/README.md).
set -euo pipefail
cd "$(dirname "$0")"
. ./scripts/ensure-deps.sh

STATE_DIR=${TWILL_SSHD_DIR:-/tmp/twill-demo-sshd}
cargo build --quiet --example deploy
trap './tests-remote/sshd-server.sh stop "$STATE_DIR" >/dev/null 2>&1 || true' EXIT
./tests-remote/sshd-server.sh start "$STATE_DIR" >/dev/null
# shellcheck disable=SC1091
. "$STATE_DIR/env.sh"
# The server runs on this machine: the demo installs below the server's
# state directory instead of /opt and /etc.
TWILL_DEMO_ROOT="$STATE_DIR/target-root" cargo run --quiet --example deploy
# Stopping checks that nothing of the server remains; say so if it fails.
if ! out=$(./tests-remote/sshd-server.sh stop "$STATE_DIR" 2>&1); then
    printf '%s\n' "$out" >&2
    exit 1
fi
