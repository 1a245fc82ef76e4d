/* raw_floor.c: the floor for the benchmarks: the same MCP JSON-RPC exchange as the engine, by
 * hand, with one keep-alive libcurl handle and no engine at all. */
/* Usage: raw_floor call URL [--era modern|legacy] [--n N] [--threads T] [--ca FILE] [--api-key K] [--label L]
 *        raw_floor discover URL [--ca FILE] [--api-key K] [--label L] [--reps R]
 * Prints result lines "@ LABEL key=value ..." (see bench/run.sh): calls/s, p50/p99 latency,
 * CPU µs per call and peak RSS; for discover the wall and CPU time of fetching every page.
 * --threads T (modern era): T threads, each with its own handle, share the N calls: what the
 * machine itself gives from more threads, beside the engine's 8-thread row. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <curl/curl.h>
#include "bench_util.h"

typedef struct {
  char *p;
  size_t n, cap;
} rf_buf;

static size_t rf_body(char *d, size_t sz, size_t nm, void *ud) {
  rf_buf *b = ud;
  size_t n = sz * nm;
  if (b->n + n + 1 > b->cap) {
    size_t c = b->cap ? b->cap * 2 : 65536;
    while (c < b->n + n + 1) c *= 2;
    char *q = realloc(b->p, c);
    if (!q) return 0;
    b->p = q;
    b->cap = c;
  }
  memcpy(b->p + b->n, d, n);
  b->n += n;
  b->p[b->n] = 0;
  return n;
}

static char rf_session[128];

static size_t rf_head(char *d, size_t sz, size_t nm, void *ud) {
  size_t n = sz * nm;
  (void)ud;
  if (n > 16 && strncasecmp(d, "mcp-session-id:", 15) == 0) {
    const char *v = d + 15;
    while (*v == ' ') v++;
    size_t l = (size_t)(d + n - v);
    while (l && (v[l - 1] == '\r' || v[l - 1] == '\n')) l--;
    if (l < sizeof rf_session) { memcpy(rf_session, v, l); rf_session[l] = 0; }
  }
  return n;
}

typedef struct {
  CURL *h;
  rf_buf out;
  const char *url, *api_key;
  int modern;
} rf_client;

/* one POST; returns the HTTP status, the body in c->out */
static long rf_post(rf_client *c, const char *method, const char *name, const char *body) {
  struct curl_slist *hl = NULL;
  char line[512];
  hl = curl_slist_append(hl, "Content-Type: application/json");
  hl = curl_slist_append(hl, "Accept: application/json, text/event-stream");
  if (c->api_key) { snprintf(line, sizeof line, "Authorization: Bearer %s", c->api_key); hl = curl_slist_append(hl, line); }
  if (c->modern) {
    hl = curl_slist_append(hl, "MCP-Protocol-Version: 2026-07-28");
    snprintf(line, sizeof line, "Mcp-Method: %s", method);
    hl = curl_slist_append(hl, line);
    if (name) { snprintf(line, sizeof line, "Mcp-Name: %s", name); hl = curl_slist_append(hl, line); }
  } else if (rf_session[0]) {
    hl = curl_slist_append(hl, "MCP-Protocol-Version: 2025-11-25");
    snprintf(line, sizeof line, "Mcp-Session-Id: %s", rf_session);
    hl = curl_slist_append(hl, line);
  }
  c->out.n = 0;
  curl_easy_setopt(c->h, CURLOPT_HTTPHEADER, hl);
  curl_easy_setopt(c->h, CURLOPT_POSTFIELDS, body);
  curl_easy_setopt(c->h, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
  long status = 0;
  CURLcode rc = curl_easy_perform(c->h);
  curl_easy_getinfo(c->h, CURLINFO_RESPONSE_CODE, &status);
  curl_slist_free_all(hl);
  if (rc != CURLE_OK) { fprintf(stderr, "raw_floor: %s\n", curl_easy_strerror(rc)); exit(1); }
  return status;
}

static const char rf_meta[] =
  "\"_meta\":{\"io.modelcontextprotocol/protocolVersion\":\"2026-07-28\","
  "\"io.modelcontextprotocol/clientInfo\":{\"name\":\"raw-floor\",\"version\":\"1\"},"
  "\"io.modelcontextprotocol/clientCapabilities\":{}}";

static void rf_init(rf_client *c, const char *url, const char *ca, const char *key, int modern) {
  c->h = curl_easy_init();
  c->url = url;
  c->api_key = key;
  c->modern = modern;
  curl_easy_setopt(c->h, CURLOPT_URL, url);
  curl_easy_setopt(c->h, CURLOPT_WRITEFUNCTION, rf_body);
  curl_easy_setopt(c->h, CURLOPT_WRITEDATA, &c->out);
  curl_easy_setopt(c->h, CURLOPT_HEADERFUNCTION, rf_head);
  curl_easy_setopt(c->h, CURLOPT_NOPROXY, "*");
  curl_easy_setopt(c->h, CURLOPT_TCP_NODELAY, 1L);
  if (ca) curl_easy_setopt(c->h, CURLOPT_CAINFO, ca);
  if (!modern) {
    /* the handshake once, as any session client does */
    rf_post(c, "initialize", NULL,
            "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"initialize\",\"params\":{\"protocolVersion\":\"2025-11-25\","
            "\"capabilities\":{},\"clientInfo\":{\"name\":\"raw-floor\",\"version\":\"1\"}}}");
    rf_post(c, "notifications/initialized", NULL, "{\"jsonrpc\":\"2.0\",\"method\":\"notifications/initialized\"}");
  }
}

static void rf_call(rf_client *c, long id) {
  char body[1024];
  snprintf(body, sizeof body,
           "{\"jsonrpc\":\"2.0\",\"id\":%ld,\"method\":\"tools/call\",\"params\":{\"name\":\"echo\","
           "\"arguments\":{\"text\":\"hello\"}%s%s}}", id, c->modern ? "," : "", c->modern ? rf_meta : "");
  long st = rf_post(c, "tools/call", "echo", body);
  /* the same checks a client makes: status, our id, a result with the echoed text */
  char want[48], want2[48];
  snprintf(want, sizeof want, "\"id\":%ld,", id);
  snprintf(want2, sizeof want2, "\"id\":%ld}", id);
  if (st != 200 || !(strstr(c->out.p, want) || strstr(c->out.p, want2)) || !strstr(c->out.p, "\"result\":") ||
      !strstr(c->out.p, "hello")) {
    fprintf(stderr, "raw_floor: bad reply (HTTP %ld): %.300s\n", st, c->out.p ? c->out.p : "");
    exit(1);
  }
}

/* fetches every tools/list page; returns the number of tools seen */
static long rf_list(rf_client *c, long *pages) {
  char body[1024], cursor[64] = "";
  long tools = 0, id = 100;
  *pages = 0;
  do {
    if (cursor[0])
      snprintf(body, sizeof body, "{\"jsonrpc\":\"2.0\",\"id\":%ld,\"method\":\"tools/list\",\"params\":{\"cursor\":\"%s\"%s%s}}",
               ++id, cursor, c->modern ? "," : "", c->modern ? rf_meta : "");
    else
      snprintf(body, sizeof body, "{\"jsonrpc\":\"2.0\",\"id\":%ld,\"method\":\"tools/list\",\"params\":{%s}}", ++id,
               c->modern ? rf_meta : "");
    if (rf_post(c, "tools/list", NULL, body) != 200) { fprintf(stderr, "raw_floor: tools/list failed\n"); exit(1); }
    (*pages)++;
    for (const char *p = c->out.p; (p = strstr(p, "{\"name\":\"")); p += 9) tools++;
    const char *nc = strstr(c->out.p, "\"nextCursor\":\"");
    cursor[0] = 0;
    if (nc) {
      nc += 14;
      size_t i = 0;
      while (nc[i] && nc[i] != '"' && i + 1 < sizeof cursor) { cursor[i] = nc[i]; i++; }
      cursor[i] = 0;
    }
  } while (cursor[0]);
  return tools;
}

typedef struct {
  const char *url, *ca, *key;
  double *lat;
  int n;
} rf_worker;

static void *rf_work(void *p) {
  rf_worker *w = p;
  rf_client c = {0};
  rf_init(&c, w->url, w->ca, w->key, 1);
  for (int i = 0; i < w->n / 10 + 5; i++) rf_call(&c, 10 + i);
  for (int i = 0; i < w->n; i++) {
    double s = bu_now_us();
    rf_call(&c, 100000 + i);
    w->lat[i] = bu_now_us() - s;
  }
  curl_easy_cleanup(c.h);
  free(c.out.p);
  return NULL;
}

/* T threads with a handle each: calls/s of them all, latencies of every call */
static int rf_threads(const char *label, const char *url, const char *ca, const char *key, int n, int t) {
  rf_worker w[64];
  pthread_t th[64];
  int per = n / t;
  double *lat = malloc(sizeof(double) * (size_t)(per * t));
  bu_cpu cpu0 = bu_cpu_now();
  double t0 = bu_now_us();
  for (int i = 0; i < t; i++) {
    w[i] = (rf_worker){url, ca, key, lat + (size_t)i * (size_t)per, per};
    if (pthread_create(&th[i], NULL, rf_work, &w[i]) != 0) { perror("pthread_create"); return 1; }
  }
  for (int i = 0; i < t; i++) pthread_join(th[i], NULL);
  double wall = bu_now_us() - t0;
  bu_report_calls(label, lat, per * t, wall, bu_cpu_since(cpu0));
  free(lat);
  return 0;
}

int main(int argc, char **argv) {
  if (argc < 3) { fprintf(stderr, "usage: raw_floor call|discover URL [options]\n"); return 2; }
  const char *mode = argv[1], *url = argv[2], *ca = NULL, *key = NULL, *label = "raw";
  int n = 2000, modern = 1, reps = 1, threads = 1;
  for (int i = 3; i + 1 < argc; i += 2) {
    if (strcmp(argv[i], "--n") == 0) n = atoi(argv[i + 1]);
    else if (strcmp(argv[i], "--ca") == 0) ca = argv[i + 1];
    else if (strcmp(argv[i], "--api-key") == 0) key = argv[i + 1];
    else if (strcmp(argv[i], "--label") == 0) label = argv[i + 1];
    else if (strcmp(argv[i], "--reps") == 0) reps = atoi(argv[i + 1]);
    else if (strcmp(argv[i], "--threads") == 0) threads = atoi(argv[i + 1]);
    else if (strcmp(argv[i], "--era") == 0) modern = strcmp(argv[i + 1], "legacy") != 0;
    else { fprintf(stderr, "raw_floor: unknown option %s\n", argv[i]); return 2; }
  }
  curl_global_init(CURL_GLOBAL_DEFAULT);
  if (threads > 1) {
    if (strcmp(mode, "call") != 0 || !modern || threads > 64) {
      fprintf(stderr, "raw_floor: --threads is for call on a modern-era server, at most 64\n");
      return 2;
    }
    int rc = rf_threads(label, url, ca, key, n < 10 * threads ? 10 * threads : n, threads);
    fflush(stdout);
    curl_global_cleanup();
    return rc;
  }
  rf_client c = {0};
  rf_init(&c, url, ca, key, modern);
  if (strcmp(mode, "call") == 0) {
    if (n < 10) n = 10;
    double *lat = malloc(sizeof(double) * (size_t)n);
    for (int i = 0; i < n / 10 + 5; i++) rf_call(&c, 10 + i); /* warm: connection, TLS session */
    bu_cpu cpu0 = bu_cpu_now();
    double t0 = bu_now_us();
    for (int i = 0; i < n; i++) {
      double s = bu_now_us();
      rf_call(&c, 100000 + i);
      lat[i] = bu_now_us() - s;
    }
    double wall = bu_now_us() - t0;
    bu_report_calls(label, lat, n, wall, bu_cpu_since(cpu0));
    free(lat);
  } else if (strcmp(mode, "discover") == 0) {
    for (int r = 0; r < reps; r++) {
      long pages = 0;
      bu_cpu cpu0 = bu_cpu_now();
      double t0 = bu_now_us();
      long tools = rf_list(&c, &pages);
      double wall = bu_now_us() - t0;
      printf("@ %s wall_ms=%.2f cpu_ms=%.2f tools=%ld pages=%ld rss_kb=%ld\n", label, wall / 1000,
             bu_cpu_since(cpu0) / 1000, tools, pages, bu_rss_kb());
    }
  } else {
    fprintf(stderr, "raw_floor: unknown mode %s\n", mode);
    return 2;
  }
  fflush(stdout);
  curl_easy_cleanup(c.h);
  free(c.out.p);
  curl_global_cleanup();
  return 0;
}
