/* http_transfer.c: runs guarded transfers through libcurl's multi interface.
 * Every answer for a name is judged, then pinned; the socket is judged again. */
#include <assert.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include "http.h"

#define DEF_CONNECT_MS 10000L
#define DEF_TIMEOUT_MS 30000L
/* libcurl gets each limit this much later than the loop enforces it: a
 * backstop only, so the engine's deadline is the one that ends a transfer. */
#define BACKSTOP_MS 5000L
#define POLL_MS 100L  /* the longest wait between checks of cancellation */
#define DEF_MAX_BODY (8u << 20)
#define DEF_MAX_HEADER (64u << 10)
#define IDLE_MAX 16    /* idle multi handles, and idle easy handles, kept */
#define MULTI_USES 1000

/* ---- engine-wide state ---------------------------------------------------- */

/* Handles kept for reuse, each with the number of times it has been used. */
struct idle_pool {
  void *h[IDLE_MAX];
  int uses[IDLE_MAX];
  int n;
};

struct http_state {
  CURLSH *share;      /* made before the first transfer (share_of) */
  pthread_mutex_t share_mu;
  pthread_mutex_t locks[CURL_LOCK_DATA_LAST];
  mcpl_engine *e;     /* the engine this state serves (its log) */
  char *ca_path;      /* the extra CA bundle (option ca_file), read when first needed */
  int ca_failed;      /* it was read and held no certificate OpenSSL could parse */
  STACK_OF(X509) *extra_ca;
  X509_STORE *trust;  /* system CAs + extra_ca, built once, shared by every TLS context */
  pthread_mutex_t trust_mu;
  /* Idle multi handles, reused by the next transfers: making one costs a
   * socket pair and its setup on every call. Each is used by one thread
   * at a time (taken out of here), and retired after MULTI_USES uses so
   * the names pinned in its DNS cache cannot pile up for ever. */
  pthread_mutex_t idle_mu;
  struct idle_pool multis;
  /* Idle easy handles (under idle_mu too), reset and reused: making one
   * costs more than the options set on it. Retired the same way. */
  struct idle_pool easies;
};

static void share_lock(CURL *h, curl_lock_data d, curl_lock_access a, void *ud) {
  (void)h; (void)a;
  pthread_mutex_lock(&((struct http_state *)ud)->locks[d]);
}

static void share_unlock(CURL *h, curl_lock_data d, void *ud) {
  (void)h;
  pthread_mutex_unlock(&((struct http_state *)ud)->locks[d]);
}

static void state_free(struct http_state *s) {
  if (!s) return;
  for (int i = 0; i < s->multis.n; i++) curl_multi_cleanup(s->multis.h[i]);
  for (int i = 0; i < s->easies.n; i++) curl_easy_cleanup(s->easies.h[i]);
  pthread_mutex_destroy(&s->idle_mu);
  if (s->share) curl_share_cleanup(s->share);
  for (int i = 0; i < CURL_LOCK_DATA_LAST; i++) pthread_mutex_destroy(&s->locks[i]);
  if (s->extra_ca) sk_X509_pop_free(s->extra_ca, X509_free);
  if (s->trust) X509_STORE_free(s->trust);
  free(s->ca_path);
  pthread_mutex_destroy(&s->trust_mu);
  pthread_mutex_destroy(&s->share_mu);
  free(s);
}

/* The extra CA bundle (option ca_file). When the engine opens it is only
 * checked (it can be read and holds a PEM certificate block): parsing it
 * takes OpenSSL (opened then, see dynlib.c) and its decoders' first-use
 * setup, ~10 M instructions that a command sending no request (`mcplink
 * server list`) does not need. It is parsed once, when the trust store is
 * first built; each new TLS context gets its certificates added to the
 * system trust store (added to, not replaced). */
/* A file without a block in its first million lines (pieces of at most 255
 * bytes: /dev/zero, a disk image) has none. */
#define CA_SCAN_LINES (1L << 20)
static int ca_check(const char *path, char *err, size_t en) {
  FILE *f = fopen(path, "r");
  if (!f) { snprintf(err, en, "ca_file '%s' cannot be read", path); return -1; }
  char line[256];
  int found = 0, at_start = 1;
  for (long i = 0; !found && i < CA_SCAN_LINES && fgets(line, sizeof line, f); i++) {
    if (at_start && (strncmp(line, "-----BEGIN CERTIFICATE-----", 27) == 0 ||
                     strncmp(line, "-----BEGIN X509 CERTIFICATE-----", 32) == 0))
      found = 1;
    at_start = strchr(line, '\n') != NULL; /* a long line comes in pieces */
  }
  int bad = ferror(f);
  fclose(f);
  if (bad) { snprintf(err, en, "ca_file '%s' cannot be read", path); return -1; }
  if (!found) { snprintf(err, en, "ca_file '%s' holds no PEM certificate", path); return -1; }
  return 0;
}

/* Parses the bundle (under trust_mu): 0, or -1 when it cannot be read now
 * or holds no certificate OpenSSL parses (logged; every request then fails
 * its TLS set-up rather than trust less than configured). */
static int load_ca(struct http_state *s) {
  if (s->extra_ca) return 0;
  if (s->ca_failed) return -1;
  FILE *f = fopen(s->ca_path, "r");
  STACK_OF(X509) *ca = f ? sk_X509_new_null() : NULL;
  X509 *x;
  while (ca && (x = PEM_read_X509(f, NULL, NULL, NULL)))
    if (!sk_X509_push(ca, x)) { X509_free(x); break; }
  ERR_clear_error(); /* the end of the file reads as an error */
  if (f) fclose(f);
  if (!ca || sk_X509_num(ca) == 0) {
    if (ca) sk_X509_pop_free(ca, X509_free);
    s->ca_failed = 1;
    mcpl_log(s->e, "error", "http: ca_file '%s' %s: TLS requests fail until the engine is opened with a good one",
             s->ca_path, f ? "holds no certificate OpenSSL can parse" : "cannot be read any more");
    return -1;
  }
  s->extra_ca = ca;
  return 0;
}

