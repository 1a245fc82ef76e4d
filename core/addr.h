/* addr.h: IP address classifier for the SSRF guard (IANA special-purpose
 * registries, IPv4 embedded in IPv6) and the per-request address guard. */
#ifndef MCPL_ADDR_H
#define MCPL_ADDR_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* One address: family AF_INET (4 bytes used) or AF_INET6 (16 bytes). */
typedef struct {
  int family;
  uint8_t b[16];
} addr_t;

typedef struct {
  addr_t a;
  int bits;
} addr_cidr;

/* Classes, least to most restricted. allow_private_urls unlocks PRIVATE; a
 * policy's allow_cidrs unlocks PRIVATE and SPECIAL addresses it covers;
 * NEVER (unspecified, this-network, multicast, 240/4, broadcast) stays shut. */
typedef enum {
  ADDR_PUBLIC = 0,
  ADDR_PRIVATE,  /* loopback, RFC 1918, shared 100.64/10, ULA fc00::/7 */
  ADDR_SPECIAL,  /* every other non-global special-purpose block */
  ADDR_NEVER
} addr_class;

/* What the classifier found: the class, the block's name, and for IPv6
 * forms that carry an IPv4 address, that address (embedded=1). */
typedef struct {
  addr_class cls;
  const char *block;     /* e.g. "private-use 10.0.0.0/8" */
  int embedded;
  addr_t v4;             /* the embedded IPv4 address when embedded */
} addr_info;

addr_class addr_classify(const addr_t *a, addr_info *info);

/* Strict numeric parse: dotted-quad IPv4, or IPv6 with optional brackets and
 * zone id (the zone is ignored; its presence is reported in *zoned). */
int addr_parse(const char *s, addr_t *out, int *zoned);
int addr_from_sockaddr(const struct sockaddr *sa, size_t len, addr_t *out);
/* Canonical text (inet_ntop); buf of at least 64 bytes. */
const char *addr_text(const addr_t *a, char *buf, size_t n);

/* "10.20.0.0/16", "fd00::/8", or a bare address (host route). 0 on success. */
int addr_cidr_parse(const char *s, addr_cidr *out);
int addr_in_cidr(const addr_t *a, const addr_cidr *c);

#define ADDR_GUARD_MAX_CIDRS 32

/* The connect-time decision for one request, computed in Lua (settings +
 * policy) and enforced in C on every address. */
typedef struct {
  int allow_private;              /* system setting allow_private_urls */
  int ncidrs;
  addr_cidr cidrs[ADDR_GUARD_MAX_CIDRS];  /* policy widening */
} addr_guard;

/* 1 when the guard lets this address through; otherwise 0 and, when reason
 * is not NULL, "private_address <ip>" (n >= 80) and *block names the range. */
int addr_guard_allows(const addr_guard *g, const addr_t *a, char *reason, size_t n,
                      const char **block);

#endif
