#!/bin/sh
# tests/cli/bench_quick.t: runs `make bench-quick` (every benchmark client once, small inputs) so the
# harness never rots, and checks that every row of the report was produced. No timing assertions.
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
. "$top/tests/cli/tap.sh"
if [ ! -d "$top/tests/fixtures/node_modules/@modelcontextprotocol/sdk" ]; then
  echo "Bail out! fixtures not installed (make fixtures)"; exit 1
fi
build=${MCPLINK_BUILD:-$top/build}
case $build in "$top"/*) build=${build#"$top"/} ;; esac
tmp=$(mktemp -d "${TMPDIR:-/tmp}/bench_quick.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
timeout 600 make -s -C "$top" BUILD="$build" bench-quick >"$tmp/out" 2>"$tmp/err"
st=$?
ok $st "make bench-quick succeeds"
[ $st = 0 ] || sed 's/^/# /' "$tmp/err" | tail -30
case $build in /*) report=$build/bench/quick.md ;; *) report=$top/$build/bench/quick.md ;; esac
check "the Markdown report is written" test -s "$report"
# every line of the report was printed (make may add lines of its own)
[ -s "$report" ] && ! grep -Fxvq -f "$tmp/out" "$report"; ok $? "stdout carries the same report"
row() { # server client: a table row with numbers in it
  grep -Eq "^\| $1 \| $2 \| [0-9]" "$tmp/out"; ok $? "row: $1 / $2"
}
for c in raw engine-1t engine-1t-shared engine-8t engine-1t-pg engine-8t-pg cli_server_list cli_tool_call cli_start_server_list cli_start_call cli_exec_true cli_exec_curl_version cli_exec_curl_call cli_run sdk-v2 sdk-v1; do row https-json $c; done
for s in https-sse http-json https-legacy; do row $s raw; row $s engine-1t; done
row sdk-v2-server raw; row sdk-v2-server engine-1t; row sdk-v2-server sdk-v2
row sdk-v1-server raw; row sdk-v1-server engine-1t; row sdk-v1-server sdk-v1
for s in discover-1-page discover-pages; do row $s raw; row $s engine_first; row $s engine_refresh; row $s engine_changed; done
row discover-1-page engine-pg_first
# (a . stands for each backtick of the report's code spans)
for w in '.tool.call. 1 thread, p50 µs' '.tool.call. 8 threads, calls/s' 'discovery first, [0-9]+ tools, wall ms'; do
  grep -Eq "^\| $w \| [0-9.]+ \| [0-9.]+ \| [0-9.]+× \|$" "$tmp/out"; ok $? "PostgreSQL beside SQLite: $w"
done
for m in policy_call net_decide url_check_op dispatch_op reveal row_read; do
  grep -Eq "^\| engine_$m \| [0-9]" "$tmp/out"; ok $? "row: engine_$m"
done
grep -Eq '^\| https-json \| engine-1t \|.*\| [0-9.]+× \| [0-9.]+× \|$' "$tmp/out"
ok $? "engine rows carry ratios to the raw floor of the same run"
n=$(grep -c '^| .* | \(met\|\*\*missed\*\*\) |$' "$tmp/out")
[ "$n" -ge 8 ]; ok $? "every target of the issue is reported ($n lines)"
# issue #16's targets, each with its figure and verdict
sec=$(sed -n '/^## Targets of issue #16/,$p' "$tmp/out")
for w in '.tool.call. p50 through the C API' '8 threads ≥ 1.8×' 'discovery \+ persistence ≤ 5× raw fetch \(discover-1-page\)' \
         'discovery \+ persistence ≤ 5× raw fetch \(discover-pages\)' 'peak RSS ≤ 32 MB during discovery and refresh \(discover-1-page\)' \
         'one CLI process .mcplink server list. ≤ 4 ms' 'one CLI process .mcplink call …. ≤ 15 ms without the server' \
         '.tool.call. through one .mcplink run. process ≤ 2× raw'; do
  printf '%s\n' "$sec" | grep -Eq "^\| $w.* \| [0-9.]+.* \| (met|\*\*missed\*\*) \|$"; ok $? "issue #16 target reported: $w"
done
done_testing
