/* gen_embed.c: turns the engine-owned Lua sources into a C table. Usage:
 * gen_embed ROOT FILE... ; module name = path under ROOT, '/' -> '.', no ".lua". */

/* Each module is embedded as source and as precompiled bytecode (lua_dump of
 * the same text), so an engine loads it without compiling it again at every
 * start. The bytecode keeps its source name and line numbers (error messages
 * and tracebacks name file:line) but not the names of local variables: loading
 * them (a string each) was ~5% of a one-shot `mcplink server list`, and
 * they only add "(local 'x')" to an error message. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <lua.h>
#include <lauxlib.h>

typedef struct {
  unsigned char *p;
  size_t n, cap;
} dumpbuf;

static int dump_writer(lua_State *L, const void *data, size_t n, void *ud) {
  (void)L;
  dumpbuf *b = ud;
  if (b->n + n > b->cap) {
    size_t cap = b->cap ? b->cap * 2 : 4096;
    while (cap < b->n + n) cap *= 2;
    unsigned char *q = realloc(b->p, cap);
    if (!q) return 1;
    b->p = q;
    b->cap = cap;
  }
  memcpy(b->p + b->n, data, n);
  b->n += n;
  return 0;
}

/* ---- dropping local variable names from a Lua 5.4 dump ---------------------------
 * The dump (ldump.c) is walked as the undumper reads it: a function is its
 * source, lines, sizes, code, constants, upvalues, nested functions and
 * debug part (line info, absolute line info, local variables, upvalue
 * names). Everything is copied except the local variables, written as none
 * (the undumper accepts any count there). The result is checked by loading it. */
typedef struct {
  const unsigned char *p, *e;
  dumpbuf *out;
  int bad;
} bcwalk;

static void bc_copy(bcwalk *w, size_t n, int keep) {
  if ((size_t)(w->e - w->p) < n) { w->bad = 1; w->p = w->e; return; }
  if (keep && dump_writer(NULL, w->p, n, w->out) != 0) w->bad = 1;
  w->p += n;
}

/* a size: 7-bit groups, most significant first, the last byte marked 0x80 */
static size_t bc_size(bcwalk *w, int keep) {
  size_t x = 0;
  const unsigned char *start = w->p;
  for (;;) {
    if (w->p >= w->e || x > ((size_t)-1 >> 8)) { w->bad = 1; return 0; }
    unsigned char b = *w->p++;
    x = (x << 7) | (b & 0x7f);
    if (b & 0x80) break;
  }
  if (keep && dump_writer(NULL, start, (size_t)(w->p - start), w->out) != 0) w->bad = 1;
  return x;
}

static void bc_string(bcwalk *w, int keep) {
  size_t n = bc_size(w, keep);
  if (n > 0) bc_copy(w, n - 1, keep);
}

static void bc_function(bcwalk *w, int depth) {
  if (depth > 200) { w->bad = 1; return; }
  bc_string(w, 1);              /* source */
  bc_size(w, 1);                /* linedefined */
  bc_size(w, 1);                /* lastlinedefined */
  bc_copy(w, 3, 1);             /* numparams, is_vararg, maxstacksize */
  bc_copy(w, bc_size(w, 1) * 4, 1); /* code */
  size_t n = bc_size(w, 1);     /* constants */
  for (size_t i = 0; i < n && !w->bad; i++) {
    unsigned char tag = w->p < w->e ? *w->p : 0xff;
    bc_copy(w, 1, 1);
    if (tag == 0x03 || tag == 0x13) bc_copy(w, 8, 1); /* integer, float */
    else if (tag == 0x04 || tag == 0x14) bc_string(w, 1);
    else if (tag != 0x00 && tag != 0x01 && tag != 0x11) w->bad = 1;
  }
  bc_copy(w, bc_size(w, 1) * 3, 1); /* upvalues: instack, idx, kind */
  n = bc_size(w, 1);            /* nested functions */
  for (size_t i = 0; i < n && !w->bad; i++) bc_function(w, depth + 1);
  bc_copy(w, bc_size(w, 1), 1); /* line info */
  n = bc_size(w, 1);            /* absolute line info */
  for (size_t i = 0; i < n && !w->bad; i++) { bc_size(w, 1); bc_size(w, 1); }
  n = bc_size(w, 0);            /* local variables: dropped */
  static const unsigned char none = 0x80;
  if (dump_writer(NULL, &none, 1, w->out) != 0) w->bad = 1;
  for (size_t i = 0; i < n && !w->bad; i++) { bc_string(w, 0); bc_size(w, 0); bc_size(w, 0); }
  n = bc_size(w, 1);            /* upvalue names */
  for (size_t i = 0; i < n && !w->bad; i++) bc_string(w, 1);
}

