/* repl.c: the interactive REPL: libedit line editing, persistent history,
 * Ctrl-C and SIGHUP handling. Evaluation lives in lua/script/repl.lua. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <lauxlib.h>
#include "cli.h"
#include "editline.h"
#include "engine.h"

#define REPL_HISTORY_MAX 1000
#define REPL_HISTORY_NAME ".mcplink_history"

/* Set from signal handlers; everything else happens in the main loop. */
static volatile sig_atomic_t repl_sigint, repl_sighup, repl_sigtstp, repl_hangup;
static mcpl_engine *repl_engine;

/* The one REPL of this process: completion callbacks reach it here. */
static lua_State *repl_L;
static int repl_session = LUA_NOREF;
static char *repl_hist_path;
static int repl_hist_on; /* set once libedit's history is set up */

static void repl_on_sigint(int sig) {
  (void)sig;
  repl_sigint = 1;
  /* Stops a running op: the Lua hook and the HTTP layer poll this flag. */
  mcpl_engine_interrupt(repl_engine);
}

static int repl_tty; /* interactive (prompt and line editing) */

/* SIGHUP means "reload policies", unless the terminal really hung up (its
 * fd polls POLLHUP): then stop whatever runs and leave. poll is
 * async-signal-safe. */
static void repl_on_sighup(int sig) {
  (void)sig;
  struct pollfd p = {STDIN_FILENO, 0, 0};
  if (repl_tty && poll(&p, 1, 0) == 1 && (p.revents & POLLHUP)) {
    repl_hangup = 1;
    mcpl_engine_interrupt(repl_engine);
    return;
  }
  repl_sighup = 1;
}

static void repl_on_sigtstp(int sig) {
  (void)sig;
  repl_sigtstp = 1;
}

/* Ctrl-Z at the prompt: give the shell a cooked terminal, stop, and on
 * `fg` take raw mode back and redraw the line being edited. */
static void repl_suspend(void) {
  struct sigaction dfl, mine;
  repl_sigtstp = 0;
  rl_deprep_terminal();
  memset(&dfl, 0, sizeof dfl);
  sigemptyset(&dfl.sa_mask);
  dfl.sa_handler = SIG_DFL;
  sigaction(SIGTSTP, &dfl, &mine);
  raise(SIGTSTP);
  sigaction(SIGTSTP, &mine, NULL);
  rl_prep_terminal(0);
  rl_forced_update_display();
}

/* Calls session:METHOD(string args...) leaving nres results on the stack.
 * Returns 0, or -1 after printing the Lua error. */
static int repl_call(const char *method, int nargs, const char *const *args, int nres) {
  lua_State *L = repl_L;
  lua_rawgeti(L, LUA_REGISTRYINDEX, repl_session);
  lua_getfield(L, -1, method);
  lua_insert(L, -2);
  for (int i = 0; i < nargs; i++) {
    if (args[i]) lua_pushstring(L, args[i]); else lua_pushnil(L);
  }
  if (lua_pcall(L, nargs + 1, nres, 0) != LUA_OK) {
    fprintf(stderr, "mcplink: repl: %s\n", lua_isstring(L, -1) ? lua_tostring(L, -1) : "error");
    lua_pop(L, 1);
    return -1;
  }
  return 0;
}

/* Prints the (kind, text) pair a session method returned; pops it.
 * Returns 1 for an error, 2 for quit, 0 otherwise. */
static int repl_show(int base) {
  lua_State *L = repl_L;
  const char *kind = lua_tostring(L, base);
  const char *text = lua_tostring(L, base + 1);
  int rc = 0;
  if (kind && strcmp(kind, "quit") == 0) rc = 2;
  else if (kind && strcmp(kind, "error") == 0) {
    fflush(stdout);
    fprintf(stderr, "%s\n", text ? text : "error");
    fflush(stderr);
    rc = 1;
  } else if (text) {
    fputs(text, stdout);
    fputc('\n', stdout);
  }
  fflush(stdout);
  lua_settop(L, base - 1);
  return rc;
}

/* SIGHUP: reload operator policies through the engine, as the system actor. */
static void repl_reload(void) {
  repl_sighup = 0;
  int base = lua_gettop(repl_L) + 1;
  if (repl_call("reload", 0, NULL, 2) == 0) repl_show(base);
}

/* ---- history ----------------------------------------------------------- */

