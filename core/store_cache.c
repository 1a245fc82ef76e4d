/* store_cache.c: the read cache of a store connection: rows kept under the
 * change counters they were read with, so repeated reads cost no round trip. */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "store.h"
#include "fmt.h"

/* Why this is correct across instances. Every change to a tenant's records
 * bumps tenants.version in the same transaction (a trigger, so no writer can
 * forget it: another instance, another process, a hand-written UPDATE), and
 * every change to the settings bumps the settings version. An op reads both
 * counters with its actor (the one query it always makes); a cache key
 * starts with the tenant and those two numbers, so rows read under other
 * numbers are never used again and a change committed anywhere is seen by
 * the very next op on every instance. A tenant actor's key also carries the
 * tenant condition, so rows never cross tenants; the system actor's reads,
 * the audit log and pending OAuth flows are never cached. Rows are kept as
 * copied column text and rebuilt into fresh Lua tables on every use, so a
 * caller that changes a row changes only its copy. */

#define BUCKETS 256
#define MAX_ENTRIES 512
#define MAX_BYTES (4u << 20)
#define MAX_COLS 64

typedef struct entry {
  struct entry *next;
  char *key;
  size_t keylen;
  unsigned hash;
  int ncols;
  long long nrows;
  char *data;      /* per row, per column: 1 byte null flag, 4 bytes length, bytes, NUL */
  size_t size;
} entry;

struct store_cache {
  entry *bucket[BUCKETS];
  int count;
  size_t bytes;
  int valid;                 /* this op resolved its actor and wrote nothing yet */
  long long settings_version; /* the one in the prefix */
  char tenant[128];
  char prefix[192];          /* tenant|tenant version|settings version| */
  size_t prefixlen;
  /* the replay under way (one result at a time per connection) */
  const entry *cur;
  size_t off;
  const char *col[MAX_COLS];
  unsigned len[MAX_COLS];
  unsigned char isnull[MAX_COLS];
};

static unsigned hash(const char *s, size_t n) {
  unsigned h = 2166136261u;
  for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 16777619u;
  return h;
}

static store_cache *cache_of(store_conn *c) {
  if (!c->cache) c->cache = calloc(1, sizeof *c->cache);
  return c->cache;
}

static void clear(store_cache *k) {
  for (int i = 0; i < BUCKETS; i++) {
    entry *e = k->bucket[i];
    while (e) {
      entry *n = e->next;
      free(e->key);
      free(e->data);
      free(e);
      e = n;
    }
    k->bucket[i] = NULL;
  }
  k->count = 0;
  k->bytes = 0;
}

void store_cache_free(store_conn *c) {
  if (!c->cache) return;
  clear(c->cache);
  free(c->cache);
  c->cache = NULL;
}

void store_cache_validate(store_conn *c, const char *tenant_id, long long tv, long long sv) {
  store_cache *k = cache_of(c);
  if (!k) return;
  /* "<tenant id>|<tenant counter>|<settings counter>|", formatted by hand
   * (this runs on every op: snprintf was ~1k instructions a call) */
  size_t tl = strlen(tenant_id);
  char nums[48], *end = nums + sizeof nums, *p = end;
  *--p = '|';
  p = fmt_int_back(p, sv);
  *--p = '|';
  p = fmt_int_back(p, tv);
  *--p = '|';
  size_t nl = (size_t)(end - p);
  k->valid = tl + nl < sizeof k->prefix && tl < sizeof k->tenant && c->depth == 0;
  if (k->valid) {
    memcpy(k->prefix, tenant_id, tl);
    memcpy(k->prefix + tl, p, nl);
    k->prefix[tl + nl] = 0;
    memcpy(k->tenant, tenant_id, tl + 1);
  } else {
    k->prefix[0] = 0;
    snprintf(k->tenant, sizeof k->tenant, "%s", tenant_id);
  }
  k->prefixlen = k->valid ? tl + nl : 0;
  k->settings_version = sv;
}

void store_cache_stop(store_conn *c) {
  if (c->cache) c->cache->valid = 0;
}

int store_cache_usable(store_conn *c, const char *tenant_id) {
  store_cache *k = c->cache;
  if (!k || !k->valid || c->depth > 0) return 0;
  return !tenant_id || strcmp(tenant_id, k->tenant) == 0;
}

int store_cache_settings_version(store_conn *c, long long *v) {
  if (!store_cache_usable(c, NULL)) return 0;
  *v = c->cache->settings_version;
  return 1;
}

const char *store_cache_prefix(store_conn *c, const char *tenant_id) {
  return tenant_id && store_cache_usable(c, tenant_id) ? c->cache->prefix : NULL;
}

