#!/usr/bin/env bash
# Installs everything crm-sync needs on a fresh Debian/Node 20 machine, then builds the workspace.
# Safe to run again: each step is skipped when already done.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v pnpm >/dev/null 2>&1; then
  echo "setup: installing pnpm 12"
  npm i -g pnpm@12 >/dev/null
fi

# redis-server is only needed by the distributed (Redis + BullMQ) tests; the daemon's default store is embedded SQLite.
if [ "${CRM_SYNC_SKIP_REDIS:-}" != "1" ] && ! command -v redis-server >/dev/null 2>&1; then
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = "0" ]; then
    echo "setup: installing redis-server (for the scale-out tests)"
    apt-get update -q >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q redis-server >/dev/null
  else
    echo "setup: redis-server not found and cannot apt-get it; the Redis tests will fail" >&2
  fi
fi

# better-sqlite3 compiles from source against Node's own headers.
if [ -f pnpm-lock.yaml ]; then
  npm_config_nodedir="${npm_config_nodedir:-/usr}" pnpm install --frozen-lockfile
else
  npm_config_nodedir="${npm_config_nodedir:-/usr}" pnpm install
fi
pnpm build
