#!/usr/bin/env bash
# Debian packages the test suite needs: bubblewrap (the sandbox), docker-compose (validates deploy/ without an
# engine), chromium (Flower screenshot). Installs only what is missing; never fails the build when apt is
# unavailable (the tests that need a missing tool then fail with a message naming it).
set -u
need=()
command -v bwrap >/dev/null || need+=(bubblewrap)
command -v docker-compose >/dev/null || need+=(docker-compose)
command -v chromium >/dev/null || need+=(chromium)
[ ${#need[@]} -eq 0 ] && { echo "system packages: all present"; exit 0; }
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo -n"
if command -v apt-get >/dev/null; then
  echo "system packages: installing ${need[*]}"
  $SUDO apt-get update -qq >/dev/null 2>&1 || true
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null \
    || echo "system packages: could not install ${need[*]} (run as root or install them yourself)" >&2
else
  echo "system packages: no apt-get; please install: ${need[*]}" >&2
fi
exit 0
