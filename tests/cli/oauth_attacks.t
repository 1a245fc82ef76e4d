#!/bin/sh
# tests/cli/oauth_attacks.t: discovery and token-endpoint attacks against the OAuth flow, each
# refused with nothing stored: a resource metadata document for another server, an authorization
# server whose metadata names another issuer, no PKCE S256, a token endpoint that redirects.
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
fx=$top/tests/fixtures
BIN=${MCPLINK_BIN:-$top/build/mcplink}
export FIXTURE_CERTS=${FIXTURE_CERTS:-${MCPLINK_BUILD:-$top/build}/certs}
export FIXTURE_PARENT_PID=$$
export FIXTURE_MAX_LIFETIME_S=300
if [ ! -d "$fx/node_modules/oidc-provider" ]; then echo "Bail out! fixtures not installed (make fixtures)"; exit 1; fi
ENGINE_LOG_LEVEL=debug
. "$top/tests/cli/oauth_lib.sh"

fxline=$("$fx/oauth/start.sh" --auto-consent alice) || { echo "Bail out! could not start the OAuth fixture"; exit 1; }
pids="$(j "$fxline" o.pid)"
URL=$(j "$fxline" o.url); ISS=$(j "$fxline" o.issuer); CTL=$(j "$fxline" o.control)
setup_engine
as ann op server.update "{\"id\":\"fx\",\"url\":\"$URL\",\"auth_type\":\"oauth\"}" >/dev/null
mode() { probe -d "$1" "$CTL/mode" >/dev/null; }
authorizations() { j "$(probe "$CTL/stats")" o.authorize.length; }

mode '{"prm_resource":"https://127.0.0.1:1/other"}'
r=$(as alice op oauth.begin '{"server":"fx"}')
like "$(j "$r" o.error.message)" "not this server" "resource metadata naming another server is refused"
g=$(as ann op server.get '{"id":"fx"}')
is "$(j "$g" o.oauth.issuer)" "$ISS" "nothing was recorded on the server: the issuer discovered on save stays"
is "$(j "$g" o.oauth.discovered.resource)" "$URL" "and so does the resource"
mode '{"prm_resource":null,"issuer_mismatch":true}'
r=$(as alice op oauth.begin '{"server":"fx"}')
like "$(j "$r" o.error.message)" "names issuer" "AS metadata with another issuer is refused (RFC 8414 3.3)"
mode '{"issuer_mismatch":false,"no_pkce":true}'
r=$(as alice op oauth.begin '{"server":"fx"}')
like "$(j "$r" o.error.message)" "S256" "an AS without PKCE S256 support is refused"
is "$(authorizations)" 0 "no authorization request was ever sent"
is "$(j "$(probe "$CTL/stats")" o.registrations)" 0 "no client was registered with a refused AS"
mode '{"no_pkce":false}'

# automatic consent: the headless agent needs no pages (the fixture signs alice in)
b=$(as alice op oauth.begin '{"server":"fx"}')
cb=$(follow "$(j "$b" o.authorization_url)" nobody)
case $cb in https://app.example.test/*code=*) ok 0 "automatic-consent mode returns a code";; *) ok 1 "auto consent: $cb";; esac
mode '{"token_redirect":true}'
r=$(as alice op oauth.complete "{\"callback_url\":\"$cb\"}")
like "$(j "$r" o.error.message)" "redirect" "a token endpoint that redirects is refused"
is "$(j "$(as alice op oauth.status '{"server":"fx"}')" o.connected)" false "no token was stored"
mode '{"token_redirect":false}'
b=$(as alice op oauth.begin '{"server":"fx"}')
r=$(as alice op oauth.complete "{\"callback_url\":\"$(follow "$(j "$b" o.authorization_url)" nobody)\"}")
is "$(j "$r" o.connected)" true "with the redirect gone the same flow connects"
r=$(as bob op oauth.complete "{\"state\":\"$(j "$b" o.state)\",\"code\":\"x\"}")
is "$(j "$r" o.error.code)" invalid_argument "a spent state stays spent for everyone"
r=$(as alice op oauth.complete '{"state":"made-up","code":"x"}')
like "$(j "$r" o.error.message)" "unknown" "an unknown state is refused"
r=$(as alice op oauth.begin '{"server":"fx","redirect_uri":"https://evil.example/cb"}')
is "$(j "$r" o.error.field)" redirect_uri "a non-loopback redirect_uri override is refused"
# a refresh too, so the log covers every path a token value passes through
r=$(as alice op oauth.refresh '{"server":"fx","force":true}')
is "$(j "$r" o.connected)" true "a forced refresh works"
# every token value the AS issued is looked for in the engine log (written at debug level)
tv=$(probe "$CTL/issued-tokens")
is "$(j "$tv" 'o.access_tokens.length >= 2 && o.refresh_tokens.length >= 2')" true "the AS issued access and refresh tokens"
check_log() { [ -s "$work/engine.log" ] || return 2; for t in $(j "$tv" "$1.join(' ')"); do
  grep -q -F -- "$t" "$work/engine.log" && return 1; done; return 0; }
check_log o.access_tokens; is "$?" 0 "the engine log (debug) holds no access token value"
check_log o.refresh_tokens; is "$?" 0 "the engine log (debug) holds no refresh token value"
done_tap
