#!/usr/bin/env bash
# What `make images` / `make test-deploy` need on the host: debootstrap (the base image's root file system) and a
# Docker engine. Nothing to do when both are there and the engine answers; otherwise (as root, or with
# password-less sudo) install Debian's debootstrap / docker.io where missing and start dockerd in the background
# (log: /var/log/qmind-dockerd.log), then wait for it to answer. Fails with a message saying what to do when it
# cannot.
set -u
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo -n"
if ! command -v debootstrap >/dev/null && ! [ -x /usr/sbin/debootstrap ] && command -v apt-get >/dev/null; then
  echo "docker: installing debootstrap"
  $SUDO apt-get update -qq >/dev/null 2>&1 || true
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends debootstrap >/dev/null \
    || echo "docker: could not install debootstrap (run as root, or install it yourself)" >&2
fi
docker info >/dev/null 2>&1 && { echo "docker: engine answering"; exit 0; }
if ! command -v dockerd >/dev/null && ! [ -x /usr/sbin/dockerd ]; then
  command -v apt-get >/dev/null || { echo "error: no Docker engine and no apt-get: install Docker and start it" >&2; exit 1; }
  echo "docker: installing docker.io (Debian's engine)"
  $SUDO apt-get update -qq >/dev/null 2>&1 || true
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends docker.io >/dev/null \
    || { echo "error: could not install docker.io (run as root, or install Docker yourself)" >&2; exit 1; }
fi
dockerd_bin=$(command -v dockerd || echo /usr/sbin/dockerd)
echo "docker: starting $dockerd_bin (log /var/log/qmind-dockerd.log)"
$SUDO sh -c "nohup $dockerd_bin >/var/log/qmind-dockerd.log 2>&1 &" \
  || { echo "error: could not start dockerd (run as root, or start it yourself)" >&2; exit 1; }
for _ in $(seq 60); do
  docker info >/dev/null 2>&1 && { echo "docker: engine answering"; exit 0; }
  sleep 1
done
echo "error: dockerd did not answer within 60 s; see /var/log/qmind-dockerd.log" >&2
exit 1
