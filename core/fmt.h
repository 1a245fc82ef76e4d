/* fmt.h: integers formatted by hand for the text built on every call (cache
 * keys, JSON, policy input keys), where snprintf costs ~1k instructions each. */
#ifndef MCPL_FMT_H
#define MCPL_FMT_H

/* Writes v in decimal so that it ends just before end; returns where it
 * starts. 20 bytes (sign included) are enough for any long long. */
static inline char *fmt_int_back(char *end, long long v) {
  unsigned long long u = v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;
  char *p = end;
  do { *--p = (char)('0' + u % 10); u /= 10; } while (u);
  if (v < 0) *--p = '-';
  return p;
}

#endif
