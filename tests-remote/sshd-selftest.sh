#!/usr/bin/env bash
# Check a running twill test server (tests-remote/sshd-server.sh) with plain OpenSSH.
#
# Usage: sshd-selftest.sh [--bench] [STATE_DIR]
#
#   Checks key logins (every user, every key type, the encrypted key), the
#   first, second and last loopback host, pty allocation, sudo with and
#   without password, sftp, scp where the server has no SFTP subsystem (and
#   sftp refused there), password login, and that the test users exist
#   only on the server's side (homes in STATE_DIR, unknown to the host).
#   Exit 1 if any check fails.
#   --bench also times 20 new connections and 100 commands over a
#   ControlMaster socket.
#
# STATE_DIR defaults to /tmp/twill-sshd.

set -euo pipefail

bench=0
if [[ ${1:-} == --bench ]]; then bench=1; shift; fi
case ${1:-} in -h | --help) sed -n '2,/^$/{s/^# \{0,1\}//;p}' "$0" >&2; exit 2 ;; esac
state_dir=${1:-/tmp/twill-sshd}
# shellcheck disable=SC1091
. "$state_dir/env.sh"

work=$(mktemp -d)
ctl=$work/ctl
cleanup() {
    ssh -F /dev/null -o ControlPath="$ctl" -O exit "$TWILL_TEST_USER@$TWILL_TEST_HOST" >/dev/null 2>&1 || true
    rm -rf -- "$work"
}
trap cleanup EXIT

failures=0
pass() { printf 'ok    %s\n' "$1"; }
skip() { printf 'skip  %s (%s)\n' "$1" "$2"; }
fail() { printf 'FAIL  %s\n' "$1"; [[ -n ${2:-} ]] && printf '      %s\n' "$2"; failures=$((failures + 1)); }

# base_ssh: common options, strict host key checking against the test known_hosts.
base=(ssh -F /dev/null
    -o UserKnownHostsFile="$TWILL_TEST_KNOWN_HOSTS"
    -o GlobalKnownHostsFile=/dev/null
    -o StrictHostKeyChecking=yes
    -o IdentitiesOnly=yes
    -o LogLevel=ERROR
    -o ConnectTimeout=5
    -p "$TWILL_TEST_PORT")

# run_ssh KEY USER HOST CMD... (key login, no prompts)
run_ssh() {
    local key=$1 user=$2 host=$3
    shift 3
    "${base[@]}" -o BatchMode=yes -i "$key" "$user@$host" "$@" </dev/null
}

# expect NAME EXPECTED COMMAND...: run COMMAND, compare its stdout.
expect() {
    local name=$1 want=$2 got
    shift 2
    if got=$("$@" 2>"$work/err"); then
        if [[ $got == "$want" ]]; then pass "$name"; else fail "$name" "expected '$want', got '$got'"; fi
    else
        fail "$name" "exit $?: $(tr '\n' ' ' <"$work/err")"
    fi
}

# expect_fail NAME COMMAND...: COMMAND must exit non-zero.
expect_fail() {
    local name=$1
    shift
    if "$@" >/dev/null 2>&1; then fail "$name" "succeeded but should have failed"; else pass "$name"; fi
}

