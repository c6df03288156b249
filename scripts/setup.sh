#!/usr/bin/env bash
# Installs what berth's demo and tests need on a fresh Debian machine, then the npm packages.
# Safe to run again: it installs only what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v dockerd >/dev/null || need+=(docker.io)
command -v docker-registry >/dev/null || need+=(docker-registry)
[ -x /bin/busybox ] || [ -x /usr/bin/busybox ] || need+=(busybox-static)
command -v haproxy >/dev/null || need+=(haproxy)
[ -x /usr/sbin/sshd ] || need+=(openssh-server)
command -v git >/dev/null || need+=(git)
# age and age-keygen: the secrets tests check that berth's encrypted files are age's own.
command -v age >/dev/null && command -v age-keygen >/dev/null || need+=(age)
# The PostgreSQL server: the store and lease tests start private servers (initdb into a temp
# folder, run as the package's postgres user); the package's own cluster is never used.
ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 && id postgres >/dev/null 2>&1 || need+=(postgresql)
# GNU time: the bench reads each command's peak memory from it (`npm run bench`).
[ -x /usr/bin/time ] || need+=(time)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "setup: need root to install: ${need[*]} (run with sudo)" >&2
    exit 1
  fi
  echo "setup: installing ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
# Debian's docker.io may start a system engine; berth's tests and demo run private engines and
# never touch it.

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund
fi
npm run --silent build
