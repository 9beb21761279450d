#!/usr/bin/env bash
# A real deployment with twill: starts the throwaway OpenSSH server of
# tests-remote/ on loopback, deploys a small application to it with
# examples/deploy.rs, and stops the server again.
set -euo pipefail
cd "$(dirname "$0")"
. ./scripts/ensure-deps.sh

STATE_DIR=${TWILL_SSHD_DIR:-/tmp/twill-demo-sshd}
cargo build --quiet --example deploy
trap './tests-remote/sshd-server.sh stop "$STATE_DIR" >/dev/null 2>&1 || true' EXIT
./tests-remote/sshd-server.sh start "$STATE_DIR" >/dev/null
# shellcheck disable=SC1091
. "$STATE_DIR/env.sh"
cargo run --quiet --example deploy
