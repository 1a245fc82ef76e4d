/* addr.c: IP address classifier for the SSRF guard. The tables follow the
 * IANA IPv4/IPv6 special-purpose address registries (longest prefix wins). */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "addr.h"

/* EMBED: judge by the IPv4 address the IPv6 form carries (see embed_v4).
 * SIXTOFOUR: special whatever it carries, never when what it carries is. */
enum { K_PUBLIC, K_PRIVATE, K_SPECIAL, K_NEVER, K_EMBED, K_SIXTOFOUR };

struct block {
  const char *cidr;
  int kind;
  const char *name;
};

/* Longest match decides, so "globally reachable" exceptions inside a
 * non-global block (2001:3::/32 ...) are listed as public. Not so the PCP and
 * TURN anycast addresses (192.0.0.9, 192.0.0.10, 2001:1::1, 2001:1::2): the
 * nearest instance of an anycast service sits inside the operator's network,
 * so they stay in their special blocks. Nor 6to4 (2002::/16, deprecated by
 * RFC 7526): its traffic goes through whatever relay is nearest, whatever
 * IPv4 address it carries, so the whole block is special (and stays shut
 * for good when the IPv4 it carries is a never address). */
static const struct block blocks[] = {
  {"0.0.0.0/8", K_NEVER, "this network 0.0.0.0/8"},
  {"10.0.0.0/8", K_PRIVATE, "private-use 10.0.0.0/8"},
  {"100.64.0.0/10", K_PRIVATE, "shared address space 100.64.0.0/10"},
  {"127.0.0.0/8", K_PRIVATE, "loopback 127.0.0.0/8"},
  {"169.254.0.0/16", K_SPECIAL, "link-local 169.254.0.0/16"},
  {"172.16.0.0/12", K_PRIVATE, "private-use 172.16.0.0/12"},
  {"192.0.0.0/24", K_SPECIAL, "IETF protocol assignments 192.0.0.0/24"},
  {"192.0.2.0/24", K_SPECIAL, "documentation 192.0.2.0/24"},
  {"192.88.99.0/24", K_SPECIAL, "6to4 relay anycast 192.88.99.0/24"},
  {"192.168.0.0/16", K_PRIVATE, "private-use 192.168.0.0/16"},
  {"198.18.0.0/15", K_SPECIAL, "benchmarking 198.18.0.0/15"},
  {"198.51.100.0/24", K_SPECIAL, "documentation 198.51.100.0/24"},
  {"203.0.113.0/24", K_SPECIAL, "documentation 203.0.113.0/24"},
  {"224.0.0.0/4", K_NEVER, "multicast 224.0.0.0/4"},
  {"240.0.0.0/4", K_NEVER, "reserved 240.0.0.0/4"},
  {"255.255.255.255/32", K_NEVER, "limited broadcast"},

  /* IPv6: only 2000::/3 is global unicast; everything else is special
   * unless listed (embedded IPv4 forms, loopback, ULA). */
  {"::/0", K_SPECIAL, "reserved IPv6 (outside 2000::/3)"},
  {"2000::/3", K_PUBLIC, "global unicast"},
  {"::/128", K_NEVER, "unspecified ::"},
  {"::1/128", K_PRIVATE, "loopback ::1"},
  {"::/96", K_EMBED, "IPv4-compatible ::/96"},
  {"::ffff:0:0/96", K_EMBED, "IPv4-mapped ::ffff:0:0/96"},
  {"::ffff:0:0:0/96", K_EMBED, "IPv4-translated ::ffff:0:0:0/96"},
  {"64:ff9b::/96", K_EMBED, "NAT64 64:ff9b::/96"},
  {"64:ff9b:1::/48", K_EMBED, "local NAT64 64:ff9b:1::/48"},
  {"100::/64", K_SPECIAL, "discard-only 100::/64"},
  {"100:0:0:1::/64", K_SPECIAL, "dummy prefix 100:0:0:1::/64"},
  {"2001::/23", K_SPECIAL, "IETF protocol assignments 2001::/23"},
  {"2001::/32", K_EMBED, "Teredo 2001::/32"},
  {"2001:1::3/128", K_PUBLIC, "DNS-SD SRP anycast"},
  {"2001:2::/48", K_SPECIAL, "benchmarking 2001:2::/48"},
  {"2001:3::/32", K_PUBLIC, "AMT"},
  {"2001:4:112::/48", K_PUBLIC, "AS112-v6"},
  {"2001:10::/28", K_SPECIAL, "deprecated ORCHID 2001:10::/28"},
  {"2001:20::/28", K_PUBLIC, "ORCHIDv2"},
  {"2001:30::/28", K_PUBLIC, "drone remote ID"},
  {"2001:db8::/32", K_SPECIAL, "documentation 2001:db8::/32"},
  {"2002::/16", K_SIXTOFOUR, "6to4 2002::/16 (deprecated)"},
  {"3fff::/20", K_SPECIAL, "documentation 3fff::/20"},
  {"5f00::/16", K_SPECIAL, "SRv6 SIDs 5f00::/16"},
  {"fc00::/7", K_PRIVATE, "unique local fc00::/7"},
  {"fe80::/10", K_SPECIAL, "link-local fe80::/10"},
  {"fec0::/10", K_SPECIAL, "site-local fec0::/10"},
  {"ff00::/8", K_NEVER, "multicast ff00::/8"},
};
#define NBLOCKS (sizeof blocks / sizeof blocks[0])

