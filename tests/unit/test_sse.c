/* test_sse.c: table-driven tests of the SSE parser; every case is also fed
 * byte by byte and split at every position (two and three pieces). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include "sse.h"

typedef struct {
  const char *name;
  const char *in;       /* the stream (NUL-free cases; see test_nul) */
  const char *want;     /* events as "type|id|data;" with data newlines as \n */
  const char *last_id;  /* last event ID after the stream */
  long retry;           /* retry after the stream */
} sse_case;

static const sse_case cases[] = {
  {"single", "data: hello\n\n", "message||hello;", "", -1},
  {"crlf", "data: a\r\n\r\n", "message||a;", "", -1},
  {"cr only", "data: a\r\rdata: b\r\r", "message||a;message||b;", "", -1},
  {"mixed terminators", "data: a\r\ndata: b\rdata: c\n\n", "message||a\nb\nc;", "", -1},
  {"multi-line data", "data: one\ndata: two\ndata:three\n\n", "message||one\ntwo\nthree;", "", -1},
  {"only one space stripped", "data:  two spaces\n\n", "message|| two spaces;", "", -1},
  {"comment ignored", ": keep-alive\n:\ndata: x\n\n", "message||x;", "", -1},
  {"comment inside event", "data: a\n: note\ndata: b\n\n", "message||a\nb;", "", -1},
  {"event type", "event: ping\ndata: {}\n\n", "ping||{};", "", -1},
  {"type resets", "event: x\ndata: 1\n\ndata: 2\n\n", "x||1;message||2;", "", -1},
  {"id and retry", "id: 7\nretry: 1500\ndata: x\n\n", "message|7|x;", "7", 1500},
  {"id persists", "id: 7\ndata: a\n\ndata: b\n\n", "message|7|a;message|7|b;", "7", -1},
  {"empty id resets", "id: 7\ndata: a\n\nid\ndata: b\n\n", "message|7|a;message||b;", "", -1},
  {"priming event", "id: p-1\nretry: 500\ndata: \n\n", "message|p-1|;", "p-1", 500},
  {"id without data", "id: 9\n\n", "", "9", -1},
  {"no data no dispatch", "event: x\n\ndata: y\n\n", "message||y;", "", -1},
  {"bad retry ignored", "retry: 12a\nretry: 300\nretry: -1\ndata: z\n\n", "message||z;", "", 300},
  {"empty retry ignored", "retry:\ndata: z\n\n", "message||z;", "", -1},
  {"huge retry clamped", "retry: 99999999999999999999\ndata: z\n\n", "message||z;", "", 86400000},
  {"field without colon", "data\n\n", "message||;", "", -1},
  {"unknown field", "foo: bar\ndata: x\n\n", "message||x;", "", -1},
  {"incomplete event dropped", "data: a\n\ndata: b\n", "message||a;", "", -1},
  {"no trailing newline", "data: a", "", "", -1},
  {"bom skipped", "\xEF\xBB\xBF" "data: b\n\n", "message||b;", "", -1},
  {"second bom kept", "\xEF\xBB\xBF\xEF\xBB\xBF" "data: b\n\n", "", "", -1},
  {"json with colons", "data: {\"a\":\"b:c\"}\n\n", "message||{\"a\":\"b:c\"};", "", -1},
  {"blank lines only", "\n\n\r\n\r", "", "", -1},
  {"interleaved", "event: message\nid: 1\ndata: {\"method\":\"n\"}\n\n"
                  "id: 2\ndata: {\"id\":1}\n\n",
   "message|1|{\"method\":\"n\"};message|2|{\"id\":1};", "2", -1},
};

typedef struct {
  char out[4096];
  size_t n;
  int stop_after;  /* stop once this many events arrived (0: never) */
  int seen;
} sink;

static int collect(void *ud, const sse_event *ev) {
  sink *s = ud;
  assert_int_equal(strlen(ev->data), ev->data_len);
  s->n += (size_t)snprintf(s->out + s->n, sizeof s->out - s->n, "%s|%s|%s;", ev->event, ev->id, ev->data);
  s->seen++;
  return s->stop_after && s->seen >= s->stop_after;
}

