#!/usr/bin/env bash
# Throwaway OpenSSH server for twill's remote tests.
#
# Usage: sshd-server.sh start|stop|status|restart [STATE_DIR]
#
#   start   Create the test users (idempotent), generate fresh keys and sshd
#           configs in STATE_DIR (removed and recreated), start sshd in the
#           background and wait until it accepts logins. Writes STATE_DIR/env.sh.
#   stop    Stop exactly the sshd processes recorded in STATE_DIR/pids.
#           Users and STATE_DIR are left in place. No error if not running.
#   status  Show whether the recorded sshd processes are alive.
#           Exit 0 if all are running, 1 if none are, 2 if only some are.
#
# STATE_DIR defaults to /tmp/twill-sshd. Must be run as root (start/stop).
#
# Environment:
#   TWILL_SSHD_HOSTS  number of loopback "hosts" (default 16, max 1016):
#                     127.0.0.1 .. 127.0.0.254, then 127.0.1.1 .. and so on.
#                     One sshd process serves up to 16 of them.
#   TWILL_SSHD_PORT   TCP port (default: first free port from 2222 upwards).
#
# One more sshd listens on 127.0.0.1 at a second port (the next free one,
# TWILL_TEST_NO_LIMITS_PORT in env.sh), where every session is an SFTP server
# that denies the limits@openssh.com request and so does not offer it, like
# servers that state no limits.
#
# Test users (created with Debian's stock skeleton dotfiles, in group tty):
#   twill       plain user; key login and password login
#   twillsudo   passwordless sudo (NOPASSWD:ALL)
#   twillpw     sudo asks for the password every time (timestamp_timeout=0)
#
# The passwords and the key passphrase below are for this throwaway,
# loopback-only server and nothing else.

set -euo pipefail

readonly DEFAULT_STATE_DIR=/tmp/twill-sshd
readonly MARKER=.twill-test-sshd
readonly SSHD=/usr/sbin/sshd
readonly USER_PLAIN=twill
readonly USER_SUDO=twillsudo
readonly USER_SUDOPW=twillpw
readonly PASSWORD_PLAIN=twill-test-password
readonly PASSWORD_SUDOPW=twillpw-test-password
readonly KEY_PASSPHRASE=twill-test-passphrase
readonly SUDOERS_FILE=/etc/sudoers.d/twill-test
readonly LISTEN_PER_SSHD=16
readonly MAX_HOSTS=1016
readonly READY_TIMEOUT_S=10

log() { printf 'sshd-server: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

usage() {
    sed -n '2,/^$/{s/^# \{0,1\}//;p}' "$0" >&2
    exit 2
}

now_ms() { date +%s%3N; }

# ---------------------------------------------------------------- state dir

resolve_state_dir() {
    local dir=${1:-$DEFAULT_STATE_DIR}
    dir=$(realpath -m -- "$dir")
    [[ $dir == / ]] && die "refusing to use / as state directory"
    [[ $dir =~ [[:space:]] ]] && die "state directory must not contain whitespace: '$dir'"
    printf '%s\n' "$dir"
}

# Remove and recreate STATE_DIR, but only if it is ours (has the marker) or empty.
reset_state_dir() {
    local dir=$1
    if [[ -e $dir ]]; then
        [[ -d $dir ]] || die "$dir exists and is not a directory"
        if [[ ! -e $dir/$MARKER ]] && [[ -n $(ls -A -- "$dir") ]]; then
            die "$dir is not empty and was not created by this script; refusing to remove it"
        fi
        rm -rf -- "$dir"
    fi
    mkdir -p -- "$dir"
    chmod 755 -- "$dir"
    : >"$dir/$MARKER"
}

# --------------------------------------------------------------- processes

# True if PID is alive and is the sshd started with one of STATE_DIR's configs.
is_our_sshd() {
    local pid=$1 dir=$2 cmdline
    [[ $pid =~ ^[0-9]+$ ]] || return 1
    kill -0 "$pid" 2>/dev/null || return 1
    cmdline=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) || return 1
    [[ $cmdline == *"$dir/sshd-"*".conf"* ]]
}

recorded_pids() {
    local dir=$1
    [[ -r $dir/pids ]] || return 0
    grep -E '^[0-9]+$' "$dir/pids" || true
}