static char *repl_history_path(const cli_ctx *c) {
  if (c->history_file) return *c->history_file ? strdup(c->history_file) : NULL;
  const char *env = getenv("MCPLINK_HISTORY");
  if (env) return *env ? strdup(env) : NULL; /* empty: keep no history file */
  const char *home = getenv("HOME");
  if (!home || !*home) {
    struct passwd *pw = getpwuid(getuid());
    home = pw ? pw->pw_dir : NULL;
  }
  if (!home) return NULL;
  size_t n = strlen(home) + sizeof REPL_HISTORY_NAME + 2;
  char *p = malloc(n);
  if (p) snprintf(p, n, "%s/%s", home, REPL_HISTORY_NAME);
  return p;
}

static void repl_history_load(void) {
  using_history();
  stifle_history(REPL_HISTORY_MAX);
  repl_hist_on = 1;
  if (!repl_hist_path) return;
  read_history(repl_hist_path);
  stifle_history(REPL_HISTORY_MAX);
}

/* Adds a finished chunk and saves the file at once, so a session that is
 * killed keeps what it had. A leading space keeps a line out (secrets). */
static void repl_history_add(const char *chunk) {
  if (!repl_hist_on || !chunk || !*chunk || chunk[0] == ' ') return;
  HIST_ENTRY **list = history_list();
  if (list && history_length > 0 && list[history_length - 1] &&
      strcmp(list[history_length - 1]->line, chunk) == 0)
    return;
  add_history(chunk);
  if (!repl_hist_path) return;
  /* The history may hold arguments an operator typed: owner-only. */
  int fd = open(repl_hist_path, O_WRONLY | O_CREAT | O_APPEND, 0600);
  if (fd >= 0) close(fd);
  write_history(repl_hist_path);
}

/* host.history() -> the history entries, oldest first (.history). */
static int repl_lua_history(lua_State *L) {
  HIST_ENTRY **list = repl_hist_on ? history_list() : NULL;
  lua_newtable(L);
  for (int i = 0; list && i < history_length && list[i]; i++) {
    lua_pushstring(L, list[i]->line);
    lua_rawseti(L, -2, i + 1);
  }
  return 1;
}

/* host.read_line(prompt) -> line | nil: a server's question put to the person
 * at the terminal while an op runs (script.ask); nil on Ctrl-D or Ctrl-C
 * (which also stops the op). Answers never go into the history. */
static int repl_lua_read_line(lua_State *L) {
  const char *prompt = luaL_optstring(L, 1, "");
  if (!repl_tty || repl_sigint) { lua_pushnil(L); return 1; }
  char *line = readline(prompt);
  if (!line || repl_sigint || repl_hangup) { free(line); lua_pushnil(L); return 1; }
  lua_pushstring(L, line);
  free(line);
  return 1;
}

static int repl_lua_write(lua_State *L) {
  fputs(luaL_checkstring(L, 1), stdout);
  fflush(stdout);
  return 0;
}

/* ---- completion ---------------------------------------------------------- */

static char **repl_cand;
static size_t repl_ncand, repl_icand;

static void repl_cand_free(void) {
  for (size_t i = repl_icand; i < repl_ncand; i++) free(repl_cand[i]);
  free(repl_cand);
  repl_cand = NULL;
  repl_ncand = repl_icand = 0;
}

static char *repl_complete_next(const char *text, int state) {
  if (state == 0) {
    repl_cand_free();
    const char *args[2] = {text, rl_line_buffer};
    int base = lua_gettop(repl_L);
    if (repl_call("complete", 2, args, 1) == 0 && lua_istable(repl_L, -1)) {
      size_t n = (size_t)lua_rawlen(repl_L, -1);
      repl_cand = n ? calloc(n, sizeof *repl_cand) : NULL;
      for (size_t i = 0; repl_cand && i < n; i++) {
        lua_rawgeti(repl_L, -1, (lua_Integer)i + 1);
        const char *s = lua_tostring(repl_L, -1);
        if (s && (repl_cand[repl_ncand] = strdup(s))) repl_ncand++;
        lua_pop(repl_L, 1);
      }
    }
    lua_settop(repl_L, base);
  }
  /* readline frees what we hand out */
  return repl_icand < repl_ncand ? repl_cand[repl_icand++] : NULL;
}

static char **repl_complete(const char *text, int start, int end) {
  (void)start; (void)end;
  rl_attempted_completion_over = 1; /* never fall back to file names */
  return rl_completion_matches(text, repl_complete_next);
}

/* ---- input ------------------------------------------------------------- */

/* libedit reads through this: a signal interrupts read() (no SA_RESTART),
 * so Ctrl-C ends the current readline() and SIGHUP is served at once. */
