/* repl.c: the interactive REPL (placeholder until the REPL lands). */
#include <stdio.h>
#include "cli.h"

int cli_repl(cli_ctx *c) {
  (void)c;
  fprintf(stderr, "mcplink: repl: not built yet\n");
  return 2;
}