static struct http_state *state_new(const char *ca_file, char *err, size_t en) {
  if (ca_file && *ca_file && ca_check(ca_file, err, en) != 0) return NULL;
  struct http_state *s = calloc(1, sizeof *s);
  if (!s) { snprintf(err, en, "out of memory"); return NULL; }
  for (int i = 0; i < CURL_LOCK_DATA_LAST; i++) pthread_mutex_init(&s->locks[i], NULL);
  pthread_mutex_init(&s->trust_mu, NULL);
  pthread_mutex_init(&s->share_mu, NULL);
  pthread_mutex_init(&s->idle_mu, NULL);
  if (ca_file && *ca_file && !(s->ca_path = strdup(ca_file))) {
    snprintf(err, en, "out of memory");
    state_free(s);
    return NULL;
  }
  return s;
}

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static CURLcode global_rc = CURLE_OK;

/* curl_global_init is process-wide; it is never undone (other engines in
 * the process may still run). It runs before the first transfer, not when an
 * engine opens: it initialises OpenSSL's TLS side (reading its configuration),
 * which a command that makes no request (`mcplink server list`) never needs.
 * pthread_once makes the first transfers of many threads wait for one init. */
static void global_init(void) { global_rc = curl_global_init(CURL_GLOBAL_DEFAULT); }

static int global_ready(void) {
  pthread_once(&global_once, global_init);
  return global_rc == CURLE_OK;
}

int http_engine_init(mcpl_engine *e, char **err) {
  char msg[512];
  struct http_state *s = state_new(mcpl_engine_opt(e, "ca_file"), msg, sizeof msg);
  if (!s) {
    *err = mcpl_json_error("invalid_argument", msg, "ca_file");
    return -1;
  }
  s->e = e;
  mcpl_engine_set_slot(e, MCPL_AREA_HTTP, s);
  return 0;
}

void http_engine_fini(mcpl_engine *e) {
  state_free(mcpl_engine_slot(e, MCPL_AREA_HTTP));
  mcpl_engine_set_slot(e, MCPL_AREA_HTTP, NULL);
}

/* ---- one transfer ------------------------------------------------------- */

#define XFER_HDRS_INLINE 16

typedef struct {
  mcpl_engine *e;
  struct http_state *st;
  const http_request *rq;
  http_response *rs;
  CURL *h;
  int easy_uses;      /* of h, reused from the engine's idle handles */
  struct curl_slist *pin;
  /* the request's header lines as libcurl's list, its nodes here (or, for a
   * request with more lines, hdr_heap) and their text the request's own:
   * no allocation per line on every request */
  struct curl_slist hdr_inline[XFER_HDRS_INLINE], *hdr_heap;
  size_t body_cap, header_bytes;
  size_t max_body, max_header;
  int started;        /* the final response's headers were handed out */
  int blocked, too_large, cancelled, failed, done;
  int connected;      /* a connection is up for the request (prereq ran) */
  struct http_lookup *lookup;
  long connect_ms, total_ms;
  long connect_deadline, deadline;  /* absolute, http_now_ms() */
  addr_t addrs[HTTP_MAX_ADDRS];  /* every answer, as judged */
  size_t naddrs;
} xfer;

static void set_err(http_response *rs, const char *code, const char *reason, const char *fmt,
                    ...) __attribute__((format(printf, 4, 5)));
static void set_err(http_response *rs, const char *code, const char *reason, const char *fmt,
                    ...) {
  va_list ap;
  rs->code = code;
  snprintf(rs->reason, sizeof rs->reason, "%s", reason);
  va_start(ap, fmt);
  vsnprintf(rs->message, sizeof rs->message, fmt, ap);
  va_end(ap);
}

static int cancelled(xfer *x) { return mcpl_cancel_requested(x->e, x->rq->cancel); }

static void headers_clear(http_response *rs) {
  for (size_t i = 0; i < rs->nheaders; i++) free(rs->headers[i].name); /* and its value */
  free(rs->headers);
  rs->headers = NULL;
  rs->nheaders = 0;
}

void http_response_free(http_response *rs) {
  if (!rs) return;
  headers_clear(rs);
  free(rs->body);
  rs->body = NULL;
}

const char *http_response_header(const http_response *rs, const char *name) {
  for (size_t i = 0; rs && i < rs->nheaders; i++)
    if (strcmp(rs->headers[i].name, name) == 0) return rs->headers[i].value;
  return NULL;
}

/* The connect-time check: curl calls this for every address it tries. */
static curl_socket_t on_opensocket(void *ud, curlsocktype purpose, struct curl_sockaddr *sa) {
  xfer *x = ud;
  addr_t a;
  const char *block = NULL;
  if (purpose != CURLSOCKTYPE_IPCXN ||
      addr_from_sockaddr(&sa->addr, sa->addrlen, &a) != 0) {
    x->blocked = 1;
    set_err(x->rs, "url_blocked", "address_family", "refused a non-IP socket");
    return CURL_SOCKET_BAD;
  }
  if (!addr_guard_allows(&x->rq->guard, &a, x->rs->reason, sizeof x->rs->reason, &block)) {
    x->blocked = 1;
    x->rs->code = "url_blocked";
    snprintf(x->rs->message, sizeof x->rs->message, "connection to %s refused (%s)",
             x->rs->reason + strlen("private_address "), block);
    return CURL_SOCKET_BAD;
  }
  return socket(sa->family, sa->socktype | SOCK_CLOEXEC, sa->protocol);
}

/* Runs before every request, also on a reused connection: the connection
 * may have been opened for another request under another decision. */
