/* http_resolve.c: name lookups for outbound requests, bounded by a deadline
 * and the call's cancellation; tests may inject the resolver. */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "http.h"

static _Atomic(http_resolve_fn) resolve_fn = NULL;
static _Atomic(http_free_fn) free_fn = NULL;

void http_set_resolver(http_resolve_fn fn, http_free_fn ffn) {
  atomic_store(&free_fn, fn ? ffn : NULL);
  atomic_store(&resolve_fn, fn);
}

/* One lookup runs in its own detached thread: getaddrinfo has no timeout,
 * so a caller that gives up leaves the thread to finish and free the job. */
struct job {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int refs, done, rc;
  http_resolve_fn fn;
  http_free_fn ffn;
  char host[256], port[8];
  struct addrinfo *res;
};

static void job_release(struct job *j) {
  pthread_mutex_lock(&j->mu);
  int last = --j->refs == 0;
  pthread_mutex_unlock(&j->mu);
  if (!last) return;
  if (j->res) j->ffn ? j->ffn(j->res) : freeaddrinfo(j->res);
  pthread_mutex_destroy(&j->mu);
  pthread_cond_destroy(&j->cv);
  free(j);
}

static void *job_run(void *p) {
  struct job *j = p;
  struct addrinfo hints, *res = NULL;
  memset(&hints, 0, sizeof hints);
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  int rc = j->fn ? j->fn(j->host, j->port, &hints, &res) : getaddrinfo(j->host, j->port, &hints, &res);
  pthread_mutex_lock(&j->mu);
  j->rc = rc;
  j->res = res;
  j->done = 1;
  pthread_cond_broadcast(&j->cv);
  pthread_mutex_unlock(&j->mu);
  job_release(j);
  return NULL;
}

long http_now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

struct http_lookup *http_lookup_start(const char *host, int port) {
  if (strlen(host) >= sizeof ((struct job *)0)->host) return NULL;
  struct job *j = calloc(1, sizeof *j);
  if (!j) return NULL;
  pthread_mutex_init(&j->mu, NULL);
  pthread_cond_init(&j->cv, NULL);
  j->refs = 2;
  j->fn = atomic_load(&resolve_fn);
  j->ffn = atomic_load(&free_fn);
  snprintf(j->host, sizeof j->host, "%s", host);
  snprintf(j->port, sizeof j->port, "%d", port);
  pthread_t t;
  pthread_attr_t at;
  pthread_attr_init(&at);
  pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
  int prc = pthread_create(&t, &at, job_run, j);
  pthread_attr_destroy(&at);
  if (prc != 0) {
    j->refs = 1;
    job_release(j);
    return NULL;
  }
  return (struct http_lookup *)j;
}

int http_lookup_wait(struct http_lookup *lk, mcpl_engine *e, long deadline_ms,
                     const mcpl_cancel *cancel, addr_t *out, size_t max, size_t *n,
                     char *reason, size_t rn) {
  struct job *j = (struct job *)lk;
  int rc = -1;
  *n = 0;
  if (!j) { snprintf(reason, rn, "dns_failure"); return -1; }
  pthread_mutex_lock(&j->mu);
  while (!j->done) {
    if (mcpl_cancel_requested(e, cancel)) { snprintf(reason, rn, "cancelled"); break; }
    long left = deadline_ms - http_now_ms();
    if (left <= 0) { snprintf(reason, rn, "timeout"); break; }
    if (left > 50) left = 50; /* wake up to notice cancellation */
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_nsec += left * 1000000L;
    ts.tv_sec += ts.tv_nsec / 1000000000L;
    ts.tv_nsec %= 1000000000L;
    pthread_cond_timedwait(&j->cv, &j->mu, &ts);
  }
  if (j->done) {
    snprintf(reason, rn, "dns_failure");
    if (j->rc == 0 && j->res) {
      int over = 0;
      for (struct addrinfo *ai = j->res; ai; ai = ai->ai_next) {
        addr_t a;
        if (addr_from_sockaddr(ai->ai_addr, ai->ai_addrlen, &a) != 0) continue;
        int dup = 0;
        for (size_t i = 0; i < *n; i++) dup |= memcmp(&out[i], &a, sizeof a) == 0;
        if (dup) continue;
        /* Every answer must be judged: more than we can hold is a failure,
         * never a silent truncation. */
        if (*n == max) { over = 1; break; }
        out[(*n)++] = a;
      }
      if (*n && !over) rc = 0;
    }
  }
  pthread_mutex_unlock(&j->mu);
  job_release(j);
  return rc;
}

int http_resolve(mcpl_engine *e, const char *host, int port, long timeout_ms,
                 const mcpl_cancel *cancel, addr_t *out, size_t max, size_t *n, char *reason,
                 size_t rn) {
  struct http_lookup *lk = http_lookup_start(host, port);
  return http_lookup_wait(lk, e, http_now_ms() + (timeout_ms > 0 ? timeout_ms : 10000), cancel,
                          out, max, n, reason, rn);
}
