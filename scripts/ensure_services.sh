#!/usr/bin/env bash
# Start the local services the test suite talks to, when they are not already running:
# Redis on 127.0.0.1:6379 and PostgreSQL on 127.0.0.1:5432 (database "test", trust auth).
# Idempotent; prints what it did. Needs root (or sudo) only to start or install what is missing.
set -u
SUDO=""
[ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null && SUDO="sudo -n"

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

if port_open 6379; then
  echo "redis: already running on 6379"
else
  if ! command -v redis-server >/dev/null; then
    echo "redis: installing redis-server"; $SUDO apt-get install -y -qq redis-server >/dev/null
  fi
  echo "redis: starting on 127.0.0.1:6379"
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no
  for _ in $(seq 50); do port_open 6379 && break; sleep 0.1; done
fi

if port_open 5432; then
  echo "postgres: already running on 5432"
else
  if [ -d /etc/postgresql ] && command -v pg_ctlcluster >/dev/null; then
    echo "postgres: starting the local cluster"
    $SUDO pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | sort -V | tail -1)" main start || true
    for _ in $(seq 100); do port_open 5432 && break; sleep 0.1; done
  else
    echo "postgres: not installed; install PostgreSQL (apt-get install postgresql) or set QMIND_TEST_POSTGRES_URL" >&2
  fi
fi
if port_open 5432 && command -v psql >/dev/null; then
  if ! psql -h 127.0.0.1 -U postgres -d test -c "select 1" >/dev/null 2>&1; then
    $SUDO -u postgres createdb test 2>/dev/null || createdb -h 127.0.0.1 -U postgres test 2>/dev/null || true
  fi
fi
port_open 6379 && port_open 5432
