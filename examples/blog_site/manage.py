#!/bin/sh
# Stands in for Django's manage.py, so that the example needs nothing on
# the host but a shell: the commands the fabfile runs, with Django's words.
set -e
[ -n "$BLOG_VENV" ] || { echo "manage.py: the virtualenv is not active" >&2; exit 1; }
shared="$(dirname "$BLOG_VENV")/shared"
case "$1" in
migrate)
    echo "Applying blog.0001_initial... OK"
    echo "$(basename "$(pwd -P)")" >> "$shared/migrations" ;;
collectstatic)
    cp static/* "$shared/static/"
    echo "$(ls static | wc -l) static files copied to '$shared/static'." ;;
createsuperuser)
    printf 'Username: '
    read -r name
    printf 'Password: '
    stty -echo
    read -r password
    stty echo
    echo
    if [ -z "$name" ] || [ -z "$password" ]; then
        echo "Error: Blank values are not allowed." >&2
        exit 1
    fi
    echo "$name" >> "$shared/superusers"
    echo "Superuser created successfully." ;;
*)
    echo "Unknown command: '$1'" >&2
    exit 1 ;;
esac