static int on_prereq(void *ud, char *primary_ip, char *local_ip, int primary_port,
                     int local_port) {
  (void)local_ip; (void)primary_port; (void)local_port;
  xfer *x = ud;
  addr_t a;
  const char *block = NULL;
  int zoned;
  if (addr_parse(primary_ip, &a, &zoned) != 0 ||
      !addr_guard_allows(&x->rq->guard, &a, x->rs->reason, sizeof x->rs->reason, &block)) {
    x->blocked = 1;
    x->rs->code = "url_blocked";
    snprintf(x->rs->message, sizeof x->rs->message, "connection to %s refused (%s)", primary_ip,
             block ? block : "not an address");
    return CURL_PREREQFUNC_ABORT;
  }
  x->connected = 1;
  return CURL_PREREQFUNC_OK;
}

static int on_progress(void *ud, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un) {
  (void)dt; (void)dn; (void)ut; (void)un;
  xfer *x = ud;
  if (cancelled(x)) { x->cancelled = 1; return 1; }
  if (x->rq->on_tick && x->rq->on_tick(x->rq->ud)) { x->cancelled = 1; return 1; }
  return 0;
}

static int add_header(http_response *rs, const char *line, size_t n) {
  const char *colon = memchr(line, ':', n);
  if (!colon || colon == line) return 0; /* not a field line: ignore */
  size_t nl = (size_t)(colon - line);
  const char *v = colon + 1, *end = line + n;
  while (v < end && (*v == ' ' || *v == '\t')) v++;
  while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' ' || end[-1] == '\t')) end--;
  /* the list grows to 8, then doubles at each power of two */
  size_t have = rs->nheaders;
  if (have == 0 || (have >= 8 && (have & (have - 1)) == 0)) {
    http_header *nh = realloc(rs->headers, (have ? 2 * have : 8) * sizeof *nh);
    if (!nh) return -1;
    rs->headers = nh;
  }
  /* one block per field: its name, then its value (freed by the name) */
  char *name = malloc(nl + 1 + (size_t)(end - v) + 1);
  if (!name) return -1;
  char *val = name + nl + 1;
  for (size_t i = 0; i < nl; i++) {
    char c = line[i];
    name[i] = (c >= 'A' && c <= 'Z') ? (char)(c + 32) : c;
  }
  name[nl] = 0;
  memcpy(val, v, (size_t)(end - v));
  val[end - v] = 0;
  rs->headers[rs->nheaders].name = name;
  rs->headers[rs->nheaders].value = val;
  rs->nheaders++;
  return 0;
}

/* Headers of the final response are handed to on_response once complete. */
static int headers_done(xfer *x) {
  if (x->started) return 0;
  x->started = 1;
  long v = 0;
  curl_easy_getinfo(x->h, CURLINFO_RESPONSE_CODE, &x->rs->status);
  curl_easy_getinfo(x->h, CURLINFO_HTTP_VERSION, &v);
  x->rs->http_version = v == CURL_HTTP_VERSION_2_0 ? 2 : 1;
  if (x->rq->on_response && x->rq->on_response(x->rq->ud, x->rs) != 0) {
    x->cancelled = 1;
    return -1;
  }
  return 0;
}

static size_t on_header(char *data, size_t size, size_t n, void *ud) {
  xfer *x = ud;
  size_t len = size * n;
  x->header_bytes += len;
  if (x->header_bytes > x->max_header) {
    x->too_large = 1;
    set_err(x->rs, "too_large", "headers", "response headers exceed %zu bytes", x->max_header);
    return 0;
  }
  if (len >= 5 && memcmp(data, "HTTP/", 5) == 0) {
    headers_clear(x->rs); /* a new response: 1xx, or after a proxy CONNECT */
    return len;
  }
  if (len <= 2 && (data[0] == '\r' || data[0] == '\n')) {
    long code = 0;
    curl_easy_getinfo(x->h, CURLINFO_RESPONSE_CODE, &code);
    if (code >= 200 && headers_done(x) != 0) return 0;
    return len;
  }
  if (add_header(x->rs, data, len) != 0) return 0;
  return len;
}

static size_t on_write(char *data, size_t size, size_t n, void *ud) {
  xfer *x = ud;
  size_t len = size * n;
  if (headers_done(x) != 0) return 0;
  if (x->rs->body_len + len > x->max_body) {
    x->too_large = 1;
    set_err(x->rs, "too_large", "too_large", "response body exceeds %zu bytes", x->max_body);
    return 0;
  }
  if (x->rq->on_body) {
    x->rs->body_len += len;
    if (x->rq->on_body(x->rq->ud, data, len) != 0) { x->cancelled = 1; return 0; }
    return len;
  }
  if (x->rs->body_len + len + 1 > x->body_cap) {
    size_t cap = x->body_cap ? x->body_cap : 4096;
    while (cap < x->rs->body_len + len + 1) cap *= 2;
    char *nb = realloc(x->rs->body, cap);
    if (!nb) return 0;
    x->rs->body = nb;
    x->body_cap = cap;
  }
  memcpy(x->rs->body + x->rs->body_len, data, len);
  x->rs->body_len += len;
  x->rs->body[x->rs->body_len] = 0;
  return len;
}

/* The engine's share handle, made on first use: a connection cache makes
 * libcurl initialise itself (and OpenSSL's TLS side), which a command that
 * sends no request never needs. Connections and TLS sessions are reused
 * across requests. DNS is not shared: each transfer pins the answers it
 * judged itself. NULL when it cannot be made. */
static CURLSH *share_of(struct http_state *s) {
  pthread_mutex_lock(&s->share_mu);
  if (!s->share && global_ready()) {
    CURLSH *sh = curl_share_init();
    if (sh && curl_share_setopt(sh, CURLSHOPT_LOCKFUNC, share_lock) == CURLSHE_OK &&
        curl_share_setopt(sh, CURLSHOPT_UNLOCKFUNC, share_unlock) == CURLSHE_OK &&
        curl_share_setopt(sh, CURLSHOPT_USERDATA, s) == CURLSHE_OK &&
        curl_share_setopt(sh, CURLSHOPT_SHARE, CURL_LOCK_DATA_CONNECT) == CURLSHE_OK &&
        curl_share_setopt(sh, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION) == CURLSHE_OK)
      s->share = sh;
    else if (sh) curl_share_cleanup(sh);
  }
  CURLSH *r = s->share;
  pthread_mutex_unlock(&s->share_mu);
  return r;
}