users=("$TWILL_TEST_USER" "$TWILL_TEST_SUDO_USER" "$TWILL_TEST_SUDOPW_USER")
keys=("$TWILL_TEST_KEY" "$TWILL_TEST_KEY_RSA" "$TWILL_TEST_KEY_ECDSA")
host=$TWILL_TEST_HOST
last_host=${TWILL_TEST_HOSTS##*,}
second_host=$(cut -d, -f2 <<<"$TWILL_TEST_HOSTS,")
[[ -n $second_host ]] || second_host=$host

# Key logins: every user with every unencrypted key type.
for user in "${users[@]}"; do
    for key in "${keys[@]}"; do
        expect "key login $user with $(basename "$key")" "$user" run_ssh "$key" "$user" "$host" whoami
    done
done

# Encrypted key: passphrase decrypts it, and it logs in (passphrase via askpass).
if [[ $(ssh-keygen -y -P "$TWILL_TEST_KEY_PASSPHRASE" -f "$TWILL_TEST_KEY_ENCRYPTED" | cut -d' ' -f1,2) == \
    "$(cut -d' ' -f1,2 "$TWILL_TEST_KEY_ENCRYPTED.pub")" ]]; then
    pass "encrypted key opens with passphrase"
else
    fail "encrypted key opens with passphrase"
fi
expect_fail "encrypted key needs passphrase" ssh-keygen -y -P '' -f "$TWILL_TEST_KEY_ENCRYPTED"

askpass=$work/askpass
printf '#!/bin/sh\nprintf "%%s\\n" "$TWILL_ASKPASS_VALUE"\n' >"$askpass"
chmod 700 "$askpass"
# run_askpass SECRET USER SSH-ARGS...: ssh answering its prompt with SECRET.
run_askpass() {
    local secret=$1 user=$2
    shift 2
    TWILL_ASKPASS_VALUE=$secret SSH_ASKPASS=$askpass SSH_ASKPASS_REQUIRE=force \
        setsid -w "${base[@]}" -o NumberOfPasswordPrompts=1 "$@" "$user@$host" whoami </dev/null
}
expect "key login with encrypted key" "$TWILL_TEST_USER" \
    run_askpass "$TWILL_TEST_KEY_PASSPHRASE" "$TWILL_TEST_USER" -i "$TWILL_TEST_KEY_ENCRYPTED" \
    -o PreferredAuthentications=publickey

# Several hosts: second and last address, strict host key checking.
expect "login to $second_host" "$TWILL_TEST_USER" run_ssh "$TWILL_TEST_KEY" "$TWILL_TEST_USER" "$second_host" whoami
expect "login to $last_host (last host)" "$TWILL_TEST_USER" run_ssh "$TWILL_TEST_KEY" "$TWILL_TEST_USER" "$last_host" whoami

# PTY for every user.
for user in "${users[@]}"; do
    if out=$(run_ssh "$TWILL_TEST_KEY" "$user" "$host" -tt tty 2>"$work/err") && [[ $out == /dev/pts/* ]]; then
        pass "pty for $user ($(tr -d '\r' <<<"$out"))"
    else
        fail "pty for $user" "$out $(tr '\n' ' ' <"$work/err")"
    fi
done

# sudo.
expect "sudo -n for $TWILL_TEST_SUDO_USER" root run_ssh "$TWILL_TEST_KEY" "$TWILL_TEST_SUDO_USER" "$host" sudo -n whoami
expect_fail "no sudo for $TWILL_TEST_USER" run_ssh "$TWILL_TEST_KEY" "$TWILL_TEST_USER" "$host" sudo -n true
expect "sudo -S with password for $TWILL_TEST_SUDOPW_USER" root \
    run_ssh "$TWILL_TEST_KEY" "$TWILL_TEST_SUDOPW_USER" "$host" \
    "echo '$TWILL_TEST_SUDO_PASSWORD' | sudo -S -p 'sudo password:' whoami"
expect_fail "sudo -n fails for $TWILL_TEST_SUDOPW_USER" \
    run_ssh "$TWILL_TEST_KEY" "$TWILL_TEST_SUDOPW_USER" "$host" sudo -n true
expect_fail "sudo asks again right after success for $TWILL_TEST_SUDOPW_USER" \
    run_ssh "$TWILL_TEST_KEY" "$TWILL_TEST_SUDOPW_USER" "$host" \
    "echo '$TWILL_TEST_SUDO_PASSWORD' | sudo -S -p '' true && sudo -n true"
expect_fail "sudo -S with wrong password fails for $TWILL_TEST_SUDOPW_USER" \
    run_ssh "$TWILL_TEST_KEY" "$TWILL_TEST_SUDOPW_USER" "$host" "echo wrong | sudo -S -p '' true"

# sftp round trip.
head -c 1048576 /dev/urandom >"$work/up.bin"
remote_name=twill-selftest-$$.bin
cat >"$work/batch" <<EOF
put $work/up.bin $remote_name
get $remote_name $work/down.bin
rm $remote_name
EOF
if sftp -F /dev/null -q -b "$work/batch" -o UserKnownHostsFile="$TWILL_TEST_KNOWN_HOSTS" \
    -o GlobalKnownHostsFile=/dev/null -o StrictHostKeyChecking=yes -o IdentitiesOnly=yes \
    -o BatchMode=yes -o LogLevel=ERROR -i "$TWILL_TEST_KEY" -P "$TWILL_TEST_PORT" \
    "$TWILL_TEST_USER@$host" >"$work/err" 2>&1 && cmp -s "$work/up.bin" "$work/down.bin"; then
    pass "sftp put/get 1 MiB"
else
    fail "sftp put/get 1 MiB" "$(tr '\n' ' ' <"$work/err")"
fi

# The server without an SFTP subsystem: sftp is refused there, scp works.
client_opts=(-F /dev/null -o UserKnownHostsFile="$TWILL_TEST_KNOWN_HOSTS"
    -o GlobalKnownHostsFile=/dev/null -o StrictHostKeyChecking=yes -o IdentitiesOnly=yes
    -o BatchMode=yes -o LogLevel=ERROR -i "$TWILL_TEST_KEY")
echo pwd >"$work/batch"
if sftp "${client_opts[@]}" -o LogLevel=INFO -b "$work/batch" -P "$TWILL_TEST_NO_SFTP_PORT" \
    "$TWILL_TEST_USER@$host" >"$work/err" 2>&1; then
    fail "sftp refused at port $TWILL_TEST_NO_SFTP_PORT (no SFTP subsystem)" "sftp worked"
elif grep -q 'subsystem request failed' "$work/err"; then
    pass "sftp refused at port $TWILL_TEST_NO_SFTP_PORT (no SFTP subsystem)"
else
    fail "sftp refused at port $TWILL_TEST_NO_SFTP_PORT (no SFTP subsystem)" "$(tr '\n' ' ' <"$work/err")"
fi
remote_scp=/tmp/twill-selftest-$$.scp
if scp "${client_opts[@]}" -O -q -P "$TWILL_TEST_NO_SFTP_PORT" "$work/up.bin" \
    "$TWILL_TEST_USER@$host:$remote_scp" >"$work/err" 2>&1 &&
    scp "${client_opts[@]}" -O -q -P "$TWILL_TEST_NO_SFTP_PORT" \
        "$TWILL_TEST_USER@$host:$remote_scp" "$work/scp.bin" >>"$work/err" 2>&1 &&
    cmp -s "$work/up.bin" "$work/scp.bin"; then
    pass "scp put/get 1 MiB at port $TWILL_TEST_NO_SFTP_PORT"
else
    fail "scp put/get 1 MiB at port $TWILL_TEST_NO_SFTP_PORT" "$(tr '\n' ' ' <"$work/err")"
fi
rm -f -- "$remote_scp"

# Password login (keys disabled).
pw_opts=(-o PubkeyAuthentication=no -o PreferredAuthentications=password)
expect "password login $TWILL_TEST_USER" "$TWILL_TEST_USER" \
    run_askpass "$TWILL_TEST_PASSWORD" "$TWILL_TEST_USER" "${pw_opts[@]}"
expect "password login $TWILL_TEST_SUDOPW_USER" "$TWILL_TEST_SUDOPW_USER" \
    run_askpass "$TWILL_TEST_SUDO_PASSWORD" "$TWILL_TEST_SUDOPW_USER" "${pw_opts[@]}"
expect_fail "wrong password rejected" run_askpass wrong-password "$TWILL_TEST_USER" "${pw_opts[@]}"

# The users live only in the server's mount namespaces.
for user in "${users[@]}"; do
    # shellcheck disable=SC2016 # expanded by the server's shell
    expect "home of $user in the state dir, group tty" "$TWILL_TEST_SSHD_DIR/home/$user tty" \
        run_ssh "$TWILL_TEST_KEY" "$user" "$host" 'echo "$HOME $(id -nG | tr " " "\n" | grep -x tty)"'
    if [[ ${TWILL_SSHD_ALLOW_HOST_ACCOUNTS:-} == 1 ]]; then
        skip "the host knows no user $user" "TWILL_SSHD_ALLOW_HOST_ACCOUNTS=1"
    else
        expect_fail "the host knows no user $user" getent passwd "$user"
    fi
done

if ((bench)); then
    now_ms() { date +%s%3N; }
    t0=$(now_ms)
    for ((i = 0; i < 20; i++)); do run_ssh "$TWILL_TEST_KEY" "$TWILL_TEST_USER" "$host" true; done
    t1=$(now_ms)
    printf 'bench new connection: 20 x ssh true: %d ms total, %d ms each\n' $((t1 - t0)) $(((t1 - t0) / 20))
    mux=(-o ControlMaster=auto -o ControlPath="$ctl" -o ControlPersist=60)
    run_ssh "$TWILL_TEST_KEY" "$TWILL_TEST_USER" "$host" "${mux[@]}" true # opens the master
    t0=$(now_ms)
    for ((i = 0; i < 100; i++)); do run_ssh "$TWILL_TEST_KEY" "$TWILL_TEST_USER" "$host" "${mux[@]}" true; done
    t1=$(now_ms)
    printf 'bench ControlMaster: 100 x ssh true: %d ms total, %d.%d ms each\n' \
        $((t1 - t0)) $(((t1 - t0) / 100)) $(((t1 - t0) % 100 / 10))
fi

if ((failures)); then
    echo "$failures check(s) failed"
    exit 1
fi
echo "all checks passed"
