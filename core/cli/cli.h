/* cli.h: shared pieces of the mcplink command line (main.c, repl.c). */
#ifndef MCPL_CLI_H
#define MCPL_CLI_H

#include <lua.h>
#include "mcplink.h"

typedef struct {
  mcpl_engine *engine;
  mcpl_actor actor;
  int compact;
  const char *history_file; /* REPL history; NULL = default */
} cli_ctx;

/* Runs the interactive REPL; returns the process exit status. */
int cli_repl(cli_ctx *c);

/* The operator-script state's entry table (script.prelude) is pushed;
 * returns the state or NULL after printing the error. */
lua_State *cli_script_state(cli_ctx *c);
void cli_push_actor(lua_State *L, const mcpl_actor *a);

/* `oauth connect SERVER`: the OAuth flow with a loopback redirect listener
 * (oauth_connect.c); returns the exit status. */
int cli_oauth_connect(cli_ctx *c, int argc, char **argv);

/* conformance-client URL (core/cli/conformance.c): ca_file, lua_dir and
 * log_level from the global options; returns the exit status. */
int cli_conformance(const char *ca_file, const char *lua_dir, const char *log_level, int argc, char **argv);

#endif
