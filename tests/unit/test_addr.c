/* test_addr.c: table-driven tests of the address classifier, CIDR guard and
 * URL parser (judged only, never contacted). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>
#include "addr.h"
#include "http.h"

#define PUB ADDR_PUBLIC
#define PRIV ADDR_PRIVATE
#define SPEC ADDR_SPECIAL
#define NEV ADDR_NEVER

static const struct { const char *a; addr_class want; } addrs[] = {
  /* IPv4 registry blocks and their boundaries */
  {"0.0.0.0", NEV}, {"0.255.255.255", NEV}, {"1.0.0.0", PUB},
  {"9.255.255.255", PUB}, {"10.0.0.0", PRIV}, {"10.255.255.255", PRIV}, {"11.0.0.0", PUB},
  {"100.63.255.255", PUB}, {"100.64.0.0", PRIV}, {"100.127.255.255", PRIV}, {"100.128.0.0", PUB},
  {"126.255.255.255", PUB}, {"127.0.0.1", PRIV}, {"127.255.255.254", PRIV}, {"128.0.0.0", PUB},
  {"169.253.255.255", PUB}, {"169.254.0.0", SPEC}, {"169.254.169.254", SPEC}, {"169.255.0.0", PUB},
  {"172.15.255.255", PUB}, {"172.16.0.0", PRIV}, {"172.31.255.255", PRIV}, {"172.32.0.0", PUB},
  {"191.255.255.255", PUB}, {"192.0.0.0", SPEC}, {"192.0.0.8", SPEC},
  /* all of 192.0.0.0/24, the PCP and TURN anycast addresses included */
  {"192.0.0.9", SPEC}, {"192.0.0.10", SPEC}, {"192.0.0.1", SPEC}, {"192.0.0.7", SPEC},
  {"192.0.0.11", SPEC}, {"192.0.0.170", SPEC}, {"192.0.0.171", SPEC}, {"192.0.0.254", SPEC},
  {"192.0.0.255", SPEC}, {"::ffff:192.0.0.9", SPEC}, {"::ffff:192.0.0.10", SPEC},
  {"64:ff9b::192.0.0.9", SPEC}, {"64:ff9b::c000:a", SPEC},
  {"192.0.1.0", PUB}, {"192.0.2.0", SPEC}, {"192.0.2.255", SPEC}, {"192.0.3.0", PUB},
  {"192.31.196.1", PUB}, {"192.52.193.1", PUB}, {"192.88.98.255", PUB}, {"192.88.99.1", SPEC},
  {"192.88.100.0", PUB}, {"192.167.255.255", PUB}, {"192.168.0.0", PRIV}, {"192.168.255.255", PRIV},
  {"192.169.0.0", PUB}, {"192.175.48.1", PUB}, {"198.17.255.255", PUB}, {"198.18.0.0", SPEC},
  {"198.19.255.255", SPEC}, {"198.20.0.0", PUB}, {"198.51.100.7", SPEC}, {"203.0.113.9", SPEC},
  {"203.0.114.0", PUB}, {"223.255.255.255", PUB}, {"224.0.0.1", NEV}, {"239.255.255.255", NEV},
  {"240.0.0.1", NEV}, {"255.255.255.254", NEV}, {"255.255.255.255", NEV},
  {"8.8.8.8", PUB}, {"1.1.1.1", PUB}, {"93.184.216.34", PUB},
  /* IPv6 */
  {"::", NEV}, {"::1", PRIV}, {"::2", NEV}, {"[::1]", PRIV}, {"::1%lo", PRIV},
  {"::ffff:127.0.0.1", PRIV}, {"::ffff:7f00:1", PRIV}, {"::ffff:8.8.8.8", PUB},
  {"::ffff:10.1.2.3", PRIV}, {"::ffff:169.254.169.254", SPEC}, {"::127.0.0.1", PRIV},
  {"::8.8.8.8", PUB}, {"::ffff:0:10.0.0.1", PRIV}, {"64:ff9b::10.0.0.1", PRIV},
  {"64:ff9b::8.8.8.8", PUB}, {"64:ff9b::7f00:1", PRIV}, {"64:ff9b:1:a00:1:100::", PRIV},
  {"64:ff9b:1:808:8:800::", PUB},
  /* 6to4 is special whatever IPv4 address it carries */
  {"2002:a00:1::", SPEC}, {"2002:808:808::1", SPEC}, {"2002:101:101::", SPEC},
  {"2002:c0a8:101::", SPEC}, {"2002:7f00:1::", SPEC}, {"2002:c000:9::", SPEC}, {"2002:a9fe:a9fe::", SPEC},
  {"2002:dfff:ffff::1", SPEC}, {"2001:ffff:ffff::1", PUB}, {"2003::1", PUB},
  /* ... and never when what it carries is never (0/8, multicast, 240/4, broadcast) */
  {"2002::", NEV}, {"2002:e000:1::", NEV}, {"2002:ffff:ffff::1", NEV},
  {"2002:ffff:ffff:ffff:ffff:ffff:ffff:ffff", NEV},
  {"2001:0:4136:e378:8000:63bf:f5ff:fffe", PRIV},
  {"2001:0:4136:e378:8000:63bf:f7f7:f7f7", PUB}, {"2001:0:a00:1::f7f7:f7f7", PRIV},
  {"2001::", NEV} /* Teredo: server 0.0.0.0 */, {"2001:1::1", SPEC}, {"2001:1::2", SPEC},
  {"2001:1::3", PUB}, {"2001:1::", SPEC},
  {"2001:1::4", SPEC}, {"2001:2::1", SPEC}, {"2001:3::1", PUB}, {"2001:4:112::1", PUB},
  {"2001:10::1", SPEC}, {"2001:20::1", PUB}, {"2001:30::1", PUB}, {"2001:1ff::1", SPEC},
  {"2001:200::1", PUB}, {"2001:db8::1", SPEC}, {"2001:db9::1", PUB}, {"3fff::1", SPEC},
  {"3fff:1000::1", PUB}, {"5f00::1", SPEC}, {"2606:4700:4700::1111", PUB},
  {"2a00:1450:4001:81a::200e", PUB}, {"100::1", SPEC}, {"100:0:0:1::1", SPEC},
  {"fc00::1", PRIV}, {"fd12:3456::1", PRIV}, {"fe80::1", SPEC}, {"fe80::1%eth0", SPEC},
  {"febf::1", SPEC}, {"fec0::1", SPEC}, {"feff::1", SPEC}, {"ff02::1", NEV}, {"ff0e::1", NEV},
  {"4000::1", SPEC}, {"1::1", SPEC},
};