static addr_cidr parsed[NBLOCKS];
/* blocks[] holds the IPv4 blocks first, then the IPv6 ones (parse_blocks
 * checks): a lookup walks its family's part only */
static size_t nv4;
static pthread_once_t parsed_once = PTHREAD_ONCE_INIT;

static void parse_blocks(void) {
  for (size_t i = 0; i < NBLOCKS; i++) {
    if (addr_cidr_parse(blocks[i].cidr, &parsed[i]) != 0) abort(); /* table typo */
    if (parsed[i].a.family == AF_INET) {
      if (nv4 != i) abort(); /* an IPv4 block after an IPv6 one */
      nv4 = i + 1;
    }
  }
}

int addr_parse(const char *s, addr_t *out, int *zoned) {
  char buf[64];
  size_t n = s ? strlen(s) : 0;
  if (zoned) *zoned = 0;
  if (n == 0 || n >= sizeof buf) return -1;
  memset(out, 0, sizeof *out);
  if (inet_pton(AF_INET, s, out->b) == 1) { out->family = AF_INET; return 0; }
  if (s[0] == '[') {
    if (s[n - 1] != ']') return -1;
    memcpy(buf, s + 1, n - 2);
    buf[n - 2] = 0;
  } else memcpy(buf, s, n + 1);
  char *pct = strchr(buf, '%');
  if (pct) {
    if (!pct[1]) return -1;
    *pct = 0;
    if (zoned) *zoned = 1;
  }
  if (inet_pton(AF_INET6, buf, out->b) != 1) return -1;
  out->family = AF_INET6;
  return 0;
}

int addr_from_sockaddr(const struct sockaddr *sa, size_t len, addr_t *out) {
  memset(out, 0, sizeof *out);
  if (!sa) return -1;
  if (sa->sa_family == AF_INET && len >= sizeof(struct sockaddr_in)) {
    out->family = AF_INET;
    memcpy(out->b, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, 4);
    return 0;
  }
  if (sa->sa_family == AF_INET6 && len >= sizeof(struct sockaddr_in6)) {
    out->family = AF_INET6;
    memcpy(out->b, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr, 16);
    return 0;
  }
  return -1;
}

const char *addr_text(const addr_t *a, char *buf, size_t n) {
  if (!inet_ntop(a->family, a->b, buf, (socklen_t)n)) snprintf(buf, n, "?");
  return buf;
}

int addr_cidr_parse(const char *s, addr_cidr *out) {
  char buf[64];
  const char *slash = s ? strchr(s, '/') : NULL;
  size_t n = slash ? (size_t)(slash - s) : (s ? strlen(s) : 0);
  if (n == 0 || n >= sizeof buf) return -1;
  memcpy(buf, s, n);
  buf[n] = 0;
  memset(out, 0, sizeof *out);
  if (inet_pton(AF_INET, buf, out->a.b) == 1) out->a.family = AF_INET;
  else if (inet_pton(AF_INET6, buf, out->a.b) == 1) out->a.family = AF_INET6;
  else return -1;
  int max = out->a.family == AF_INET ? 32 : 128;
  out->bits = max;
  if (slash) {
    const char *p = slash + 1;
    if (!*p || strlen(p) > 3) return -1;
    int v = 0;
    for (; *p; p++) {
      if (*p < '0' || *p > '9') return -1;
      v = v * 10 + (*p - '0');
    }
    if (v > max || (slash[1] == '0' && slash[2])) return -1;
    out->bits = v;
  }
  /* Host bits must be zero: "10.1.2.3/8" is almost always a typo. */
  for (int i = out->bits; i < max; i++)
    if (out->a.b[i / 8] & (0x80 >> (i % 8))) return -1;
  return 0;
}

