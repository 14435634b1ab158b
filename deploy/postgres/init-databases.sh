#!/bin/bash
# Creates Salesrail's databases; run once by the postgres image on an empty data directory
# (mounted into /docker-entrypoint-initdb.d by docker-compose.yml).
#
# One database per service (its name is the service's module name, as in
# SALESRAIL_DATABASE_URL) plus `auth`, the API-key store every service shares; all owned by
# POSTGRES_USER. Safe to run again: existing databases are left alone. On a cluster that is
# already initialised, run it by hand to add a database for a new service:
#   docker compose exec postgres bash /docker-entrypoint-initdb.d/init-databases.sh
set -Eeo pipefail

SALESRAIL_DATABASES=(lead_router activity sla_monitor collab metrics auth)

owner="${POSTGRES_USER:-postgres}"
for db in "${SALESRAIL_DATABASES[@]}"; do
    echo "salesrail: database ${db} (owner ${owner})"
    # psql variables are quoted by psql itself (:'db' as a literal, %I by format()).
    psql -v ON_ERROR_STOP=1 --username "$owner" --dbname "${POSTGRES_DB:-$owner}" \
        -v db="$db" -v owner="$owner" <<'SQL'
SELECT format('CREATE DATABASE %I OWNER %I', :'db', :'owner')
WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'db')
\gexec
SQL
done
