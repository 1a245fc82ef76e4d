/* sse.c: incremental Server-Sent Events parser (WHATWG event-stream rules).
 * Untrusted bytes: every buffer is bounded by max_event, failures are sticky. */
#include <assert.h>
#include <stdlib.h>
#include <string.h>
#include "sse.h"

#define SSE_RETRY_MAX 86400000L /* a day; larger values are clamped */

void sse_init(sse_parser *p, size_t max_event) {
  memset(p, 0, sizeof *p);
  p->max_event = max_event ? max_event : 1024 * 1024;
  p->retry_ms = -1;
}

void sse_free(sse_parser *p) {
  free(p->line);
  free(p->data);
  free(p->type);
  free(p->last_id);
  memset(p, 0, sizeof *p);
}

const char *sse_last_id(const sse_parser *p) { return p->last_id ? p->last_id : ""; }
long sse_retry(const sse_parser *p) { return p->retry_ms; }

/* Grows *buf to hold need bytes plus a NUL. */
static int reserve(char **buf, size_t *cap, size_t need) {
  if (need + 1 <= *cap) return 0;
  size_t n = *cap ? *cap : 256;
  while (n < need + 1) n *= 2;
  char *nb = realloc(*buf, n);
  if (!nb) return -1;
  *buf = nb;
  *cap = n;
  return 0;
}

static char *dup_n(const char *s, size_t n) {
  char *d = malloc(n + 1);
  if (!d) return NULL;
  memcpy(d, s, n);
  d[n] = 0;
  return d;
}

static int dispatch(sse_parser *p, sse_cb cb, void *ud) {
  int rc = SSE_OK;
  if (p->has_data) {
    /* The data buffer ends with the LF appended after its last line. */
    assert(p->data_len == 0 || p->data[p->data_len - 1] == '\n');
    size_t n = p->data_len ? p->data_len - 1 : 0;
    if (p->data) p->data[n] = 0;
    sse_event ev = {
      .event = (p->type && p->type[0]) ? p->type : "message",
      .data = p->data ? p->data : "",
      .data_len = n,
      .id = sse_last_id(p),
      .has_id = p->event_has_id,
    };
    p->events++;
    if (cb && cb(ud, &ev) != 0) rc = SSE_STOP;
  }
  p->data_len = 0;
  p->has_data = 0;
  p->event_has_id = 0;
  free(p->type);
  p->type = NULL;
  return rc;
}

/* One complete line (without its terminator). */
static int process_line(sse_parser *p, const char *s, size_t n, sse_cb cb, void *ud) {
  if (n == 0) return dispatch(p, cb, ud);
  if (s[0] == ':') return SSE_OK; /* comment, e.g. a keep-alive */
  const char *colon = memchr(s, ':', n);
  size_t flen = colon ? (size_t)(colon - s) : n;
  const char *v = colon ? colon + 1 : s + n;
  size_t vlen = colon ? n - flen - 1 : 0;
  if (vlen && *v == ' ') { v++; vlen--; }
  if (flen == 4 && memcmp(s, "data", 4) == 0) {
    if (p->data_len + vlen + 1 > p->max_event) return SSE_TOO_LARGE;
    if (reserve(&p->data, &p->data_cap, p->data_len + vlen + 1) != 0) return SSE_NOMEM;
    memcpy(p->data + p->data_len, v, vlen);
    p->data_len += vlen;
    p->data[p->data_len++] = '\n';
    p->data[p->data_len] = 0;
    p->has_data = 1;
  } else if (flen == 5 && memcmp(s, "event", 5) == 0) {
    char *t = dup_n(v, vlen);
    if (!t) return SSE_NOMEM;
    free(p->type);
    p->type = t;
  } else if (flen == 2 && memcmp(s, "id", 2) == 0) {
    if (memchr(v, 0, vlen)) return SSE_OK; /* ids with NUL are ignored */
    char *t = dup_n(v, vlen);
    if (!t) return SSE_NOMEM;
    free(p->last_id);
    p->last_id = t;
    p->event_has_id = 1;
  } else if (flen == 5 && memcmp(s, "retry", 5) == 0) {
    if (vlen == 0) return SSE_OK;
    long r = 0;
    for (size_t i = 0; i < vlen; i++) {
      if (v[i] < '0' || v[i] > '9') return SSE_OK; /* not all digits: ignored */
      if (r <= SSE_RETRY_MAX) r = r * 10 + (v[i] - '0');
    }
    p->retry_ms = r > SSE_RETRY_MAX ? SSE_RETRY_MAX : r;
  }
  /* other fields are ignored */
  return SSE_OK;
}

static int append_line(sse_parser *p, const char *s, size_t n) {
  if (p->line_len + n > p->max_event) return SSE_TOO_LARGE;
  if (reserve(&p->line, &p->line_cap, p->line_len + n) != 0) return SSE_NOMEM;
  memcpy(p->line + p->line_len, s, n);
  p->line_len += n;
  return SSE_OK;
}

int sse_feed(sse_parser *p, const char *buf, size_t len, sse_cb cb, void *ud) {
  static const unsigned char bom[3] = {0xEF, 0xBB, 0xBF};
  if (p->failed) return p->failed;
  size_t i = 0;
  /* A single leading BOM is skipped, even when split across feeds. */
  while (!p->started && i < len) {
    if ((unsigned char)buf[i] == bom[p->bom_seen]) {
      i++;
      if (++p->bom_seen == 3) p->started = 1;
      continue;
    }
    p->started = 1;
    if (p->bom_seen) {
      /* A partial BOM was ordinary data after all. */
      int rc = append_line(p, (const char *)bom, p->bom_seen);
      if (rc) return p->failed = rc;
    }
  }
  while (i < len) {
    if (p->after_cr) {
      p->after_cr = 0;
      if (buf[i] == '\n') { i++; continue; }
    }
    const char *s = buf + i;
    size_t rest = len - i, k = 0;
    while (k < rest && s[k] != '\n' && s[k] != '\r') k++;
    if (k == rest) { /* no terminator yet: keep the partial line */
      int rc = append_line(p, s, k);
      if (rc) return p->failed = rc;
      break;
    }
    int rc;
    if (p->line_len) {
      if ((rc = append_line(p, s, k)) != 0) return p->failed = rc;
      rc = process_line(p, p->line, p->line_len, cb, ud);
      p->line_len = 0;
    } else {
      if (k > p->max_event) return p->failed = SSE_TOO_LARGE;
      rc = process_line(p, s, k, cb, ud);
    }
    if (s[k] == '\r') p->after_cr = 1;
    i += k + 1;
    if (rc == SSE_STOP) return SSE_STOP;
    if (rc) return p->failed = rc;
  }
  return SSE_OK;
}