static int repl_getc(FILE *f) {
  for (;;) {
    unsigned char ch;
    ssize_t n = read(fileno(f), &ch, 1);
    if (n == 1) return ch;
    if (n == 0 || errno != EINTR) return EOF;
    if (repl_sigint || repl_hangup) return EOF;
    if (repl_sigtstp) repl_suspend();
    if (repl_sighup) {
      fputs("\r\n", stdout);
      repl_reload();
      rl_forced_update_display();
    }
  }
}

/* A cancel ends the chunk in Lua with a sticky error that also stops the
 * REPL's own Lua around it, so it is reported here, after the flag is
 * cleared. The abandoned chunk still goes into the history. */
static int repl_interrupted(int base) {
  mcpl_engine_clear_interrupt(repl_engine);
  lua_settop(repl_L, base - 1);
  if (repl_call("abandon", 0, NULL, 1) == 0) {
    repl_history_add(lua_tostring(repl_L, -1));
    lua_pop(repl_L, 1);
  }
  /* the terminal echoed ^C while the op ran: end that line first */
  if (repl_tty) fputc('\n', stdout);
  fflush(stdout);
  fputs("error: interrupted\n", stderr);
  fflush(stderr);
  return 1;
}

/* session:feed(line): shows the outcome. Returns 1 error, 2 quit, 3 more, 0. */
static int repl_feed(const char *line) {
  lua_State *L = repl_L;
  int base = lua_gettop(L) + 1;
  mcpl_engine_clear_interrupt(repl_engine);
  repl_sigint = 0;
  lua_rawgeti(L, LUA_REGISTRYINDEX, repl_session);
  lua_getfield(L, -1, "feed");
  lua_insert(L, -2);
  lua_pushstring(L, line);
  int st = lua_pcall(L, 2, 3, 0);
  if (mcpl_engine_interrupted(repl_engine)) return repl_interrupted(base);
  if (st != LUA_OK) {
    fprintf(stderr, "mcplink: repl: %s\n", lua_isstring(L, -1) ? lua_tostring(L, -1) : "error");
    lua_settop(L, base - 1);
    repl_call("reset", 0, NULL, 0);
    return 1;
  }
  const char *kind = lua_tostring(L, base);
  if (kind && strcmp(kind, "more") == 0) { lua_settop(L, base - 1); return 3; }
  repl_history_add(lua_tostring(L, base + 2));
  lua_pop(L, 1);
  return repl_show(base);
}

static char *repl_prompt(int more) {
  int base = lua_gettop(repl_L);
  char *p = NULL;
  lua_rawgeti(repl_L, LUA_REGISTRYINDEX, repl_session);
  lua_getfield(repl_L, -1, "prompt");
  lua_insert(repl_L, -2);
  lua_pushboolean(repl_L, more);
  if (lua_pcall(repl_L, 2, 1, 0) == LUA_OK && lua_isstring(repl_L, -1))
    p = strdup(lua_tostring(repl_L, -1));
  lua_settop(repl_L, base);
  return p ? p : strdup("> ");
}

static int repl_interactive(void) {
  char why[512];
  if (cli_editline_ready(why, sizeof why) != 0) {
    fprintf(stderr, "mcplink: repl: line editing needs libedit: %s\n", why);
    return 1;
  }
  rl_readline_name = "mcplink";
  rl_catch_signals = 0; /* our handlers, not libedit's (it re-raises to the group) */
  rl_getc_function = repl_getc;
  rl_attempted_completion_function = repl_complete;
  /* '.' and ':' stay inside a word so engine.in completes to engine.info */
  static char word_breaks[] = " \t\n\"\\'`@$><=;|&{}()[],+-*/%^~#";
  rl_basic_word_break_characters = word_breaks;
  rl_completer_word_break_characters = word_breaks;
  rl_completion_append_character = '\0';
  rl_initialize();
  repl_history_load();
  struct sigaction tstp, old_tstp;
  memset(&tstp, 0, sizeof tstp);
  sigemptyset(&tstp.sa_mask);
  tstp.sa_handler = repl_on_sigtstp; /* no SA_RESTART: end the blocking read */
  int more = 0;
  for (;;) {
    if (repl_hangup) return 129;
    if (repl_sighup) repl_reload();
    repl_sigint = 0;
    char *prompt = repl_prompt(more);
    /* Raw mode before the prompt shows: libedit would switch only at its
     * first read, and a key typed in between (Ctrl-D) would be cooked. */
    rl_prep_terminal(0);
    /* Ctrl-Z is ours only at the prompt; a running op stops the usual way */
    sigaction(SIGTSTP, &tstp, &old_tstp);
    char *line = readline(prompt);
    sigaction(SIGTSTP, &old_tstp, NULL);
    mcpl_engine_clear_interrupt(repl_engine); /* a Ctrl-C here was for the line */
    free(prompt);
    if (repl_hangup) { free(line); return 129; }
    if (repl_sigint) {
      /* Ctrl-C at the prompt: drop the line and any unfinished chunk */
      free(line);
      fputs("^C\n", stdout);
      fflush(stdout);
      repl_call("reset", 0, NULL, 0);
      more = 0;
      continue;
    }
    if (!line) { fputc('\n', stdout); break; } /* Ctrl-D */
    int rc = repl_feed(line);
    free(line);
    if (rc == 2) break;
    more = rc == 3;
  }
  return 0;
}

