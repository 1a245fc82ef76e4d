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
#include <sqlite3.h>
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
  "  --policies DIR     policy directory (default $MCPLINK_POLICIES, else none: the\n"
  "                     built-in default policy; never ./policies implicitly)\n"
  "  --tenant NAME --user NAME   act as this tenant user\n"
  "  --system           act as the system administrator (the default)\n"
  "  --compact          print JSON on one line (keys sorted, as in the indented form)\n"
  "  --ca-file PATH     extra CA bundle for outbound HTTPS\n"
  "  --lua-dir DIR      load engine Lua from DIR instead of the built-in copy\n"
  "  --log-level LEVEL  debug | info | warn | error (default warn)\n"
  "  --log-file PATH    append log lines to PATH instead of stderr\n"
  "  --oauth-redirect-uri URI, --oauth-client-metadata-url URL  OAuth client settings\n"
  "\n"
  "Commands (`mcplink help COMMAND` or `mcplink COMMAND --help` for more):\n";

/* The built-in commands: one line for `mcplink help`, and their own help. */
typedef struct {
  const char *name, *line, *help;
} cli_builtin;

static const cli_builtin builtins[] = {
  {"op", "op NAME [JSON|-]   run an op by name; prints its result JSON",
   "usage: mcplink [global options] op NAME [JSON|-] [--compact]\n"
   "Runs the op NAME with the JSON object of arguments (`-` reads it from stdin) and\n"
   "prints its result JSON on stdout. On error the error JSON goes to stderr and the\n"
   "exit status is 1; a usage error exits 2.\n"
   "  mcplink op server.list '{\"limit\":10}'\n"
   "  mcplink op op.list                 every op with its role and argument schema\n"
   "  mcplink help op NAME               one op's command form and arguments\n"},
  {"repl", "repl               the interactive Lua shell on the engine",
   "usage: mcplink [global options] repl\n"
   "An interactive Lua shell in the operator-script environment: every op family is a\n"
   "table (server.list{}), expressions print their value, Tab completes, Ctrl-C stops\n"
   "the running op, Ctrl-D leaves; `.help` inside lists the dot-commands. When stdin\n"
   "is not a terminal it runs the lines it reads and exits 1 if any failed.\n"},
  {"run", "run FILE [ARGS]    run an operator script",
   "usage: mcplink [global options] run FILE [ARGS...]\n"
   "Runs the Lua operator script FILE (`-` reads stdin) with the op API, json and log;\n"
   "the ARGS reach it as `arg`.\n"},
  {"test", "test FILE... [-- ARG...]  run scenario scripts and print TAP",
   "usage: mcplink [global options] test FILE... [-- ARG...]\n"
   "Runs scenario scripts and prints TAP. Each FILE gets a fresh temporary database\n"
   "unless --db is given; the ARGs after `--` reach every script as `arg`. The exit\n"
   "status is 0 when every test passed.\n"},
  {"oauth", "oauth connect SERVER [--timeout-ms MS]  connect the acting user to an OAuth server",
   "usage: mcplink --tenant T --user U oauth connect SERVER [--timeout-ms MS]\n"
   "Connects the acting user to the OAuth server SERVER from a terminal: listens once\n"
   "on 127.0.0.1 (RFC 8252), prints the authorization URL to open in a browser, and\n"
   "finishes when the browser comes back, or after MS milliseconds (default 300000).\n"},
  {"conformance-client", "conformance-client URL  the client the MCP conformance suite drives",
   "usage: mcplink [global options] conformance-client URL\n"
   "The client the official MCP conformance suite drives: it reads\n"
   "MCP_CONFORMANCE_SCENARIO and MCP_CONFORMANCE_CONTEXT and runs on a temporary\n"
   "database with plain http and loopback allowed.\n"},
  {"version", "version            print the version",
   "usage: mcplink version\nPrints the version of mcplink.\n"},
  {"help", "help [COMMAND]     this text, or a command's help",
   "usage: mcplink help [COMMAND]\n"
   "Without COMMAND: the global options, the commands and the op families. With a\n"
   "built-in command, a family (`mcplink help server`) or a friendly command\n"
   "(`mcplink help server update`): its usage. `mcplink COMMAND --help` is the same.\n"},
};
#define NBUILTINS (sizeof builtins / sizeof builtins[0])

static const cli_builtin *builtin_named(const char *name) {
  for (size_t i = 0; i < NBUILTINS; i++)
    if (strcmp(builtins[i].name, name) == 0) return &builtins[i];
  return NULL;
}

static int is_help_flag(const char *a) { return strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0; }

