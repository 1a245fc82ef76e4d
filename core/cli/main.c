/* main.c: the mcplink command line: global options, built-in commands, and
 * friendly subcommands that script.cli maps onto ops. No logic of its own. */
#include <errno.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <lauxlib.h>
#include "cli.h"
#include "engine.h"

#define CLI_MAX_INPUT (16 * 1024 * 1024)

static const char usage_text[] =
  "usage: mcplink [global options] COMMAND [ARGS]\n"
  "\n"
  "Global options:\n"
  "  --db PATH|URI      database: a SQLite file, or postgresql://... (default $MCPLINK_DB,\n"
  "                     else ./mcplink.db)\n"
  "  --key-file PATH    key ring (default $MCPLINK_KEY_FILE, else mcplink.key beside a SQLite\n"
  "                     db, or in the current directory with a postgresql:// URI)\n"
  "  --policies DIR     policy directory (default $MCPLINK_POLICIES, else ./policies if\n"
  "                     present, else the built-in default policy)\n"
  "  --tenant NAME --user NAME   act as this tenant user\n"
  "  --system           act as the system administrator (the default)\n"
  "  --compact          print JSON on one line\n"
  "  --ca-file PATH     extra CA bundle for outbound HTTPS\n"
  "  --lua-dir DIR      load engine Lua from DIR instead of the built-in copy\n"
  "  --log-level LEVEL  debug | info | warn | error (default warn)\n"
  "  --log-file PATH    append log lines to PATH instead of stderr\n"
  "  --oauth-redirect-uri URI, --oauth-client-metadata-url URL  OAuth client settings\n"
  "\n"
  "Commands:\n"
  "  op NAME [JSON|-]   run an op; prints its result JSON (exit 1 on error)\n"
  "  repl               interactive shell\n"
  "  run FILE [ARGS]    run an operator script\n"
  "  test FILE... [-- ARG...]  run scenario scripts, print TAP (fresh database\n"
  "                     unless --db); ARGs reach each script as `arg`\n"
  "  oauth connect SERVER [--timeout S]  connect the acting user to an OAuth\n"
  "                     server (prints the authorization URL, listens on 127.0.0.1)\n"
  "  conformance-client URL  the client the official MCP conformance suite drives\n"
  "  version            print the version\n"
  "  help [COMMAND]     this text, or help for a friendly command\n"
  "  FAMILY ACTION ...  friendly form of an op, e.g. `mcplink server list`\n"
  "                     (`mcplink help server` lists them)\n";

/* what + arg: "unknown option" + "--x" */
static int usage_error(const char *what, const char *arg) {
  fprintf(stderr, "mcplink: %s%s%s\n(run `mcplink help` for usage)\n", what, *arg ? " " : "", arg);
  return 2;
}

static char *read_all(FILE *f, size_t *len) {
  size_t cap = 4096, n = 0;
  char *buf = malloc(cap);
  if (!buf) return NULL;
  for (;;) {
    if (n + 1 >= cap) {
      if (cap >= CLI_MAX_INPUT) { free(buf); errno = EFBIG; return NULL; }
      char *nb = realloc(buf, cap * 2);
      if (!nb) { free(buf); return NULL; }
      buf = nb;
      cap *= 2;
    }
    size_t r = fread(buf + n, 1, cap - n - 1, f);
    if (r == 0) break;
    n += r;
  }
  buf[n] = 0;
  if (len) *len = n;
  return buf;
}

static char *read_path(const char *path, size_t *len) {
  FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
  if (!f) return NULL;
  char *s = read_all(f, len);
  if (f != stdin) fclose(f);
  return s;
}

void cli_push_actor(lua_State *L, const mcpl_actor *a) {
  lua_createtable(L, 0, 3);
  if (a->system) {
    lua_pushboolean(L, 1);
    lua_setfield(L, -2, "system");
  } else {
    lua_pushstring(L, a->tenant);
    lua_setfield(L, -2, "tenant");
    lua_pushstring(L, a->user);
    lua_setfield(L, -2, "user");
  }
}

