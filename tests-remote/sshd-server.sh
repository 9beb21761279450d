#!/usr/bin/env bash
# Throwaway OpenSSH server for twill's remote tests.
#
# Usage: sshd-server.sh start|stop|status|check|restart [STATE_DIR]
#
#   start   Generate fresh keys, sshd configs and the test accounts in
#           STATE_DIR (removed and recreated), start sshd in the background,
#           wait until it accepts logins, then run `check`. Writes
#           STATE_DIR/env.sh.
#   stop    Stop exactly the sshd processes recorded in STATE_DIR/pids and
#           every process left in their mount namespaces, then verify that
#           no mount from STATE_DIR remains anywhere and remove the private
#           account files. STATE_DIR itself (keys, logs, homes) stays.
#           No error if not running; exit 1 if something remains.
#   status  Show whether the recorded sshd processes are alive and still see
#           their private accounts.
#           Exit 0 if all are running, 1 if none are, 2 if only some are.
#   check   Verify the rule below for the running server; exit 1 if broken.
#
# STATE_DIR defaults to /tmp/twill-sshd. Must be run as root (start/stop/check).
#
# The rule: the test accounts and their sudoers entries exist only inside
# the server's private mount namespace, and nothing survives `stop`.
# Every sshd runs in its own mount namespace (unshare --mount --propagation
# slave), where private copies of /etc/passwd, /etc/shadow and /etc/group
# (the host's entries plus the test users, host entries of the same names
# dropped) and of /etc/sudoers.d (the host's files plus the test entries)
# are bind-mounted over the host's. Sessions, and sudo inside them, see the
# test users; the host's user database never holds them. The namespaces are
# slaves of the host's mounts, so a file system mounted on the host after
# start shows up in sessions, while the private binds never reach the host.
# Where the host's / or /tmp mount does not propagate (a container's
# private root), start makes it shared and stop restores it once no
# namespace depends on it any more. `check` (run by start) fails if the host
# knows a test user or a sudoers entry names one, if an sshd is not in a
# private namespace, sees no test users, or misses a mount made on the host
# after start, or if a private bind shows on the host; stop fails if a
# mount from STATE_DIR remains in any process.
#
# The host's account files replaced while the server runs (useradd, passwd,
# usermod rename a new file over them) detach the private copies in the
# namespaces: sessions then see the host's accounts. `status` reports it.
#
# Environment:
#   TWILL_SSHD_HOSTS  number of loopback "hosts" (default 16, max 1016):
#                     127.0.0.1 .. 127.0.0.254, then 127.0.1.1 .. and so on.
#                     One sshd process serves up to 16 of them.
#   TWILL_SSHD_PORT   TCP port (default: first free port from 2222 upwards).
#   TWILL_SSHD_ALLOW_HOST_ACCOUNTS=1
#                     Only warn, instead of failing, when the host's user
#                     database or sudoers already name a test user (accounts
#                     that an older version of this script created and
#                     something still uses). Remove them instead:
#                     userdel -r twill; userdel -r twillsudo;
#                     userdel -r twillpw; rm /etc/sudoers.d/twill-test
#
# One more sshd listens on 127.0.0.1 at a second port (the next free one,
# TWILL_TEST_NO_LIMITS_PORT in env.sh), where every session is an SFTP server
# that denies the limits@openssh.com request and so does not offer it, like
# servers that state no limits. A third listens on 127.0.0.1 at a third port
# (TWILL_TEST_NO_SFTP_PORT) with no `Subsystem sftp` line, so that it refuses
# the sftp subsystem, like embedded devices and hardened hosts: commands and
# scp work there, SFTP does not. All three have the same host keys, users and
# namespaces, and known_hosts lists all three ports.
#
# Test users (UIDs and GIDs unused on the host, from 60100 up; homes
# STATE_DIR/home/USER made from /etc/skel; login shell /bin/bash; in group tty):
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
readonly TEST_USERS=("$USER_PLAIN" "$USER_SUDO" "$USER_SUDOPW")
readonly SUDOERS_NAME=twill-test
readonly ACCOUNT_ID_BASE=60100
readonly LISTEN_PER_SSHD=16
readonly MAX_HOSTS=1016
readonly READY_TIMEOUT_S=10
# Serialises, across every copy of this script, changing the propagation of
# the host's mounts (start) and restoring it (stop). sshd's privilege
# separation directory: always there while a test server may run.
readonly LOCK_PATH=/run/sshd
SELF=$(realpath -- "${BASH_SOURCE[0]}")
readonly SELF

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

