/* fixture_server.c: a fast, minimal Streamable HTTP MCP server for the benchmarks, so the
 * server is never the bottleneck: JSON or SSE replies, 2026-07-28 and 2025-11-25 eras. */
/* Usage: fixture_server [--tls CERTDIR] [--sse] [--era modern|legacy|both] [--tools N]
 *          [--page-size K] [--api-key KEY] [--parent-pid P] [--max-lifetime-s S] [--port P]
 * Listens on 127.0.0.1 (a free port, or P: a test restarts a killed server where the engine
 * expects it), prints {"url":...,"pid":...} and serves POST /mcp
 * (and DELETE for legacy sessions). One thread per connection, keep-alive, blocking I/O:
 * the benchmark clients hold few connections, and a thread per connection has no event-loop
 * overhead per request. Tools: echo (returns its `text`), whoami, and tool_00000.. fillers. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#define FX_MAX_HEAD 16384
#define FX_MAX_BODY (1 << 20)

typedef struct {
  int sse, era_modern, era_legacy, tools, page;
  const char *api_key;
  SSL_CTX *tls;
} fx_config;

static fx_config fx_cfg = {0, 1, 1, 8, 0, NULL, NULL};
static unsigned long fx_session_seq;
static pthread_mutex_t fx_lock = PTHREAD_MUTEX_INITIALIZER;

typedef struct {
  int fd;
  SSL *ssl;
  char in[FX_MAX_HEAD + FX_MAX_BODY];
  size_t have;
} fx_conn;

/* ---- growable buffer --------------------------------------------------------- */

typedef struct {
  char *p;
  size_t n, cap;
} fx_buf;

static void fx_put(fx_buf *b, const char *s, size_t n) {
  if (b->n + n + 1 > b->cap) {
    size_t c = b->cap ? b->cap : 4096;
    while (c < b->n + n + 1) c *= 2;
    char *q = realloc(b->p, c);
    if (!q) abort();
    b->p = q;
    b->cap = c;
  }
  memcpy(b->p + b->n, s, n);
  b->n += n;
  b->p[b->n] = 0;
}