static void test_classify_table(void **st) {
  (void)st;
  int bad = 0;
  for (size_t i = 0; i < sizeof addrs / sizeof addrs[0]; i++) {
    addr_t a;
    int zoned;
    if (addr_parse(addrs[i].a, &a, &zoned) != 0) {
      fprintf(stderr, "# does not parse: %s\n", addrs[i].a);
      bad++;
      continue;
    }
    addr_info info;
    addr_class c = addr_classify(&a, &info);
    if (c != addrs[i].want) {
      fprintf(stderr, "# %s: class %d, want %d (%s)\n", addrs[i].a, c, addrs[i].want, info.block);
      bad++;
    }
  }
  assert_int_equal(bad, 0);
  assert_true(sizeof addrs / sizeof addrs[0] >= 80);
}

static void test_not_addresses(void **st) {
  (void)st;
  static const char *const no[] = {"", "1.2.3", "1.2.3.4.5", "256.0.0.1", "0x7f.0.0.1",
                                   "localhost", "[::1", "::1]", "1::2::3", "::1%", "01.2.3.4"};
  for (size_t i = 0; i < sizeof no / sizeof no[0]; i++) {
    addr_t a;
    int z;
    if (addr_parse(no[i], &a, &z) == 0) fail_msg("parsed as an address: '%s'", no[i]);
  }
}

