/* policy_net.c: the `net` helpers of the policy environment: pure address and
 * host-name tests written in C so policies need no pattern tricks for them. */
#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <lauxlib.h>
#include "policy.h"

#define NET_MAX_TEXT 256

/* Parses an IPv4 or IPv6 address into 16 bytes; returns 4, 16 or 0. */
static int net_parse(const char *s, size_t n, unsigned char out[16]) {
  char buf[64];
  if (n == 0 || n >= sizeof buf) return 0;
  memcpy(buf, s, n);
  buf[n] = 0;
  if (inet_pton(AF_INET, buf, out) == 1) return 4;
  if (inet_pton(AF_INET6, buf, out) == 1) return 16;
  return 0;
}

/* net.in_cidr(addr, cidr) -> bool. A cidr without /len is one address.
 * Families must agree; anything malformed is false, never an error. */
static int net_in_cidr(lua_State *L) {
  size_t an, cn;
  const char *a = lua_type(L, 1) == LUA_TSTRING ? lua_tolstring(L, 1, &an) : NULL;
  const char *c = lua_type(L, 2) == LUA_TSTRING ? lua_tolstring(L, 2, &cn) : NULL;
  unsigned char ab[16], cb[16];
  int ok = 0;
  if (a && c && an < NET_MAX_TEXT && cn < NET_MAX_TEXT) {
    const char *slash = memchr(c, '/', cn);
    size_t hostlen = slash ? (size_t)(slash - c) : cn;
    int fa = net_parse(a, an, ab), fc = net_parse(c, hostlen, cb);
    long bits = fc * 8;
    if (slash) {
      char *end = NULL;
      const char *d = slash + 1;
      bits = (*d >= '0' && *d <= '9' && (size_t)(c + cn - d) <= 3) ? strtol(d, &end, 10) : -1;
      if (bits < 0 || end != c + cn) bits = -1;
    }
    if (fa && fa == fc && bits >= 0 && bits <= fc * 8) {
      ok = 1;
      int full = (int)bits / 8, rest = (int)bits % 8;
      if (memcmp(ab, cb, (size_t)full) != 0) ok = 0;
      if (ok && rest) {
        unsigned char mask = (unsigned char)(0xFF << (8 - rest));
        ok = (ab[full] & mask) == (cb[full] & mask);
      }
    }
  }
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

int sb_open_net(lua_State *L) {
  static const luaL_Reg fns[] = {
    {"in_cidr", net_in_cidr}, {"host_matches", net_host_matches}, {NULL, NULL}};
  luaL_newlib(L, fns);
  return 1;
}
