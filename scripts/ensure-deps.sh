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
# tmux for the terminal tests; rsync_project runs rsync on both ends (the
# test server is this machine).
ensure_packages libssl-dev zlib1g-dev pkg-config gcc sudo openssh-client procps hostname tmux rsync
