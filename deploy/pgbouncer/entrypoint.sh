#!/bin/sh
# The userlist from compose's secret files: the build's superuser and PostgREST's login, for
# PgBouncer's SCRAM exchanges with clients and with PostgreSQL. Private to PgBouncer's user.
set -eu
umask 077
printf '"%s" "%s"\n"authenticator" "%s"\n' "$POSTGRES_USER" "$(cat /run/secrets/postgres_password)" \
    "$(cat /run/secrets/authenticator_password)" > /tmp/userlist.txt
exec pgbouncer /etc/pgbouncer/pgbouncer.ini
