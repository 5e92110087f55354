#!/usr/bin/env bash
# Installs everything crm-sync needs on a fresh Debian/Node 20 machine, then builds the workspace.
# Safe to run again: each step is skipped when already done.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v pnpm >/dev/null 2>&1; then
  echo "setup: installing pnpm 12"
  npm i -g pnpm@12 >/dev/null
fi

# Debian packages the tests use: redis-server (the scale-out tests; the daemon's default store is embedded SQLite),
# openssl (a self-signed certificate for the TLS test), e2fsprogs (mkfs.ext4 for the disk-fault test).
missing=()
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
command -v mkfs.ext4 >/dev/null 2>&1 || [ -x /usr/sbin/mkfs.ext4 ] || missing+=(e2fsprogs)
if [ "${CRM_SYNC_SKIP_APT:-}" != "1" ] && [ ${#missing[@]} -gt 0 ]; then
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = "0" ]; then
    echo "setup: installing ${missing[*]} (used by the tests)"
    apt-get update -q >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >/dev/null
  else
    echo "setup: ${missing[*]} not found and cannot apt-get it; the tests that need it will fail or skip" >&2
  fi
fi

# better-sqlite3 compiles from source against Node's own headers.
if [ -f pnpm-lock.yaml ]; then
  npm_config_nodedir="${npm_config_nodedir:-/usr}" pnpm install --frozen-lockfile
else
  npm_config_nodedir="${npm_config_nodedir:-/usr}" pnpm install
fi
pnpm build
