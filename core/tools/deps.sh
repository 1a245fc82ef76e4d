#!/bin/sh
# mcplink dependency check: names every missing Debian package.
# Usage: deps.sh check | install
set -u
PKGS="liblua5.4-dev libcurl4-openssl-dev lua-cjson-dev libssl-dev libsqlite3-dev libedit-dev libcmocka-dev pkg-config nodejs openssl tmux clang-14 chromium curl"
# PostgreSQL backend: build: libpq-dev (the engine links libpq, pkg-config libpq);
# test: postgresql (initdb/pg_ctl for the tests' throwaway cluster, tests/tools/pg.sh)
PKGS_PG_BUILD="libpq-dev"
PKGS_PG_TEST="postgresql"
PKGS="$PKGS $PKGS_PG_BUILD $PKGS_PG_TEST"
missing=""
for p in $PKGS; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing="$missing $p"
done
case "${1:-check}" in
  check)
    if [ -n "$missing" ]; then
      echo "mcplink: missing build dependencies:$missing" >&2
      echo "mcplink: install them with: make deps   (or: sudo apt-get install -y$missing)" >&2
      exit 1
    fi ;;
  install)
    if [ -z "$missing" ]; then echo "mcplink: all build dependencies are installed"; exit 0; fi
    if [ "$(id -u)" = 0 ]; then
      apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing
    else
      echo "mcplink: run as root: apt-get update && apt-get install -y$missing"
      exit 1
    fi ;;
esac