stop_server() {
    local dir=$1 pid alive=() deadline
    for pid in $(recorded_pids "$dir"); do
        if is_our_sshd "$pid" "$dir"; then
            alive+=("$pid")
        fi
    done
    if ((${#alive[@]} == 0)); then
        log "no sshd running for $dir"
        return 0
    fi
    log "stopping sshd PIDs: ${alive[*]}"
    kill -TERM "${alive[@]}" 2>/dev/null || true
    deadline=$(($(now_ms) + 3000))
    while (($(now_ms) < deadline)); do
        local still=()
        for pid in "${alive[@]}"; do
            is_our_sshd "$pid" "$dir" && still+=("$pid")
        done
        ((${#still[@]} == 0)) && { alive=(); break; }
        alive=("${still[@]}")
        sleep 0.1
    done
    if ((${#alive[@]})); then
        log "still alive after TERM, sending KILL: ${alive[*]}"
        kill -KILL "${alive[@]}" 2>/dev/null || true
        sleep 0.2
        for pid in "${alive[@]}"; do
            is_our_sshd "$pid" "$dir" && die "could not stop sshd PID $pid"
        done
    fi
    log "stopped"
}

status_server() {
    local dir=$1 pid total=0 running=0
    if [[ -r $dir/env.sh ]]; then
        # shellcheck disable=SC1091
        . "$dir/env.sh"
        log "state dir $dir, port ${TWILL_TEST_PORT:-?}, hosts ${TWILL_TEST_HOSTS%%,*} .. ${TWILL_TEST_HOSTS##*,}"
    fi
    for pid in $(recorded_pids "$dir"); do
        total=$((total + 1))
        if is_our_sshd "$pid" "$dir"; then
            running=$((running + 1))
            echo "sshd $pid running"
        else
            echo "sshd $pid not running"
        fi
    done
    if ((total == 0)); then
        echo "not running (no PIDs recorded in $dir/pids)"
        return 1
    fi
    echo "$running of $total sshd processes running"
    ((running == total)) && return 0
    ((running == 0)) && return 1
    return 2
}

# -------------------------------------------------------------- addresses

# Address number I (1-based): 127.0.0.1 .. 127.0.0.254, 127.0.1.1 .. 127.0.1.254, ...
host_addr() {
    local i=$1
    printf '127.0.%d.%d\n' $(((i - 1) / 254)) $(((i - 1) % 254 + 1))
}

# Address in /proc/net/tcp notation (little-endian hex), e.g. 0100007F.
proc_addr() {
    local a b c d
    IFS=. read -r a b c d <<<"$1"
    printf '%02X%02X%02X%02X\n' "$d" "$c" "$b" "$a"
}

# All "ADDR:PORT" pairs (hex) in LISTEN state, IPv4 and IPv6.
listening_sockets() {
    awk 'FNR > 1 && $4 == "0A" { print $2 }' /proc/net/tcp /proc/net/tcp6 2>/dev/null || true
}

port_in_use() {
    local hex
    hex=$(printf '%04X' "$1")
    listening_sockets | grep -q ":$hex\$"
}

pick_port() {
    local port
    if [[ -n ${TWILL_SSHD_PORT:-} ]]; then
        [[ $TWILL_SSHD_PORT =~ ^[0-9]+$ ]] && ((TWILL_SSHD_PORT >= 1 && TWILL_SSHD_PORT <= 65535)) ||
            die "TWILL_SSHD_PORT must be a port number, got '$TWILL_SSHD_PORT'"
        port_in_use "$TWILL_SSHD_PORT" && die "TWILL_SSHD_PORT=$TWILL_SSHD_PORT is already in use"
        echo "$TWILL_SSHD_PORT"
        return
    fi
    first_free_port 2222 || die "no free port found in 2222..3221; set TWILL_SSHD_PORT"
}

# The first port from $1 upwards (up to 3221) that nothing listens on.
first_free_port() {
    local port
    for ((port = $1; port < 3222; port++)); do
        if ! port_in_use "$port"; then
            echo "$port"
            return
        fi
    done
    return 1
}

# ------------------------------------------------------------ system setup

apt_get() {
    DEBIAN_FRONTEND=noninteractive apt-get -q -o DPkg::Lock::Timeout=600 "$@" </dev/null
}

ensure_packages() {
    local missing=()
    [[ -x $SSHD ]] || missing+=(openssh-server)
    command -v ssh >/dev/null && command -v ssh-keygen >/dev/null || missing+=(openssh-client)
    command -v sudo >/dev/null || missing+=(sudo)
    ((${#missing[@]} == 0)) && return 0
    log "installing: ${missing[*]}"
    apt_get update >&2
    apt_get install -y --no-install-recommends "${missing[@]}" >&2
    [[ -x $SSHD ]] || die "$SSHD still missing after installing ${missing[*]}"
}

ensure_user() {
    local user=$1
    if ! id -u "$user" >/dev/null 2>&1; then
        log "creating user $user"
        useradd -m -k /etc/skel -s /bin/bash "$user"
    elif [[ $(getent passwd "$user" | cut -d: -f7) != /bin/bash ]]; then
        usermod -s /bin/bash "$user"
    fi
    # Needed wherever /dev/pts is mounted without gid=5: otherwise sshd
    # cannot hand a pty to the user and pty requests fail.
    usermod -aG tty "$user"
}

ensure_users() {
    ensure_user "$USER_PLAIN"
    ensure_user "$USER_SUDO"
    ensure_user "$USER_SUDOPW"
    # A password also keeps the account from counting as locked ("!" in
    # shadow), which sshd would refuse even for key logins.
    printf '%s:%s\n' \
        "$USER_PLAIN" "$PASSWORD_PLAIN" \
        "$USER_SUDO" "$PASSWORD_PLAIN" \
        "$USER_SUDOPW" "$PASSWORD_SUDOPW" | chpasswd

    local tmp
    tmp=$(mktemp)
    cat >"$tmp" <<EOF
# twill remote tests (tests-remote/sshd-server.sh)
$USER_SUDO ALL=(ALL:ALL) NOPASSWD: ALL
$USER_SUDOPW ALL=(ALL:ALL) ALL
Defaults:$USER_SUDOPW timestamp_timeout=0, lecture=never, !requiretty
Defaults:$USER_SUDO !requiretty
EOF
    visudo -cq -f "$tmp" || { rm -f "$tmp"; die "generated sudoers file is invalid"; }
    chmod 0440 "$tmp"
    mv -f "$tmp" "$SUDOERS_FILE"
    chown root:root "$SUDOERS_FILE"
}

# ------------------------------------------------------------------- keys

generate_keys() {
    local dir=$1
    ssh-keygen -q -t ed25519 -N '' -C twill-test-host -f "$dir/ssh_host_ed25519_key"
    ssh-keygen -q -t rsa -b 3072 -N '' -C twill-test-host -f "$dir/ssh_host_rsa_key"
    ssh-keygen -q -t ed25519 -N '' -C twill-test -f "$dir/id_ed25519"
    ssh-keygen -q -t rsa -b 3072 -N '' -C twill-test -f "$dir/id_rsa"
    ssh-keygen -q -t ecdsa -b 256 -N '' -C twill-test -f "$dir/id_ecdsa"
    ssh-keygen -q -t ed25519 -N "$KEY_PASSPHRASE" -C twill-test-encrypted -f "$dir/id_ed25519_encrypted"
    cat "$dir"/id_ed25519.pub "$dir"/id_rsa.pub "$dir"/id_ecdsa.pub \
        "$dir"/id_ed25519_encrypted.pub >"$dir/authorized_keys"
    chmod 644 "$dir/authorized_keys"
}

write_known_hosts() {
    local dir=$1 port=$2 count=$3 sftp_port=$4 i addr name ed rsa
    ed=$(cut -d' ' -f1,2 "$dir/ssh_host_ed25519_key.pub")
    rsa=$(cut -d' ' -f1,2 "$dir/ssh_host_rsa_key.pub")
    {
        for ((i = 1; i <= count; i++)); do
            addr=$(host_addr "$i")
            if ((port == 22)); then name=$addr; else name="[$addr]:$port"; fi
            printf '%s %s\n%s %s\n' "$name" "$ed" "$name" "$rsa"
        done
        name="[127.0.0.1]:$sftp_port"
        printf '%s %s\n%s %s\n' "$name" "$ed" "$name" "$rsa"
    } >"$dir/known_hosts"
    chmod 644 "$dir/known_hosts"
}

write_sshd_config() {
    local dir=$1 n=$2 port=$3 first=$4 last=$5 extra=${6:-} i
    {
        echo "# twill test sshd $n (generated by tests-remote/sshd-server.sh)"
        echo "Port $port"
        echo "AddressFamily inet"
        for ((i = first; i <= last; i++)); do
            echo "ListenAddress $(host_addr "$i")"
        done
        cat <<EOF
HostKey $dir/ssh_host_ed25519_key
HostKey $dir/ssh_host_rsa_key
PidFile $dir/sshd-$n.pid
LogLevel INFO
StrictModes no
UsePAM no
PermitRootLogin no
AllowUsers $USER_PLAIN $USER_SUDO $USER_SUDOPW
PubkeyAuthentication yes
AuthorizedKeysFile $dir/authorized_keys
PasswordAuthentication yes
PermitEmptyPasswords no
KbdInteractiveAuthentication no
HostbasedAuthentication no
MaxStartups 200:30:300
MaxSessions 64
MaxAuthTries 10
UseDNS no
PrintMotd no
PrintLastLog no
X11Forwarding no
AcceptEnv LANG LC_*
Subsystem sftp internal-sftp
EOF
        if [[ -n $extra ]]; then echo "$extra"; fi
    } >"$dir/sshd-$n.conf"
}

write_env() {
    local dir=$1 port=$2 hosts=$3 pids=$4 sftp_port=$5
    cat >"$dir/env.sh" <<EOF
# twill remote test server; source this file.
export TWILL_TEST_SSHD_DIR='$dir'
export TWILL_TEST_HOST='127.0.0.1'
export TWILL_TEST_PORT='$port'
export TWILL_TEST_HOSTS='$hosts'
export TWILL_TEST_NO_LIMITS_PORT='$sftp_port'
export TWILL_TEST_USER='$USER_PLAIN'
export TWILL_TEST_SUDO_USER='$USER_SUDO'
export TWILL_TEST_SUDOPW_USER='$USER_SUDOPW'
export TWILL_TEST_PASSWORD='$PASSWORD_PLAIN'
export TWILL_TEST_SUDO_PASSWORD='$PASSWORD_SUDOPW'
export TWILL_TEST_KEY='$dir/id_ed25519'
export TWILL_TEST_KEY_RSA='$dir/id_rsa'
export TWILL_TEST_KEY_ECDSA='$dir/id_ecdsa'
export TWILL_TEST_KEY_ENCRYPTED='$dir/id_ed25519_encrypted'
export TWILL_TEST_KEY_PASSPHRASE='$KEY_PASSPHRASE'
export TWILL_TEST_KNOWN_HOSTS='$dir/known_hosts'
export TWILL_TEST_PIDS='$pids'
EOF
    chmod 644 "$dir/env.sh"
}

# ------------------------------------------------------------------ start

show_logs() {
    local dir=$1 f
    for f in "$dir"/sshd-*.log; do
        [[ -s $f ]] || continue
        log "---- $f (last lines)"
        tail -n 15 "$f" >&2
    done
}

probe_login() {
    local dir=$1 port=$2 addr=$3
    ssh -F /dev/null -o BatchMode=yes -o ConnectTimeout=3 -o LogLevel=ERROR \
        -o UserKnownHostsFile="$dir/known_hosts" -o GlobalKnownHostsFile=/dev/null \
        -o StrictHostKeyChecking=yes -o IdentitiesOnly=yes -i "$dir/id_ed25519" \
        -p "$port" "$USER_PLAIN@$addr" true </dev/null >/dev/null 2>&1
}

start_server() {
    local dir=$1 count=${TWILL_SSHD_HOSTS:-16}
    [[ $count =~ ^[0-9]+$ ]] && ((count >= 1 && count <= MAX_HOSTS)) ||
        die "TWILL_SSHD_HOSTS must be 1..$MAX_HOSTS, got '$count'"
    ((EUID == 0)) || die "start must run as root (creates users, sudoers, /run/sshd)"

    # Stop a previous instance recorded in this state dir.
    if [[ -d $dir ]]; then stop_server "$dir"; fi
    local port sftp_port
    port=$(pick_port)
    sftp_port=$(first_free_port $((port + 1))) || die "no second free port after $port"

    ensure_packages
    ensure_users
    reset_state_dir "$dir"
    # sshd reads AuthorizedKeysFile as the logging-in user.
    runuser -u "$USER_PLAIN" -- test -r "$dir/$MARKER" ||
        die "$dir is not readable by user $USER_PLAIN; choose a state dir outside private directories"
    mkdir -p -m 0755 /run/sshd

    generate_keys "$dir"
    write_known_hosts "$dir" "$port" "$count" "$sftp_port"

    local nproc=$(((count + LISTEN_PER_SSHD - 1) / LISTEN_PER_SSHD)) n first last
    for ((n = 1; n <= nproc; n++)); do
        first=$(((n - 1) * LISTEN_PER_SSHD + 1))
        last=$((n * LISTEN_PER_SSHD))
        ((last > count)) && last=$count
        write_sshd_config "$dir" "$n" "$port" "$first" "$last"
        "$SSHD" -t -f "$dir/sshd-$n.conf" || die "sshd -t rejected $dir/sshd-$n.conf"
    done
    # The SFTP-only server on the second port.
    nproc=$((nproc + 1))
    write_sshd_config "$dir" "$nproc" "$sftp_port" 1 1 "ForceCommand internal-sftp -P limits"
    "$SSHD" -t -f "$dir/sshd-$nproc.conf" || die "sshd -t rejected $dir/sshd-$nproc.conf"

    : >"$dir/pids"
    local pids=() pid
    for ((n = 1; n <= nproc; n++)); do
        setsid "$SSHD" -D -e -f "$dir/sshd-$n.conf" </dev/null >>"$dir/sshd-$n.log" 2>&1 &
        pid=$!
        echo "$pid" >>"$dir/pids"
        pids+=("$pid")
    done

    # Wait until every address listens, then until a real login works.
    local deadline=$(($(now_ms) + READY_TIMEOUT_S * 1000)) want=() i sockets missing
    local port_hex
    port_hex=$(printf '%04X' "$port")
    for ((i = 1; i <= count; i++)); do
        want+=("$(proc_addr "$(host_addr "$i")"):$port_hex")
    done
    want+=("$(proc_addr 127.0.0.1):$(printf '%04X' "$sftp_port")")
    while :; do
        for pid in "${pids[@]}"; do
            if ! kill -0 "$pid" 2>/dev/null; then
                show_logs "$dir"
                stop_server "$dir" || true
                die "sshd PID $pid exited during start-up"
            fi
        done
        sockets=$(listening_sockets)
        missing=0
        for i in "${want[@]}"; do
            grep -qx "$i" <<<"$sockets" || { missing=$((missing + 1)); break; }
        done
        if ((missing == 0)) && probe_login "$dir" "$port" 127.0.0.1 &&
            probe_login "$dir" "$port" "$(host_addr "$count")"; then
            break
        fi
        if (($(now_ms) >= deadline)); then
            show_logs "$dir"
            stop_server "$dir" || true
            die "sshd did not accept logins within ${READY_TIMEOUT_S}s (port $port)"
        fi
        sleep 0.1
    done

    local hosts="" addr
    for ((i = 1; i <= count; i++)); do
        addr=$(host_addr "$i")
        hosts+=${hosts:+,}$addr
    done
    write_env "$dir" "$port" "$hosts" "${pids[*]}" "$sftp_port"

    cat <<EOF
twill test sshd running: ${#pids[@]} process(es), PIDs ${pids[*]}
  hosts: $(host_addr 1) .. $(host_addr "$count") ($count), port $port
  users: $USER_PLAIN, $USER_SUDO (sudo NOPASSWD), $USER_SUDOPW (sudo with password)
  try:   ssh -F /dev/null -o UserKnownHostsFile=$dir/known_hosts -o StrictHostKeyChecking=yes -o IdentitiesOnly=yes -i $dir/id_ed25519 -p $port $USER_PLAIN@127.0.0.1 'echo success!'
  logs:  $dir/sshd-*.log
  stop:  $0 stop $dir
env file: $dir/env.sh
EOF
}

# ------------------------------------------------------------------- main

main() {
    (($# >= 1 && $# <= 2)) || usage
    local cmd=$1 dir
    dir=$(resolve_state_dir "${2:-}")
    case $cmd in
        start) start_server "$dir" ;;
        stop) stop_server "$dir" ;;
        restart) stop_server "$dir"; start_server "$dir" ;;
        status) status_server "$dir" ;;
        -h | --help | help) usage ;;
        *) usage ;;
    esac
}

main "$@"
