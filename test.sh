#!/usr/bin/env bash
# The local tests: everything that needs no SSH server.
set -euo pipefail
cd "$(dirname "$0")"
. ./scripts/ensure-deps.sh
# The tidy test applies vendor/*.patch to the crates.io libssh2-sys.
ensure_packages patch

cargo test --lib
cargo test --test it
cargo test --doc
cargo build --examples
