#!/bin/sh
# The userlist from the environment (never in the image): the build's superuser and PostgREST's
# login, for PgBouncer's SCRAM exchanges with clients and with PostgreSQL.
set -eu
umask 077
printf '"%s" "%s"\n"authenticator" "%s"\n' "$POSTGRES_USER" "$POSTGRES_PASSWORD" "$AUTHENTICATOR_PASSWORD" \
    > /tmp/userlist.txt
exec pgbouncer /etc/pgbouncer/pgbouncer.ini
