/* fuzz_addr.c: libFuzzer target over the address parser, classifier and
 * CIDR parser; also checks that classification is a pure function. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "addr.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char buf[80], text[80];
  if (size >= sizeof text) return 0;
  memcpy(text, data, size);
  text[size] = 0;
  memcpy(buf, text, size + 1);
  addr_t a;
  int zoned;
  if (addr_parse(buf, &a, &zoned) == 0) {
    addr_info i1, i2;
    addr_class c = addr_classify(&a, &i1);
    if (addr_classify(&a, &i2) != c || c > ADDR_NEVER) abort();
    char t[64];
    addr_t b;
    addr_text(&a, t, sizeof t);
    if (addr_parse(t, &b, &zoned) != 0 || memcmp(&a, &b, sizeof a) != 0) abort(); /* round trip */
  }
  /* raw 16 bytes as an IPv6 address: every value classifies */
  if (size >= 16) {
    memset(&a, 0, sizeof a);
    a.family = AF_INET6;
    memcpy(a.b, data, 16);
    addr_guard g;
    memset(&g, 0, sizeof g);
    g.allow_private = data[0] & 1;
    (void)addr_guard_allows(&g, &a, buf, sizeof buf, NULL);
  }
  addr_cidr cidr;
  if (addr_cidr_parse(text, &cidr) == 0 && addr_parse("10.20.30.40", &a, &zoned) == 0)
    (void)addr_in_cidr(&a, &cidr);
  return 0;
}