/* stdin is not a terminal: read lines, print results, no prompts. The exit
 * status says whether any chunk failed; Ctrl-C stops the script. */
static int repl_batch(void) {
  char *line = NULL;
  size_t cap = 0;
  int status = 0;
  for (;;) {
    if (repl_sighup) repl_reload();
    errno = 0;
    ssize_t n = getline(&line, &cap, stdin);
    if (n < 0) {
      if (errno == EINTR && !repl_sigint) { clearerr(stdin); continue; }
      break;
    }
    if (n > 0 && line[n - 1] == '\n') line[--n] = 0;
    int rc = repl_feed(line);
    if (repl_sigint) { status = 130; break; }
    if (rc == 1) status = 1;
    if (rc == 2) break;
  }
  free(line);
  if (status != 130 && !repl_sigint) {
    int base = lua_gettop(repl_L) + 1;
    if (repl_call("finish", 0, NULL, 2) == 0 && repl_show(base) == 1) status = 1;
  } else status = 130;
  return status;
}

/* Builds the session: require("script.repl").new(prelude, actor, host). */
static int repl_open(cli_ctx *c, lua_State *L) {
  int prelude = lua_gettop(L);
  lua_getglobal(L, "require");
  lua_pushstring(L, "script.repl");
  if (lua_pcall(L, 1, 1, 0) != LUA_OK) goto fail;
  lua_getfield(L, -1, "new");
  lua_pushvalue(L, prelude);
  cli_push_actor(L, &c->actor);
  lua_createtable(L, 0, 2);
  lua_pushboolean(L, c->compact);
  lua_setfield(L, -2, "compact");
  lua_pushcfunction(L, repl_lua_history);
  lua_setfield(L, -2, "history");
  lua_pushboolean(L, repl_tty);
  lua_setfield(L, -2, "tty");
  lua_pushcfunction(L, repl_lua_read_line);
  lua_setfield(L, -2, "read_line");
  lua_pushcfunction(L, repl_lua_write);
  lua_setfield(L, -2, "write");
  if (lua_pcall(L, 3, 1, 0) != LUA_OK) goto fail;
  repl_session = luaL_ref(L, LUA_REGISTRYINDEX);
  lua_settop(L, prelude);
  return 0;
fail:
  fprintf(stderr, "mcplink: repl: %s\n", lua_tostring(L, -1));
  return -1;
}

int cli_repl(cli_ctx *c) {
  int status = 1;
  struct sigaction sa, old_int, old_hup;
  lua_State *L = cli_script_state(c);
  if (!L) return 1;
  repl_L = L;
  repl_engine = c->engine;
  repl_tty = isatty(STDIN_FILENO) && isatty(STDOUT_FILENO);
  if (repl_open(c, L) != 0) goto done;

  memset(&sa, 0, sizeof sa);
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = 0; /* no SA_RESTART: a signal must end a blocking read */
  sa.sa_handler = repl_on_sigint;
  sigaction(SIGINT, &sa, &old_int);
  sa.sa_handler = repl_on_sighup;
  sigaction(SIGHUP, &sa, &old_hup);

  if (repl_tty) {
    repl_hist_path = repl_history_path(c);
    status = repl_interactive();
  } else {
    status = repl_batch();
  }

  sigaction(SIGINT, &old_int, NULL);
  sigaction(SIGHUP, &old_hup, NULL);
  repl_cand_free();
  free(repl_hist_path);
  repl_hist_path = NULL;
  repl_hist_on = 0;
  repl_tty = 0;
  repl_hangup = 0;
done:
  mcpl_engine_clear_interrupt(c->engine);
  repl_engine = NULL;
  repl_L = NULL;
  repl_session = LUA_NOREF;
  mcpl_state_close(L);
  return status;
}
