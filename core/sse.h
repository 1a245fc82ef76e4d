/* sse.h: incremental Server-Sent Events parser (WHATWG event-stream rules).
 * Bytes may arrive split anywhere; events are handed out as they complete. */
#ifndef MCPL_SSE_H
#define MCPL_SSE_H

#include <stddef.h>

enum {
  SSE_OK = 0,
  SSE_STOP = 1,       /* the callback asked to stop */
  SSE_TOO_LARGE = 2,  /* a line or an event exceeded max_event */
  SSE_NOMEM = 3
};

typedef struct {
  const char *event;  /* event type; "message" when the stream named none */
  const char *data;   /* data lines joined with "\n", NUL-terminated */
  size_t data_len;
  const char *id;     /* the last event ID in force ("" when none) */
  int has_id;         /* this event carried an id field itself */
} sse_event;

/* Return non-zero to stop parsing (sse_feed then returns SSE_STOP). */
typedef int (*sse_cb)(void *ud, const sse_event *ev);

typedef struct {
  size_t max_event;   /* cap on one line and on one event's data */
  char *line;         /* the line being read */
  size_t line_len, line_cap;
  char *data;         /* data buffer of the event being built */
  size_t data_len, data_cap;
  int has_data;       /* a data field was seen (an empty one counts) */
  char *type;         /* event type buffer (NULL: none) */
  char *last_id;      /* last event ID buffer (persists across events) */
  int event_has_id;
  long retry_ms;      /* last valid retry field, -1 when none */
  int after_cr;       /* the previous byte was CR: a following LF is eaten */
  int started;        /* past the optional leading BOM */
  size_t bom_seen;    /* bytes of a leading BOM matched so far */
  int failed;         /* sticky: SSE_TOO_LARGE or SSE_NOMEM once hit */
  unsigned long events;  /* events dispatched so far */
} sse_parser;

void sse_init(sse_parser *p, size_t max_event);
void sse_free(sse_parser *p);
/* Feeds len bytes; cb runs for each completed event. Returns SSE_OK,
 * SSE_STOP, SSE_TOO_LARGE or SSE_NOMEM (the latter two are sticky). */
int sse_feed(sse_parser *p, const char *buf, size_t len, sse_cb cb, void *ud);
/* The last event ID in force ("" when none) and the retry value (-1). */
const char *sse_last_id(const sse_parser *p);
long sse_retry(const sse_parser *p);

#endif
