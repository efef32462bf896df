#!/usr/bin/env bash
# System packages the tests need beyond Python: a PostgreSQL server (Meltano's production state
# store is tested for real). Installs it from Debian's packages when missing and we are root.
set -euo pipefail
if command -v initdb >/dev/null 2>&1 || compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null; then
  exit 0
fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  echo "Installing the PostgreSQL server (Debian package 'postgresql') for the state-store test..."
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
  exit 0
fi
echo "PostgreSQL server binaries (initdb, pg_ctl) are missing; install the 'postgresql' package." >&2
exit 1