lua_State *cli_script_state(cli_ctx *c) {
  char *err = NULL;
  lua_State *L = mcpl_state_script(c->engine, &err);
  if (!L) {
    fprintf(stderr, "mcplink: cannot start the script environment: %s\n", err ? err : "?");
    mcpl_free(err);
    return NULL;
  }
  lua_getfield(L, LUA_REGISTRYINDEX, "mcpl.script");
  return L;
}

/* Prints a result or error JSON, re-indented unless --compact. */
static void print_json(cli_ctx *c, const char *json, FILE *out) {
  if (c->compact) { fprintf(out, "%s\n", json); return; }
  lua_State *L = cli_script_state(c);
  if (!L) { fprintf(out, "%s\n", json); return; }
  lua_getfield(L, -1, "pretty");
  lua_pushstring(L, json);
  if (lua_pcall(L, 1, 1, 0) == LUA_OK && lua_isstring(L, -1)) fprintf(out, "%s\n", lua_tostring(L, -1));
  else fprintf(out, "%s\n", json);
  lua_close(L);
}

static int cmd_op(cli_ctx *c, int argc, char **argv) {
  /* --compact is also accepted after the op name, where people type it */
  int n = 0;
  for (int k = 0; k < argc; k++) {
    if (strcmp(argv[k], "--compact") == 0) c->compact = 1;
    else argv[n++] = argv[k];
  }
  argc = n;
  if (argc < 1) return usage_error("op: missing op name", "");
  if (argc > 2) return usage_error("op: unexpected argument", argv[2]);
  char *args = NULL;
  if (argc == 2) {
    if (strcmp(argv[1], "-") == 0) {
      args = read_all(stdin, NULL);
      if (!args) { fprintf(stderr, "mcplink: op: cannot read arguments from stdin (limit 16 MiB)\n"); return 2; }
    } else args = strdup(argv[1]);
  }
  char *res = NULL;
  int rc = mcpl_op(c->engine, &c->actor, argv[0], args, &res);
  free(args);
  print_json(c, res ? res : "{}", rc == MCPL_OK ? stdout : stderr);
  mcpl_free(res);
  return rc == MCPL_OK ? 0 : 1;
}

static int run_script(cli_ctx *c, const char *fn, const char *path, int argc, char **argv) {
  size_t n;
  char *src = read_path(path, &n);
  if (!src) { fprintf(stderr, "mcplink: cannot read %s: %s\n", path, strerror(errno)); return 2; }
  lua_State *L = cli_script_state(c);
  if (!L) { free(src); return 1; }
  lua_getfield(L, -1, fn);
  lua_pushlstring(L, src, n);
  free(src);
  lua_pushfstring(L, "@%s", path);
  cli_push_actor(L, &c->actor);
  lua_createtable(L, argc, 0);
  for (int i = 0; i < argc; i++) {
    lua_pushstring(L, argv[i]);
    lua_rawseti(L, -2, i + 1);
  }
  int status = 1;
  if (lua_pcall(L, 4, 1, 0) != LUA_OK) fprintf(stderr, "mcplink: %s\n", lua_tostring(L, -1));
  else status = (int)lua_tointeger(L, -1);
  fflush(stdout);
  lua_close(L);
  return status;
}

static int rm_entry(const char *p, const struct stat *sb, int flag, struct FTW *ftw) {
  (void)sb; (void)flag; (void)ftw;
  return remove(p);
}

/* Engine options collected from the command line and environment. */
typedef struct {
  const char *db, *key_file, *policies, *lua_dir, *ca_file, *log_level, *log_file;
  const char *redirect_uri, *metadata_url, *pool_size;
} gopts;