/* ---- the system CA bundle, read when a chain needs it --------------------------
 * X509_STORE_set_default_paths reads the whole system bundle (SSL_CERT_FILE,
 * else OpenSSL's default file) when it is called: some 150 certificates, each
 * parsed with its public key, ~230 M instructions, most of a one-shot
 * `mcplink call`. This lookup reads the same file into the same store, but on
 * the first lookup of an issuer the store does not already hold: a chain that
 * --ca-file alone completes never reads it; any other chain reads it once,
 * after which the store is what set_default_paths would have made. The hashed
 * directory and the store URI lookups follow it, in set_default_paths' order. */
typedef struct {
  pthread_mutex_t mu;
  int loaded;
  char *path;
} bundle_lookup;

static int bundle_new(X509_LOOKUP *lu) {
  bundle_lookup *b = calloc(1, sizeof *b);
  if (!b) return 0;
  pthread_mutex_init(&b->mu, NULL);
  return X509_LOOKUP_set_method_data(lu, b);
}

static void bundle_free(X509_LOOKUP *lu) {
  bundle_lookup *b = X509_LOOKUP_get_method_data(lu);
  if (!b) return;
  pthread_mutex_destroy(&b->mu);
  free(b->path);
  free(b);
}

/* The object the store holds for name, borrowed (the store keeps it alive),
 * as OpenSSL's own lookups return it; the caller takes its reference. */
static int bundle_by_subject(X509_LOOKUP *lu, X509_LOOKUP_TYPE type, const X509_NAME *name, X509_OBJECT *ret) {
  bundle_lookup *b = X509_LOOKUP_get_method_data(lu);
  X509_STORE *st = X509_LOOKUP_get_store(lu);
  if (!b || !st || (type != X509_LU_X509 && type != X509_LU_CRL)) return 0;
  pthread_mutex_lock(&b->mu);
  if (!b->loaded) {
    b->loaded = 1;
    /* a missing or unreadable bundle leaves the store as it is, as set_default_paths does */
    if (b->path && X509_load_cert_crl_file(lu, b->path, X509_FILETYPE_PEM) <= 0) ERR_clear_error();
  }
  pthread_mutex_unlock(&b->mu);
  int ok = 0;
  if (!X509_STORE_lock(st)) return 0;
  X509_OBJECT *o = X509_OBJECT_retrieve_by_subject(X509_STORE_get0_objects(st), type, (X509_NAME *)name);
  if (o && type == X509_LU_X509) {
    X509 *x = X509_OBJECT_get0_X509(o);
    ok = x && X509_OBJECT_set1_X509(ret, x);
    if (ok) X509_free(x); /* borrowed, like the hashed directory's answers */
  } else if (o) {
    X509_CRL *c = X509_OBJECT_get0_X509_CRL(o);
    ok = c && X509_OBJECT_set1_X509_CRL(ret, c);
    if (ok) X509_CRL_free(c);
  }
  X509_STORE_unlock(st);
  return ok;
}

static X509_LOOKUP_METHOD *bundle_method;
static pthread_once_t bundle_once = PTHREAD_ONCE_INIT;

static void bundle_method_init(void) {
  X509_LOOKUP_METHOD *m = X509_LOOKUP_meth_new("mcplink system CA bundle, read on first use");
  if (m && X509_LOOKUP_meth_set_new_item(m, bundle_new) && X509_LOOKUP_meth_set_free(m, bundle_free) &&
      X509_LOOKUP_meth_set_get_by_subject(m, bundle_by_subject))
    bundle_method = m;
  else if (m) X509_LOOKUP_meth_free(m);
}

/* The system trust store as X509_STORE_set_default_paths makes it, the
 * bundle read on first use. 1, or 0 when the store cannot be set up. */
static int system_paths(X509_STORE *t) {
  pthread_once(&bundle_once, bundle_method_init);
  if (!bundle_method) return 0;
  X509_LOOKUP *lu = X509_STORE_add_lookup(t, bundle_method);
  bundle_lookup *b = lu ? X509_LOOKUP_get_method_data(lu) : NULL;
  if (!b) return 0;
  const char *f = secure_getenv(X509_get_default_cert_file_env());
  b->path = strdup(f ? f : X509_get_default_cert_file());
  if (!b->path) return 0;
  lu = X509_STORE_add_lookup(t, X509_LOOKUP_hash_dir());
  if (!lu) return 0;
  X509_LOOKUP_add_dir(lu, NULL, X509_FILETYPE_DEFAULT);
  lu = X509_STORE_add_lookup(t, X509_LOOKUP_store());
  if (!lu) return 0;
  X509_LOOKUP_add_store(lu, NULL);
  ERR_clear_error(); /* a default path that does not exist is not an error */
  return 1;
}

/* One trust store per engine, built on first use (an engine that never
 * opens a TLS connection never makes it): loading the bundle into every new
 * TLS context cost ~20 ms of CPU per connection. X509_STORE is reference
 * counted and safe to share between threads for verification. */
static X509_STORE *trust_store(struct http_state *s) {
  pthread_mutex_lock(&s->trust_mu);
  if (!s->trust && (!s->ca_path || load_ca(s) == 0)) {
    X509_STORE *t = X509_STORE_new();
    if (t && system_paths(t) == 1) {
      for (int i = 0; s->extra_ca && i < sk_X509_num(s->extra_ca); i++)
        X509_STORE_add_cert(t, sk_X509_value(s->extra_ca, i));
      s->trust = t;
    } else if (t) X509_STORE_free(t);
  }
  X509_STORE *r = s->trust;
  pthread_mutex_unlock(&s->trust_mu);
  return r;
}

