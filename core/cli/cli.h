/* cli.h: shared pieces of the mcplink command line (main.c, repl.c,
 * oauth_connect.c, conformance.c). */
#ifndef MCPL_CLI_H
#define MCPL_CLI_H

#include <stdio.h>
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

/* Prints JSON with sorted keys, indented unless compact (text that is not
 * JSON as it is), and an error {"error":{code,message}} on stderr. */
void cli_print_json(int compact, const char *json, FILE *out);
void cli_print_error(int compact, const char *code, const char *message);

/* `oauth connect SERVER [--timeout-ms MS]`: the OAuth flow with a loopback
 * redirect listener (oauth_connect.c). parse checks the arguments (0, or 2
 * after printing a usage error); connect returns the exit status. */
typedef struct {
  const char *server;
  long timeout_ms;
} cli_oauth_args;
int cli_oauth_connect_parse(int argc, char **argv, cli_oauth_args *out);
int cli_oauth_connect(cli_ctx *c, int argc, char **argv);

/* conformance-client URL (core/cli/conformance.c): ca_file, lua_dir and
 * log_level from the global options; returns the exit status. */
int cli_conformance(const char *ca_file, const char *lua_dir, const char *log_level, int argc, char **argv);

#endif
