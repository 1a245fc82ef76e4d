# tests/pg/instances_lib.sh: shared set-up of the multi-instance tests (sourced after
# tests/cli/fixture_lib.sh): engine instances (tests/tools/instance.c) on one PostgreSQL database
# with one key file, fed through FIFOs; TAP helpers; JSON reading; everything stopped on exit.
[ -n "${MCPLINK_TEST_PG_DIR:-}" ] || { echo "Bail out! no PostgreSQL test cluster (tests/run.sh starts one)"; exit 1; }
DRV=${MCPLINK_BUILD:-$top/build}/tools/mcplink-instance
[ -x "$DRV" ] || { echo "Bail out! $DRV is missing (make test-run builds it)"; exit 1; }
# (the instances' input ends 7-9 are not handed on: a server started here would keep them open)
pg() { sh "$top/tests/tools/pg.sh" "$@" 7>&- 8>&- 9>&-; }
DB=${INSTANCES_DB:-$(pg newdb)} || { echo "Bail out! cannot create a database"; exit 1; }
DBNAME=$(echo "$DB" | sed 's|.*@/\([^?]*\)?.*|\1|')
KEYFILE=$tmp/shared.key
inst_pids=""
inst_cleanup() {
  for p in $inst_pids; do kill -9 "$p" 2>/dev/null; done
  [ -z "${INSTANCES_DB:-}" ] && pg dropdb "$DBNAME" >/dev/null 2>&1
  fx_cleanup
}
trap inst_cleanup EXIT

n=0; fails=0
ok() { n=$((n + 1)); if [ "$1" = 0 ]; then echo "ok $n - $2"; else echo "not ok $n - $2"; fails=$((fails + 1)); fi; }
is() { if [ "$1" = "$2" ]; then ok 0 "$3"; else ok 1 "$3"; echo "#   got:  '$1'"; echo "#   want: '$2'"; fi; }
like() { case $1 in *"$2"*) ok 0 "$3";; *) ok 1 "$3"; echo "#   got: '$(echo "$1" | cut -c1-400)'"; echo "#   want it to contain: '$2'";; esac; }
done_tap() { echo "1..$n"; [ "$fails" -eq 0 ]; exit $?; }
# j JSON EXPR: a value from a JSON document (EXPR is JavaScript on `o`)
j() { "$node" -e 'const o = JSON.parse(process.argv[1]); const v = eval(process.argv[2]); console.log(typeof v === "object" && v !== null ? JSON.stringify(v) : String(v))' "$1" "$2" 2>/dev/null || echo "(bad json)"; }

# inst_start N [DRIVER OPTIONS]: instance N (1..3) on $DB, fed through fd 6+N; waits until ready
inst_start() {
  i=$1; shift
  rm -f "$tmp/in$i"; mkfifo "$tmp/in$i"
  # the other instances' input ends are not inherited: each instance sees the end of its
  # input when this script closes it
  "$DRV" --db "$DB" --key-file "$KEYFILE" --ca-file "$FIXTURE_CERTS/ca.pem" --pool 4 \
    --policies "$top/policies" --log-file "$tmp/log$i" "$@" <"$tmp/in$i" >"$tmp/out$i" 2>"$tmp/err$i" \
    7>&- 8>&- 9>&- &
  eval "pid$i=$!"
  inst_pids="$inst_pids $!"
  eval "exec $((6 + i))>\"\$tmp/in\$i\""
  w=0
  until grep -q '^ready\|^fail' "$tmp/out$i" 2>/dev/null; do
    w=$((w + 1)); [ $w -lt 600 ] || break; sleep 0.05
  done
  grep -q '^ready' "$tmp/out$i" || { echo "Bail out! instance $i did not start: $(cat "$tmp/out$i" "$tmp/err$i")"; exit 1; }
}
# inst_kill N: SIGKILL, as a crash
inst_kill() { eval "kill -9 \$pid$1; wait \$pid$1 2>/dev/null; exec $((6 + $1))>&-"; }
# inst_stop N: ends its input, waits for it to close the engine
inst_stop() { eval "exec $((6 + $1))>&-; wait \$pid$1 2>/dev/null"; }
echo 0 >"$tmp/seq"
# send N ACTOR OP JSON: starts an op on instance N (it runs on its own thread); its id in $ID
# (counted in a file: op runs inside $(...), whose variables do not come back)
send() {
  ID=c$(( $(cat "$tmp/seq") + 1 )); echo "${ID#c}" >"$tmp/seq"
  printf '%s %s %s %s\n' "$ID" "$2" "$3" "${4:-{\}}" >&$((6 + $1))
}
# result N ID [SECONDS]: waits for an op's "CODE JSON" (default 60 s); "timeout" when none came
result() {
  w=0; lim=$(( ${3:-60} * 20 ))
  while :; do
    line=$(grep -m1 "^$2 " "$tmp/out$1" 2>/dev/null) && { echo "${line#* }"; return 0; }
    w=$((w + 1)); [ $w -lt $lim ] || { echo "timeout {}"; return 1; }
    sleep 0.05
  done
}
# op N ACTOR OP [JSON]: runs an op and prints "CODE JSON"
op() { send "$@"; result "$1" "$ID"; }
code() { echo "${1%% *}"; }
body() { echo "${1#* }"; }
# sql TEXT: a value from the shared database
sql() { pg psql -d "$DBNAME" -tA -c "$1"; }
