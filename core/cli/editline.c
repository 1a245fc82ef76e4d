/* editline.c: libedit (libedit.so.2) opened when an interactive REPL starts:
 * no other command maps it, nor libtinfo, libbsd and libmd that it needs. */
#include "dynlib.h"
#include "editline.h"

DYNLIB_MODULE(cli_editline_api, cli_editline_ready, cli_editline, CLI_EDITLINE_SYMBOLS,
              "libedit.so.2", "libedit2", "MCPLINK_LIBEDIT")
