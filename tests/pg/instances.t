#!/bin/sh
# tests/pg/instances.t: three engine processes on one PostgreSQL database, as a platform runs
# several instances behind a load balancer. What an admin saves on one is visible and enforced on
# the others at once (servers, credentials, enablement, attachments, classifications, approvals,
# tenant settings); capability refresh of one server from two instances at once; key rotation on
# one instance; legacy MCP sessions per instance; kill -9 of an instance in the middle of writes;
# instances refusing a database another release upgraded.
set -u
. "$(dirname "$0")/../cli/fixture_lib.sh"
. "$top/tests/pg/instances_lib.sh"
KEY="sk-multi-$$"
fx_start server-v2 --api-key "$KEY" --json; v2=$FX_LINE
fx_start server-v1 --api-key "$KEY" --json; v1=$FX_LINE
fx_start server-v2 --api-key "$KEY" --json --tools 1500; big=$FX_LINE
ctl=$(field "$v2" control)
inst_start 1; inst_start 2; inst_start 3
S=system; A=acme/ann; M=acme/mo

# ---- set-up on instance 1 ---------------------------------------------------------------------
op 1 $S settings.set '{"allow_private_urls":true}' >/dev/null
op 1 $S tenant.create '{"name":"acme"}' >/dev/null
op 1 $S user.create '{"tenant":"acme","name":"ann","role":"admin"}' >/dev/null
op 1 $S user.create '{"tenant":"acme","name":"mo","role":"member"}' >/dev/null
op 1 $A classification.set '{"name":"Internal","level":1}' >/dev/null
op 1 $A classification.set '{"name":"Secret","level":5}' >/dev/null
op 1 $A space.create '{"name":"Sales","classification":"Internal"}' >/dev/null
op 1 $A server.create '{"name":"v2"}' >/dev/null
r=$(op 1 $A server.update "{\"id\":\"v2\",\"url\":\"$(field "$v2" url)\",\"auth_type\":\"api_key\",\"api_key\":\"$KEY\",\"classification\":\"Internal\"}")
is "$(j "$(body "$r")" o.capabilities_status)" ok "instance 1 saves a server; discovery stores its capabilities"
r=$(op 2 $M server.get '{"id":"v2"}')
is "$(j "$(body "$r")" '[o.url_set, o.api_key_set, o.capabilities_status].join()')" "true,true,ok" \
  "instance 2 sees the server, its credentials and capabilities at once"
op 1 $A tool.enable '{"server":"v2"}' >/dev/null
r=$(op 1 $A assistant.create '{"name":"bot","space":"Sales"}'); asst=$(j "$(body "$r")" o.id)
op 1 $A assistant.attach "{\"assistant\":\"$asst\",\"server\":\"v2\"}" >/dev/null
r=$(op 3 $M assistant.tools "{\"assistant\":\"$asst\"}")
tool=$(j "$(body "$r")" 'o.tools.find(t => t.tool === "echo").name')
like "$tool" echo "instance 3 lists the assistant's tools"
call() { op "$1" $M tool.call "{\"assistant\":\"$asst\",\"tool\":\"$tool\",\"arguments\":{\"text\":\"hi-$1\"}}"; }
# warm every instance: connections, statements, the read cache, MCP sessions
for i in 1 2 3; do call $i >/dev/null; call $i >/dev/null; done
r=$(call 2); is "$(code "$r")" ok "instance 2 calls the tool"
like "$(body "$r")" "hi-2" "and gets the server's answer"

# ---- every admin change on instance 1 is enforced on 2 and 3 by their very next call ----------
op 1 $A tool.disable '{"server":"v2"}' >/dev/null
r=$(call 2); is "$(code "$r")" forbidden "disabled on instance 1: instance 2's next call is refused"
r=$(call 3); like "$(body "$r")" "not enabled" "and instance 3's, saying why"
op 1 $A tool.enable '{"server":"v2"}' >/dev/null
r=$(call 3); is "$(code "$r")" ok "enabled again on instance 1: instance 3 calls at once"

op 1 $A server.update '{"id":"v2","api_key":"sk-wrong"}' >/dev/null
r=$(call 2); is "$(code "$r")" unauthorized "a wrong key saved on instance 1 is used by instance 2 at once"
op 1 $A server.update "{\"id\":\"v2\",\"api_key\":\"$KEY\"}" >/dev/null
r=$(call 2); is "$(code "$r")" ok "the right key again: instance 2 calls"

op 1 $A assistant.detach "{\"assistant\":\"$asst\",\"server\":\"v2\"}" >/dev/null
r=$(call 3); is "$(code "$r")" not_found "detached on instance 1: instance 3 no longer has the tool"
op 1 $A assistant.attach "{\"assistant\":\"$asst\",\"server\":\"v2\"}" >/dev/null
r=$(call 3); is "$(code "$r")" ok "attached again: instance 3 calls"

