# Sourced by the test scripts: installs what building and testing twill
# needs on a fresh Debian machine (we run as root there).
ensure_packages() {
    local missing=()
    for pkg in "$@"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
    done
    if [ ${#missing[@]} -gt 0 ]; then
        echo "installing: ${missing[*]}"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    fi
}
# libssh2 builds against OpenSSL and zlib; local sudo tests need sudo; the
# tests and benchmarks use the OpenSSH client tools, pgrep/ps, hostname, and
# tmux, less and vim-tiny for the terminal tests; rsync_project runs rsync on both
# ends (the test server is this machine); the tidy test applies
# vendor/*.patch to the crates.io libssh2-sys.
ensure_packages libssl-dev zlib1g-dev pkg-config gcc sudo openssh-client procps hostname tmux less vim-tiny rsync patch

# Run journals written by the tests go to a directory of their own, never
# to the user's, and are checked for secrets before it is removed:
# `with_test_journals` sets XDG_STATE_HOME for the rest of the script, and
# `check_test_journals` fails if any journal holds a test password, then
# removes the directory.
with_test_journals() {
    TEST_JOURNALS=$(mktemp -d /tmp/twill-journals.XXXXXX)
    export XDG_STATE_HOME=$TEST_JOURNALS
}
check_test_journals() {
    local found=0 secret
    for secret in "$@"; do
        [ -n "$secret" ] || continue
        if grep -rlF -- "$secret" "$TEST_JOURNALS" >/dev/null 2>&1; then
            echo "a journal written by the tests holds a test secret:" >&2
            grep -rlF -- "$secret" "$TEST_JOURNALS" >&2
            found=1
        fi
    done
    echo "journals written by the tests: $(find "$TEST_JOURNALS" -name '*.jsonl' | wc -l), none holding a test secret"
    rm -rf "$TEST_JOURNALS"
    return $found
}
