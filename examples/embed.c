/* embed.c: a minimal host application embedding mcplink through its C API.
 * Build: cc embed.c $(pkg-config --cflags --libs mcplink) -o embed */
#include <stdio.h>
#include <stdlib.h>
#include <mcplink.h>

int main(int argc, char **argv) {
  const char *db = argc > 1 ? argv[1] : "embed-example.db";
  mcpl_options *o = mcpl_options_new();
  mcpl_options_set(o, "db", db);
  char *err = NULL;
  mcpl_engine *e = mcpl_open(o, &err);
  mcpl_options_free(o);
  if (!e) {
    fprintf(stderr, "open failed: %s\n", err ? err : "?");
    mcpl_free(err);
    return 1;
  }
  mcpl_actor sys = {NULL, NULL, 1};
  char *res = NULL;
  int rc = mcpl_op(e, &sys, "engine.info", NULL, &res);
  printf("engine.info -> %s: %s\n", mcpl_code_name(rc), res);
  mcpl_free(res);
  rc = mcpl_op(e, &sys, "no.such.op", "{}", &res);
  printf("no.such.op  -> %s: %s\n", mcpl_code_name(rc), res);
  mcpl_free(res);
  mcpl_close(e);
  return 0;
}