# Stop the sshd processes recorded in STATE_DIR: TERM, then KILL.
stop_sshds() {
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

# Stop the server and check that nothing of it survives: no process in its
# namespaces, no mount from STATE_DIR in any process, the host's mount
# propagation as it was, and no private account files.
stop_server() {
    local dir=$1 left
    stop_sshds "$dir"
    end_namespace_processes "$dir"
    unmount_own_leftovers "$dir"
    left=$(state_mount_pids "$dir" | tr '\n' ' ')
    [[ -z ${left// /} ]] ||
        die "mounts from $dir remain in the mount namespace of PIDs ${left% }"
    restore_host_mounts "$dir"
    if [[ -e $dir/$MARKER ]]; then rm -rf -- "${dir:?}/etc"; fi
}

status_server() {
    local dir=$1 pid total=0 running=0
    if [[ -r $dir/env.sh ]]; then
        # shellcheck disable=SC1091
        . "$dir/env.sh"
        log "state dir $dir, port ${TWILL_TEST_PORT:-?}, hosts ${TWILL_TEST_HOSTS%%,*} .. ${TWILL_TEST_HOSTS##*,}; SFTP only at ${TWILL_TEST_NO_LIMITS_PORT:-?}, no SFTP at ${TWILL_TEST_NO_SFTP_PORT:-?}"
    fi
    for pid in $(recorded_pids "$dir"); do
        total=$((total + 1))
        if is_our_sshd "$pid" "$dir"; then
            running=$((running + 1))
            if private_binds_in_place "$pid"; then
                echo "sshd $pid running, private accounts in place"
            else
                echo "sshd $pid running, private accounts DETACHED (the host's account files were replaced)"
            fi
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

# ----------------------------------------------------- mount namespaces

mnt_ns() { readlink "/proc/$1/ns/mnt" 2>/dev/null; }

# shellcheck disable=SC2001 # a bracket expression reads better in sed
regex_quote() { sed 's/[][\.*^$+?(){}|]/\\&/g' <<<"$1"; }

# PIDs of every process with a mount that comes from STATE_DIR (a private
# account file bound in a namespace) or lies inside it, one per line.
state_mount_pids() {
    local dir=$1 majmin fsroot target rel
    [[ -d $dir ]] || return 0
    read -r majmin fsroot target < <(findmnt -n -o MAJ:MIN,FSROOT,TARGET -T "$dir") ||
        die "findmnt cannot place $dir"
    # /proc/PID/mountinfo names a bind's source by its path on its file system.
    if [[ $target == / ]]; then rel=$dir; else rel=${dir#"$target"}; fi
    grep -lE \
        -e "^[0-9]+ [0-9]+ $majmin $(regex_quote "${fsroot%/}$rel")/" \
        -e "^[0-9]+ [0-9]+ [0-9]+:[0-9]+ [^ ]+ $(regex_quote "$dir")(/| )" \
        /proc/[0-9]*/mountinfo 2>/dev/null | cut -d/ -f3 || true
}

# The same, without the processes of this script's own mount namespace
# and those gone meanwhile (whose PIDs may already be someone else's).
namespace_pids() {
    local dir=$1 own pid ns
    own=$(mnt_ns $$)
    for pid in $(state_mount_pids "$dir"); do
        ns=$(mnt_ns "$pid") || continue
        [[ -n $ns && $ns != "$own" ]] && echo "$pid"
    done
    return 0
}

# Stop, by PID, every process still in one of STATE_DIR's namespaces: the
# sessions, and whatever they left running. TERM, then KILL.
end_namespace_processes() {
    local dir=$1 procs=() deadline
    mapfile -t procs < <(namespace_pids "$dir")
    ((${#procs[@]})) || return 0
    log "stopping ${#procs[@]} process(es) left in the server's namespaces: ${procs[*]}"
    kill -TERM "${procs[@]}" 2>/dev/null || true
    deadline=$(($(now_ms) + 3000))
    while (($(now_ms) < deadline)); do
        mapfile -t procs < <(namespace_pids "$dir")
        ((${#procs[@]})) || return 0
        sleep 0.1
    done
    log "still alive after TERM, sending KILL: ${procs[*]}"
    kill -KILL "${procs[@]}" 2>/dev/null || true
    sleep 0.2
}

# Unmount what an interrupted start left mounted inside STATE_DIR here.
unmount_own_leftovers() {
    local dir=$1 mounts=() m
    mapfile -t mounts < <(awk -v d="$dir/" 'index($5, d) == 1 { print $5 }' /proc/self/mountinfo | sort -r)
    for m in "${mounts[@]}"; do
        log "unmounting $m"
        umount -- "$m" || die "cannot unmount $m"
    done
}

# True if PID's namespace still has the private passwd, shadow and group
# bound (replacing the host's file by rename detaches a bind).
private_binds_in_place() {
    local n
    n=$(awk '$5 == "/etc/passwd" || $5 == "/etc/shadow" || $5 == "/etc/group" { print $5 }' \
        "/proc/$1/mountinfo" 2>/dev/null | sort -u | wc -l)
    ((n == 3))
}

# The command prefix that runs a command in a new mount namespace with
# STATE_DIR's private accounts (see ns_exec), in WORLD. unshare and the
# set-up exec into the command, so the PID is the command's.
set_world() {
    WORLD=(unshare --mount --propagation slave -- "$BASH" "$SELF" _ns-exec "$1" "$(mnt_ns $$)")
}

# _ns-exec STATE_DIR HOST_NS COMMAND...: the first process of a namespace
# made by set_world. Binds the private account files over the host's, then
# becomes COMMAND.
ns_exec() {
    local dir=$1 host_ns=$2 etc=$1/etc target
    shift 2
    (($#)) || die "_ns-exec: no command"
    [[ $(mnt_ns self) != "$host_ns" ]] || die "_ns-exec must run in a new mount namespace"
    local binds=("$etc/passwd" /etc/passwd "$etc/shadow" /etc/shadow "$etc/group" /etc/group)
    if [[ -d $etc/sudoers.d ]]; then
        binds+=("$etc/sudoers.d" /etc/sudoers.d)
    else
        binds+=("$etc/sudoers" /etc/sudoers)
    fi
    # root's own start-up files on this machine (a pyenv or cargo set-up,
    # say) would run in every `sudo` login shell of the tests and add their
    # output, and their races, to it: the sessions see empty ones.
    local dotfile
    [[ -e $etc/empty ]] || : >"$etc/empty"
    for dotfile in /root/.profile /root/.bashrc /root/.bash_profile /root/.bash_login; do
        if [[ -f $dotfile ]]; then binds+=("$etc/empty" "$dotfile"); fi
    done
    set -- "${binds[@]}" -- "$@"
    while [[ $1 != -- ]]; do
        target=$2
        [[ -e $1 ]] || die "private account file $1 is missing"
        # A shared mount here would carry the bind back to the host.
        [[ $(findmnt -n -o PROPAGATION -T "$target") != shared* ]] ||
            die "the mount holding $target propagates to the host"
        mount --bind -- "$1" "$target"
        shift 2
    done
    shift
    exec "$@"
}

# ------------------------------------------------- host mount propagation
#
# Tests mount file systems in temporary directories on the host after the
# server started, and sessions must see them: the mounts holding /, /tmp and
# STATE_DIR must be shared, so that the namespaces are their slaves. A
# mount this script made shared is restored by the stop that finds no
# namespace depending on it any more; STATE_DIR/shared-mounts records
# "TARGET ORIGINAL-PROPAGATION" for each.

LOCK_DEPTH=0
lock_host() {
    if ((LOCK_DEPTH == 0)); then
        [[ -d $LOCK_PATH ]] || mkdir -m 0755 -- "$LOCK_PATH"
        exec {LOCK_FD}<"$LOCK_PATH"
        flock -w 120 "$LOCK_FD" || die "could not lock $LOCK_PATH within 120s"
    fi
    LOCK_DEPTH=$((LOCK_DEPTH + 1))
}

unlock_host() {
    LOCK_DEPTH=$((LOCK_DEPTH - 1))
    if ((LOCK_DEPTH == 0)); then exec {LOCK_FD}<&-; fi
}

# The peer group number of the (top) mount on TARGET here, if shared.
peer_group() {
    awk -v t="$1" '$5 == t {
        id = ""
        for (i = 7; i <= NF && $i != "-"; i++) if ($i ~ /^shared:/) id = substr($i, 8)
    } END { print id }' /proc/self/mountinfo
}

# PIDs of processes with a mount that is a slave of peer group N.
slave_pids() {
    grep -lE " master:$1 " /proc/[0-9]*/mountinfo 2>/dev/null | cut -d/ -f3 || true
}

# The state directory of the test sshd PID, if it is one.
server_dir_of() {
    local cmdline
    cmdline=$(tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null) || return 1
    [[ $cmdline =~ -f\ (/[^ ]+)/sshd-[0-9]+\.conf ]] || return 1
    [[ -e ${BASH_REMATCH[1]}/$MARKER ]] || return 1
    echo "${BASH_REMATCH[1]}"
}

propagating_targets() {
    local dir=$1
    {
        findmnt -n -o TARGET -T /
        findmnt -n -o TARGET -T /tmp
        findmnt -n -o TARGET -T "$dir"
    } | sort -u
}

# Call with the lock held.
share_host_mounts() {
    local dir=$1 target prop
    : >"$dir/shared-mounts"
    while read -r target; do
        prop=$(findmnt -n -o PROPAGATION -T "$target")
        if [[ $prop == shared* ]]; then
            inherit_shared_record "$dir" "$target"
            continue
        fi
        log "making mount $target shared (was $prop) so that sessions see mounts made on the host"
        mount --make-shared -- "$target"
        echo "$target $prop" >>"$dir/shared-mounts"
    done < <(propagating_targets "$dir")
}

# TARGET is shared already. If another test server made it so, take over
# its record, so that whichever of the two stops last restores it.
inherit_shared_record() {
    local dir=$1 target=$2 peer pid other line
    peer=$(peer_group "$target")
    [[ -n $peer ]] || return 0
    for pid in $(slave_pids "$peer"); do
        other=$(server_dir_of "$pid") || continue
        [[ $other != "$dir" ]] || continue
        line=$(awk -v t="$target" '$1 == t' "$other/shared-mounts" 2>/dev/null) || continue
        if [[ -n $line ]]; then
            echo "$line" >>"$dir/shared-mounts"
            return 0
        fi
    done
}

restore_host_mounts() {
    local dir=$1 target prop peer users mode
    [[ -s $dir/shared-mounts ]] || { rm -f -- "$dir/shared-mounts"; return 0; }
    lock_host
    while read -r target prop; do
        peer=$(peer_group "$target")
        [[ -n $peer ]] || continue
        users=$(slave_pids "$peer" | wc -l)
        if ((users)); then
            log "mount $target stays shared: mounts of $users process(es) are its slaves"
            continue
        fi
        case $prop in
            *slave*) mode=slave ;;
            *unbindable*) mode=unbindable ;;
            *) mode=private ;;
        esac
        log "restoring mount $target to $prop"
        mount --make-"$mode" -- "$target"
    done <"$dir/shared-mounts"
    rm -f -- "$dir/shared-mounts"
    unlock_host
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
    local missing=() cmd
    [[ -x $SSHD ]] || missing+=(openssh-server)
    command -v ssh >/dev/null && command -v ssh-keygen >/dev/null || missing+=(openssh-client)
    command -v sudo >/dev/null && command -v visudo >/dev/null || missing+=(sudo)
    command -v openssl >/dev/null || missing+=(openssl)
    command -v mount >/dev/null && command -v umount >/dev/null || missing+=(mount)
    for cmd in unshare nsenter findmnt flock runuser setsid; do
        command -v "$cmd" >/dev/null || { missing+=(util-linux); break; }
    done
    ((${#missing[@]} == 0)) && return 0
    log "installing: ${missing[*]}"
    apt_get update >&2
    apt_get install -y --no-install-recommends "${missing[@]}" >&2
    [[ -x $SSHD ]] || die "$SSHD still missing after installing ${missing[*]}"
}

# ------------------------------------------------------- private accounts

password_of() {
    if [[ $1 == "$USER_SUDOPW" ]]; then echo "$PASSWORD_SUDOPW"; else echo "$PASSWORD_PLAIN"; fi
}

# The first ID from $1 up that the host uses neither as a UID nor as a GID
# and that is not among the other arguments (IDs already handed out).
free_id() {
    local id=$1 taken=" ${*:2} "
    while getent passwd "$id" >/dev/null || getent group "$id" >/dev/null ||
        [[ $taken == *" $id "* ]]; do
        id=$((id + 1))
    done
    echo "$id"
}

# Copy FILE (/etc/passwd, shadow or group) to OUT without the entries named
# like a test user, and (group) without test users in member lists.
copy_without_test_users() {
    local file=$1 out=$2 members=0
    [[ $file == */group ]] && members=1
    awk -F: -v OFS=: -v names="${TEST_USERS[*]}" -v members="$members" '
        BEGIN { n = split(names, a, " "); for (i = 1; i <= n; i++) drop[a[i]] = 1 }
        $1 in drop { next }
        members && NF >= 4 {
            m = split($4, mem, ","); kept = ""
            for (i = 1; i <= m; i++)
                if (mem[i] != "" && !(mem[i] in drop)) kept = kept (kept == "" ? "" : ",") mem[i]
            $4 = kept
        }
        { print }' "$file" >"$out"
    chown --reference="$file" -- "$out"
    chmod --reference="$file" -- "$out"
}

# Append the test users to the member list of group tty in FILE.
add_to_tty() {
    local file=$1
    awk -F: -v OFS=: -v names="${TEST_USERS[*]}" '
        $1 == "tty" {
            n = split(names, a, " ")
            for (i = 1; i <= n; i++) $4 = $4 ($4 == "" ? "" : ",") a[i]
            seen = 1
        }
        { print }
        END { exit !seen }' "$file" >"$file.new" || die "the host has no group tty"
    cat -- "$file.new" >"$file"
    rm -f -- "$file.new"
}

# STATE_DIR/etc/{passwd,shadow,group}: the host's entries plus the test
# users, bound over the host's files in every sshd's namespace; and the
# users' homes under STATE_DIR/home.
write_accounts() {
    local dir=$1 etc=$1/etc ids=() id i user home day hash
    mkdir -m 0700 -- "$etc"
    mkdir -m 0755 -- "$dir/home"
    copy_without_test_users /etc/passwd "$etc/passwd"
    copy_without_test_users /etc/shadow "$etc/shadow"
    copy_without_test_users /etc/group "$etc/group"
    # Group tty is needed wherever /dev/pts is mounted without gid=5:
    # otherwise sshd cannot hand a pty to the user and pty requests fail.
    add_to_tty "$etc/group"
    day=$(($(date +%s) / 86400))
    for i in "${!TEST_USERS[@]}"; do
        user=${TEST_USERS[i]}
        id=$(free_id "$ACCOUNT_ID_BASE" "${ids[@]}")
        ids+=("$id")
        home=$dir/home/$user
        # A password also keeps the account from counting as locked ("!" in
        # shadow), which sshd would refuse even for key logins.
        hash=$(openssl passwd -6 -stdin <<<"$(password_of "$user")") || die "openssl passwd failed"
        printf '%s:x:%d:%d::%s:/bin/bash\n' "$user" "$id" "$id" "$home" >>"$etc/passwd"
        printf '%s:%s:%d:0:99999:7:::\n' "$user" "$hash" "$day" >>"$etc/shadow"
        printf '%s:x:%d:\n' "$user" "$id" >>"$etc/group"
        cp -rT -- /etc/skel "$home"
        chown -R -- "$id:$id" "$home"
        chmod 0750 -- "$home"
    done
    log "test users ${TEST_USERS[*]} (UIDs ${ids[*]}) exist only in the server's namespaces"
}

sudoers_includes_dir() {
    grep -Eq '^[[:space:]]*[@#]includedir[[:space:]]+/etc/sudoers\.d/?[[:space:]]*$' /etc/sudoers
}

# The private sudoers: a copy of /etc/sudoers.d with the test entries added
# (STATE_DIR/etc/sudoers.d), or, where /etc/sudoers does not include that
# directory or it is missing, a copy of /etc/sudoers with them appended
# (STATE_DIR/etc/sudoers). Nothing is created on the host.
write_sudoers() {
    local dir=$1 etc=$1/etc entries=$1/etc/$SUDOERS_NAME
    {
        echo "# twill remote tests (tests-remote/sshd-server.sh): these entries exist"
        echo "# only in the test server's mount namespaces."
        echo "$USER_SUDO ALL=(ALL:ALL) NOPASSWD: ALL"
        echo "$USER_SUDOPW ALL=(ALL:ALL) ALL"
        echo "Defaults:$USER_SUDOPW timestamp_timeout=0, lecture=never, !requiretty"
        echo "Defaults:$USER_SUDO !requiretty"
    } >"$entries"
    visudo -cq -f "$entries" || die "generated sudoers entries are invalid"
    if [[ -d /etc/sudoers.d ]] && sudoers_includes_dir; then
        mkdir -m 0755 -- "$etc/sudoers.d"
        cp -a -- /etc/sudoers.d/. "$etc/sudoers.d/"
        install -m 0440 -o root -g root -- "$entries" "$etc/sudoers.d/$SUDOERS_NAME"
    else
        [[ -f /etc/sudoers ]] || die "/etc/sudoers is missing"
        cat -- /etc/sudoers "$entries" >"$etc/sudoers"
        chown root:root -- "$etc/sudoers"
        chmod 0440 -- "$etc/sudoers"
        visudo -cq -f "$etc/sudoers" || die "private sudoers file is invalid"
    fi
    rm -f -- "$entries"
}

# ------------------------------------------------------------------ check

# check_server STATE_DIR: verify the rule of the header for the running
# server. Logs each failure; returns 1 if any.
check_server() {
    local dir=$1 failures=0 pid sshds=() user found=() hits own want got probe what
    ((EUID == 0)) || die "check must run as root"
    own=$(mnt_ns $$)
    check_fail() { log "check FAILED: $*"; failures=$((failures + 1)); }

    # The host's user database and sudoers know no test user.
    for user in "${TEST_USERS[@]}"; do
        if getent passwd "$user" >/dev/null; then found+=("$user"); fi
    done
    hits=$(grep -lwE "$(IFS='|'; echo "${TEST_USERS[*]}")" /etc/sudoers /etc/sudoers.d/* 2>/dev/null |
        tr '\n' ' ') || true
    if ((${#found[@]})) || [[ -n $hits ]]; then
        what="the host's user database has: ${found[*]:-none}; host sudoers naming a test user: ${hits:-none}"
        if [[ ${TWILL_SSHD_ALLOW_HOST_ACCOUNTS:-} == 1 ]]; then
            log "warning: $what (allowed by TWILL_SSHD_ALLOW_HOST_ACCOUNTS=1)"
        else
            check_fail "$what (the header of $SELF says how to remove them)"
        fi
    fi

    # Every sshd: in a private namespace that has the test users, their
    # sudoers entries, and the mounts the host makes after start.
    for pid in $(recorded_pids "$dir"); do
        if ! is_our_sshd "$pid" "$dir"; then
            check_fail "sshd PID $pid is not running"
            continue
        fi
        sshds+=("$pid")
        if [[ $(mnt_ns "$pid") == "$own" ]]; then
            check_fail "sshd PID $pid runs in the host's mount namespace"
            continue
        fi
        private_binds_in_place "$pid" || check_fail "sshd PID $pid: private account files not bound"
        for user in "${TEST_USERS[@]}"; do
            want=$(awk -F: -v u="$user" '$1 == u { print $3 ":" $6 }' "$dir/etc/passwd" 2>/dev/null) || true
            got=$(nsenter --mount="/proc/$pid/ns/mnt" -- getent passwd "$user" | cut -d: -f3,6) || true
            [[ -n $want && $got == "$want" ]] ||
                check_fail "sshd PID $pid sees user $user as '${got:-nothing}', expected '${want:-?}'"
        done
        nsenter --mount="/proc/$pid/ns/mnt" -- sudo -n -l -U "$USER_SUDO" 2>/dev/null |
            grep -q 'NOPASSWD: ALL' || check_fail "sshd PID $pid: no sudo rule for $USER_SUDO"
    done
    if ((${#sshds[@]})); then
        probe=$dir/propagation-probe
        mkdir -p -- "$probe"
        if mount -t tmpfs -o size=16k,mode=0755 twill-probe "$probe"; then
            : >"$probe/seen"
            for pid in "${sshds[@]}"; do
                nsenter --mount="/proc/$pid/ns/mnt" -- test -e "$probe/seen" ||
                    check_fail "sshd PID $pid does not see a mount made on the host after start"
            done
            umount -- "$probe" || check_fail "cannot unmount $probe"
        else
            check_fail "cannot mount a tmpfs on $probe"
        fi
        rmdir -- "$probe" 2>/dev/null || true
    fi

    # The private binds stay in the namespaces.
    for pid in $(state_mount_pids "$dir"); do
        if [[ $(mnt_ns "$pid") == "$own" ]]; then
            check_fail "a mount from $dir shows in the host's mount namespace"
            break
        fi
    done

    if ((failures)); then
        log "check: $failures failure(s)"
        return 1
    fi
    log "check passed: test users and their sudoers entries exist only in the namespaces of ${#sshds[@]} sshd"
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
    local dir=$1 port=$2 count=$3 sftp_port=$4 no_sftp_port=$5 i addr name ed rsa
    ed=$(cut -d' ' -f1,2 "$dir/ssh_host_ed25519_key.pub")
    rsa=$(cut -d' ' -f1,2 "$dir/ssh_host_rsa_key.pub")
    {
        for ((i = 1; i <= count; i++)); do
            addr=$(host_addr "$i")
            if ((port == 22)); then name=$addr; else name="[$addr]:$port"; fi
            printf '%s %s\n%s %s\n' "$name" "$ed" "$name" "$rsa"
        done
        for i in "$sftp_port" "$no_sftp_port"; do
            name="[127.0.0.1]:$i"
            printf '%s %s\n%s %s\n' "$name" "$ed" "$name" "$rsa"
        done
    } >"$dir/known_hosts"
    chmod 644 "$dir/known_hosts"
}

# write_sshd_config DIR N PORT FIRST LAST [EXTRA] [SFTP]: the config of sshd
# N, listening on hosts FIRST..LAST at PORT, with the line EXTRA at the end.
# SFTP is the sftp subsystem's program (internal-sftp); `none` leaves the
# `Subsystem sftp` line out, and the server then refuses the subsystem.
write_sshd_config() {
    local dir=$1 n=$2 port=$3 first=$4 last=$5 extra=${6:-} sftp=${7:-internal-sftp} i
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
EOF
        if [[ $sftp != none ]]; then echo "Subsystem sftp $sftp"; fi
        if [[ -n $extra ]]; then echo "$extra"; fi
    } >"$dir/sshd-$n.conf"
}

write_env() {
    local dir=$1 port=$2 hosts=$3 pids=$4 sftp_port=$5 no_sftp_port=$6
    cat >"$dir/env.sh" <<EOF
# twill remote test server; source this file.
export TWILL_TEST_SSHD_DIR='$dir'
export TWILL_TEST_HOST='127.0.0.1'
export TWILL_TEST_PORT='$port'
export TWILL_TEST_HOSTS='$hosts'
export TWILL_TEST_NO_LIMITS_PORT='$sftp_port'
export TWILL_TEST_NO_SFTP_PORT='$no_sftp_port'
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
    ((EUID == 0)) || die "start must run as root (mount namespaces, /run/sshd)"

    # Stop a previous instance recorded in this state dir.
    if [[ -d $dir ]]; then stop_server "$dir"; fi
    local port sftp_port no_sftp_port
    port=$(pick_port)
    sftp_port=$(first_free_port $((port + 1))) || die "no second free port after $port"
    no_sftp_port=$(first_free_port $((sftp_port + 1))) || die "no third free port after $sftp_port"

    ensure_packages
    reset_state_dir "$dir"
    write_accounts "$dir"
    write_sudoers "$dir"
    set_world "$dir"
    # sshd reads AuthorizedKeysFile as the logging-in user, who exists only
    # in the server's namespaces: ask in one set up the same way.
    "${WORLD[@]}" runuser -u "$USER_PLAIN" -- test -r "$dir/$MARKER" ||
        die "$dir is not readable by user $USER_PLAIN; choose a state dir outside private directories"
    mkdir -p -m 0755 /run/sshd

    generate_keys "$dir"
    write_known_hosts "$dir" "$port" "$count" "$sftp_port" "$no_sftp_port"

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
    # The server without an SFTP subsystem on the third port.
    nproc=$((nproc + 1))
    write_sshd_config "$dir" "$nproc" "$no_sftp_port" 1 1 "" none
    "$SSHD" -t -f "$dir/sshd-$nproc.conf" || die "sshd -t rejected $dir/sshd-$nproc.conf"
    ! grep -q '^Subsystem' "$dir/sshd-$nproc.conf" || die "$dir/sshd-$nproc.conf names a subsystem"

    # From making the host's mounts shared until the namespaces depend on
    # them, no other copy of this script may restore them.
    lock_host
    share_host_mounts "$dir"
    : >"$dir/pids"
    local pids=() pid
    for ((n = 1; n <= nproc; n++)); do
        # setsid, unshare and the namespace set-up exec in turn: $! is sshd.
        setsid "${WORLD[@]}" "$SSHD" -D -e -f "$dir/sshd-$n.conf" \
            </dev/null >>"$dir/sshd-$n.log" 2>&1 {LOCK_FD}<&- &
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
    want+=("$(proc_addr 127.0.0.1):$(printf '%04X' "$no_sftp_port")")
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
            probe_login "$dir" "$port" "$(host_addr "$count")" &&
            probe_login "$dir" "$no_sftp_port" 127.0.0.1; then
            break
        fi
        if (($(now_ms) >= deadline)); then
            show_logs "$dir"
            stop_server "$dir" || true
            die "sshd did not accept logins within ${READY_TIMEOUT_S}s (port $port)"
        fi
        sleep 0.1
    done

    if ! check_server "$dir"; then
        stop_server "$dir" || true
        die "the test server breaks its isolation rule; stopped it"
    fi
    unlock_host

    local hosts="" addr
    for ((i = 1; i <= count; i++)); do
        addr=$(host_addr "$i")
        hosts+=${hosts:+,}$addr
    done
    write_env "$dir" "$port" "$hosts" "${pids[*]}" "$sftp_port" "$no_sftp_port"

    cat <<EOF
twill test sshd running: ${#pids[@]} process(es), PIDs ${pids[*]}
  hosts: $(host_addr 1) .. $(host_addr "$count") ($count), port $port
  127.0.0.1 also at port $sftp_port (SFTP only, no limits) and $no_sftp_port (no SFTP subsystem)
  users: $USER_PLAIN, $USER_SUDO (sudo NOPASSWD), $USER_SUDOPW (sudo with password),
         only inside the server's mount namespaces
  try:   ssh -F /dev/null -o UserKnownHostsFile=$dir/known_hosts -o StrictHostKeyChecking=yes -o IdentitiesOnly=yes -i $dir/id_ed25519 -p $port $USER_PLAIN@127.0.0.1 'echo success!'
  logs:  $dir/sshd-*.log
  stop:  $0 stop $dir
env file: $dir/env.sh
EOF
}

# ------------------------------------------------------------------- main

main() {
    if [[ ${1:-} == _ns-exec ]]; then
        shift
        ns_exec "$@"
    fi
    (($# >= 1 && $# <= 2)) || usage
    local cmd=$1 dir
    dir=$(resolve_state_dir "${2:-}")
    case $cmd in
        start) start_server "$dir" ;;
        stop)
            ((EUID == 0)) || die "stop must run as root"
            stop_server "$dir"
            ;;
        restart)
            ((EUID == 0)) || die "restart must run as root"
            stop_server "$dir"
            start_server "$dir"
            ;;
        status) status_server "$dir" ;;
        check) check_server "$dir" ;;
        -h | --help | help) usage ;;
        *) usage ;;
    esac
}

main "$@"
