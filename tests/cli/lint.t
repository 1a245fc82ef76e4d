#!/bin/sh
# lint.t: make lint's checkers fail on what they are for, and pass the tree: luacheck with the
# project's .luacheckrc (a global an environment lacks, an unused local), core/tools/cstyle.sh
# (a header, a prefix, a prototype or extern in a .c file) and core/tools/floors.sh (C files
# that use each other). The bad files live in a temporary directory, never in the tree.
. "$(dirname "$0")/tap.sh"
top=$(cd "$(dirname "$0")/../.." && pwd)
build=${MCPLINK_BUILD:?}
command -v luacheck >/dev/null || { echo "Bail out! luacheck is missing (make deps installs lua-check)"; exit 1; }
command -v cc >/dev/null || { echo "Bail out! cc is missing"; exit 1; }
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT

# ---- luacheck: each environment's globals ---------------------------------------------
mkdir -p "$tmp/lua/ops" "$tmp/policies/tenants" "$tmp/tests/scenarios"
cp "$top/.luacheckrc" "$tmp/"
lc() { (cd "$tmp" && luacheck --formatter plain "$@") > "$tmp/out" 2>&1; }
cat > "$tmp/lua/ops/fine.lua" <<'LUA'
-- ops/fine: engine Lua that uses what engine Lua has.
local json = require "json"
local M = {}
function M.handler(ctx, args) return json.encode({ n = #args, t = os.time(), f = load("return 1") }) end
return M
LUA
lc lua/ops/fine.lua; ok $? "engine Lua: require, load, os.time and a handler's (ctx, args) pass"
printf -- '-- x\n-- y\nreturn io.open("/etc/passwd")\n' > "$tmp/lua/ops/io.lua"
lc lua/ops/io.lua; check_not "engine Lua has no io" test $? = 0
check "named" grep -q "lua/ops/io.lua:3:8: (W113) accessing undefined variable 'io'" "$tmp/out"
printf -- '-- x\n-- y\nlocal unused = 1\nreturn {}\n' > "$tmp/lua/ops/unused.lua"
lc lua/ops/unused.lua; check_not "an unused local is a finding" test $? = 0
check "named" grep -q "(W211) unused variable 'unused'" "$tmp/out"
printf -- '-- x\n-- y\ncounter = 1\nreturn {}\n' > "$tmp/lua/ops/global.lua"
lc lua/ops/global.lua; check_not "engine Lua sets no globals" test $? = 0
cat > "$tmp/policies/tenants/acme.lua" <<'LUA'
-- acme: a policy that uses what the sandbox has.
LIMIT = 3
return { url = function(req)
  if net.in_cidr(req.host, "10.0.0.0/8") or #req.host > LIMIT then return default.url(req) end
  return { allow = string.find(req.host, "%.example$") ~= nil }
end }
LUA
lc policies/tenants/acme.lua; ok $? "a policy: net, default, string and a global defined while it loads"
printf -- '-- x\n-- y\nreturn { url = function(req) return require("http").get(req.url) end }\n' > "$tmp/policies/tenants/req.lua"
lc policies/tenants/req.lua; check_not "a policy has no require" test $? = 0
check "named" grep -q "accessing undefined variable 'require'" "$tmp/out"
printf -- '-- x\n-- y\nreturn { url = function(req) return { allow = net.lookup(req.host) } end }\n' > "$tmp/policies/tenants/lookup.lua"
lc policies/tenants/lookup.lua; check_not "nor net helpers it does not have" test $? = 0
check "named" grep -q "accessing undefined field 'lookup' of global 'net'" "$tmp/out"
printf -- '-- x\n-- y\nlocal r = mcplink.must("engine.info", {})\nok(r.version, "a version")\ndone_testing()\n' > "$tmp/tests/scenarios/fine.lua"
lc tests/scenarios/fine.lua; ok $? "a scenario: mcplink and the TAP helpers"
printf -- '-- x\n-- y\nos.execute("true")\n' > "$tmp/tests/scenarios/os.lua"
lc tests/scenarios/os.lua; check_not "a scenario has no os.execute" test $? = 0

# ---- cstyle.sh ------------------------------------------------------------------------
mkdir -p "$tmp/core/cli"
cs() { sh "$top/core/tools/cstyle.sh" "$@" > "$tmp/out" 2>&1; }
cat > "$tmp/core/widget.c" <<'C'
/* widget.c: a well-formed file: its header, its prefix, and statics.
 * Nothing else is checked here. */
#include "widget.h"
static int helper(int x);
struct widget { int n; };
typedef int widget_id;
const int widget_limit = 3;
int widget_count(const struct widget *w) { return helper(w->n); }
static int helper(int x) { return x + 1; }
C
cs "$tmp/core/widget.c"; ok $? "cstyle: a well-formed file passes"
sed 's|^/\* widget.c:|/* widgets:|' "$tmp/core/widget.c" > "$tmp/core/w2.c" && mv "$tmp/core/w2.c" "$tmp/core/widget.c"
cs "$tmp/core/widget.c"; check_not "a header that does not name its file fails" test $? = 0
check "saying so" grep -q 'widget.c:1: the file opens with a two-line header comment' "$tmp/out"
printf '/* widget.c: a header\n * on three\n * lines. */\nint widget_x(void) { return 0; }\n' > "$tmp/core/widget.c"
cs "$tmp/core/widget.c"; check_not "a three-line header fails" test $? = 0
check "saying so" grep -q 'widget.c:2: the header comment ends on its second line' "$tmp/out"
printf '/* widget.c: a file with a stranger.\n * x */\nint gadget_run(void) { return 0; }\nint gadget_n = 1;\n' > "$tmp/core/widget.c"
cs "$tmp/core/widget.c"; check_not "a function without the file's prefix fails" test $? = 0
check "naming it" grep -q 'widget.c:3: non-static function gadget_run does not use the file.s prefix (widget_)' "$tmp/out"
check "and the object" grep -q 'widget.c:4: non-static object gadget_n does not use' "$tmp/out"
printf '/* widget.c: a file that declares.\n * x */\nint widget_y(int a,\n             int b);\nextern int widget_z;\n' > "$tmp/core/widget.c"
cs "$tmp/core/widget.c"; check_not "a prototype in a .c file fails" test $? = 0
check "naming it" grep -q 'widget.c:3: prototype of widget_y in a .c file' "$tmp/out"
check "and the extern" grep -q 'widget.c:5: extern declaration in a .c file' "$tmp/out"
printf '/* bind_widget.c: a binding.\n * x */\nint luaopen_mcpl_widget(void *L) { return 0; }\nint widget_engine_init(void) { return 0; }\n' > "$tmp/core/bind_widget.c"
cs "$tmp/core/bind_widget.c"; ok $? "a binding uses luaopen_mcpl_<area> and <area>_"
printf '/* widget.h: no header comment below */\n#define X 1\n' > "$tmp/core/widget.h"
cs "$tmp/core/widget.h"; check_not "a .h without its two-line header fails" test $? = 0
printf '/* repl.c: not main.c.\n * x */\nint main(void) { return 0; }\n' > "$tmp/core/cli/repl.c"
cs "$tmp/core/cli/repl.c"; check_not "only cli/main.c has main" test $? = 0
(cd "$top" && sh core/tools/cstyle.sh) > "$tmp/out" 2>&1; ok $? "the tree passes cstyle"
[ -s "$tmp/out" ] && sed 's/^/#   /' "$tmp/out"

# ---- floors.sh ------------------------------------------------------------------------
mkdir -p "$tmp/fl"
printf 'int up(void);\nint down(void) { return 1; }\nint low(void) { return up(); }\n' > "$tmp/fl/low.c"
printf 'int down(void);\nint up(void) { return down(); }\n' > "$tmp/fl/high.c"
printf 'int up(void);\nint top(void) { return up(); }\n' > "$tmp/fl/top.c"
(cd "$tmp/fl" && cc -c low.c high.c top.c) || { echo "Bail out! cannot compile the floors fixtures"; exit 1; }
sh "$top/core/tools/floors.sh" "$tmp/fl/high.c" > "$tmp/out" 2>&1; check_not "floors.sh refuses what is not an object" test $? = 0
sh "$top/core/tools/floors.sh" "$tmp/fl/low.o" "$tmp/fl/high.o" "$tmp/fl/top.o" > "$tmp/out" 2>&1
check_not "two C files that use each other fail floors.sh" test $? = 0
check "naming both and the symbols" grep -q "low.o -> .*high.o: up" "$tmp/out"
check "and the way back" grep -q "high.o -> .*low.o: down" "$tmp/out"
check_not "a file above them is not part of it" grep -q "top.o ->" "$tmp/out"
printf 'int up(void) { return 2; }\n' > "$tmp/fl/high.c"
(cd "$tmp/fl" && cc -c high.c)
sh "$top/core/tools/floors.sh" "$tmp/fl/low.o" "$tmp/fl/high.o" "$tmp/fl/top.o" > "$tmp/out" 2>&1
ok $? "floors that only look down pass"
sh "$top/core/tools/floors.sh" "$build"/obj/*.o "$build"/obj/cli/*.o > "$tmp/out" 2>&1
ok $? "the engine's C files are floors"
[ -s "$tmp/out" ] && sed 's/^/#   /' "$tmp/out"
done_testing