/* Every TLS context verifies against the engine's one trust store. */
static CURLcode ssl_ctx_cb(CURL *h, void *sslctx, void *ud) {
  (void)h;
  struct http_state *s = ud;
  X509_STORE *t = trust_store(s);
  if (!t || !X509_STORE_up_ref(t)) return CURLE_SSL_CACERT_BADFILE;
  SSL_CTX_set_cert_store((SSL_CTX *)sslctx, t);
  return CURLE_OK;
}

static int header_line_ok(const char *s) {
  const char *colon = strchr(s, ':');
  if (!colon || colon == s) return 0;
  for (const char *p = s; *p; p++)
    if (*p == '\r' || *p == '\n') return 0;
  return 1;
}

/* Judges the URL's scheme and literal address, or every answer of the
 * finished lookup; pins the judged answers for curl. 0 or -1 with rs set. */
static int judge_and_pin(xfer *x) {
  const http_url *u = x->rq->url;
  http_response *rs = x->rs;
  addr_t *addrs = x->addrs;
  size_t n = 0;
  if (u->host_is_ip) {
    addrs[0] = u->ip;
    n = 1;
  } else {
    char reason[64];
    int rc = http_lookup_wait(x->lookup, x->e, x->connect_deadline, x->rq->cancel, addrs,
                              HTTP_MAX_ADDRS, &n, reason, sizeof reason);
    x->lookup = NULL;
    if (rc != 0) {
      if (strcmp(reason, "timeout") == 0)
        set_err(rs, "timeout", "timeout", "name lookup for %s timed out", u->host);
      else if (strcmp(reason, "cancelled") == 0)
        set_err(rs, "timeout", "cancelled", "request cancelled");
      else set_err(rs, "upstream_error", "dns_failure", "cannot resolve %s", u->host);
      return -1;
    }
  }
  assert(n >= 1 && n <= HTTP_MAX_ADDRS);  /* a lookup fails rather than return none or more */
  x->naddrs = n;
  char pin[HTTP_MAX_ADDRS * 48 + 300];  /* a comma, brackets and 45 bytes of IPv6 text each */
  size_t pl = 0;
  for (size_t i = 0; i < n; i++) {
    const char *block = NULL;
    if (!addr_guard_allows(&x->rq->guard, &addrs[i], rs->reason, sizeof rs->reason, &block)) {
      char t[64];
      rs->code = "url_blocked";
      addr_text(&addrs[i], t, sizeof t);
      if (u->host_is_ip)
        snprintf(rs->message, sizeof rs->message, "address %s is not allowed (%s)", t, block);
      else
        snprintf(rs->message, sizeof rs->message, "%s resolves to %s (%s)", u->host, t, block);
      return -1;
    }
    if (u->host_is_ip) continue;  /* curl connects to the address itself: no pin */
    char t[64];
    addr_text(&addrs[i], t, sizeof t);
    pl += (size_t)snprintf(pin + pl, sizeof pin - pl, "%s%s%s%s", i ? "," : "",
                           addrs[i].family == AF_INET6 ? "[" : "", t,
                           addrs[i].family == AF_INET6 ? "]" : "");
  }
  assert(pl < sizeof pin);
  if (u->host_is_ip) return 0;
  /* Pin: curl connects only to the answers judged above and never looks
   * the name up again (no second, rebound answer). Both spellings of the
   * host, with and without a trailing dot, map to the same answers. */
  char entry[sizeof pin + 300];
  snprintf(entry, sizeof entry, "%s:%d:%s", u->host, u->port, pin);
  x->pin = curl_slist_append(x->pin, entry);
  snprintf(entry, sizeof entry, "%s.:%d:%s", u->host, u->port, pin);
  x->pin = x->pin ? curl_slist_append(x->pin, entry) : NULL;
  if (!x->pin) { set_err(rs, "internal", "internal", "out of memory"); return -1; }
  return 0;
}

/* A handle out of the pool (*uses: how often it was used), or NULL. */
static void *idle_take(struct http_state *st, struct idle_pool *p, int *uses) {
  void *h = NULL;
  *uses = 0;
  pthread_mutex_lock(&st->idle_mu);
  if (p->n > 0) {
    p->n--;
    h = p->h[p->n];
    *uses = p->uses[p->n];
  }
  pthread_mutex_unlock(&st->idle_mu);
  return h;
}

/* Puts a handle back after one more use: 1, or 0 when the pool is full or
 * the handle has served MULTI_USES times (the caller frees it). */
static int idle_put(struct http_state *st, struct idle_pool *p, void *h, int uses) {
  int kept = 0;
  if (++uses >= MULTI_USES) return 0;
  pthread_mutex_lock(&st->idle_mu);
  if (p->n < IDLE_MAX) {
    p->h[p->n] = h;
    p->uses[p->n++] = uses;
    kept = 1;
  }
  pthread_mutex_unlock(&st->idle_mu);
  return kept;
}

/* The options every transfer of the engine has alike, set once on a new
 * easy handle (setup sets all the others on every transfer). */
