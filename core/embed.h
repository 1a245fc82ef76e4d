/* embed.h: the engine-owned Lua sources compiled into the binary.
 * The table is generated at build time by core/tools/gen_embed.c. */
#ifndef MCPL_EMBED_H
#define MCPL_EMBED_H

struct mcpl_embedded {
  const char *name;   /* module name, e.g. "ops.server" */
  const char *chunk;  /* chunk name used in error messages */
  const char *src;
  const char *bc;     /* the same module precompiled (lua_dump, debug info kept) */
  unsigned long bclen;
};

extern const struct mcpl_embedded mcpl_embedded_lua[];

#endif