/* URL forms: "=host" (parses; a name), "public"/"blocked" (parses to a
 * literal address the default guard allows/refuses), or a failure reason. */
static const struct { const char *url; const char *want; } urls[] = {
  {"https://example.com/mcp", "=example.com"},
  {"https://EXAMPLE.com./mcp", "=example.com"},
  {"https://example.com:8443/x?y=1#frag", "=example.com"},
  {"https://8.8.8.8/", "public"},
  {"https://[2606:4700:4700::1111]/", "public"},
  {"https://10.0.0.5/", "blocked"},
  {"https://127.0.0.1:443/", "blocked"},
  {"https://0x7f.0.0.1/", "blocked"},
  {"https://0x7f000001/", "blocked"},
  {"https://2130706433/", "blocked"},
  {"https://017700000001/", "blocked"},
  {"https://0177.0.0.1/", "blocked"},
  {"https://127.1/", "blocked"},
  {"https://127.0.1/", "blocked"},
  {"https://10.1/", "blocked"},
  {"https://0/", "blocked"},
  {"https://0.0.0.0/", "blocked"},
  {"https://169.254.169.254/latest/meta-data/", "blocked"},
  {"https://[::1]/", "blocked"},
  {"https://[::ffff:127.0.0.1]/", "blocked"},
  {"https://[::ffff:7f00:1]/", "blocked"},
  {"https://[64:ff9b::a9fe:a9fe]/", "blocked"},
  {"https://[2002:7f00:1::]/", "blocked"},
  {"https://[2002:808:808::]/", "blocked"},
  {"https://192.0.0.9/", "blocked"},
  {"https://192.0.0.10/", "blocked"},
  {"https://[2001:1::1]/", "blocked"},
  {"https://[2001:1::2]/", "blocked"},
  {"https://[fd00::1]/", "blocked"},
  {"https://[fe80::1%25eth0]/", "invalid_url"},
  {"https://user@example.com/", "userinfo"},
  {"https://user:pw@example.com/", "userinfo"},
  {"https://:pw@example.com/", "userinfo"},
  {"https://@example.com/", "userinfo"},
  {"https://example.com@10.0.0.1/", "userinfo"},
  {"https://example.com%40evil.com/", "invalid_url"},
  {"https://evil.com\\@example.com/", "invalid_url"},
  {"https:\\\\example.com/", "invalid_url"},
  {"https://example.com\\.evil.com/", "invalid_url"},
  {"https://exa mple.com/", "invalid_url"},
  {"https://example.com/\r\nHost: x", "invalid_url"},
  {"https://ex\xc3\xa4mple.com/", "invalid_url"},
  {"ftp://example.com/", "scheme"},
  {"file:///etc/passwd", "scheme"},
  {"gopher://127.0.0.1:25/", "scheme"},
  {"dict://127.0.0.1:11211/", "scheme"},
  {"javascript:alert(1)", "scheme"},
  {"data:text/plain,hi", "scheme"},
  {"HTTPS://example.com/", "=example.com"},
  {"http://example.com/", "=example.com"},
  {"//example.com/", "invalid_url"},
  {"example.com/mcp", "invalid_url"},
  {"https:/example.com/", "invalid_url"},
  {"https:///", "invalid_url"},
  {"https://", "invalid_url"},
  {"https://example.com:99999/", "invalid_url"},
  {"https://example.com:0/", "invalid_url"},
};