static void fx_putf(fx_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void fx_putf(fx_buf *b, const char *fmt, ...) {
  char tmp[1024];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
  va_end(ap);
  if (n < 0) return;
  if ((size_t)n < sizeof tmp) { fx_put(b, tmp, (size_t)n); return; }
  char *big = malloc((size_t)n + 1);
  if (!big) abort();
  va_start(ap, fmt);
  vsnprintf(big, (size_t)n + 1, fmt, ap);
  va_end(ap);
  fx_put(b, big, (size_t)n);
  free(big);
}

/* ---- I/O over plain TCP or TLS ----------------------------------------------- */

static long fx_read(fx_conn *c, char *p, size_t n) {
  if (c->ssl) {
    int r = SSL_read(c->ssl, p, (int)n);
    return r > 0 ? r : -1;
  }
  ssize_t r;
  do r = read(c->fd, p, n); while (r < 0 && errno == EINTR);
  return r > 0 ? (long)r : -1;
}

static int fx_write(fx_conn *c, const char *p, size_t n) {
  while (n > 0) {
    long w;
    if (c->ssl) {
      int r = SSL_write(c->ssl, p, (int)n);
      w = r > 0 ? r : -1;
    } else {
      ssize_t r;
      do r = write(c->fd, p, n); while (r < 0 && errno == EINTR);
      w = r;
    }
    if (w <= 0) return -1;
    p += w;
    n -= (size_t)w;
  }
  return 0;
}

/* ---- tiny request parsing: enough for the JSON the benchmark clients send ---- */

/* header(head, name) -> pointer to the value (up to CR) or NULL; case-insensitive name */
static const char *fx_header(const char *head, const char *name, size_t *len) {
  size_t nl = strlen(name);
  for (const char *p = strstr(head, "\r\n"); p; p = strstr(p, "\r\n")) {
    p += 2;
    if (strncasecmp(p, name, nl) == 0 && p[nl] == ':') {
      const char *v = p + nl + 1;
      while (*v == ' ') v++;
      const char *e = strstr(v, "\r\n");
      if (!e) return NULL;
      *len = (size_t)(e - v);
      return v;
    }
  }
  return NULL;
}

/* skips one JSON value starting at p (after whitespace); returns the byte after it */
static const char *fx_skip(const char *p) {
  while (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t') p++;
  if (*p == '"') {
    for (p++; *p && *p != '"'; p++) if (*p == '\\' && p[1]) p++;
    return *p ? p + 1 : p;
  }
  if (*p == '{' || *p == '[') {
    int depth = 0;
    for (; *p; p++) {
      if (*p == '"') { p = fx_skip(p) - 1; continue; }
      if (*p == '{' || *p == '[') depth++;
      else if ((*p == '}' || *p == ']') && --depth == 0) return p + 1;
    }
    return p;
  }
  while (*p && *p != ',' && *p != '}' && *p != ']') p++;
  return p;
}

/* the value of member `key` of the object at obj (its own members only, not nested ones) */
static const char *fx_member(const char *obj, const char *key) {
  const char *p = obj;
  while (*p && *p != '{') p++;
  if (!*p) return NULL;
  p++;
  size_t kl = strlen(key);
  for (;;) {
    while (*p == ' ' || *p == ',' || *p == '\n' || *p == '\r' || *p == '\t') p++;
    if (*p != '"') return NULL;
    const char *k = p + 1, *ke = fx_skip(p) - 1;
    p = ke + 1;
    while (*p == ' ' || *p == ':') p++;
    if ((size_t)(ke - k) == kl && strncmp(k, key, kl) == 0) return p;
    p = fx_skip(p);
  }
}

/* the string member `key` of the object at obj, with \" and \\ kept escaped */
static int fx_jstr(const char *obj, const char *key, char *out, size_t cap) {
  const char *p = obj ? fx_member(obj, key) : NULL;
  if (!p || *p != '"') return -1;
  p++;
  size_t i = 0;
  while (*p && *p != '"' && i + 2 < cap) {
    if (*p == '\\' && p[1]) { out[i++] = *p++; }
    out[i++] = *p++;
  }
  out[i] = 0;
  return 0;
}

/* raw JSON value of "id" (number or string), copied verbatim */
static int fx_jid(const char *body, char *out, size_t cap) {
  const char *p = fx_member(body, "id");
  if (!p) return -1;
  size_t i = 0;
  if (*p == '"') {
    out[i++] = *p++;
    while (*p && *p != '"' && i + 2 < cap) out[i++] = *p++;
    out[i++] = '"';
  } else {
    while (*p && (*p == '-' || (*p >= '0' && *p <= '9')) && i + 1 < cap) out[i++] = *p++;
  }
  out[i] = 0;
  return i ? 0 : -1;
}

/* ---- replies ------------------------------------------------------------------ */

static int fx_send(fx_conn *c, int status, const char *ctype, const char *extra, const char *body,
                   size_t blen) {
  const char *reason = status == 200 ? "OK" : status == 202 ? "Accepted" : status == 400 ? "Bad Request"
                     : status == 401 ? "Unauthorized" : status == 404 ? "Not Found" : "Error";
  char head[512];
  int n = snprintf(head, sizeof head,
                   "HTTP/1.1 %d %s\r\nContent-Length: %zu\r\n%s%s%s%s\r\n", status, reason, blen,
                   ctype ? "Content-Type: " : "", ctype ? ctype : "", ctype ? "\r\n" : "",
                   extra ? extra : "");
  /* one write for small replies: fewer TLS records and syscalls */
  if (blen < 16384) {
    char one[512 + 16384];
    memcpy(one, head, (size_t)n);
    if (blen) memcpy(one + n, body, blen);
    return fx_write(c, one, (size_t)n + blen);
  }
  if (fx_write(c, head, (size_t)n) < 0) return -1;
  return fx_write(c, body, blen);
}

/* a JSON-RPC result, as JSON or as one SSE event */
static int fx_result(fx_conn *c, const char *id, const char *result, const char *extra) {
  fx_buf b = {0};
  if (fx_cfg.sse) fx_put(&b, "event: message\ndata: ", 21);
  fx_putf(&b, "{\"jsonrpc\":\"2.0\",\"id\":%s,\"result\":", id);
  fx_put(&b, result, strlen(result));
  fx_put(&b, "}", 1);
  if (fx_cfg.sse) fx_put(&b, "\n\n", 2);
  int rc = fx_send(c, 200, fx_cfg.sse ? "text/event-stream" : "application/json", extra, b.p, b.n);
  free(b.p);
  return rc;
}

static int fx_error(fx_conn *c, int status, const char *id, int code, const char *msg) {
  char body[512];
  int n = snprintf(body, sizeof body, "{\"jsonrpc\":\"2.0\",\"id\":%s,\"error\":{\"code\":%d,\"message\":\"%s\"}}",
                   id ? id : "null", code, msg);
  return fx_send(c, status, "application/json", NULL, body, (size_t)n);
}

/* tool i; rev > 0 (the URL's ?rev=N) changes tool N's description, as a
 * server whose tool changed between two discoveries */
static void fx_tool(fx_buf *b, int i, int rev) {
  if (rev > 1 && i == rev) {
    fx_putf(b, "{\"name\":\"tool_%05d\",\"description\":\"Filler tool number %d, changed in revision %d.\","
               "\"inputSchema\":{\"type\":\"object\",\"properties\":{\"n\":{\"type\":\"integer\"}}}}", i, i, rev);
  } else if (i == 0) {
    fx_putf(b, "{\"name\":\"echo\",\"description\":\"Echoes text back.\",\"inputSchema\":{\"type\":\"object\","
               "\"properties\":{\"text\":{\"type\":\"string\"}},\"required\":[\"text\"]}}");
  } else if (i == 1) {
    fx_putf(b, "{\"name\":\"whoami\",\"description\":\"Says who the caller is.\",\"inputSchema\":{\"type\":\"object\"}}");
  } else {
    fx_putf(b, "{\"name\":\"tool_%05d\",\"description\":\"Filler tool number %d for discovery benchmarks.\","
               "\"inputSchema\":{\"type\":\"object\",\"properties\":{\"n\":{\"type\":\"integer\"}}}}", i, i);
  }
}

static int fx_tools_list(fx_conn *c, const char *head, const char *id, const char *body) {
  char cur[32];
  /* ?rev=N in the request line */
  int rev = 0;
  const char *eol = strstr(head, "\r\n"), *q = strstr(head, "rev=");
  if (q && (!eol || q < eol)) rev = atoi(q + 4);
  int start = 0;
  if (fx_jstr(fx_member(body, "params"), "cursor", cur, sizeof cur) == 0) start = atoi(cur);
  if (start < 0 || start > fx_cfg.tools) return fx_error(c, 200, id, -32602, "bad cursor");
  int end = fx_cfg.page > 0 ? start + fx_cfg.page : fx_cfg.tools;
  if (end > fx_cfg.tools) end = fx_cfg.tools;
  fx_buf r = {0};
  fx_put(&r, "{\"tools\":[", 10);
  for (int i = start; i < end; i++) {
    if (i > start) fx_put(&r, ",", 1);
    fx_tool(&r, i, rev);
  }
  fx_put(&r, "]", 1);
  if (end < fx_cfg.tools) fx_putf(&r, ",\"nextCursor\":\"%d\"", end);
  fx_put(&r, "}", 1);
  int rc = fx_result(c, id, r.p, NULL);
  free(r.p);
  return rc;
}

static const char fx_server_info[] = "{\"name\":\"mcplink-bench-fixture\",\"version\":\"1.0.0\"}";

/* handle one POST body; returns <0 to close the connection */
static int fx_rpc(fx_conn *c, const char *head, const char *body) {
  char method[64], id[64];
  if (fx_jstr(body, "method", method, sizeof method) != 0) return fx_send(c, 202, NULL, NULL, "", 0);
  int has_id = fx_jid(body, id, sizeof id) == 0;
  if (!has_id) return fx_send(c, 202, NULL, NULL, "", 0); /* a notification */
  size_t sl = 0;
  const char *sess = fx_header(head, "mcp-session-id", &sl);
  if (strcmp(method, "server/discover") == 0) {
    if (!fx_cfg.era_modern) return fx_error(c, 400, id, -32601, "Method not found: server/discover");
    return fx_result(c, id,
                     "{\"supportedVersions\":[\"2026-07-28\"],\"capabilities\":{\"tools\":{}},"
                     "\"serverInfo\":{\"name\":\"mcplink-bench-fixture\",\"version\":\"1.0.0\"},"
                     "\"instructions\":\"A fast fixture for benchmarks.\"}", NULL);
  }
  if (strcmp(method, "initialize") == 0) {
    if (!fx_cfg.era_legacy) return fx_error(c, 400, id, -32601, "Method not found: initialize");
    char extra[96], res[512];
    pthread_mutex_lock(&fx_lock);
    unsigned long s = ++fx_session_seq;
    pthread_mutex_unlock(&fx_lock);
    snprintf(extra, sizeof extra, "Mcp-Session-Id: bench-%lu\r\n", s);
    snprintf(res, sizeof res, "{\"protocolVersion\":\"2025-11-25\",\"capabilities\":{\"tools\":{}},\"serverInfo\":%s}",
             fx_server_info);
    return fx_result(c, id, res, extra);
  }
  /* legacy requests other than initialize need a session; modern ones carry none */
  if (!sess && !fx_cfg.era_modern) return fx_error(c, 400, id, -32600, "Bad Request: no session");
  if (strcmp(method, "tools/list") == 0) return fx_tools_list(c, head, id, body);
  if (strcmp(method, "tools/call") == 0) {
    char name[64], text[4096];
    const char *params = fx_member(body, "params");
    if (!params || fx_jstr(params, "name", name, sizeof name) != 0) return fx_error(c, 200, id, -32602, "no tool name");
    fx_buf r = {0};
    if (strcmp(name, "echo") == 0) {
      if (fx_jstr(fx_member(params, "arguments"), "text", text, sizeof text) != 0) text[0] = 0;
      fx_putf(&r, "{\"content\":[{\"type\":\"text\",\"text\":\"%s\"}],\"structuredContent\":{\"text\":\"%s\"}}", text, text);
    } else {
      fx_putf(&r, "{\"content\":[{\"type\":\"text\",\"text\":\"tool %s\"}]}", name);
    }
    int rc = fx_result(c, id, r.p, NULL);
    free(r.p);
    return rc;
  }
  if (strcmp(method, "ping") == 0) return fx_result(c, id, "{}", NULL);
  return fx_error(c, 200, id, -32601, "Method not found");
}

/* ---- connection loop ------------------------------------------------------------ */

static void *fx_serve(void *arg) {
  fx_conn *c = arg;
  int one = 1;
  setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (fx_cfg.tls) {
    c->ssl = SSL_new(fx_cfg.tls);
    SSL_set_fd(c->ssl, c->fd);
    if (SSL_accept(c->ssl) <= 0) goto done;
  }
  for (;;) {
    /* read until the end of the head */
    char *end;
    while (!(end = memmem(c->in, c->have, "\r\n\r\n", 4))) {
      if (c->have >= FX_MAX_HEAD) goto done;
      long r = fx_read(c, c->in + c->have, FX_MAX_HEAD - c->have);
      if (r <= 0) goto done;
      c->have += (size_t)r;
    }
    size_t hlen = (size_t)(end - c->in) + 4;
    char save = c->in[hlen - 2];
    c->in[hlen - 2] = 0; /* head ends "\r\n" + NUL for the header scans */
    size_t vl = 0, blen = 0;
    const char *cl = fx_header(c->in, "content-length", &vl);
    if (cl) blen = (size_t)strtoul(cl, NULL, 10);
    if (blen > FX_MAX_BODY) goto done;
    int is_post = strncmp(c->in, "POST ", 5) == 0, is_delete = strncmp(c->in, "DELETE ", 7) == 0;
    int wants_close = fx_header(c->in, "connection", &vl) && strncasecmp(fx_header(c->in, "connection", &vl), "close", 5) == 0;
    char head[FX_MAX_HEAD];
    memcpy(head, c->in, hlen - 1);
    c->in[hlen - 2] = save;
    while (c->have < hlen + blen) {
      long r = fx_read(c, c->in + c->have, sizeof c->in - c->have - 1);
      if (r <= 0) goto done;
      c->have += (size_t)r;
    }
    char saveb = c->in[hlen + blen];
    c->in[hlen + blen] = 0;
    int rc;
    if (fx_cfg.api_key) {
      const char *a = fx_header(head, "authorization", &vl);
      if (!a || vl != strlen(fx_cfg.api_key) + 7 || strncmp(a, "Bearer ", 7) != 0 ||
          strncmp(a + 7, fx_cfg.api_key, vl - 7) != 0) {
        rc = fx_send(c, 401, "application/json", "WWW-Authenticate: Bearer\r\n",
                     "{\"error\":\"unauthorized\"}", 24);
        goto next;
      }
    }
    if (is_post) rc = fx_rpc(c, head, c->in + hlen);
    else if (is_delete) rc = fx_send(c, 200, NULL, NULL, "", 0);
    else rc = fx_send(c, 405, "text/plain", "Allow: POST, DELETE\r\n", "method not allowed", 18);
  next:
    c->in[hlen + blen] = saveb;
    if (rc < 0 || wants_close) goto done;
    memmove(c->in, c->in + hlen + blen, c->have - hlen - blen);
    c->have -= hlen + blen;
  }
done:
  if (c->ssl) { SSL_shutdown(c->ssl); SSL_free(c->ssl); }
  close(c->fd);
  free(c);
  return NULL;
}

/* exits when the parent is gone or the lifetime is over, so no run leaves a server behind */
typedef struct { long parent; long lifetime_s; } fx_watch_arg;
static void *fx_watch(void *arg) {
  fx_watch_arg *w = arg;
  time_t t0 = time(NULL);
  for (;;) {
    sleep(1);
    if (w->parent > 0 && kill((pid_t)w->parent, 0) != 0 && errno == ESRCH) _exit(0);
    if (time(NULL) - t0 >= w->lifetime_s) _exit(0);
  }
  return NULL;
}

int main(int argc, char **argv) {
  const char *certs = NULL;
  int port = 0;
  static fx_watch_arg w = {0, 600};
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (strcmp(a, "--sse") == 0) fx_cfg.sse = 1;
    else if (strcmp(a, "--json") == 0) fx_cfg.sse = 0;
    else if (!v) { fprintf(stderr, "fixture_server: %s needs a value\n", a); return 2; }
    else if (strcmp(a, "--tls") == 0) certs = v, i++;
    else if (strcmp(a, "--tools") == 0) fx_cfg.tools = atoi(v), i++;
    else if (strcmp(a, "--page-size") == 0) fx_cfg.page = atoi(v), i++;
    else if (strcmp(a, "--api-key") == 0) fx_cfg.api_key = v, i++;
    else if (strcmp(a, "--parent-pid") == 0) w.parent = atol(v), i++;
    else if (strcmp(a, "--max-lifetime-s") == 0) w.lifetime_s = atol(v), i++;
    else if (strcmp(a, "--port") == 0) port = atoi(v), i++;
    else if (strcmp(a, "--era") == 0) {
      fx_cfg.era_modern = strcmp(v, "legacy") != 0;
      fx_cfg.era_legacy = strcmp(v, "modern") != 0;
      i++;
    } else { fprintf(stderr, "fixture_server: unknown option %s\n", a); return 2; }
  }
  if (fx_cfg.tools < 2) fx_cfg.tools = 2;
  signal(SIGPIPE, SIG_IGN);
  if (certs) {
    char crt[1024], key[1024];
    snprintf(crt, sizeof crt, "%s/server.pem", certs);
    snprintf(key, sizeof key, "%s/server-key.pem", certs);
    fx_cfg.tls = SSL_CTX_new(TLS_server_method());
    if (!fx_cfg.tls || SSL_CTX_use_certificate_chain_file(fx_cfg.tls, crt) != 1 ||
        SSL_CTX_use_PrivateKey_file(fx_cfg.tls, key, SSL_FILETYPE_PEM) != 1) {
      ERR_print_errors_fp(stderr);
      return 1;
    }
  }
  int ls = socket(AF_INET, SOCK_STREAM, 0), one = 1;
  setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in sa = {0};
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  sa.sin_port = htons((uint16_t)port);
  socklen_t sl = sizeof sa;
  if (bind(ls, (struct sockaddr *)&sa, sizeof sa) != 0 || listen(ls, 128) != 0 ||
      getsockname(ls, (struct sockaddr *)&sa, &sl) != 0) {
    perror("fixture_server: listen");
    return 1;
  }
  pthread_t wt;
  pthread_create(&wt, NULL, fx_watch, &w);
  printf("{\"url\":\"%s://127.0.0.1:%d/mcp\",\"pid\":%d}\n", certs ? "https" : "http", ntohs(sa.sin_port),
         (int)getpid());
  fflush(stdout);
  for (;;) {
    int fd = accept(ls, NULL, NULL);
    if (fd < 0) { if (errno == EINTR) continue; perror("accept"); return 1; }
    fx_conn *c = calloc(1, sizeof *c);
    if (!c) { close(fd); continue; }
    c->fd = fd;
    pthread_t t;
    pthread_attr_t at;
    pthread_attr_init(&at);
    pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
    if (pthread_create(&t, &at, fx_serve, c) != 0) { close(fd); free(c); }
    pthread_attr_destroy(&at);
  }
}
