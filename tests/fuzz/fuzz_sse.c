/* fuzz_sse.c: libFuzzer target for the SSE parser: arbitrary bytes fed whole
 * and again in pieces must give the same events, within the size limit. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "../../core/sse.c" /* one translation unit: the fuzz rule links no engine */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct {
  unsigned long n;
  unsigned long hash;
} fz_sink;

static int fz_collect(void *ud, const sse_event *ev) {
  fz_sink *s = ud;
  if (ev->data[ev->data_len] != 0) abort();      /* NUL-terminated (data may hold NULs) */
  if (ev->data_len > 256) abort();               /* the limit holds */
  s->n++;
  for (size_t i = 0; i < ev->data_len; i++) s->hash = s->hash * 31 + (unsigned char)ev->data[i];
  for (const char *p = ev->event; *p; p++) s->hash = s->hash * 17 + (unsigned char)*p;
  for (const char *p = ev->id; *p; p++) s->hash = s->hash * 13 + (unsigned char)*p;
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  sse_parser a, b;
  fz_sink sa = {0, 0}, sb = {0, 0};
  sse_init(&a, 256);
  sse_init(&b, 256);
  int ra = sse_feed(&a, (const char *)data, size, fz_collect, &sa);
  /* the same bytes cut at positions taken from the input itself */
  size_t i = 0, step = size ? (data[0] % 7) + 1 : 1;
  int rb = SSE_OK;
  while (i < size && rb == SSE_OK) {
    size_t k = size - i < step ? size - i : step;
    rb = sse_feed(&b, (const char *)data + i, k, fz_collect, &sb);
    i += k;
    step = (step * 5 + 3) % 11 + 1;
  }
  if (ra != rb) abort();
  if (ra == SSE_OK && (sa.n != sb.n || sa.hash != sb.hash)) abort();
  if (ra == SSE_OK && (strcmp(sse_last_id(&a), sse_last_id(&b)) != 0 || sse_retry(&a) != sse_retry(&b))) abort();
  sse_free(&a);
  sse_free(&b);
  return 0;
}