static void test_url_table(void **st) {
  (void)st;
  int bad = 0;
  addr_guard g;
  memset(&g, 0, sizeof g);
  for (size_t i = 0; i < sizeof urls / sizeof urls[0]; i++) {
    char reason[64] = "", msg[256] = "", got[300];
    http_url *u = http_url_parse(urls[i].url, strlen(urls[i].url), reason, sizeof reason, msg, sizeof msg);
    if (!u) snprintf(got, sizeof got, "%s", reason);
    else if (u->host_is_ip) snprintf(got, sizeof got, "%s", addr_guard_allows(&g, &u->ip, NULL, 0, NULL) ? "public" : "blocked");
    else snprintf(got, sizeof got, "=%s", u->host);
    if (strcmp(got, urls[i].want) != 0) {
      fprintf(stderr, "# %s: got %s, want %s (%s)\n", urls[i].url, got, urls[i].want, msg);
      bad++;
    }
    http_url_free(u);
  }
  /* an embedded NUL is refused, not truncated */
  char reason[64], msg[256];
  assert_null(http_url_parse("https://a.com\0.evil.com/", 25, reason, sizeof reason, msg, sizeof msg));
  assert_string_equal(reason, "invalid_url");
  assert_int_equal(bad, 0);
}

static void test_guard_widening(void **st) {
  (void)st;
  addr_guard g;
  addr_t a;
  int z;
  char reason[80];
  memset(&g, 0, sizeof g);
  assert_int_equal(addr_parse("10.20.3.4", &a, &z), 0);
  assert_false(addr_guard_allows(&g, &a, reason, sizeof reason, NULL));
  assert_string_equal(reason, "private_address 10.20.3.4");
  assert_int_equal(addr_cidr_parse("10.20.0.0/16", &g.cidrs[g.ncidrs++]), 0);
  assert_true(addr_guard_allows(&g, &a, NULL, 0, NULL));
  assert_int_equal(addr_parse("10.21.0.1", &a, &z), 0);
  assert_false(addr_guard_allows(&g, &a, NULL, 0, NULL));
  assert_int_equal(addr_parse("::ffff:10.20.0.9", &a, &z), 0);  /* judged by the IPv4 inside */
  assert_true(addr_guard_allows(&g, &a, NULL, 0, NULL));
  /* allow_private unlocks private ranges, not link-local or the never class */
  g.allow_private = 1;
  assert_int_equal(addr_parse("192.168.1.1", &a, &z), 0);
  assert_true(addr_guard_allows(&g, &a, NULL, 0, NULL));
  assert_int_equal(addr_parse("169.254.169.254", &a, &z), 0);
  assert_false(addr_guard_allows(&g, &a, NULL, 0, NULL));
  assert_int_equal(addr_parse("fe80::1", &a, &z), 0);
  assert_false(addr_guard_allows(&g, &a, NULL, 0, NULL));
  /* an explicit CIDR unlocks special ranges, never multicast or 0/8 */
  assert_int_equal(addr_cidr_parse("169.254.0.0/16", &g.cidrs[g.ncidrs++]), 0);
  assert_int_equal(addr_parse("169.254.169.254", &a, &z), 0);
  assert_true(addr_guard_allows(&g, &a, NULL, 0, NULL));
  assert_int_equal(addr_cidr_parse("0.0.0.0/0", &g.cidrs[g.ncidrs++]), 0);
  assert_int_equal(addr_parse("224.0.0.1", &a, &z), 0);
  assert_false(addr_guard_allows(&g, &a, NULL, 0, NULL));
  assert_int_equal(addr_parse("0.0.0.0", &a, &z), 0);
  assert_false(addr_guard_allows(&g, &a, NULL, 0, NULL));
}

/* 192.0.0.0/24, the PCP/TURN anycast addresses and 6to4: shut by default and by
 * allow_private_urls; a policy's allow_cidrs opens them only by naming them (a 6to4
 * address by its own range, not by the IPv4 address it carries). */
