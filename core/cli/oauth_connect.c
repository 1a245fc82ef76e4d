/* oauth_connect.c: `mcplink oauth connect SERVER`: the user's OAuth flow from a terminal, with a
 * one-shot loopback redirect listener on 127.0.0.1 (RFC 8252 §7.3) and the oauth.* ops. */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

/* Reads one request head; returns the request target (malloc'd) or NULL. */
static char *oc_read_target(int fd) {
  char req[OC_MAX_REQUEST + 1];
  size_t n = 0;
  while (n < OC_MAX_REQUEST) {
    struct pollfd p = {fd, POLLIN, 0};
    if (poll(&p, 1, 10000) <= 0) return NULL;
    ssize_t r = read(fd, req + n, OC_MAX_REQUEST - n);
    if (r <= 0) return NULL;
    n += (size_t)r;
    req[n] = '\0';
    if (strstr(req, "\r\n\r\n")) break;
  }
  if (strncmp(req, "GET ", 4) != 0) return NULL;
  char *sp = strchr(req + 4, ' ');
  if (!sp) return NULL;
  *sp = '\0';
  return strdup(req + 4);
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
  for (long waited = 0; waited < oa.timeout_ms;) {
    struct pollfd p = {lfd, POLLIN, 0};
    long slice = oa.timeout_ms - waited < 1000 ? oa.timeout_ms - waited : 1000;
    int pr = poll(&p, 1, (int)slice);
    if (pr < 0 && errno != EINTR) break;
    if (pr <= 0) { waited += slice; continue; }
    int fd = accept(lfd, NULL, NULL);
    if (fd < 0) continue;
    char *target = oc_read_target(fd);
    if (!target || strncmp(target, "/callback?", 10) != 0) {
      oc_reply(fd, 404, "Not the OAuth callback.");
      close(fd);
      free(target);
      continue;
    }
    char cargs[OC_MAX_REQUEST + 256] = "{\"callback_url\":";
    char full[OC_MAX_REQUEST + 64];
    snprintf(full, sizeof full, "http://127.0.0.1:%d%s", port, target);
    oc_json_str(cargs, sizeof cargs, full);
    strncat(cargs, "}", sizeof cargs - strlen(cargs) - 1);
    free(target);
    int orc = mcpl_op(c->engine, &c->actor, "oauth.complete", cargs, &res);
    oc_reply(fd, 200, orc == MCPL_OK ? "Connected. You can close this window and return to the terminal."
                                      : "The connection failed: see the terminal.");
    close(fd);
    cli_print_json(c->compact, res ? res : "{}", orc == MCPL_OK ? stdout : stderr);
    rc = orc == MCPL_OK ? 0 : 1;
    goto done;
  }
  char msg[160];
  snprintf(msg, sizeof msg, "oauth connect: no callback from the browser within %ld ms", oa.timeout_ms);
  cli_print_error(c->compact, "timeout", msg);
done:
  if (lfd >= 0) close(lfd);
  mcpl_free(res);
  free(url);
  return rc;
}