op 1 $A space.update '{"id":"Sales","classification":"Secret"}' >/dev/null
r=$(call 2); like "$(body "$r")" "below space" "the space now needs Secret: instance 2 refuses the Internal server"
op 1 $A server.update '{"id":"v2","classification":"Secret"}' >/dev/null
r=$(call 2); is "$(code "$r")" ok "the server classified Secret on instance 1: instance 2 calls"
op 1 $A server.update '{"id":"v2","classification":"Internal"}' >/dev/null
op 1 $A space.update '{"id":"Sales","classification":"Internal"}' >/dev/null

fx_probe --method POST --data '{"name":"echo","description":"Echoes text back (changed upstream)."}' "$ctl/tool" >/dev/null
op 1 $A server.refresh '{"id":"v2"}' >/dev/null
r=$(call 3); like "$(body "$r")" "approval" "a changed definition refreshed on instance 1: instance 3 refuses until approved"
op 1 $A tool.approve '{"server":"v2","tool":"echo"}' >/dev/null
r=$(call 3); is "$(code "$r")" ok "approved on instance 1: instance 3 calls"

op 1 $S tenant.update '{"id":"acme","settings":{"mcp_enabled":false}}' >/dev/null
r=$(call 2); like "$(body "$r")" "module is not enabled" "the tenant's MCP module switched off on instance 1: instance 2 refuses"
op 1 $S tenant.update '{"id":"acme","settings":{"mcp_enabled":true}}' >/dev/null
r=$(call 2); is "$(code "$r")" ok "switched on again: instance 2 calls"

op 1 $S settings.set '{"allow_private_urls":false}' >/dev/null
r=$(call 3); is "$(code "$r")" url_blocked "a system setting changed on instance 1 applies on instance 3 at once"
op 1 $S settings.set '{"allow_private_urls":true}' >/dev/null
r=$(call 3); is "$(code "$r")" ok "and changed back"

# ---- capability refresh of one server from two instances at once ---------------------------------
# a server with 1,500 tools and the fixture's own gains 50 upstream; two instances refresh it at the
# same moment
op 1 $A server.create '{"name":"big"}' >/dev/null
r=$(op 1 $A server.update "{\"id\":\"big\",\"url\":\"$(field "$big" url)\",\"auth_type\":\"api_key\",\"api_key\":\"$KEY\"}")
is "$(j "$(body "$r")" o.capabilities_status)" ok "a server with 1,500 tools and the fixture's own discovered"
bctl=$(field "$big" control)
# a server's stored capabilities of a kind: one list (lua/capabilities.lua); how many items
items() { sql "SELECT COALESCE(sum(json_array_length(items::json)), 0) FROM capability_lists WHERE server_id = '$1'${2:+ AND kind = '$2'}"; }
bigid=$(sql "SELECT id FROM servers WHERE name = 'big'")
base=$(items "$bigid" tool)
ok $([ "$base" -gt 1500 ]; echo $?) "all $base tools stored"
want=$((base + 50))
k=0; while [ $k -lt 50 ]; do k=$((k + 1))
  curl -s --cacert "$FIXTURE_CERTS/ca.pem" -H 'content-type: application/json' -d "{\"name\":\"new_$k\",\"description\":\"New.\",\"inputSchema\":{\"type\":\"object\"}}" "$bctl/tool" >/dev/null
done
send 1 $A server.refresh '{"id":"big"}'; ra=$ID
send 2 $A server.refresh '{"id":"big"}'; rb=$ID
r1=$(result 1 $ra); r2=$(result 2 $rb)
is "$(j "$(body "$r1")" o.ok),$(j "$(body "$r2")" o.ok)" "true,true" "both refreshes succeed (neither meets the other's rows as a conflict)"
added=$(( $(j "$(body "$r1")" 'o.diff.tools.added.length') + $(j "$(body "$r2")" 'o.diff.tools.added.length') ))
is "$added" 50 "each new tool is added by exactly one of them (one result, consistent answers)"
is "$(sql "SELECT count(*) - count(DISTINCT i->>'name') FROM capability_lists l, json_array_elements(l.items::json) i WHERE l.server_id = '$bigid' AND l.kind = 'tool'")" 0 "no tool stored twice"
is "$(sql "SELECT count(*) FROM capability_lists WHERE server_id = '$bigid' AND kind = 'tool'")" 1 "in one list"
is "$(items "$bigid" tool)" "$want" "none lost: $want tools"
r=$(op 3 $M server.capabilities '{"id":"big"}')
is "$(body "$r" | grep -o '"name":"new_[0-9]*"' | sort -u | wc -l)" 50 "instance 3 sees them"

# ---- key rotation on one instance: the others read the new key file, no call fails -------------
k1=$(j "$(body "$(op 2 $S keys.list)")" 'o.items.find(k => k.current).kid')
r=$(op 1 $S keys.rotate '{}'); k2=$(j "$(body "$r")" o.kid)
like "$(body "$r")" "\"previous\":\"$k1\"" "instance 1 rotates the key (the previous one was $k1)"
is "$(sql "SELECT count(*) FROM servers WHERE api_key LIKE 'v1:$k2:%'")" 2 "the stored keys are sealed with the new key"
r=$(call 2); is "$(code "$r")" ok "instance 2 calls with the re-sealed key at once (it loads the new key)"
r=$(call 3); is "$(code "$r")" ok "so does instance 3"
op 3 $A server.update "{\"id\":\"v2\",\"api_key\":\"$KEY\"}" >/dev/null
r=$(call 2); is "$(code "$r")" ok "a key written on instance 3 after the rotation is read by instance 2"
is "$(j "$(body "$(op 3 $S keys.list)")" 'o.items.find(k => k.current).kid')" "$k2" "instance 3 lists the new key as current"