static void test_anycast_and_6to4(void **st) {
  (void)st;
  static const char *const shut[] = {"192.0.0.9", "192.0.0.10", "192.0.0.1", "2001:1::1",
                                     "2001:1::2", "2002:808:808::1", "2002:7f00:1::", "2002:a00:1::"};
  addr_guard g;
  addr_t a;
  int z;
  char reason[80];
  memset(&g, 0, sizeof g);
  g.allow_private = 1;
  for (size_t i = 0; i < sizeof shut / sizeof shut[0]; i++) {
    assert_int_equal(addr_parse(shut[i], &a, &z), 0);
    if (addr_guard_allows(&g, &a, reason, sizeof reason, NULL)) fail_msg("%s is allowed", shut[i]);
    char want[80];
    snprintf(want, sizeof want, "private_address %s", shut[i]);
    assert_string_equal(reason, want);
  }
  /* the IPv4 a 6to4 address carries does not open it, even when that IPv4 is open */
  assert_int_equal(addr_cidr_parse("8.8.8.0/24", &g.cidrs[g.ncidrs++]), 0);
  assert_int_equal(addr_cidr_parse("127.0.0.0/8", &g.cidrs[g.ncidrs++]), 0);
  assert_int_equal(addr_parse("2002:808:808::1", &a, &z), 0);
  assert_false(addr_guard_allows(&g, &a, NULL, 0, NULL));
  assert_int_equal(addr_parse("2002:7f00:1::", &a, &z), 0);
  assert_false(addr_guard_allows(&g, &a, NULL, 0, NULL));
  /* 6to4 carrying a never address stays shut even under 2002::/16 */
  assert_int_equal(addr_cidr_parse("2002::/16", &g.cidrs[g.ncidrs++]), 0);
  assert_int_equal(addr_parse("2002:e000:1::", &a, &z), 0);
  assert_false(addr_guard_allows(&g, &a, NULL, 0, NULL));
  g.ncidrs--;
  /* named explicitly, they open */
  assert_int_equal(addr_cidr_parse("192.0.0.0/24", &g.cidrs[g.ncidrs++]), 0);
  assert_int_equal(addr_cidr_parse("2001:1::1", &g.cidrs[g.ncidrs++]), 0);
  assert_int_equal(addr_cidr_parse("2002::/16", &g.cidrs[g.ncidrs++]), 0);
  static const char *const open[] = {"192.0.0.9", "192.0.0.10", "2001:1::1", "2002:808:808::1"};
  for (size_t i = 0; i < sizeof open / sizeof open[0]; i++) {
    assert_int_equal(addr_parse(open[i], &a, &z), 0);
    if (!addr_guard_allows(&g, &a, NULL, 0, NULL)) fail_msg("%s stays shut under allow_cidrs", open[i]);
  }
  assert_int_equal(addr_parse("2001:1::2", &a, &z), 0);  /* not named */
  assert_false(addr_guard_allows(&g, &a, NULL, 0, NULL));
}

static void test_cidr_parse(void **st) {
  (void)st;
  addr_cidr c;
  static const char *const good[] = {"10.0.0.0/8", "10.20.0.0/16", "1.2.3.4", "::/0", "fd00::/8", "0.0.0.0/0", "2001:db8::/32"};
  static const char *const badc[] = {"10.0.0.1/8", "10.0.0.0/33", "10.0.0.0/", "/8", "x/8", "10.0.0.0/08", "10.0.0.0/-1", "fd00::/129", "10.0.0.0/8/8", ""};
  for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
    if (addr_cidr_parse(good[i], &c) != 0) fail_msg("refused %s", good[i]);
  for (size_t i = 0; i < sizeof badc / sizeof badc[0]; i++)
    if (addr_cidr_parse(badc[i], &c) == 0) fail_msg("accepted %s", badc[i]);
}

int main(void) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_classify_table), cmocka_unit_test(test_not_addresses),
    cmocka_unit_test(test_url_table), cmocka_unit_test(test_guard_widening),
    cmocka_unit_test(test_cidr_parse), cmocka_unit_test(test_anycast_and_6to4),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
