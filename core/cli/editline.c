/* editline.c: libedit (libedit.so.2) opened when an interactive REPL starts:
 * no other command maps it, nor libtinfo, libbsd and libmd that it needs. */
#include "dynlib.h"
#include "editline.h"

static dynlib cli_editline_lib = DYNLIB_INIT("libedit.so.2", "libedit2", "MCPLINK_LIBEDIT");
static cli_editline_api cli_editline_table;

static void cli_editline_load(void) {
  if (dynlib_open(&cli_editline_lib) != 0) return;
#define CLI_EDITLINE_BIND(f) \
  cli_editline_table.p_##f = (__typeof__(cli_editline_table.p_##f))dynlib_sym(&cli_editline_lib, #f);
  CLI_EDITLINE_SYMBOLS(CLI_EDITLINE_BIND)
#undef CLI_EDITLINE_BIND
  dynlib_done(&cli_editline_lib);
}

int cli_editline_ready(char *err, size_t en) {
  pthread_once(&cli_editline_lib.once, cli_editline_load);
  return dynlib_status(&cli_editline_lib, err, en);
}

const cli_editline_api *cli_editline(void) {
  pthread_once(&cli_editline_lib.once, cli_editline_load);
  if (!cli_editline_lib.ok) dynlib_unloaded(&cli_editline_lib);
  return &cli_editline_table;
}
