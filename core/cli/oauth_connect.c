/* oauth_connect.c: `mcplink oauth connect SERVER`: the user's OAuth flow from a terminal, with a
 * one-shot loopback redirect listener on 127.0.0.1 (RFC 8252 §7.3) and the oauth.* ops. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include "cli.h"

#define OC_MAX_REQUEST 8192

/* Appends s to buf as a JSON string (quotes included). */
static void oc_json_str(char *buf, size_t cap, const char *s) {
  size_t n = strlen(buf);
  if (n + 2 >= cap) return;
  buf[n++] = '"';
  for (; *s && n + 8 < cap; s++) {
    unsigned char ch = (unsigned char)*s;
    if (ch == '"' || ch == '\\') { buf[n++] = '\\'; buf[n++] = (char)ch; }
    else if (ch < 0x20) n += (size_t)snprintf(buf + n, cap - n, "\\u%04x", ch);
    else buf[n++] = (char)ch;
  }
  buf[n++] = '"';
  buf[n] = '\0';
}

/* The string value of "key" in a flat JSON result (simple escapes only: the
 * authorization URL is ASCII). Returns malloc'd text or NULL. */
static char *oc_json_get(const char *json, const char *key) {
  char pat[64];
  snprintf(pat, sizeof pat, "\"%s\":\"", key);
  const char *p = strstr(json, pat);
  if (!p) return NULL;
  p += strlen(pat);
  char *out = malloc(strlen(p) + 1);
  if (!out) return NULL;
  size_t n = 0;
  for (; *p && *p != '"'; p++) {
    if (*p == '\\' && p[1]) p++;
    out[n++] = *p;
  }
  out[n] = '\0';
  return out;
}

static void oc_reply(int fd, int status, const char *text) {
  char buf[1024];
  int n = snprintf(buf, sizeof buf,
                   "HTTP/1.1 %d %s\r\nContent-Type: text/html; charset=utf-8\r\nConnection: close\r\n"
                   "Cache-Control: no-store\r\n\r\n<!doctype html><title>mcplink</title><p>%s</p>\n",
                   status, status == 200 ? "OK" : "Not Found", text);
  if (n > 0 && write(fd, buf, (size_t)n) < 0) { /* the browser went away: nothing to do */ }
}

/* One accepted connection of the listener. A browser may open more than one (speculative
 * preconnects that never send a request), so each is read as it becomes ready, never in turn. */
typedef struct {
  int fd;
  size_t n;
  long since_ms;
  char req[OC_MAX_REQUEST + 1];
} oc_client;

#define OC_MAX_CLIENTS 16
#define OC_CLIENT_IDLE_MS 10000L

static long oc_now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long)ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

static void oc_drop(oc_client *cl) {
  if (cl->fd >= 0) close(cl->fd);
  cl->fd = -1;
  cl->n = 0;
}

/* Reads what client cl has ready. Returns 1 with *target (malloc'd) once a whole request head is
 * in, 0 when more is to come, -1 when the connection is done with (closed, or answered 404). */
static int oc_client_read(oc_client *cl, char **target) {
  ssize_t r = read(cl->fd, cl->req + cl->n, OC_MAX_REQUEST - cl->n);
  if (r < 0 && (errno == EINTR || errno == EAGAIN)) return 0;
  if (r <= 0) return -1;
  cl->n += (size_t)r;
  cl->req[cl->n] = '\0';
  if (!strstr(cl->req, "\r\n\r\n")) {
    if (cl->n < OC_MAX_REQUEST) return 0;
    oc_reply(cl->fd, 404, "Not the OAuth callback.");
    return -1;
  }
  char *sp = strncmp(cl->req, "GET ", 4) == 0 ? strchr(cl->req + 4, ' ') : NULL;
  if (!sp || strncmp(cl->req + 4, "/callback?", 10) != 0) {
    oc_reply(cl->fd, 404, "Not the OAuth callback.");
    return -1;
  }
  *sp = '\0';
  *target = strdup(cl->req + 4);
  return *target ? 1 : -1;
}

#define OC_TIMEOUT_DEFAULT_MS 300000L
#define OC_TIMEOUT_MAX_MS 3600000L

static int oc_usage(const char *what, const char *arg) {
  fprintf(stderr, "mcplink: oauth connect: %s%s%s\n"
                  "usage: mcplink --tenant T --user U oauth connect SERVER [--timeout-ms MS]\n",
          what, *arg ? " " : "", arg);
  return 2;
}

int cli_oauth_connect_parse(int argc, char **argv, cli_oauth_args *out) {
  out->server = NULL;
  out->timeout_ms = OC_TIMEOUT_DEFAULT_MS;
  for (int i = 0; i < argc; i++) {
    const char *a = argv[i];
    if (strcmp(a, "--timeout-ms") == 0 || strncmp(a, "--timeout-ms=", 13) == 0) {
      const char *v = a[12] == '=' ? a + 13 : (i + 1 < argc ? argv[++i] : NULL);
      char *end = NULL;
      errno = 0;
      long ms = v ? strtol(v, &end, 10) : 0;
      if (!v || !*v || *end || errno || ms < 1 || ms > OC_TIMEOUT_MAX_MS)
        return oc_usage("--timeout-ms needs milliseconds from 1 to 3600000, got", v ? v : "nothing");
      out->timeout_ms = ms;
    } else if (strcmp(a, "--timeout") == 0) {
      return oc_usage("--timeout is now --timeout-ms (milliseconds), like every other timeout", "");
    } else if (a[0] == '-') {
      return oc_usage("unknown option", a);
    } else if (!out->server) {
      out->server = a;
    } else {
      return oc_usage("unexpected argument", a);
    }
  }
  if (!out->server) return oc_usage("missing SERVER", "");
  return 0;
}