# ---- legacy MCP sessions stay per instance (no affinity needed) ----------------------------------
op 1 $A server.create '{"name":"v1"}' >/dev/null
op 1 $A server.update "{\"id\":\"v1\",\"url\":\"$(field "$v1" url)\",\"auth_type\":\"api_key\",\"api_key\":\"$KEY\",\"classification\":\"Internal\"}" >/dev/null
op 1 $A tool.enable '{"server":"v1"}' >/dev/null
op 1 $A assistant.attach "{\"assistant\":\"$asst\",\"server\":\"v1\"}" >/dev/null
tool1=$(j "$(body "$(op 2 $M assistant.tools "{\"assistant\":\"$asst\"}")")" 'o.tools.find(t => t.tool === "echo" && t.server.name === "v1").name')
okc=0
for i in 1 2 3 1 2 3; do
  r=$(op $i $M tool.call "{\"assistant\":\"$asst\",\"tool\":\"$tool1\",\"arguments\":{\"text\":\"legacy\"}}")
  [ "$(code "$r")" = ok ] && okc=$((okc + 1))
done
is "$okc" 6 "each instance calls the session-based server, round robin"
nsess=$(fx_probe "$(field "$v1" control)/sessions" | fx_body_count sessions)
is "$nsess" 3 "with one session of its own per instance"

# ---- kill -9 of an instance in the middle of writes ----------------------------------------------
# instance 1 creates servers (each acknowledged when its op returns) and, meanwhile, discovers a
# server with 1,500 tools in one transaction; it is killed while both are under way
op 1 $A server.create '{"name":"big2"}' >/dev/null
send 1 $A server.update "{\"id\":\"big2\",\"url\":\"$(field "$big" url)\",\"auth_type\":\"api_key\",\"api_key\":\"$KEY\"}"
i=0; while [ $i -lt 200 ]; do i=$((i + 1)); send 1 $A server.create "{\"name\":\"w-$i\"}"; done
inst_kill 1
acked=$(grep -c '^c[0-9]* ok .*"name":"w-' "$tmp/out1")
present=$(sql "SELECT count(*) FROM servers WHERE name LIKE 'w-%'")
missing=0
for name in $(sed -n 's/^c[0-9]* ok .*"name":"\(w-[0-9]*\)".*/\1/p' "$tmp/out1"); do
  [ "$(sql "SELECT count(*) FROM servers WHERE name = '$name'")" = 1 ] || missing=$((missing + 1))
done
is "$missing" 0 "every acknowledged write of the killed instance is there ($acked acknowledged, $present present)"
bigid=$(sql "SELECT id FROM servers WHERE name = 'big2'")
ncap=$(items "$bigid")
# the others carry on, including transactions (the killed one's lock went with its connection)
r=$(op 2 $A server.create '{"name":"after-kill"}'); is "$(code "$r")" ok "instance 2 writes after the kill"
r=$(op 3 $A classification.set '{"name":"Public","level":0}'); is "$(code "$r")" ok "instance 3 runs a transaction"
r=$(call 2); is "$(code "$r")" ok "and calls tools"
r=$(op 3 $A server.refresh '{"id":"big2"}')
full=$(items "$bigid")
is "$(items "$bigid" tool)" "$want" \
  "instance 3 completes the discovery the killed instance left ($want tools)"
case $ncap in 0|"$full") ok 0 "the killed instance's discovery transaction left all of its $full items or none ($ncap)";;
  *) ok 1 "a discovery transaction half written: $ncap of $full items";; esac

# ---- an instance whose database a newer release upgraded refuses, and says why ------------------
# (what another instance's migration does to the recorded version; this release's code stays the same)
v=$(sql "SELECT schema_version FROM mcplink_meta")
sql "UPDATE mcplink_meta SET schema_version = $((v + 1))" >/dev/null
r=$(call 2); is "$(code "$r")" unavailable "after another instance's upgrade, instance 2 refuses a call"
like "$(body "$r")" "newer than this mcplink supports" "saying the database is newer than it supports"
r=$(op 3 $A classification.set '{"name":"Late","level":9}')
is "$(code "$r")" unavailable "and instance 3 refuses a write"
is "$(sql "SELECT count(*) FROM classifications WHERE name = 'Late'")" 0 "which wrote nothing"
sql "UPDATE mcplink_meta SET schema_version = $v" >/dev/null
r=$(call 2); is "$(code "$r")" ok "at their own version again, the instances work"
inst_stop 2; inst_stop 3
done_tap