/* what + arg: "unknown option" + "--x"; cmd names the command whose help to see */
static int usage_error_for(const char *cmd, const char *what, const char *arg) {
  fprintf(stderr, "mcplink: %s%s%s\n(run `mcplink help%s%s` for usage)\n", what, *arg ? " " : "", arg,
          cmd ? " " : "", cmd ? cmd : "");
  return 2;
}

static int usage_error(const char *what, const char *arg) { return usage_error_for(NULL, what, arg); }

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

static int cmd_op(cli_ctx *c, int argc, char **argv) {
  /* --compact is also accepted after the op name, where people type it */
  int n = 0;
  for (int k = 0; k < argc; k++) {
    if (strcmp(argv[k], "--compact") == 0) c->compact = 1;
    else if (strncmp(argv[k], "--", 2) == 0 || strcmp(argv[k], "-h") == 0)
      return usage_error_for("op", "op: unknown option", argv[k]);
    else argv[n++] = argv[k];
  }
  argc = n;
  if (argc < 1) return usage_error_for("op", "op: missing op name", "");
  if (argc > 2) return usage_error_for("op", "op: unexpected argument", argv[2]);
  char *args = NULL;
  if (argc == 2) {
    if (strcmp(argv[1], "-") == 0) {
      args = read_all(stdin, NULL);
      if (!args) {
        cli_print_error(c->compact, "too_large", "cannot read the arguments from stdin (limit 16 MiB)");
        return 1;
      }
    } else args = strdup(argv[1]);
  }
  char *res = NULL;
  int rc = mcpl_op(c->engine, &c->actor, argv[0], args, &res);
  free(args);
  cli_print_json(c->compact, res ? res : "{}", rc == MCPL_OK ? stdout : stderr);
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
  mcpl_state_close(L);
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
  int compact;
} gopts;

/* ---- the log while the engine opens ------------------------------------------
 * A failed open is reported once, as the error JSON; the engine's own log line
 * about the same failure would say it a second time. So log lines are held
 * while the engine opens: written to stderr when it opened, and on failure all
 * but the error lines (the error JSON carries those). */
static struct {
  int holding;
  char *held;     /* records "level\tmessage\0" (a message may span lines) */
  size_t n;
} cli_log;

static void cli_log_line(const char *level, const char *msg) {
  fprintf(stderr, "mcplink: %s: %s\n", level, msg);
  fflush(stderr);
}

static void cli_log_fn(void *ud, const char *level, const char *msg) {
  (void)ud;
  if (!cli_log.holding) { cli_log_line(level, msg); return; }
  size_t add = strlen(level) + strlen(msg) + 2;
  char *p = realloc(cli_log.held, cli_log.n + add + 1);
  if (!p) { cli_log_line(level, msg); return; }
  cli_log.held = p;
  cli_log.n += (size_t)snprintf(p + cli_log.n, add + 1, "%s\t%s", level, msg) + 1;
}

static void cli_log_release(int opened) {
  cli_log.holding = 0;
  for (size_t off = 0; cli_log.held && off < cli_log.n; off += strlen(cli_log.held + off) + 1) {
    char *line = cli_log.held + off, *tab = strchr(line, '\t');
    if (!tab) break;
    *tab = '\0';
    if (opened || strcmp(line, "error") != 0) cli_log_line(line, tab + 1);
    *tab = '\t';
  }
  free(cli_log.held);
  cli_log.held = NULL;
  cli_log.n = 0;
}

/* Opens the engine; on failure prints the error once and sets *status (2 for
 * a bad option value, a usage error; 1 otherwise). */
static mcpl_engine *open_engine(const gopts *g, const char *db_override, const char *key_override,
                                int *status) {
  mcpl_options *o = mcpl_options_new();
  *status = 1;
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
  /* Policies come only from --policies or $MCPLINK_POLICIES, never from the
   * current directory: a policy can widen a tenant's network access
   * (allow_cidrs, allow_http), so which one applies must not depend on where
   * the command happens to run. */
  const char *policies = g->policies;
  struct { const char *name, *val; } kv[] = {
    {"db", db}, {"key_file", key}, {"policies", policies}, {"lua_dir", g->lua_dir},
    {"ca_file", g->ca_file}, {"log_level", g->log_level}, {"log_file", g->log_file},
    {"oauth_redirect_uri", g->redirect_uri}, {"oauth_client_metadata_url", g->metadata_url},
    {"pool_size", g->pool_size}};
  for (size_t i = 0; i < sizeof kv / sizeof kv[0]; i++) {
    if (kv[i].val && mcpl_options_set(o, kv[i].name, kv[i].val) != MCPL_OK) {
      char what[64];
      snprintf(what, sizeof what, "invalid value for --%s:", kv[i].name);
      for (char *p = what; *p; p++) if (*p == '_') *p = '-';
      *status = usage_error(what, kv[i].val);
      mcpl_options_free(o);
      return NULL;
    }
  }
  if (!g->log_file) mcpl_options_set_log(o, cli_log_fn, NULL);
  char *err = NULL;
  cli_log.holding = 1;
  mcpl_engine *e = mcpl_open(o, &err);
  cli_log_release(e != NULL);
  mcpl_options_free(o);
  if (!e) {
    cli_print_json(g->compact, err ? err : "{\"error\":{\"code\":\"internal\",\"message\":\"cannot open the engine\"}}",
                   stderr);
    mcpl_free(err);
  }
  return e;
}