/* ---- replay ------------------------------------------------------------------- */

static int rp_next(store_rows *r) {
  store_cache *k = r->c->cache;
  const entry *e = k->cur;
  if (r->i + 1 >= e->nrows) return 0;
  r->i++;
  for (int i = 0; i < e->ncols; i++) {
    const char *p = e->data + k->off;
    k->isnull[i] = (unsigned char)p[0];
    memcpy(&k->len[i], p + 1, 4);
    k->col[i] = p + 5;
    k->off += 5 + k->len[i] + 1;
  }
  return 1;
}
static int rp_is_null(store_rows *r, int col) { return r->c->cache->isnull[col]; }
static long long rp_int(store_rows *r, int col) { return strtoll(r->c->cache->col[col], NULL, 10); }
static const char *rp_text(store_rows *r, int col, size_t *n) {
  if (n) *n = r->c->cache->len[col];
  return r->c->cache->col[col];
}
static void rp_done(store_rows *r) { r->c->cache->cur = NULL; }
static const store_rows_ops replay = {rp_next, rp_is_null, rp_int, rp_text, rp_done};

static void start(store_conn *c, const entry *e, store_rows *out) {
  c->cache->cur = e;
  c->cache->off = 0;
  *out = (store_rows){&replay, c, (void *)e, -1, e->nrows, e->ncols};
}

/* The full key: the op's counters, then the request. */
static int full_key(store_cache *k, const char *key, size_t n, char *buf, size_t bufn) {
  if (k->prefixlen + n > bufn) return -1;
  memcpy(buf, k->prefix, k->prefixlen);
  memcpy(buf + k->prefixlen, key, n);
  return 0;
}

int store_cache_get(store_conn *c, const char *key, size_t n, store_rows *out) {
  store_cache *k = c->cache;
  char buf[4096];
  if (!k || full_key(k, key, n, buf, sizeof buf) != 0) return 0;
  size_t fl = k->prefixlen + n;
  unsigned h = hash(buf, fl);
  for (entry *e = k->bucket[h % BUCKETS]; e; e = e->next)
    if (e->hash == h && e->keylen == fl && memcmp(e->key, buf, fl) == 0) {
      start(c, e, out);
      return 1;
    }
  return 0;
}

int store_cache_fill(store_conn *c, const char *key, size_t n, store_rows *rows, store_rows *out) {
  store_cache *k = c->cache;
  assert(k);
  entry *e = calloc(1, sizeof *e);
  size_t cap = 1024;
  char buf[4096];
  int rc = 0, got;
  if (!e || !(e->data = malloc(cap)) || full_key(k, key, n, buf, sizeof buf) != 0 ||
      !(e->key = malloc(k->prefixlen + n)) || rows->ncols > MAX_COLS) {
    store_err_set(&c->err, SE_INTERNAL, NULL, "store: out of memory (read cache)");
    rc = -1;
  }
  if (rc == 0) {
    e->keylen = k->prefixlen + n;
    memcpy(e->key, buf, e->keylen);
    e->hash = hash(e->key, e->keylen);
    e->ncols = rows->ncols;
  }
  while (rc == 0 && (got = rows->ops->next(rows)) == 1) {
    for (int i = 0; i < e->ncols; i++) {
      size_t len = 0;
      int null = rows->ops->is_null(rows, i);
      const char *v = null ? "" : rows->ops->get_text(rows, i, &len);
      if (e->size + 6 + len > cap) {
        while (e->size + 6 + len > cap) cap *= 2;
        char *d = realloc(e->data, cap);
        if (!d) { rc = -1; store_err_set(&c->err, SE_INTERNAL, NULL, "store: out of memory (read cache)"); break; }
        e->data = d;
      }
      unsigned l = (unsigned)len;
      e->data[e->size] = (char)null;
      memcpy(e->data + e->size + 1, &l, 4);
      memcpy(e->data + e->size + 5, v, len);
      e->data[e->size + 5 + len] = 0;
      e->size += 6 + len;
    }
    e->nrows++;
  }
  if (rc == 0 && got < 0) rc = -1;
  rows->ops->done(rows);
  if (rc != 0) {
    if (e) { free(e->key); free(e->data); free(e); }
    return -1;
  }
  /* bounded: past the limits, start over (entries under old counters go too) */
  if (k->count >= MAX_ENTRIES || k->bytes + e->size + e->keylen > MAX_BYTES) clear(k);
  e->next = k->bucket[e->hash % BUCKETS];
  k->bucket[e->hash % BUCKETS] = e;
  k->count++;
  k->bytes += e->size + e->keylen + sizeof *e;
  start(c, e, out);
  return 0;
}