/* Feeds the input in pieces cut at the given offsets. */
static void run_split(const sse_case *c, size_t a, size_t b) {
  size_t len = strlen(c->in);
  sse_parser p;
  sink s = {0};
  sse_init(&p, 4096);
  size_t cuts[4] = {0, a, b, len};
  for (int k = 0; k < 3; k++)
    assert_int_equal(sse_feed(&p, c->in + cuts[k], cuts[k + 1] - cuts[k], collect, &s), SSE_OK);
  if (strcmp(s.out, c->want) != 0 || strcmp(sse_last_id(&p), c->last_id) != 0 || sse_retry(&p) != c->retry) {
    print_error("case '%s' split at %zu,%zu: got '%s' id '%s' retry %ld\n", c->name, a, b, s.out,
                sse_last_id(&p), sse_retry(&p));
    fail();
  }
  sse_free(&p);
}

static void test_table_splits(void **st) {
  (void)st;
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    size_t len = strlen(cases[i].in);
    for (size_t a = 0; a <= len; a++)
      for (size_t b = a; b <= len; b++) run_split(&cases[i], a, b);
  }
}

static void test_byte_by_byte(void **st) {
  (void)st;
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    const sse_case *c = &cases[i];
    sse_parser p;
    sink s = {0};
    sse_init(&p, 4096);
    for (size_t k = 0; c->in[k]; k++) assert_int_equal(sse_feed(&p, c->in + k, 1, collect, &s), SSE_OK);
    if (strcmp(s.out, c->want) != 0) {
      print_error("case '%s' byte by byte: got '%s'\n", c->name, s.out);
      fail();
    }
    sse_free(&p);
  }
}

static void test_stop(void **st) {
  (void)st;
  const char *in = "data: 1\n\ndata: 2\n\ndata: 3\n\n";
  sse_parser p;
  sink s = {.stop_after = 2};
  sse_init(&p, 4096);
  assert_int_equal(sse_feed(&p, in, strlen(in), collect, &s), SSE_STOP);
  assert_string_equal(s.out, "message||1;message||2;");
  /* the rest can still be fed after a stop */
  s.stop_after = 0;
  assert_int_equal(sse_feed(&p, "data: 4\n\n", 9, collect, &s), SSE_OK);
  assert_string_equal(s.out, "message||1;message||2;message||4;");
  sse_free(&p);
}

static void test_limits(void **st) {
  (void)st;
  sse_parser p;
  sink s = {0};
  char big[200];
  memset(big, 'x', sizeof big);
  /* one long line in pieces */
  sse_init(&p, 64);
  assert_int_equal(sse_feed(&p, "data: ", 6, collect, &s), SSE_OK);
  assert_int_equal(sse_feed(&p, big, sizeof big, collect, &s), SSE_TOO_LARGE);
  assert_int_equal(sse_feed(&p, "\n\n", 2, collect, &s), SSE_TOO_LARGE); /* sticky */
  sse_free(&p);
  /* one long line in a single piece */
  sse_init(&p, 64);
  char line[100];
  memset(line, 'y', sizeof line);
  line[sizeof line - 1] = '\n';
  assert_int_equal(sse_feed(&p, line, sizeof line, collect, &s), SSE_TOO_LARGE);
  sse_free(&p);
  /* many short data lines add up */
  sse_init(&p, 64);
  int rc = SSE_OK;
  for (int i = 0; i < 20 && rc == SSE_OK; i++) rc = sse_feed(&p, "data: 0123456\n", 14, collect, &s);
  assert_int_equal(rc, SSE_TOO_LARGE);
  assert_int_equal(s.seen, 0);
  sse_free(&p);
  /* comments do not accumulate */
  sse_init(&p, 64);
  for (int i = 0; i < 1000; i++) assert_int_equal(sse_feed(&p, ": ping\n", 7, collect, &s), SSE_OK);
  sse_free(&p);
}

static void test_nul_in_id(void **st) {
  (void)st;
  static const char in[] = "id: a\0b\ndata: x\n\n";
  sse_parser p;
  sink s = {0};
  sse_init(&p, 4096);
  assert_int_equal(sse_feed(&p, in, sizeof in - 1, collect, &s), SSE_OK);
  assert_string_equal(s.out, "message||x;"); /* the id with a NUL was ignored */
  sse_free(&p);
}

int main(void) {
  const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_table_splits),
    cmocka_unit_test(test_byte_by_byte),
    cmocka_unit_test(test_stop),
    cmocka_unit_test(test_limits),
    cmocka_unit_test(test_nul_in_id),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