static mcpl_engine *open_engine(const gopts *g, const char *db_override, const char *key_override) {
  mcpl_options *o = mcpl_options_new();
  const char *db = db_override ? db_override : g->db;
  char keybuf[PATH_MAX];
  const char *key = key_override ? key_override : g->key_file;
  if (!key) {
    /* a URI has no "beside": the current directory then */
    const char *slash = strstr(db, "://") ? NULL : strrchr(db, '/');
    if (slash) snprintf(keybuf, sizeof keybuf, "%.*s/mcplink.key", (int)(slash - db), db);
    else snprintf(keybuf, sizeof keybuf, "mcplink.key");
    key = keybuf;
  }
  const char *policies = g->policies;
  if (!policies && access("policies/default.lua", R_OK) == 0) policies = "policies";
  struct { const char *name, *val; } kv[] = {
    {"db", db}, {"key_file", key}, {"policies", policies}, {"lua_dir", g->lua_dir},
    {"ca_file", g->ca_file}, {"log_level", g->log_level}, {"log_file", g->log_file},
    {"oauth_redirect_uri", g->redirect_uri}, {"oauth_client_metadata_url", g->metadata_url},
    {"pool_size", g->pool_size}};
  for (size_t i = 0; i < sizeof kv / sizeof kv[0]; i++) {
    if (kv[i].val && mcpl_options_set(o, kv[i].name, kv[i].val) != MCPL_OK) {
      fprintf(stderr, "mcplink: invalid value for %s: %s\n", kv[i].name, kv[i].val);
      mcpl_options_free(o);
      return NULL;
    }
  }
  char *err = NULL;
  mcpl_engine *e = mcpl_open(o, &err);
  mcpl_options_free(o);
  if (!e) {
    fprintf(stderr, "mcplink: cannot open engine: %s\n", err ? err : "?");
    mcpl_free(err);
  }
  return e;
}

static int cmd_test(cli_ctx *c, const gopts *g, int argc, char **argv) {
  /* test FILE... [-- ARG...]: the ARGs reach every script as `arg` */
  int nfiles = argc, nargs = 0;
  char **args = NULL;
  for (int k = 0; k < argc; k++) {
    if (strcmp(argv[k], "--") == 0) {
      nfiles = k;
      args = argv + k + 1;
      nargs = argc - k - 1;
      break;
    }
  }
  argc = nfiles;
  if (argc < 1) return usage_error("test: missing FILE", "");
  int worst = 0;
  for (int i = 0; i < argc; i++) {
    char dir[] = "/tmp/mcplink-test-XXXXXX";
    int fresh = g->db == NULL;
    if (fresh && !mkdtemp(dir)) { perror("mcplink: mkdtemp"); return 1; }
    char db[PATH_MAX], key[PATH_MAX];
    snprintf(db, sizeof db, "%s/test.db", dir);
    snprintf(key, sizeof key, "%s/test.key", dir);
    mcpl_engine *e = open_engine(g, fresh ? db : NULL, fresh ? key : NULL);
    if (!e) { worst = 1; }
    else {
      if (argc > 1) printf("# %s\n", argv[i]);
      c->engine = e;
      int st = run_script(c, "test", argv[i], nargs, args);
      if (st > worst) worst = st;
      mcpl_close(e);
      c->engine = NULL;
    }
    if (fresh) nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
  }
  return worst;
}

/* Friendly subcommands: script.cli maps words and flags onto an op. */
static int cmd_friendly(cli_ctx *c, int argc, char **argv) {
  lua_State *L = cli_script_state(c);
  if (!L) return 1;
  lua_getfield(L, -1, "cli");
  lua_pushboolean(L, c->compact);
  cli_push_actor(L, &c->actor);
  lua_createtable(L, argc, 0);
  for (int i = 0; i < argc; i++) {
    lua_pushstring(L, argv[i]);
    lua_rawseti(L, -2, i + 1);
  }
  int status = 1;
  if (lua_pcall(L, 3, 1, 0) != LUA_OK) fprintf(stderr, "mcplink: %s\n", lua_tostring(L, -1));
  else status = (int)lua_tointeger(L, -1);
  fflush(stdout);
  lua_close(L);
  return status;
}

static const char *env_or(const char *name, const char *def) {
  const char *v = getenv(name);
  return (v && *v) ? v : def;
}

