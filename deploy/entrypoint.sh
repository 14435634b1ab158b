#!/bin/sh
# Entrypoint of a Salesrail service image (deploy/Dockerfile).
#
# Without arguments: run this image's service as `python -m <module>`, the module being the
# service name with '-' turned into '_' (lead-router -> lead_router). With arguments: run them
# instead, e.g. `docker compose run --rm lead-router salesrail keys list`.
set -eu

if [ "$#" -eq 0 ]; then
    if [ -z "${SERVICE:-}" ]; then
        echo "entrypoint: SERVICE is not set (build the image with --build-arg SERVICE=...)" >&2
        exit 64
    fi
    module=$(printf '%s' "$SERVICE" | tr '-' '_')
    set -- python -m "$module"
fi

# exec: the service gets the signals (SIGTERM from `docker stop` starts its graceful shutdown).
exec "$@"
