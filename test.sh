#!/usr/bin/env bash
# The local tests: everything that needs no SSH server.
set -euo pipefail
cd "$(dirname "$0")"
. ./scripts/ensure-deps.sh
with_test_journals
trap 'rm -rf "$TEST_JOURNALS"' EXIT

cargo test --lib
cargo test --test it
cargo test --doc
cargo build --examples
# The passwords the command line tests give (tests/it/cli.rs).
check_test_journals "from env" "sudo env" "from file" "sopt"
