#!/usr/bin/env bash
# Plain OpenSSH client for the twill test server (tests-remote/sshd-server.sh).
#
# Usage: ssh-client.sh [STATE_DIR] [USER] [-- COMMAND...]
#
#   With a COMMAND, run it remotely with ssh (strict host key checking against
#   STATE_DIR/known_hosts, key login only, no prompts).
#   Without one, print the ssh command line.
#
# STATE_DIR defaults to /tmp/twill-sshd, USER to twill.
# Environment overrides: TWILL_CLIENT_HOST (default 127.0.0.1),
# TWILL_CLIENT_KEY (default: the unencrypted ed25519 test key).
#
# Example: ssh-client.sh /tmp/twill-sshd twill -- 'echo success!'

set -euo pipefail

usage() {
    sed -n '2,/^$/{s/^# \{0,1\}//;p}' "$0" >&2
    exit 2
}

state_dir=/tmp/twill-sshd
user=
case ${1:-} in -h | --help) usage ;; esac
if (($#)) && [[ $1 != -- ]]; then state_dir=$1; shift; fi
if (($#)) && [[ $1 != -- ]]; then user=$1; shift; fi
if (($#)); then
    [[ $1 == -- ]] || usage
    shift
    (($#)) || usage
fi

env_file=$state_dir/env.sh
if [[ ! -r $env_file ]]; then
    echo "ssh-client: $env_file not found; run tests-remote/sshd-server.sh start $state_dir first" >&2
    exit 1
fi
# shellcheck disable=SC1090
. "$env_file"

user=${user:-$TWILL_TEST_USER}
host=${TWILL_CLIENT_HOST:-$TWILL_TEST_HOST}
key=${TWILL_CLIENT_KEY:-$TWILL_TEST_KEY}

cmd=(ssh -F /dev/null
    -o UserKnownHostsFile="$TWILL_TEST_KNOWN_HOSTS"
    -o GlobalKnownHostsFile=/dev/null
    -o StrictHostKeyChecking=yes
    -o IdentitiesOnly=yes
    -o BatchMode=yes
    -o LogLevel=ERROR
    -i "$key"
    -p "$TWILL_TEST_PORT"
    "$user@$host")

if (($#)); then
    exec "${cmd[@]}" "$@"
fi
printf '%q ' "${cmd[@]}"
echo
