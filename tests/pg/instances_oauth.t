#!/bin/sh
# tests/pg/instances_oauth.t: OAuth with three engine processes on one PostgreSQL database, against
# a real authorization server (tests/fixtures/oauth): a flow begun on one instance completes on
# another; many calls on several instances that find the user's token expired at once cause exactly
# one refresh grant; a refresher killed mid-request (its lease left behind) is taken over by another
# instance once the lease expires, and nothing is lost; a disconnect on one instance makes the next
# call on every other one user_not_authenticated.
set -u
. "$(dirname "$0")/../cli/fixture_lib.sh"
. "$top/tests/pg/instances_lib.sh"
export NODE_EXTRA_CA_CERTS=$FIXTURE_CERTS/ca.pem
fxline=$(sh "$fx/oauth/start.sh") || { echo "Bail out! could not start the OAuth fixture"; exit 1; }
fx_pids="$fx_pids $(j "$fxline" o.pid)"
URL=$(j "$fxline" o.url); CTL=$(j "$fxline" o.control)
REDIRECT=https://app.example.test/oauth/callback
probe() { curl -s --cacert "$FIXTURE_CERTS/ca.pem" -H 'content-type: application/json' "$@"; }
follow() { "$node" "$fx/oauth/follow.mjs" --url "$1" --user "$2"; }
stats() { probe "$CTL/stats"; }
start_inst() { inst_start "$1" --oauth-redirect-uri "$REDIRECT"; }
start_inst 1; start_inst 2; start_inst 3
S=system; ANN=acme/ann; AL=acme/alice

op 1 $S settings.set '{"allow_private_urls":true}' >/dev/null
op 1 $S tenant.create '{"name":"acme"}' >/dev/null
op 1 $S user.create '{"tenant":"acme","name":"ann","role":"admin"}' >/dev/null
op 1 $S user.create '{"tenant":"acme","name":"alice","role":"member"}' >/dev/null
op 1 $ANN server.create '{"name":"fx"}' >/dev/null
op 1 $ANN server.update "{\"id\":\"fx\",\"url\":\"$URL\",\"auth_type\":\"oauth\"}" >/dev/null
# connect U BEGIN-INSTANCE COMPLETE-INSTANCE: the flow, begun on one instance, completed on another
connect() {
  b=$(op "$2" "acme/$1" oauth.begin '{"server":"fx"}')
  cb=$(follow "$(j "$(body "$b")" o.authorization_url)" "$1")
  op "$3" "acme/$1" oauth.complete "{\"callback_url\":\"$cb\"}"
}
r=$(connect ann 1 2)
is "$(j "$(body "$r")" o.connected)" true "ann's flow begun on instance 1 completes on instance 2"
r=$(op 3 $ANN server.refresh '{"id":"fx"}')
is "$(j "$(body "$r")" o.ok)" true "instance 3 discovers with ann's token"
op 1 $ANN tool.enable '{"server":"fx"}' >/dev/null
r=$(connect alice 2 3)
is "$(j "$(body "$r")" o.connected)" true "alice connects (begun on 2, completed on 3)"
r=$(op 1 $AL assistant.create '{"name":"mine"}'); asst=$(j "$(body "$r")" o.id)
op 1 $AL assistant.attach "{\"assistant\":\"$asst\",\"server\":\"fx\"}" >/dev/null
call() { op "$1" $AL tool.call "{\"assistant\":\"$asst\",\"tool\":\"fx__whoami\"}"; }
for i in 1 2 3; do
  r=$(call $i)
  is "$(j "$(body "$r")" o.structuredContent.account)" alice "instance $i calls as alice with her token"
done

# expire_soon: alice's next token lives 2 s; wait until it has expired
expire_soon() {
  probe -d '{"access_ttl":2}' "$CTL/mode" >/dev/null
  op 1 $AL oauth.refresh '{"server":"fx","force":true}' >/dev/null
  probe -d '{"access_ttl":3600}' "$CTL/mode" >/dev/null
  w=0; while [ $w -lt 50 ] && [ "$(j "$(body "$(op 2 $AL oauth.status '{"server":"fx"}')")" o.expired)" != true ]; do
    sleep 0.1; w=$((w + 1)); done
}

# ---- twelve calls on three instances find the token expired at once: one refresh grant ----------
expire_soon
probe -d '{}' "$CTL/reset-stats" >/dev/null
ids=""
for k in 1 2 3 4; do for i in 1 2 3; do send $i $AL tool.call "{\"assistant\":\"$asst\",\"tool\":\"fx__whoami\"}"; ids="$ids $i:$ID"; done; done
okc=0
for x in $ids; do
  r=$(result "${x%%:*}" "${x#*:}")
  [ "$(j "$(body "$r")" o.structuredContent.account)" = alice ] && okc=$((okc + 1))
done
is "$okc" 12 "all twelve concurrent calls on three instances answered as alice"
st=$(stats)
is "$(j "$st" o.refresh_grants)" 1 "exactly one refresh grant at the authorization server"
is "$(j "$st" o.refresh_failures)" 0 "no instance used the rotated refresh token again"

# ---- a refresher killed mid-request: its lease expires, another instance takes over -------------
expire_soon
probe -d '{}' "$CTL/reset-stats" >/dev/null
probe -d '{"token_stall_ms":5000}' "$CTL/mode" >/dev/null
send 1 $AL tool.call "{\"assistant\":\"$asst\",\"tool\":\"fx__whoami\"}"
w=0; while [ $w -lt 200 ] && [ "$(j "$(stats)" o.token_stalled)" != 1 ]; do sleep 0.05; w=$((w + 1)); done
is "$(j "$(stats)" o.token_stalled)" 1 "instance 1 holds the refresh lease and waits at the token endpoint"
inst_kill 1
probe -d '{"token_stall_ms":0}' "$CTL/mode" >/dev/null
t0=$(date +%s)
r=$(call 2); t1=$(date +%s)
is "$(j "$(body "$r")" o.structuredContent.account)" alice "instance 2's call succeeds: it took the refresh over when the lease expired"
echo "# instance 2 waited $((t1 - t0)) s for the dead holder's lease"
ok $([ $((t1 - t0)) -ge 10 ] && echo 0 || echo 1) "not before the lease had expired (a lease is a row with an expiry)"
st=$(stats)
is "$(j "$st" o.token_dropped)" 1 "the killed instance's request never reached the grant"
is "$(j "$st" o.refresh_grants)" 1 "one refresh grant, by instance 2"
is "$(j "$st" o.refresh_failures)" 0 "the refresh token was not lost"
r=$(call 3); is "$(j "$(body "$r")" o.structuredContent.account)" alice "instance 3 uses the new token"

# ---- disconnect on one instance: the next call on every other is user_not_authenticated -------
start_inst 1
call 1 >/dev/null; call 2 >/dev/null
r=$(op 3 $AL oauth.disconnect '{"server":"fx"}')
is "$(code "$r")" ok "alice disconnects on instance 3"
for i in 1 2 3; do
  r=$(call $i); is "$(code "$r")" user_not_authenticated "instance $i's next call: user_not_authenticated"
done
inst_stop 1; inst_stop 2; inst_stop 3
done_tap
