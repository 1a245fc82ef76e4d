#!/bin/sh
# mcplink dependency check: names every missing Debian package of the groups asked for.
# Usage: deps.sh check|install [GROUP...]   GROUP: build (the default), test, fuzz
set -u
# build: what a plain `make` needs (compiler, Lua, libcurl, OpenSSL, SQLite, libedit)
BUILD_PKGS="gcc libc6-dev make pkg-config liblua5.4-dev libcurl4-openssl-dev libssl-dev
  libsqlite3-dev libedit-dev libpq-dev"
# (libpq-dev: the PostgreSQL backend's headers. mcplink opens libcurl, libpq, libcrypto and libedit
# at run time, core/dynlib.c; these -dev packages depend on their runtime packages, libcurl4,
# libpq5, libssl3 and libedit2, so installing them installs those)
# test: what `make test` adds (unit tests, fixtures and the test CA, REPL terminal, browser, JSON in
# shell tests, luacheck for make lint)
TEST_PKGS="libcmocka-dev nodejs openssl curl tmux chromium perl lua-check"
# the Python binding and its tests (Debian's CPython 3.11: venv, offline install, pytest)
TEST_PKGS="$TEST_PKGS python3 python3-venv python3-setuptools python3-wheel python3-pytest"
# PostgreSQL: initdb/pg_ctl for the tests' throwaway cluster (tests/tools/pg.sh)
TEST_PKGS="$TEST_PKGS postgresql"
# fuzz: what `make fuzz` adds
FUZZ_PKGS="clang-14"

action=${1:-check}
[ $# -gt 0 ] && shift
[ $# -eq 0 ] && set -- build
pkgs=""
for g in "$@"; do
  case $g in
    build) pkgs="$pkgs $BUILD_PKGS" ;;
    test) pkgs="$pkgs $TEST_PKGS" ;;
    fuzz) pkgs="$pkgs $FUZZ_PKGS" ;;
    *) echo "mcplink: deps.sh: unknown group '$g' (build, test, fuzz)" >&2; exit 2 ;;
  esac
done
missing=""
for p in $pkgs; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing="$missing $p"
done
case $action in
  check)
    if [ -n "$missing" ]; then
      echo "mcplink: missing $* dependencies:$missing" >&2
      echo "mcplink: install them with: sudo apt-get install -y$missing" >&2
      echo "mcplink: (as root, make deps installs the build and test dependencies, make fuzz its own)" >&2
      exit 1
    fi ;;
  install)
    if [ -z "$missing" ]; then echo "mcplink: all $* dependencies are installed"; exit 0; fi
    if [ "$(id -u)" = 0 ]; then
      apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing
    else
      echo "mcplink: missing $* dependencies:$missing" >&2
      echo "mcplink: run as root: apt-get update && apt-get install -y$missing" >&2
      exit 1
    fi ;;
  *) echo "usage: deps.sh check|install [build|test|fuzz...]" >&2; exit 2 ;;
esac