static void easy_static(CURL *h, struct http_state *st, CURLSH *share) {
  curl_easy_setopt(h, CURLOPT_SHARE, share);
  curl_easy_setopt(h, CURLOPT_REDIR_PROTOCOLS_STR, "https");
  curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);  /* the engine follows */
  curl_easy_setopt(h, CURLOPT_PROXY, "");            /* ignore *_proxy variables */
  curl_easy_setopt(h, CURLOPT_NOPROXY, "*");
  curl_easy_setopt(h, CURLOPT_NETRC, (long)CURL_NETRC_IGNORED);
  curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
  curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L);
  /* curl loads no bundle of its own: the callback installs the engine's */
  curl_easy_setopt(h, CURLOPT_CAINFO, NULL);
  curl_easy_setopt(h, CURLOPT_CAPATH, NULL);
  curl_easy_setopt(h, CURLOPT_SSL_CTX_FUNCTION, ssl_ctx_cb);
  curl_easy_setopt(h, CURLOPT_SSL_CTX_DATA, st);
  curl_easy_setopt(h, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
  /* No PIPEWAIT. Each call runs its own multi handle over the shared
   * connection cache, and libcurl multiplexes a transfer only onto a
   * connection of its own multi handle; waiting could only park it behind
   * another thread's connection attempt that it can never use, and libcurl
   * (7.88) neither wakes such a parked transfer from another multi handle
   * nor times it out: calls hung for good when a server died under load. */
  curl_easy_setopt(h, CURLOPT_PIPEWAIT, 0L);
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  /* Offers gzip alone: what servers compress with, and each encoding offered is
   * formatted into every request (the full list cost ~2% of a tool call). A body
   * in another encoding libcurl knows still decodes; on_write counts decoded bytes. */
  curl_easy_setopt(h, CURLOPT_ACCEPT_ENCODING, "gzip");
  curl_easy_setopt(h, CURLOPT_USERAGENT, "mcplink/" MCPL_VERSION);
  curl_easy_setopt(h, CURLOPT_OPENSOCKETFUNCTION, on_opensocket);
  curl_easy_setopt(h, CURLOPT_PREREQFUNCTION, on_prereq);
  curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_progress);
  curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
  curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_write);
}

/* An idle easy handle of the engine (its static options set, and the last
 * transfer's others all set again by setup: URL, headers, pins, method,
 * body, limits, callback data), or a new one with its static options;
 * *uses counts its use. */
static CURL *easy_take(struct http_state *st, CURLSH *share, int *uses) {
  CURL *h = idle_take(st, &st->easies, uses);
  if (h) return h;
  h = curl_easy_init();
  if (h) easy_static(h, st, share);
  return h;
}

/* Gives back an easy handle out of any multi handle. */
static void easy_give(struct http_state *st, CURL *h, int uses) {
  if (!idle_put(st, &st->easies, h, uses)) curl_easy_cleanup(h);
}

static int setup(xfer *x) {
  const http_request *rq = x->rq;
  http_response *rs = x->rs;
  const http_url *u = rq->url;
  if (!u) { set_err(rs, "invalid_argument", "invalid_url", "no URL"); return -1; }
  if (strcmp(u->scheme, "https") != 0 && !(strcmp(u->scheme, "http") == 0 && rq->allow_http)) {
    set_err(rs, "url_blocked", "scheme", "%s: only https is allowed", u->text);
    return -1;
  }
  for (size_t i = 0; i < rq->nheaders; i++)
    if (!header_line_ok(rq->headers[i])) {
      set_err(rs, "invalid_argument", "header", "bad request header (needs \"Name: value\", no CR/LF)");
      return -1;
    }
  if (judge_and_pin(x) != 0) return -1;
  size_t nh = rq->nheaders + 1; /* and "Expect:", which turns off 100-continue */
  struct curl_slist *nodes = x->hdr_inline;
  if (nh > XFER_HDRS_INLINE && !(nodes = x->hdr_heap = malloc(nh * sizeof *nodes))) {
    set_err(rs, "internal", "internal", "out of memory");
    return -1;
  }
  for (size_t i = 0; i < rq->nheaders; i++) {
    nodes[i].data = (char *)rq->headers[i]; /* libcurl reads the list, never writes it */
    nodes[i].next = &nodes[i + 1];
  }
  nodes[nh - 1].data = (char *)"Expect:";
  nodes[nh - 1].next = NULL;
  CURLSH *share = share_of(x->st);
  if (!share) { set_err(rs, "internal", "internal", "libcurl initialisation failed"); return -1; }
  CURL *h = x->h = easy_take(x->st, share, &x->easy_uses);
  if (!h) { set_err(rs, "internal", "internal", "curl_easy_init failed"); return -1; }
  /* every option a transfer sets differently, set on every transfer */
  curl_easy_setopt(h, CURLOPT_PRIVATE, x);
  curl_easy_setopt(h, CURLOPT_CURLU, u->h);
  curl_easy_setopt(h, CURLOPT_RESOLVE, x->pin);
  curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, rq->allow_http ? "http,https" : "https");
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, nodes);
  curl_easy_setopt(h, CURLOPT_OPENSOCKETDATA, x);
  curl_easy_setopt(h, CURLOPT_PREREQDATA, x);
  curl_easy_setopt(h, CURLOPT_XFERINFODATA, x);
  curl_easy_setopt(h, CURLOPT_HEADERDATA, x);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, x);
  curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, x->connect_ms + BACKSTOP_MS);
  curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, x->total_ms + BACKSTOP_MS);
  curl_easy_setopt(h, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)x->max_body);
  const char *m = rq->method ? rq->method : (rq->body ? "POST" : "GET");
  int get = strcmp(m, "GET") == 0 && !rq->body, head = strcmp(m, "HEAD") == 0;
  /* The method from scratch: a body makes a POST, no body a GET (never a
   * POST without its fields, which libcurl would read from stdin); then the
   * method's name, and HEAD's no-body. */
  if (rq->body) {
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)rq->body_len);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, rq->body);
  } else {
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)-1);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, NULL);
    curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
  }
  curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, get || head || strcmp(m, "POST") == 0 ? NULL : m);
  curl_easy_setopt(h, CURLOPT_NOBODY, head ? 1L : 0L);
  return 0;
}