int main(int argc, char **argv) {
  gopts g = {0};
  g.db = env_or("MCPLINK_DB", NULL);
  g.key_file = env_or("MCPLINK_KEY_FILE", NULL);
  g.policies = env_or("MCPLINK_POLICIES", NULL);
  cli_ctx c = {0};
  c.actor.system = 1;
  const char *tenant = NULL, *user = NULL;
  int explicit_system = 0;
  int i = 1;
  for (; i < argc && argv[i][0] == '-' && argv[i][1] == '-'; i++) {
    const char *a = argv[i];
    const char **slot = NULL;
    if (strcmp(a, "--system") == 0) { explicit_system = 1; continue; }
    if (strcmp(a, "--compact") == 0) { c.compact = 1; continue; }
    if (strcmp(a, "--help") == 0) { fputs(usage_text, stdout); return 0; }
    if (strcmp(a, "--version") == 0) { printf("mcplink %s\n", mcpl_version()); return 0; }
    if (strcmp(a, "--db") == 0) slot = &g.db;
    else if (strcmp(a, "--key-file") == 0) slot = &g.key_file;
    else if (strcmp(a, "--policies") == 0) slot = &g.policies;
    else if (strcmp(a, "--lua-dir") == 0) slot = &g.lua_dir;
    else if (strcmp(a, "--ca-file") == 0) slot = &g.ca_file;
    else if (strcmp(a, "--log-level") == 0) slot = &g.log_level;
    else if (strcmp(a, "--log-file") == 0) slot = &g.log_file;
    else if (strcmp(a, "--pool-size") == 0) slot = &g.pool_size;
    else if (strcmp(a, "--oauth-redirect-uri") == 0) slot = &g.redirect_uri;
    else if (strcmp(a, "--oauth-client-metadata-url") == 0) slot = &g.metadata_url;
    else if (strcmp(a, "--tenant") == 0) slot = &tenant;
    else if (strcmp(a, "--user") == 0) slot = &user;
    else return usage_error("unknown option", a);
    if (i + 1 >= argc) return usage_error("this option needs a value:", a);
    *slot = argv[++i];
  }
  if (i >= argc) { fputs(usage_text, stderr); return 2; }
  if ((tenant != NULL) != (user != NULL)) return usage_error("--tenant and --user go together", "");
  if (tenant && explicit_system) return usage_error("--system cannot be combined with --tenant/--user", "");
  if (tenant) { c.actor.system = 0; c.actor.tenant = tenant; c.actor.user = user; }
  const char *cmd = argv[i++];
  /* `test` uses a fresh temporary database unless one was named */
  if (!g.db && strcmp(cmd, "test") != 0) g.db = "mcplink.db";
  int rest = argc - i;
  char **rargv = argv + i;
  if (strcmp(cmd, "version") == 0) { printf("mcplink %s\n", mcpl_version()); return 0; }
  if (strcmp(cmd, "help") == 0 && rest == 0) { fputs(usage_text, stdout); return 0; }
  if (strcmp(cmd, "test") == 0) return cmd_test(&c, &g, rest, rargv);
  if (strcmp(cmd, "conformance-client") == 0) { /* core/cli/conformance.c */
    return cli_conformance(g.ca_file, g.lua_dir, g.log_level, rest, rargv);
  }

  c.engine = open_engine(&g, NULL, NULL);
  if (!c.engine) return 1;
  int status;
  if (strcmp(cmd, "op") == 0) status = cmd_op(&c, rest, rargv);
  else if (strcmp(cmd, "repl") == 0) status = cli_repl(&c);
  else if (strcmp(cmd, "oauth") == 0 && rest > 0 && strcmp(rargv[0], "connect") == 0)
    status = cli_oauth_connect(&c, rest - 1, rargv + 1);
  else if (strcmp(cmd, "run") == 0) {
    status = rest < 1 ? usage_error("run: missing FILE", "")
                      : run_script(&c, "run", rargv[0], rest - 1, rargv + 1);
  } else status = cmd_friendly(&c, argc - i + 1, argv + i - 1);
  mcpl_close(c.engine);
  return status;
}