/* An engine for help texts only: the op registry, no database, no policies
 * (asking for help creates no files). */
static mcpl_engine *open_help_engine(const gopts *g) {
  mcpl_options *o = mcpl_options_new();
  if (g->lua_dir) mcpl_options_set(o, "lua_dir", g->lua_dir);
  mcpl_options_set(o, "log_level", "error");
  mcpl_options_set(o, "pool_size", "1");
  mcpl_options_set(o, "policies", "");
  char *err = NULL;
  mcpl_engine *e = mcpl_open(o, &err);
  mcpl_options_free(o);
  if (!e) {
    cli_print_json(g->compact, err ? err : "{\"error\":{\"code\":\"internal\",\"message\":\"cannot open the engine\"}}",
                   stderr);
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
  if (argc < 1) return usage_error_for("test", "test: missing FILE", "");
  int worst = 0;
  for (int i = 0; i < argc; i++) {
    char dir[] = "/tmp/mcplink-test-XXXXXX";
    int fresh = g->db == NULL;
    if (fresh && !mkdtemp(dir)) { perror("mcplink: mkdtemp"); return 1; }
    char db[PATH_MAX], key[PATH_MAX];
    snprintf(db, sizeof db, "%s/test.db", dir);
    snprintf(key, sizeof key, "%s/test.key", dir);
    int st = 1;
    mcpl_engine *e = open_engine(g, fresh ? db : NULL, fresh ? key : NULL, &st);
    if (!e) { if (st > worst) worst = st; }
    else {
      if (argc > 1) printf("# %s\n", argv[i]);
      c->engine = e;
      st = run_script(c, "test", argv[i], nargs, args);
      if (st > worst) worst = st;
      mcpl_close(e);
      c->engine = NULL;
    }
    if (fresh) nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
  }
  return worst;
}

/* host.read_line(prompt) -> line | nil: a line typed at the terminal (the
 * prompt on stderr, so results on stdout stay clean); nil at end of input. */
static int cli_read_line(lua_State *L) {
  const char *prompt = luaL_optstring(L, 1, "");
  fputs(prompt, stderr);
  fflush(stderr);
  char buf[8192];
  if (!fgets(buf, sizeof buf, stdin)) { lua_pushnil(L); return 1; }
  buf[strcspn(buf, "\r\n")] = 0;
  lua_pushstring(L, buf);
  return 1;
}

/* host.write(text): to the terminal (stderr) */
static int cli_write(lua_State *L) {
  fputs(luaL_checkstring(L, 1), stderr);
  fflush(stderr);
  return 0;
}

/* Calls script.cli through the prelude: fn(compact, actor, argv, host); host
 * = {tty, read_line, write}: with stdin and stderr a terminal, a server's
 * questions during the command are put to the person there. */
static int call_script_cli(cli_ctx *c, const char *fn, int argc, char **argv) {
  lua_State *L = cli_script_state(c);
  if (!L) return 1;
  lua_getfield(L, -1, fn);
  lua_pushboolean(L, c->compact);
  cli_push_actor(L, &c->actor);
  lua_createtable(L, argc, 0);
  for (int i = 0; i < argc; i++) {
    lua_pushstring(L, argv[i]);
    lua_rawseti(L, -2, i + 1);
  }
  lua_createtable(L, 0, 3);
  lua_pushboolean(L, isatty(STDIN_FILENO) && isatty(STDERR_FILENO));
  lua_setfield(L, -2, "tty");
  lua_pushcfunction(L, cli_read_line);
  lua_setfield(L, -2, "read_line");
  lua_pushcfunction(L, cli_write);
  lua_setfield(L, -2, "write");
  int status = 1;
  if (lua_pcall(L, 4, 1, 0) != LUA_OK) fprintf(stderr, "mcplink: %s\n", lua_tostring(L, -1));
  else status = (int)lua_tointeger(L, -1);
  fflush(stdout);
  mcpl_state_abandon(L); /* engine code only (no operator's finalizer), and the process exits next */
  return status;
}

/* help [WORDS...]: the usage with every command and op family, a built-in
 * command's help, or the friendly commands of a family or an op. */
static int cmd_help(cli_ctx *c, const gopts *g, int argc, char **argv) {
  const cli_builtin *b = argc > 0 ? builtin_named(argv[0]) : NULL;
  /* `help op NAME` is the op's help, `help oauth ACTION` an oauth command's */
  if (b && !(strcmp(b->name, "op") == 0 && argc > 1) &&
      !(strcmp(b->name, "oauth") == 0 && argc > 1 && strcmp(argv[1], "connect") != 0)) {
    fputs(b->help, stdout);
    if (strcmp(b->name, "oauth") != 0 || argc > 1) return 0;
    fputs("\nThe oauth op family:\n", stdout);
  }
  if (argc == 0) {
    fputs(usage_text, stdout);
    for (size_t i = 0; i < NBUILTINS; i++) printf("  %s\n", builtins[i].line);
    fputs("  FAMILY ACTION ...  the friendly form of an op, e.g. `mcplink server list`\n", stdout);
  }
  mcpl_engine *e = open_help_engine(g);
  if (!e) return 1;
  cli_ctx hc = *c;
  hc.engine = e;
  int status = 1;
  char **words = calloc((size_t)argc + 2, sizeof *words);
  if (words) {
    words[0] = (char *)"help";
    for (int i = 0; i < argc; i++) words[i + 1] = argv[i];
    status = call_script_cli(&hc, "cli", argc + 1, words);
    free(words);
  }
  mcpl_close(e);
  return status;
}

static const char *env_or(const char *name, const char *def) {
  const char *v = getenv(name);
  return (v && *v) ? v : def;
}

/* The end of a command that opened the engine: it is closed (calls ended,
 * sessions closed, secrets wiped, databases checkpointed and closed), so
 * what exit() would still run is the libraries' own clean-up of memory the
 * process is about to lose (OpenSSL's alone is ~3% of a one-shot `mcplink
 * call`). Output is flushed first; output that could not be written is said
 * on stderr and makes the exit status 1 (exit() used to drop that error).
 * Sanitizer builds exit normally, for their leak check. */
static int exit_now(int status) {
  errno = 0;
  int failed = fflush(NULL) != 0, why = errno;
  if (failed || ferror(stdout)) {
    fprintf(stderr, "mcplink: cannot write the output%s%s\n", failed && why ? ": " : "",
            failed && why ? strerror(why) : "");
    if (status == 0) status = 1;
  }
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
  return status;
#else
  _exit(status);
#endif
}

/* The words of a command before its first option: `server update` of
 * `server update ID --url X --help` (for its help). */
static int leading_words(int argc, char **argv) {
  int n = 0;
  while (n < argc && argv[n][0] != '-') n++;
  return n;
}

static int has_help_flag(int argc, char **argv) {
  for (int k = 0; k < argc; k++) if (is_help_flag(argv[k])) return 1;
  return 0;
}

int main(int argc, char **argv) {
  /* The CLI owns its process and no SQLite call has run yet: SQLite's memory
   * statistics (on by default) take a global mutex on every allocation, some
   * 6% of a one-shot `mcplink server list`; nothing here reads them. A library
   * cannot make this choice for its host, so the engine leaves it alone. */
  sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
  gopts g = {0};
  g.db = env_or("MCPLINK_DB", NULL);
  g.key_file = env_or("MCPLINK_KEY_FILE", NULL);
  g.policies = env_or("MCPLINK_POLICIES", NULL);
  cli_ctx c = {0};
  c.actor.system = 1;
  const char *tenant = NULL, *user = NULL;
  int explicit_system = 0, want_help = 0;
  int i = 1;
  for (; i < argc && argv[i][0] == '-' && argv[i][1] == '-'; i++) {
    const char *a = argv[i];
    const char **slot = NULL;
    if (strcmp(a, "--system") == 0) { explicit_system = 1; continue; }
    if (strcmp(a, "--compact") == 0) { c.compact = 1; continue; }
    if (strcmp(a, "--help") == 0) { want_help = 1; continue; }
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
  g.compact = c.compact;
  /* `mcplink --help [COMMAND...]` is `mcplink help [COMMAND...]` */
  if (want_help) return cmd_help(&c, &g, leading_words(argc - i, argv + i), argv + i);
  if (i >= argc) {
    fputs(usage_text, stderr);
    for (size_t k = 0; k < NBUILTINS; k++) fprintf(stderr, "  %s\n", builtins[k].line);
    return 2;
  }
  if ((tenant != NULL) != (user != NULL)) return usage_error("--tenant and --user go together", "");
  if (tenant && explicit_system) return usage_error("--system cannot be combined with --tenant/--user", "");
  if (tenant) { c.actor.system = 0; c.actor.tenant = tenant; c.actor.user = user; }
  const char *cmd = argv[i++];
  int rest = argc - i;
  char **rargv = argv + i;
  if (strcmp(cmd, "help") == 0) return cmd_help(&c, &g, rest, rargv);
  /* COMMAND --help prints the command's help and runs nothing. A script's own
   * arguments (after `run FILE`, after `test ... --`) are not looked at. */
  const cli_builtin *b = builtin_named(cmd);
  if (b && strcmp(cmd, "run") != 0 && strcmp(cmd, "test") != 0 && strcmp(cmd, "op") != 0 &&
      has_help_flag(rest, rargv)) {
    char *words[3] = {(char *)cmd, NULL, NULL};
    int nw = 1;
    if (strcmp(cmd, "oauth") == 0 && rest > 0 && !is_help_flag(rargv[0])) words[nw++] = rargv[0];
    return cmd_help(&c, &g, nw, words);
  }
  if ((strcmp(cmd, "run") == 0 && rest > 0 && is_help_flag(rargv[0])) ||
      (strcmp(cmd, "test") == 0 && rest > 0 && is_help_flag(rargv[0]))) {
    char *words[1] = {(char *)cmd};
    return cmd_help(&c, &g, 1, words);
  }
  if (strcmp(cmd, "op") == 0 && has_help_flag(rest, rargv)) {
    /* op --help: the op command; op NAME --help: that op */
    char *words[2] = {(char *)"op", NULL};
    int nw = 1;
    if (rest > 0 && rargv[0][0] != '-') words[nw++] = rargv[0];
    return cmd_help(&c, &g, nw, words);
  }
  if (!b && has_help_flag(rest, rargv)) /* a friendly command's help: its words */
    return cmd_help(&c, &g, leading_words(argc - i + 1, argv + i - 1), argv + i - 1);
  if (strcmp(cmd, "version") == 0) {
    if (rest > 0) return usage_error_for("version", "version: unexpected argument", rargv[0]);
    printf("mcplink %s\n", mcpl_version());
    return 0;
  }
  if (strcmp(cmd, "repl") == 0 && rest > 0) return usage_error_for("repl", "repl: unexpected argument", rargv[0]);
  if (strcmp(cmd, "run") == 0 && rest < 1) return usage_error_for("run", "run: missing FILE", "");
  if (strcmp(cmd, "oauth") == 0 && rest > 0 && strcmp(rargv[0], "connect") == 0) {
    cli_oauth_args oa; /* usage errors before anything is opened */
    if (cli_oauth_connect_parse(rest - 1, rargv + 1, &oa) != 0) return 2;
  }
  /* `test` uses a fresh temporary database unless one was named */
  if (!g.db && strcmp(cmd, "test") != 0) g.db = "mcplink.db";
  if (strcmp(cmd, "test") == 0) return cmd_test(&c, &g, rest, rargv);
  if (strcmp(cmd, "conformance-client") == 0) { /* core/cli/conformance.c */
    return cli_conformance(g.ca_file, g.lua_dir, g.log_level, rest, rargv);
  }

  int status = 1;
  c.engine = open_engine(&g, NULL, NULL, &status);
  if (!c.engine) return status;
  if (strcmp(cmd, "op") == 0) status = cmd_op(&c, rest, rargv);
  else if (strcmp(cmd, "repl") == 0) status = cli_repl(&c);
  else if (strcmp(cmd, "oauth") == 0 && rest > 0 && strcmp(rargv[0], "connect") == 0)
    status = cli_oauth_connect(&c, rest - 1, rargv + 1);
  else if (strcmp(cmd, "run") == 0) status = run_script(&c, "run", rargv[0], rest - 1, rargv + 1);
  else status = call_script_cli(&c, "cli", argc - i + 1, argv + i - 1);
  mcpl_close_exiting(c.engine); /* the process exits next: its memory goes whole */
  return exit_now(status);
}
