#!/bin/sh
# The replica profile's standby (docker-compose.yml, postgres-replica) streams over the compose
# network as POSTGRES_USER with its password; the image's pg_hba.conf admits no replication
# connection from there. Run once, by the image's entrypoint, when the data volume is new.
set -e
echo "host replication all all scram-sha-256" >> "$PGDATA/pg_hba.conf"
