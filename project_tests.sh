#!/usr/bin/env bash
# Every test twill has: formatting and lints, the local tests, then the
# remote tests against a throwaway OpenSSH server on loopback, which is
# stopped again whatever happens. Starting the server checks that its test
# accounts exist only inside its mount namespaces; stopping it checks that
# nothing of it remains (tests-remote/README.md).
set -euo pipefail
cd "$(dirname "$0")"
. ./scripts/ensure-deps.sh

cargo fmt --check
# The library without the command line (the `cli` feature), as a crate
# that leaves it out builds it. (Its documentation first, so that the full
# one is what stays in target/doc.)
cargo build --no-default-features --quiet
cargo clippy --no-default-features --all-targets --quiet -- -D warnings
RUSTDOCFLAGS="-D warnings" cargo doc --no-deps --no-default-features --quiet
cargo clippy --all-targets -- -D warnings
RUSTDOCFLAGS="-D warnings" cargo doc --no-deps --quiet

./test.sh

STATE_DIR=${TWILL_SSHD_DIR:-/tmp/twill-sshd}
with_test_journals
trap './tests-remote/sshd-server.sh stop "$STATE_DIR" >/dev/null 2>&1 || true; rm -rf "$TEST_JOURNALS"' EXIT
./tests-remote/sshd-server.sh start "$STATE_DIR"
./tests-remote/sshd-selftest.sh "$STATE_DIR"
# shellcheck disable=SC1091
. "$STATE_DIR/env.sh"
cargo test --test remote -- --test-threads=4
# Stopped here, not by the trap, so that a failing check fails the run.
trap 'rm -rf "$TEST_JOURNALS"' EXIT
./tests-remote/sshd-server.sh stop "$STATE_DIR"
check_test_journals "$TWILL_TEST_PASSWORD" "$TWILL_TEST_SUDO_PASSWORD" "$TWILL_TEST_KEY_PASSPHRASE"