int cli_oauth_connect(cli_ctx *c, int argc, char **argv) {
  int rc = 1, lfd = -1;
  char *res = NULL, *url = NULL;
  oc_client *clients = NULL;
  cli_oauth_args oa;
  if (cli_oauth_connect_parse(argc, argv, &oa) != 0) return 2;
  const char *server = oa.server;
  /* the listener: loopback only, a port the kernel picks */
  struct sockaddr_in sa;
  memset(&sa, 0, sizeof sa);
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t sl = sizeof sa;
  lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (lfd < 0 || bind(lfd, (struct sockaddr *)&sa, sizeof sa) != 0 || listen(lfd, 8) != 0 ||
      getsockname(lfd, (struct sockaddr *)&sa, &sl) != 0) {
    char msg[256];
    snprintf(msg, sizeof msg, "oauth connect: cannot listen on 127.0.0.1: %s", strerror(errno));
    cli_print_error(c->compact, "internal", msg);
    goto done;
  }
  int port = ntohs(sa.sin_port);
  char args[2048] = "{\"server\":";
  oc_json_str(args, sizeof args, server);
  size_t an = strlen(args);
  snprintf(args + an, sizeof args - an, ",\"redirect_uri\":\"http://127.0.0.1:%d/callback\"}", port);
  if (mcpl_op(c->engine, &c->actor, "oauth.begin", args, &res) != MCPL_OK) {
    cli_print_json(c->compact, res ? res : "{\"error\":{\"code\":\"internal\"}}", stderr);
    goto done;
  }
  url = oc_json_get(res, "authorization_url");
  mcpl_free(res);
  res = NULL;
  if (!url) { cli_print_error(c->compact, "internal", "oauth.begin returned no authorization URL"); goto done; }
  printf("Open this URL in your browser to connect to %s:\n\n  %s\n\n", server, url);
  printf("Waiting for the browser on http://127.0.0.1:%d/callback (up to %ld ms)...\n", port, oa.timeout_ms);
  fflush(stdout);
  clients = calloc(OC_MAX_CLIENTS, sizeof *clients);
  if (!clients) { cli_print_error(c->compact, "internal", "out of memory"); goto done; }
  for (int i = 0; i < OC_MAX_CLIENTS; i++) clients[i].fd = -1;
  for (long deadline = oc_now_ms() + oa.timeout_ms;;) {
    long now = oc_now_ms();
    if (now >= deadline) break;
    struct pollfd pf[OC_MAX_CLIENTS + 1];
    int who[OC_MAX_CLIENTS + 1], np = 0, live = 0;
    for (int i = 0; i < OC_MAX_CLIENTS; i++) {
      if (clients[i].fd < 0) continue;
      if (now - clients[i].since_ms > OC_CLIENT_IDLE_MS) { oc_drop(&clients[i]); continue; }
      pf[np] = (struct pollfd){clients[i].fd, POLLIN, 0};
      who[np++] = i;
      live++;
    }
    if (live < OC_MAX_CLIENTS) { pf[np] = (struct pollfd){lfd, POLLIN, 0}; who[np++] = -1; }
    long slice = deadline - now < 1000 ? deadline - now : 1000;
    int pr = poll(pf, (nfds_t)np, (int)slice);
    if (pr < 0 && errno != EINTR) break;
    if (pr <= 0) continue;
    char *target = NULL;
    int from = -1;
    for (int k = 0; k < np && !target; k++) {
      if (!(pf[k].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      if (who[k] < 0) {
        int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
        for (int i = 0; fd >= 0 && i < OC_MAX_CLIENTS; i++)
          if (clients[i].fd < 0) { clients[i] = (oc_client){.fd = fd, .since_ms = now}; fd = -1; }
        if (fd >= 0) close(fd);
        continue;
      }
      int got = oc_client_read(&clients[who[k]], &target);
      if (got < 0) oc_drop(&clients[who[k]]);
      if (got > 0) from = who[k];
    }
    if (!target) continue;
    int fd = clients[from].fd;
    char cargs[OC_MAX_REQUEST + 256] = "{\"callback_url\":";
    char full[OC_MAX_REQUEST + 64];
    snprintf(full, sizeof full, "http://127.0.0.1:%d%s", port, target);
    oc_json_str(cargs, sizeof cargs, full);
    strncat(cargs, "}", sizeof cargs - strlen(cargs) - 1);
    free(target);
    int orc = mcpl_op(c->engine, &c->actor, "oauth.complete", cargs, &res);
    /* the answer page is small: a blocking write is bounded by the socket buffer */
    int fl = fcntl(fd, F_GETFL);
    if (fl >= 0) fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
    oc_reply(fd, 200, orc == MCPL_OK ? "Connected. You can close this window and return to the terminal."
                                      : "The connection failed: see the terminal.");
    cli_print_json(c->compact, res ? res : "{}", orc == MCPL_OK ? stdout : stderr);
    rc = orc == MCPL_OK ? 0 : 1;
    goto done;
  }
  char msg[160];
  snprintf(msg, sizeof msg, "oauth connect: no callback from the browser within %ld ms", oa.timeout_ms);
  cli_print_error(c->compact, "timeout", msg);
done:
  for (int i = 0; clients && i < OC_MAX_CLIENTS; i++) oc_drop(&clients[i]);
  free(clients);
  if (lfd >= 0) close(lfd);
  mcpl_free(res);
  free(url);
  return rc;
}
