/* fuzz_url.c: libFuzzer target over URL parsing (CURLU), redirect joining
 * and the classifier applied to whatever literal host comes out. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "http.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char reason[64], msg[256];
  const char *s = (const char *)data;
  const char *sep = memchr(s, '\n', size);
  size_t n = sep ? (size_t)(sep - s) : size;
  http_url *u = http_url_parse(s, n, reason, sizeof reason, msg, sizeof msg);
  if (!u) return 0;
  /* invariants: what parsed is http(s), has a host and no userinfo */
  if (strcmp(u->scheme, "https") && strcmp(u->scheme, "http")) abort();
  if (!*u->host || strchr(u->host, '@') || u->port <= 0 || u->port > 65535) abort();
  if (u->host_is_ip) {
    addr_guard g;
    memset(&g, 0, sizeof g);
    (void)addr_guard_allows(&g, &u->ip, reason, sizeof reason, NULL);
  }
  if (sep) {
    http_url *j = http_url_join(u, sep + 1, size - n - 1, reason, sizeof reason, msg, sizeof msg);
    if (j && strchr(j->host, '@')) abort();
    http_url_free(j);
  }
  http_url_free(u);
  return 0;
}