/* Maps a finished transfer's curl result onto the engine's codes. */
static void finish(xfer *x, CURLcode cc) {
  http_response *rs = x->rs;
  char *ip = NULL;
  if (x->h && curl_easy_getinfo(x->h, CURLINFO_PRIMARY_IP, &ip) == CURLE_OK && ip)
    snprintf(rs->primary_ip, sizeof rs->primary_ip, "%s", ip);
  if (cc == CURLE_OK) {
    if (headers_done(x) == 0) { rs->code = NULL; return; }
  }
  if (x->blocked || x->too_large) return; /* set where it was detected */
  if (x->cancelled || cancelled(x)) {
    set_err(rs, "timeout", "cancelled", "request cancelled");
    return;
  }
  const char *cm = curl_easy_strerror(cc);
  switch (cc) {
  case CURLE_OPERATION_TIMEDOUT:
    set_err(rs, "timeout", "timeout", "request timed out: %s", cm);
    break;
  case CURLE_FILESIZE_EXCEEDED:
    set_err(rs, "too_large", "too_large", "response body exceeds %zu bytes", x->max_body);
    break;
  case CURLE_COULDNT_RESOLVE_HOST:
    set_err(rs, "upstream_error", "dns_failure", "%s", cm);
    break;
  case CURLE_COULDNT_CONNECT:
    set_err(rs, "upstream_error", "connect_failed", "%s", cm);
    break;
  case CURLE_SSL_CONNECT_ERROR: case CURLE_PEER_FAILED_VERIFICATION:
  case CURLE_SSL_CERTPROBLEM: case CURLE_SSL_CIPHER: case CURLE_SSL_CACERT_BADFILE:
  case CURLE_SSL_ISSUER_ERROR: case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
  case CURLE_SSL_INVALIDCERTSTATUS: case CURLE_USE_SSL_FAILED: case CURLE_SSL_ENGINE_INITFAILED:
    set_err(rs, "upstream_error", "tls_error", "%s", cm);
    break;
  case CURLE_UNSUPPORTED_PROTOCOL:
    set_err(rs, "url_blocked", "scheme", "%s", cm);
    break;
  default:
    set_err(rs, "upstream_error", "connection_error", "%s", cm);
  }
}

/* The engine's own deadlines: a transfer still waiting for its connection
 * ends at connect_deadline, any transfer at deadline. 0 while it may go on. */
static int overdue(xfer *x, long now) {
  const http_url *u = x->rq->url;
  char *ip = NULL;
  if (!x->connected && now >= x->connect_deadline)
    set_err(x->rs, "timeout", "timeout", "no connection to %s within %ld ms", u->host, x->connect_ms);
  else if (now >= x->deadline)
    set_err(x->rs, "timeout", "timeout", "no complete response from %s within %ld ms", u->host,
            x->total_ms);
  else return 0;
  if (curl_easy_getinfo(x->h, CURLINFO_PRIMARY_IP, &ip) == CURLE_OK && ip)
    snprintf(x->rs->primary_ip, sizeof x->rs->primary_ip, "%s", ip);
  return 1;
}

static void xfer_init(xfer *x, mcpl_engine *e, struct http_state *st, const http_request *rq,
                      http_response *rs) {
  memset(x, 0, sizeof *x);
  memset(rs, 0, sizeof *rs);
  x->e = e;
  x->st = st;
  x->rq = rq;
  x->rs = rs;
  x->max_body = rq->limits.max_body ? rq->limits.max_body : DEF_MAX_BODY;
  x->max_header = rq->limits.max_header ? rq->limits.max_header : DEF_MAX_HEADER;
  x->total_ms = rq->limits.timeout_ms > 0 ? rq->limits.timeout_ms : DEF_TIMEOUT_MS;
  x->connect_ms = rq->limits.connect_timeout_ms > 0 ? rq->limits.connect_timeout_ms : DEF_CONNECT_MS;
  if (x->connect_ms > x->total_ms) x->connect_ms = x->total_ms;
  long now = http_now_ms();
  x->connect_deadline = now + x->connect_ms;
  x->deadline = now + x->total_ms;
  if (rq->url && !rq->url->host_is_ip) x->lookup = http_lookup_start(rq->url->host, rq->url->port);
}

static void xfer_cleanup(xfer *x) {
  if (x->lookup) {
    size_t n;
    addr_t a[1];
    char r[32];
    /* Releases our reference; an expired deadline returns at once. */
    http_lookup_wait(x->lookup, x->e, 0, NULL, a, 1, &n, r, sizeof r);
  }
  if (x->h) easy_give(x->st, x->h, x->easy_uses);
  free(x->hdr_heap);
  x->hdr_heap = NULL;
  curl_slist_free_all(x->pin);
  if (x->rs->code) { free(x->rs->body); x->rs->body = NULL; x->rs->body_len = 0; }
}

/* An idle multi handle of the engine, or a new one; *uses counts its use. */
static CURLM *multi_take(struct http_state *st, int *uses) {
  CURLM *m = idle_take(st, &st->multis, uses);
  if (m) return m;
  m = curl_multi_init();
  /* The shared connection cache keeps at most this multi's limit of idle
   * connections (curl's default: 4 per easy handle, so 4 here); with more
   * threads than that, every call would close another thread's connection
   * and open a new one (a full TLS handshake and CA load each time). */
  if (m) curl_multi_setopt(m, CURLMOPT_MAXCONNECTS, 256L);
  return m;
}

/* Gives back a multi handle with no transfer left in it. */
static void multi_give(struct http_state *st, CURLM *m, int uses) {
  if (!idle_put(st, &st->multis, m, uses)) curl_multi_cleanup(m);
}

/* A run: transfers through one multi handle, driven a step at a time by
 * whichever thread holds it (http.h: http_run_*). */
struct http_run {
  mcpl_engine *e;
  struct http_state *st;
  const http_request *rq;
  http_response *rs;
  xfer *xs;
  size_t n;
  CURLM *m;
  int uses, running;
  int kicked;  /* the first perform ran */
};

