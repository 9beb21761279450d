#!/usr/bin/env bash
# The local tests: everything that needs no SSH server.
set -euo pipefail
cd "$(dirname "$0")"
. ./scripts/ensure-deps.sh

cargo test --lib
cargo test --test it
cargo test --doc
cargo build --examples