/* in (a whole dump) -> out without local variable names; 0, or -1 when in is
 * not a dump this walker knows (header: signature, version 5.4, format 0,
 * data check, sizes 4/8/8, the test integer and float) */
static int drop_locals(const dumpbuf *in, dumpbuf *out) {
  bcwalk w = {in->p, in->p + in->n, out, 0};
  if (in->n < 32 || memcmp(in->p, "\x1bLua\x54\x00", 6) != 0 || in->p[12] != 4 || in->p[13] != 8 || in->p[14] != 8)
    return -1;
  bc_copy(&w, 31, 1);           /* header */
  bc_copy(&w, 1, 1);            /* the main function's upvalue count */
  bc_function(&w, 0);
  return w.bad || w.p != w.e ? -1 : 0;
}

/* The bytecode of the source in path as a C string literal (octal escapes). */
static int emit_bytecode(const char *path, const char *chunk) {
  FILE *in = fopen(path, "rb");
  if (!in) { perror(path); return 1; }
  dumpbuf src = {0}, full = {0}, bc = {0};
  char tmp[8192];
  size_t got;
  while ((got = fread(tmp, 1, sizeof tmp, in)) > 0)
    if (dump_writer(NULL, tmp, got, &src) != 0) { fclose(in); return 1; }
  fclose(in);
  lua_State *L = luaL_newstate();
  if (!L) return 1;
  int rc = 1;
  if (luaL_loadbufferx(L, (const char *)src.p, src.n, chunk, "t") != LUA_OK) {
    fprintf(stderr, "gen_embed: %s\n", lua_tostring(L, -1));
    goto done;
  }
  if (lua_dump(L, dump_writer, &full, 0) != 0) goto done;
  if (drop_locals(&full, &bc) != 0) {
    fprintf(stderr, "gen_embed: %s: not a Lua 5.4 dump this tool can read\n", path);
    goto done;
  }
  lua_settop(L, 0);
  if (luaL_loadbufferx(L, (const char *)bc.p, bc.n, chunk, "b") != LUA_OK) {
    fprintf(stderr, "gen_embed: %s: the bytecode without local names does not load: %s\n", path, lua_tostring(L, -1));
    goto done;
  }
  fputs("\"", stdout);
  for (size_t i = 0; i < bc.n; i++) {
    printf("\\%03o", bc.p[i]);
    if (i % 64 == 63) fputs("\"\n\"", stdout);
  }
  printf("\", %zu", bc.n);
  rc = 0;
done:
  lua_close(L);
  free(src.p);
  free(full.p);
  free(bc.p);
  return rc;
}

static void emit_string(FILE *in) {
  int c, col = 0;
  fputs("\"", stdout);
  while ((c = fgetc(in)) != EOF) {
    if (c == '\n') { fputs("\\n\"\n\"", stdout); col = 0; continue; }
    if (c == '\\' || c == '"') printf("\\%c", c);
    else if (c == '?') fputs("\\?", stdout); /* no trigraphs */
    else if (c < 32 || c >= 127) printf("\\%03o", c);
    else putchar(c);
    if (++col > 200) { fputs("\"\n\"", stdout); col = 0; }
  }
  fputs("\"", stdout);
}

int main(int argc, char **argv) {
  if (argc < 2) { fprintf(stderr, "usage: gen_embed ROOT FILE...\n"); return 2; }
  size_t rootlen = strlen(argv[1]);
  puts("/* generated by core/tools/gen_embed.c from lua/: do not edit */");
  puts("#include \"embed.h\"");
  puts("const struct mcpl_embedded mcpl_embedded_lua[] = {");
  for (int i = 2; i < argc; i++) {
    const char *p = argv[i];
    if (strncmp(p, argv[1], rootlen) == 0 && p[rootlen] == '/') p += rootlen + 1;
    char name[512];
    size_t n = strlen(p);
    if (n < 5 || n >= sizeof name || strcmp(p + n - 4, ".lua") != 0) {
      fprintf(stderr, "gen_embed: not a .lua file: %s\n", argv[i]);
      return 1;
    }
    memcpy(name, p, n - 4);
    name[n - 4] = 0;
    for (char *q = name; *q; q++) if (*q == '/') *q = '.';
    FILE *in = fopen(argv[i], "rb");
    if (!in) { perror(argv[i]); return 1; }
    printf("  {\"%s\", \"@lua/%s\",\n", name, p);
    emit_string(in);
    fclose(in);
    puts(",");
    char chunk[600];
    snprintf(chunk, sizeof chunk, "@lua/%s", p);
    if (emit_bytecode(argv[i], chunk) != 0) return 1;
    puts("},");
  }
  puts("  {0, 0, 0, 0, 0}\n};");
  return 0;
}
