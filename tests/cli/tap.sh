# tests/cli/tap.sh: tiny TAP helpers for shell tests (sourced): ok, check, check_not, is.
_n=0; _fail=0
ok() { _n=$((_n+1)); if [ "$1" = 0 ]; then echo "ok $_n - $2"; else echo "not ok $_n - $2"; _fail=$((_fail+1)); fi; }
check() { desc=$1; shift; if "$@" >/dev/null 2>&1; then ok 0 "$desc"; else ok 1 "$desc"; fi; }
check_not() { desc=$1; shift; if "$@" >/dev/null 2>&1; then ok 1 "$desc"; else ok 0 "$desc"; fi; }
done_testing() { echo "1..$_n"; [ "$_fail" = 0 ]; exit $?; }
is() { if [ "$1" = "$2" ]; then ok 0 "$3"; else ok 1 "$3"; echo "#   got:  '$1'"; echo "#   want: '$2'"; fi; }