int addr_in_cidr(const addr_t *a, const addr_cidr *c) {
  if (a->family != c->a.family) return 0;
  int full = c->bits / 8, rest = c->bits % 8;
  if (memcmp(a->b, c->a.b, (size_t)full) != 0) return 0;
  if (rest == 0) return 1;
  uint8_t mask = (uint8_t)(0xff << (8 - rest));
  return (a->b[full] & mask) == (c->a.b[full] & mask);
}

/* The IPv4 address an embedded form carries (RFC 4291, 6052, 4380). Teredo
 * carries two (server, and the client obfuscated by inversion). */
static int embed_v4(const addr_t *a, const char *cidr, addr_t *v4, addr_t *v4b) {
  memset(v4, 0, sizeof *v4);
  v4->family = AF_INET;
  *v4b = *v4;
  if (strcmp(cidr, "64:ff9b:1::/48") == 0) {
    /* RFC 6052 /48: bits 48..63, skip the reserved octet 64..71, 72..87 */
    v4->b[0] = a->b[6]; v4->b[1] = a->b[7]; v4->b[2] = a->b[9]; v4->b[3] = a->b[10];
    return 1;
  }
  if (strcmp(cidr, "2001::/32") == 0) {
    memcpy(v4b->b, a->b + 4, 4);
    for (int i = 0; i < 4; i++) v4->b[i] = (uint8_t)~a->b[12 + i];
    return 2;
  }
  memcpy(v4->b, a->b + 12, 4); /* the /96 forms */
  return 1;
}

static int lookup(const addr_t *a) {
  int best = -1, bestbits = -1;
  size_t from = a->family == AF_INET ? 0 : nv4, to = a->family == AF_INET ? nv4 : NBLOCKS;
  for (size_t i = from; i < to; i++)
    if (parsed[i].bits > bestbits && addr_in_cidr(a, &parsed[i])) {
      best = (int)i;
      bestbits = parsed[i].bits;
    }
  return best;
}

addr_class addr_classify(const addr_t *a, addr_info *info) {
  pthread_once(&parsed_once, parse_blocks);
  addr_info tmp;
  if (!info) info = &tmp;
  memset(info, 0, sizeof *info);
  int i = lookup(a);
  if (i < 0) { info->cls = ADDR_PUBLIC; info->block = "global"; return ADDR_PUBLIC; }
  info->block = blocks[i].name;
  if (blocks[i].kind == K_SIXTOFOUR) {
    /* Not judged by (nor opened through) the IPv4 it carries, which only
     * keeps 0/8, multicast and 240/4 inside it never. */
    addr_t v4;
    memset(&v4, 0, sizeof v4);
    v4.family = AF_INET;
    memcpy(v4.b, a->b + 2, 4);
    int j = lookup(&v4);
    info->cls = (j >= 0 && blocks[j].kind == K_NEVER) ? ADDR_NEVER : ADDR_SPECIAL;
    return info->cls;
  }
  if (blocks[i].kind != K_EMBED) {
    info->cls = (addr_class)blocks[i].kind;
    return info->cls;
  }
  addr_t v4, v4b;
  int n = embed_v4(a, blocks[i].cidr, &v4, &v4b);
  int j = lookup(&v4);
  addr_class c = j < 0 ? ADDR_PUBLIC : (addr_class)blocks[j].kind;
  if (n == 2) {
    int k = lookup(&v4b);
    addr_class c2 = k < 0 ? ADDR_PUBLIC : (addr_class)blocks[k].kind;
    if (c2 > c) c = c2; /* the worse of Teredo server and client */
  }
  info->cls = c;
  info->embedded = 1;
  info->v4 = v4;
  return c;
}

int addr_guard_allows(const addr_guard *g, const addr_t *a, char *reason, size_t n,
                      const char **block) {
  addr_info info;
  addr_class c = addr_classify(a, &info);
  if (block) *block = info.block;
  if (c == ADDR_PUBLIC) return 1;
  if (c == ADDR_PRIVATE && g && g->allow_private) return 1;
  if (c != ADDR_NEVER && g) {
    for (int i = 0; i < g->ncidrs; i++)
      if (addr_in_cidr(a, &g->cidrs[i]) || (info.embedded && addr_in_cidr(&info.v4, &g->cidrs[i])))
        return 1;
  }
  if (reason) {
    char t[64];
    snprintf(reason, n, "private_address %s", addr_text(a, t, sizeof t));
  }
  return 0;
}
