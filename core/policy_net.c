/* policy_net.c: the `net` helpers of the policy environment: pure address and
 * host-name tests written in C so policies need no pattern tricks for them. */
#include <string.h>
#include <strings.h>
#include <lauxlib.h>
#include "addr.h"
#include "policy.h"

#define NET_MAX_TEXT 256

/* A Lua string as C text: NULL when it is not a string, is too long or
 * holds a NUL (which would cut the text short). */
static const char *net_text(lua_State *L, int i) {
  size_t n;
  const char *s = lua_type(L, i) == LUA_TSTRING ? lua_tolstring(L, i, &n) : NULL;
  return s && n < NET_MAX_TEXT && strlen(s) == n ? s : NULL;
}

/* net.in_cidr(addr, cidr) -> bool, with the parser the SSRF guard uses for a
 * policy's allow_cidrs (addr.c): a cidr without /len is one address, host
 * bits must be zero. A cidr that is not one raises, so the policy call fails
 * closed and its error names it ("10.1.2.3/8" is a typo until proven
 * otherwise); an addr that is not an IP address (a host name) is not in any
 * range. Families must agree. */
static int net_in_cidr(lua_State *L) {
  const char *a = net_text(L, 1), *c = net_text(L, 2);
  addr_cidr range, host;
  if (!c || addr_cidr_parse(c, &range) != 0) {
    /* named when it looks like one (a typo); other text is not repeated */
    if (c && *c && strspn(c, "0123456789abcdefABCDEF.:/") == strlen(c))
      return luaL_error(L, "net.in_cidr: '%s' is not an address or a CIDR with its host bits zero", c);
    return luaL_error(L, "net.in_cidr: argument 2 is not an address or a CIDR");
  }
  int ok = a && !strchr(a, '/') && addr_cidr_parse(a, &host) == 0 && addr_in_cidr(&host.a, &range);
  lua_pushboolean(L, ok);
  return 1;
}

/* Length without one trailing dot (fully qualified names). */
static size_t net_trim(const char *s, size_t n) { return (n > 1 && s[n - 1] == '.') ? n - 1 : n; }

/* net.host_matches(host, pattern) -> bool: exact (case-insensitive), or
 * "*.example.com" for subdomains of example.com (not example.com itself). */
static int net_host_matches(lua_State *L) {
  size_t hn, pn;
  const char *h = lua_type(L, 1) == LUA_TSTRING ? lua_tolstring(L, 1, &hn) : NULL;
  const char *p = lua_type(L, 2) == LUA_TSTRING ? lua_tolstring(L, 2, &pn) : NULL;
  int ok = 0;
  if (h && p && hn < NET_MAX_TEXT && pn < NET_MAX_TEXT && hn > 0 && pn > 0 &&
      !memchr(h, 0, hn) && !memchr(p, 0, pn)) {
    hn = net_trim(h, hn);
    pn = net_trim(p, pn);
    if (pn > 2 && p[0] == '*' && p[1] == '.') {
      size_t sn = pn - 1; /* ".example.com" */
      ok = hn > sn && strncasecmp(h + hn - sn, p + 1, sn) == 0 && !memchr(p + 1, '*', sn);
    } else {
      ok = hn == pn && strncasecmp(h, p, hn) == 0;
    }
  }
  lua_pushboolean(L, ok);
  return 1;
}

int policy_net_open(lua_State *L) {
  static const luaL_Reg fns[] = {
    {"in_cidr", net_in_cidr}, {"host_matches", net_host_matches}, {NULL, NULL}};
  luaL_newlib(L, fns);
  return 1;
}