http_run *http_run_start(mcpl_engine *e, const http_request *rq, http_response *rs, size_t n) {
  struct http_state *st = e ? mcpl_engine_slot(e, MCPL_AREA_HTTP) : NULL;
  http_run *r = calloc(1, sizeof *r);
  xfer *xs = calloc(n ? n : 1, sizeof *xs);
  CURLM *m = NULL;
  int uses = 0;
  if (!r || !xs || !st || !global_ready() || !(m = multi_take(st, &uses))) {
    for (size_t i = 0; i < n; i++) {
      memset(&rs[i], 0, sizeof rs[i]);
      set_err(&rs[i], "internal", "internal", "HTTP client unavailable");
    }
    free(xs);
    free(r);
    return NULL;
  }
  r->e = e, r->st = st, r->rq = rq, r->rs = rs, r->xs = xs, r->n = n, r->m = m, r->uses = uses;
  for (size_t i = 0; i < n; i++)
    if (rq[i].on_wake) rq[i].on_wake(rq[i].ud, m);
  /* Lookups start together; each is then judged and its transfer added. */
  for (size_t i = 0; i < n; i++) xfer_init(&xs[i], e, st, &rq[i], &rs[i]);
  for (size_t i = 0; i < n; i++) {
    if (setup(&xs[i]) != 0) { xs[i].failed = 1; continue; }
    if (curl_multi_add_handle(m, xs[i].h) != CURLM_OK) {
      xs[i].failed = 1;
      set_err(&rs[i], "internal", "internal", "curl_multi_add_handle failed");
      continue;
    }
    r->running++;
  }
  return r;
}

/* Takes the transfers libcurl reports ended -> 1 once none runs. */
static int run_collect(http_run *r) {
  CURLMsg *msg;
  int q;
  while ((msg = curl_multi_info_read(r->m, &q))) {
    if (msg->msg != CURLMSG_DONE) continue;
    xfer *x = NULL;
    curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&x);
    finish(x, msg->data.result);
    curl_multi_remove_handle(r->m, x->h);
    x->done = 1;
    r->running--;
  }
  return r->running <= 0;
}

/* A step waits, then runs what arrived: what a step hands to the callbacks
 * is there when it returns, not one wait later. */
int http_run_step(http_run *r, long wait_ms) {
  if (!r || r->running <= 0) return 1;
  int still = 0;
  if (!r->kicked) {
    r->kicked = 1;
    curl_multi_perform(r->m, &still);
    if (run_collect(r)) return 1;
  }
  /* Cancellation and the deadlines end a transfer here, whatever state
   * libcurl keeps it in and even when it is idle (the progress callback
   * only runs on activity); the poll never outlasts the nearest deadline. */
  long now = http_now_ms(), next = now + POLL_MS;
  if (wait_ms >= 0 && now + wait_ms < next) next = now + wait_ms;
  for (size_t i = 0; i < r->n; i++) {
    xfer *x = &r->xs[i];
    if (x->failed || x->rs->code || !x->h || x->done) continue;
    if (cancelled(x)) {
      x->cancelled = 1;
      finish(x, CURLE_ABORTED_BY_CALLBACK);
    } else if (!overdue(x, now)) {
      long d = x->connected ? x->deadline : x->connect_deadline;
      if (d < next) next = d;
      continue;
    }
    curl_multi_remove_handle(r->m, x->h);
    x->done = 1;
    r->running--;
  }
  if (r->running <= 0) return 1;
  if (next > now) curl_multi_poll(r->m, NULL, 0, (int)(next - now), NULL);
  curl_multi_perform(r->m, &still);
  return run_collect(r);
}

int http_run_end(http_run *r) {
  if (!r) return -1;
  int failed = 0;
  for (size_t i = 0; i < r->n; i++) {
    xfer *x = &r->xs[i];
    if (!x->failed && x->h && !x->done) {
      /* still running: ended here as cancelled */
      x->cancelled = 1;
      finish(x, CURLE_ABORTED_BY_CALLBACK);
      curl_multi_remove_handle(r->m, x->h);
      x->done = 1;
    }
  }
  for (size_t i = 0; i < r->n; i++) {
    if (r->rs[i].code) failed++;
    xfer_cleanup(&r->xs[i]);
  }
  for (size_t i = 0; i < r->n; i++)
    if (r->rq[i].on_wake) r->rq[i].on_wake(r->rq[i].ud, NULL);
  multi_give(r->st, r->m, r->uses);
  free(r->xs);
  free(r);
  return failed;
}

int http_perform_many(mcpl_engine *e, const http_request *rq, http_response *rs, size_t n) {
  http_run *r = http_run_start(e, rq, rs, n);
  if (!r) return (int)n;
  while (!http_run_step(r, -1)) {}
  return http_run_end(r);
}

void http_wake(void *handle) {
  if (handle) curl_multi_wakeup((CURLM *)handle);
}

int http_perform(mcpl_engine *e, const http_request *rq, http_response *rs) {
  return http_perform_many(e, rq, rs, 1) ? -1 : 0;
}

int http_judge(mcpl_engine *e, const http_url *u, const addr_guard *g, long timeout_ms,
               const mcpl_cancel *cancel, char (*addrs)[64], size_t max, size_t *naddrs,
               http_response *rs) {
  http_request rq;
  memset(&rq, 0, sizeof rq);
  rq.url = u;
  rq.guard = *g;
  rq.cancel = cancel;
  rq.limits.connect_timeout_ms = timeout_ms;
  rq.limits.timeout_ms = timeout_ms;
  xfer x;
  xfer_init(&x, e, NULL, &rq, rs);
  *naddrs = 0;
  int rc = judge_and_pin(&x);
  /* Report what the name resolved to, allowed or not. */
  for (size_t i = 0; i < x.naddrs && *naddrs < max; i++)
    addr_text(&x.addrs[i], addrs[(*naddrs)++], 64);
  x.h = NULL;
  x.lookup = NULL;
  curl_slist_free_all(x.pin);
  return rc;
}
