/* keyring.c: the key ring file (several AES-256 keys with ids, one current),
 * engine-wide and thread-safe; rewritten atomically, always mode 0600. */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "dynlib_crypto.h"
#include "keyring.h"

#define RING_MAX_KEYS 64
#define RING_MAX_BYTES 65536
/* opened secrets kept for their next use (see secret_get) */
#define OPENED_MAX 256
#define OPENED_TTL_MS 30000

typedef struct {
  char kid[CRYPTO_KID_MAX];
  long long created;
  unsigned char key[CRYPTO_KEY_LEN];
} ring_key;

/* A secret opened a moment ago, for the calls that follow: opening costs a
 * stat of the key file's identity anyway, and then AES-GCM set-up and
 * decryption. An entry answers only the same AAD (tenant, table, row,
 * column: never another tenant's) and the same sealed text it was opened
 * from, and only for OPENED_TTL_MS; the caller read that sealed text from
 * the store for this very use, so a value changed anywhere (another
 * instance too) is a different text and is opened afresh. The plaintext is
 * wiped when the value is replaced or deleted here, when the key file
 * changes (rotation, retirement, here or on another instance), when it
 * expires or is pushed out, and when the engine closes. */
typedef struct {
  char *aad, *sealed;
  size_t aadn;
  unsigned char *pt;
  size_t ptn;
  long long expires;   /* monotonic ms */
} opened;

typedef struct {
  pthread_mutex_t mu;
  char *path;           /* NULL: no key_file option */
  int loaded;
  ring_key keys[RING_MAX_KEYS];
  int nkeys, current;
  struct stat st;       /* identity of the file we loaded, to notice rewrites */
  opened open[OPENED_MAX];
  int nopen;
  unsigned gen;         /* bumped whenever they are all wiped */
} ring;

static ring *ring_of(mcpl_engine *e) { return mcpl_engine_slot(e, MCPL_AREA_CRYPTO); }

static long long mono_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Under r->mu: entry i is wiped and dropped (the last one takes its place). */
static void opened_drop(ring *r, int i) {
  opened *o = &r->open[i];
  crypto_wipe_free(o->pt, o->ptn + 1);
  free(o->aad);
  free(o->sealed);
  r->open[i] = r->open[--r->nopen];
  memset(&r->open[r->nopen], 0, sizeof r->open[0]);
}

/* Under r->mu: every opened secret is wiped. */
static void opened_clear(ring *r) {
  while (r->nopen > 0) opened_drop(r, r->nopen - 1);
  r->gen++;
}

static void ring_clear(ring *r) {
  opened_clear(r);
  OPENSSL_cleanse(r->keys, sizeof r->keys);
  r->nkeys = 0;
  r->current = -1;
  r->loaded = 0;
}

static int same_file(const struct stat *a, const struct stat *b) {
  return a->st_dev == b->st_dev && a->st_ino == b->st_ino && a->st_size == b->st_size &&
         a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec;
}

/* Parses the key file text into r. Format, one item a line:
 *   # comment
 *   current <kid>
 *   key <kid> <created-unix-seconds> <base64url of 32 bytes> */
static int ring_parse(ring *r, char *text, char *err, size_t errn) {
  char cur[CRYPTO_KID_MAX] = "";
  int lineno = 0;
  r->nkeys = 0;
  r->current = -1;
  for (char *save = NULL, *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
    lineno++;
    if (line[0] == '#' || line[0] == 0) continue;
    char word[16], kid[CRYPTO_KID_MAX], b64[64];
    long long created;
    if (sscanf(line, "%15s", word) != 1) continue;
    if (strcmp(word, "current") == 0 && sscanf(line, "current %31s", cur) == 1) continue;
    if (strcmp(word, "key") == 0 && r->nkeys < RING_MAX_KEYS &&
        sscanf(line, "key %31s %lld %63s", kid, &created, b64) == 3) {
      ring_key *k = &r->keys[r->nkeys];
      unsigned char buf[48];
      size_t n = 0;
      int bad = crypto_b64url_decode(b64, strlen(b64), buf, &n) != 0 || n != CRYPTO_KEY_LEN;
      if (!bad) memcpy(k->key, buf, CRYPTO_KEY_LEN);
      OPENSSL_cleanse(buf, sizeof buf);
      OPENSSL_cleanse(b64, sizeof b64);
      if (bad) {
        snprintf(err, errn, "key file line %d: key '%s' is not 32 bytes of base64url", lineno, kid);
        return MCPL_E_KEY_UNAVAILABLE;
      }
      snprintf(k->kid, sizeof k->kid, "%s", kid);
      k->created = created;
      r->nkeys++;
      continue;
    }
    snprintf(err, errn, "key file line %d is not understood", lineno);
    return MCPL_E_KEY_UNAVAILABLE;
  }
  for (int i = 0; i < r->nkeys; i++)
    if (strcmp(r->keys[i].kid, cur) == 0) r->current = i;
  if (r->current < 0) {
    snprintf(err, errn, "key file names no current key that it holds");
    return MCPL_E_KEY_UNAVAILABLE;
  }
  return MCPL_OK;
}

/* Reads the key file into r. Returns MCPL_E_NOT_FOUND when it is absent. */
static int ring_read(ring *r, char *err, size_t errn) {
  int rc = MCPL_E_KEY_UNAVAILABLE;
  opened_clear(r);  /* whatever the file now says, nothing opened before is kept */
  char *text = NULL;
  struct stat st;
  int fd = open(r->path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) {
    if (errno == ENOENT) { snprintf(err, errn, "key file '%s' does not exist", r->path); return MCPL_E_NOT_FOUND; }
    snprintf(err, errn, "cannot open key file '%s': %s", r->path, strerror(errno));
    return rc;
  }
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size > RING_MAX_BYTES) {
    snprintf(err, errn, "key file '%s' is not a regular file of sane size", r->path);
    goto done;
  }
  /* A key ring others can read is a leaked key ring: refuse to use it. */
  if (st.st_mode & 077) {
    snprintf(err, errn, "key file '%s' is accessible by group or others (mode %03o); "
             "run chmod 600 on it", r->path, (unsigned)(st.st_mode & 0777));
    goto done;
  }
  text = malloc((size_t)st.st_size + 1);
  if (!text) { snprintf(err, errn, "out of memory"); goto done; }
  ssize_t got = 0;
  while (got < st.st_size) {
    ssize_t n = read(fd, text + got, (size_t)(st.st_size - got));
    if (n <= 0) { snprintf(err, errn, "cannot read key file '%s'", r->path); goto done; }
    got += n;
  }
  text[got] = 0;
  ring tmp;
  memset(&tmp, 0, sizeof tmp);
  rc = ring_parse(&tmp, text, err, errn);
  if (rc == MCPL_OK) {
    memcpy(r->keys, tmp.keys, sizeof tmp.keys);
    r->nkeys = tmp.nkeys;
    r->current = tmp.current;
    r->st = st;
    r->loaded = 1;
  }
  OPENSSL_cleanse(&tmp, sizeof tmp);
done:
  if (text) crypto_wipe_free(text, (size_t)st.st_size + 1);
  close(fd);
  return rc;
}

/* Writes r to its file: a 0600 temporary beside it, fsync, then rename (or
 * link, when exclusive, so two processes creating the ring cannot clobber
 * each other). */
static int ring_write(ring *r, int exclusive, char *err, size_t errn) {
  assert(r->current >= 0 && r->current < r->nkeys);  /* a ring on disk always names its key */
  int rc = MCPL_E_KEY_UNAVAILABLE, fd = -1;
  size_t cap = 256 + (size_t)r->nkeys * 160, n = 0;
  char *text = malloc(cap), tmp[4096];
  if (!text) { snprintf(err, errn, "out of memory"); return MCPL_E_INTERNAL; }
  n += (size_t)snprintf(text + n, cap - n,
                        "# mcplink key ring. Keep it secret (mode 0600) and backed up:\n"
                        "# without it the secrets stored in the database cannot be read.\n"
                        "current %s\n", r->keys[r->current].kid);
  for (int i = 0; i < r->nkeys; i++) {
    char b64[64];
    crypto_b64url_encode(r->keys[i].key, CRYPTO_KEY_LEN, b64);
    n += (size_t)snprintf(text + n, cap - n, "key %s %lld %s\n", r->keys[i].kid,
                          r->keys[i].created, b64);
    OPENSSL_cleanse(b64, sizeof b64);
  }
  unsigned char rnd[6];
  char rhex[13];
  crypto_random(rnd, sizeof rnd);
  for (int i = 0; i < 6; i++) snprintf(rhex + 2 * i, 3, "%02x", rnd[i]);
  snprintf(tmp, sizeof tmp, "%s.tmp-%s", r->path, rhex);
  fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) { snprintf(err, errn, "cannot create key file '%s': %s", tmp, strerror(errno)); goto done; }
  fchmod(fd, 0600); /* regardless of umask */
  for (size_t off = 0; off < n;) {
    ssize_t w = write(fd, text + off, n - off);
    if (w <= 0) { snprintf(err, errn, "cannot write key file '%s'", tmp); goto fail; }
    off += (size_t)w;
  }
  if (fsync(fd) != 0) { snprintf(err, errn, "cannot sync key file '%s'", tmp); goto fail; }
  close(fd);
  fd = -1;
  if (exclusive) {
    if (link(tmp, r->path) != 0) {
      int en = errno;
      unlink(tmp);
      if (en == EEXIST) { rc = MCPL_E_CONFLICT; snprintf(err, errn, "key file appeared meanwhile"); }
      else snprintf(err, errn, "cannot create key file '%s': %s", r->path, strerror(en));
      goto done;
    }
    unlink(tmp);
  } else if (rename(tmp, r->path) != 0) {
    snprintf(err, errn, "cannot replace key file '%s': %s", r->path, strerror(errno));
    goto fail;
  }
  /* make the directory entry durable too */
  char dir[4096];
  snprintf(dir, sizeof dir, "%s", r->path);
  char *slash = strrchr(dir, '/');
  if (slash) { if (slash == dir) slash[1] = 0; else *slash = 0; } else snprintf(dir, sizeof dir, ".");
  int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) { fsync(dfd); close(dfd); }
  stat(r->path, &r->st);
  rc = MCPL_OK;
  goto done;
fail:
  unlink(tmp);
done:
  if (fd >= 0) close(fd);
  crypto_wipe_free(text, cap);
  return rc;
}

static int ring_new_key(ring *r, char *err, size_t errn) {
  if (r->nkeys >= RING_MAX_KEYS) {
    snprintf(err, errn, "the key ring is full (%d keys): retire old keys first", RING_MAX_KEYS);
    return MCPL_E_CONFLICT;
  }
  ring_key *k = &r->keys[r->nkeys];
  unsigned char id[8];
  if (dynlib_crypto_ready(err, errn) != 0) return MCPL_E_UNAVAILABLE;
  if (crypto_random(k->key, CRYPTO_KEY_LEN) != 0 || crypto_random(id, sizeof id) != 0) {
    snprintf(err, errn, "no randomness for a new key");
    return MCPL_E_INTERNAL;
  }
  snprintf(k->kid, sizeof k->kid, "k-%02x%02x%02x%02x%02x%02x", id[0], id[1], id[2], id[3], id[4], id[5]);
  k->created = (long long)time(NULL);
  r->current = r->nkeys++;
  return MCPL_OK;
}

/* Under r->mu: make sure the ring in memory matches the file. */
static int ring_sync(ring *r, int may_create, char *err, size_t errn) {
  if (!r->path) {
    snprintf(err, errn, "no key file configured (engine option key_file)");
    return MCPL_E_KEY_UNAVAILABLE;
  }
  struct stat st;
  if (r->loaded && stat(r->path, &st) == 0 && same_file(&st, &r->st)) return MCPL_OK;
  int rc = ring_read(r, err, errn);
  if (rc != MCPL_E_NOT_FOUND) return rc;
  if (!may_create) return MCPL_E_KEY_UNAVAILABLE;
  ring_clear(r);
  if ((rc = ring_new_key(r, err, errn)) != MCPL_OK) return rc;
  rc = ring_write(r, 1, err, errn);
  if (rc == MCPL_E_CONFLICT) { ring_clear(r); return ring_read(r, err, errn); }
  if (rc != MCPL_OK) { ring_clear(r); return rc; }
  r->loaded = 1;
  return MCPL_OK;
}

/* ---- public ---------------------------------------------------------------- */

int keyring_engine_init(mcpl_engine *e, char **err) {
  ring *r = calloc(1, sizeof *r);
  if (!r) { *err = mcpl_json_error("internal", "out of memory", NULL); return -1; }
  pthread_mutex_init(&r->mu, NULL);
  r->current = -1;
  const char *p = mcpl_engine_opt(e, "key_file");
  if (p && *p && !(r->path = strdup(p))) {
    free(r);
    *err = mcpl_json_error("internal", "out of memory", NULL);
    return -1;
  }
  mcpl_engine_set_slot(e, MCPL_AREA_CRYPTO, r);
  if (!r->path) return 0;
  char msg[CRYPTO_ERR_MAX];
  int rc = ring_read(r, msg, sizeof msg);
  if (rc == MCPL_OK || rc == MCPL_E_NOT_FOUND) return 0; /* absent: created on first use */
  *err = mcpl_json_error("key_unavailable", msg, "key_file");
  keyring_engine_fini(e); /* a failed init is not finalised by the engine */
  return -1;
}

void keyring_engine_fini(mcpl_engine *e) {
  ring *r = ring_of(e);
  if (!r) return;
  ring_clear(r);
  pthread_mutex_destroy(&r->mu);
  free(r->path);
  free(r);
  mcpl_engine_set_slot(e, MCPL_AREA_CRYPTO, NULL);
}

int keyring_loaded(mcpl_engine *e) {
  ring *r = ring_of(e);
  if (!r) return 0;
  pthread_mutex_lock(&r->mu);
  int l = r->loaded;
  pthread_mutex_unlock(&r->mu);
  return l;
}

int keyring_load(mcpl_engine *e, int may_create, char *err, size_t errn) {
  ring *r = ring_of(e);
  if (!r) { snprintf(err, errn, "crypto is not initialised"); return MCPL_E_INTERNAL; }
  pthread_mutex_lock(&r->mu);
  int rc = ring_sync(r, may_create, err, errn);
  pthread_mutex_unlock(&r->mu);
  return rc;
}

/* Copies the key with id kid (NULL: the current key) into key and its id into
 * kid_out. A kid not in memory triggers a reload of a changed key file.
 * Returns an mcpl_code; key_unavailable names the key id. */
static int ring_get(mcpl_engine *e, const char *kid, unsigned char key[CRYPTO_KEY_LEN],
                    char kid_out[CRYPTO_KID_MAX], char *err, size_t errn) {
  ring *r = ring_of(e);
  if (!r) { snprintf(err, errn, "crypto is not initialised"); return MCPL_E_INTERNAL; }
  char why[CRYPTO_ERR_MAX];
  pthread_mutex_lock(&r->mu);
  int rc = ring_sync(r, 0, why, sizeof why), idx = -1;
  for (int pass = 0; rc == MCPL_OK && pass < 2 && idx < 0; pass++) {
    if (!kid) idx = r->current;
    else
      for (int i = 0; i < r->nkeys; i++)
        if (strcmp(r->keys[i].kid, kid) == 0) idx = i;
    /* A key id we do not hold: another instance rotated and rewrote the
     * shared key file. Read the file again (whatever its metadata says)
     * before calling the key unavailable. */
    if (idx < 0 && kid && pass == 0) rc = ring_read(r, why, sizeof why);
  }
  if (idx >= 0) {
    memcpy(key, r->keys[idx].key, CRYPTO_KEY_LEN);
    snprintf(kid_out, CRYPTO_KID_MAX, "%s", r->keys[idx].kid);
  }
  pthread_mutex_unlock(&r->mu);
  if (idx >= 0) return MCPL_OK;
  if (rc == MCPL_OK) snprintf(why, sizeof why, "it is not in the key ring");
  if (kid) snprintf(err, errn, "key '%s' is unavailable: %s", kid, why);
  else snprintf(err, errn, "no current key is available: %s", why);
  return MCPL_E_KEY_UNAVAILABLE;
}

int keyring_seal(mcpl_engine *e, const char *aad, size_t aadn, const unsigned char *pt,
                 size_t ptn, char **out, char *err, size_t errn) {
  unsigned char key[CRYPTO_KEY_LEN];
  char kid[CRYPTO_KID_MAX];
  *out = NULL;
  int rc = ring_get(e, NULL, key, kid, err, errn);
  if (rc == MCPL_OK) rc = crypto_seal(key, kid, aad, aadn, pt, ptn, out, err, errn);
  OPENSSL_cleanse(key, sizeof key);
  return rc;
}

/* A copy of the secret opened from exactly (aad, sealed) within its time,
 * checked against the key file's identity first (a rewritten file, here or
 * by another instance, wipes them all). 1 with *pt set, else 0. */
static int opened_get(ring *r, const char *aad, size_t aadn, const char *sealed,
                      unsigned char **pt, size_t *ptn, unsigned *gen) {
  int hit = 0;
  char why[CRYPTO_ERR_MAX];
  pthread_mutex_lock(&r->mu);
  if (r->nopen > 0 && ring_sync(r, 0, why, sizeof why) != MCPL_OK) opened_clear(r);
  *gen = r->gen;
  long long now = mono_ms();
  for (int i = 0; i < r->nopen; i++) {
    opened *o = &r->open[i];
    if (o->aadn != aadn || memcmp(o->aad, aad, aadn) != 0) continue;
    if (now < o->expires && strcmp(o->sealed, sealed) == 0 && (*pt = malloc(o->ptn + 1))) {
      memcpy(*pt, o->pt, o->ptn + 1);
      *ptn = o->ptn;
      hit = 1;
    } else opened_drop(r, i);  /* expired, or the value was replaced */
    break;
  }
  pthread_mutex_unlock(&r->mu);
  return hit;
}

/* Keeps a copy of a secret just opened, unless they were all wiped since
 * gen was read (a key changed while it was being opened); a full table
 * first drops the expired entries, then the one that expires first. */
static void opened_put(ring *r, unsigned gen, const char *aad, size_t aadn, const char *sealed,
                       const unsigned char *pt, size_t ptn) {
  opened o = {.aad = malloc(aadn + 1), .sealed = strdup(sealed), .aadn = aadn,
              .pt = malloc(ptn + 1), .ptn = ptn, .expires = mono_ms() + OPENED_TTL_MS};
  if (!o.aad || !o.sealed || !o.pt) {
    free(o.aad); free(o.sealed); free(o.pt);
    return;
  }
  memcpy(o.aad, aad, aadn);
  o.aad[aadn] = 0;
  memcpy(o.pt, pt, ptn + 1);
  pthread_mutex_lock(&r->mu);
  if (r->gen != gen) {
    pthread_mutex_unlock(&r->mu);
    crypto_wipe_free(o.pt, ptn + 1);
    free(o.aad);
    free(o.sealed);
    return;
  }
  for (int i = 0; i < r->nopen; i++)
    if (r->open[i].aadn == aadn && memcmp(r->open[i].aad, aad, aadn) == 0) { opened_drop(r, i); break; }
  if (r->nopen == OPENED_MAX) {
    long long now = mono_ms();
    for (int i = r->nopen - 1; i >= 0; i--)
      if (r->open[i].expires <= now) opened_drop(r, i);
  }
  if (r->nopen == OPENED_MAX) {
    int first = 0;
    for (int i = 1; i < r->nopen; i++)
      if (r->open[i].expires < r->open[first].expires) first = i;
    opened_drop(r, first);
  }
  r->open[r->nopen++] = o;
  pthread_mutex_unlock(&r->mu);
}

static int ring_open(mcpl_engine *e, const char *aad, size_t aadn, const char *sealed,
                     unsigned char **pt, size_t *ptn, char *err, size_t errn, int keep) {
  unsigned char key[CRYPTO_KEY_LEN];
  char kid[CRYPTO_KID_MAX], got[CRYPTO_KID_MAX];
  *pt = NULL;
  *ptn = 0;
  if (crypto_sealed_kid(sealed, kid) != 0) {
    snprintf(err, errn, "stored secret is not in a known sealed format");
    return MCPL_E_INTERNAL;
  }
  ring *r = keep ? ring_of(e) : NULL;
  unsigned gen = 0;
  if (r && opened_get(r, aad, aadn, sealed, pt, ptn, &gen)) return MCPL_OK;
  int rc = ring_get(e, kid, key, got, err, errn);
  if (rc == MCPL_OK) rc = crypto_open(key, aad, aadn, sealed, pt, ptn, err, errn);
  OPENSSL_cleanse(key, sizeof key);
  if (rc == MCPL_OK && r) opened_put(r, gen, aad, aadn, sealed, *pt, *ptn);
  return rc;
}

int keyring_open(mcpl_engine *e, const char *aad, size_t aadn, const char *sealed,
                 unsigned char **pt, size_t *ptn, char *err, size_t errn) {
  return ring_open(e, aad, aadn, sealed, pt, ptn, err, errn, 0);
}

int keyring_open_kept(mcpl_engine *e, const char *aad, size_t aadn, const char *sealed,
                      unsigned char **pt, size_t *ptn, char *err, size_t errn) {
  return ring_open(e, aad, aadn, sealed, pt, ptn, err, errn, 1);
}

/* Wipes the opened secrets of one row: its AAD holds "|table|id|". */
void keyring_forget(mcpl_engine *e, const char *table, const char *id) {
  ring *r = ring_of(e);
  char needle[300];
  int n = snprintf(needle, sizeof needle, "|%s|%s|", table, id);
  if (!r || n < 0 || (size_t)n >= sizeof needle) {
    if (r) { pthread_mutex_lock(&r->mu); opened_clear(r); pthread_mutex_unlock(&r->mu); }
    return;
  }
  pthread_mutex_lock(&r->mu);
  for (int i = r->nopen - 1; i >= 0; i--)
    if (strstr(r->open[i].aad, needle)) opened_drop(r, i);
  pthread_mutex_unlock(&r->mu);
}

/* How many opened secrets the engine holds (tests). */
int keyring_opened_count(mcpl_engine *e) {
  ring *r = ring_of(e);
  if (!r) return 0;
  pthread_mutex_lock(&r->mu);
  int n = r->nopen;
  pthread_mutex_unlock(&r->mu);
  return n;
}

int keyring_add(mcpl_engine *e, char kid[CRYPTO_KID_MAX], char *err, size_t errn) {
  ring *r = ring_of(e);
  if (!r) { snprintf(err, errn, "crypto is not initialised"); return MCPL_E_INTERNAL; }
  pthread_mutex_lock(&r->mu);
  opened_clear(r);
  int rc = ring_sync(r, 0, err, errn);
  int prev = r->current;
  if (rc == MCPL_OK) rc = ring_new_key(r, err, errn);
  if (rc == MCPL_OK) {
    rc = ring_write(r, 0, err, errn);
    if (rc != MCPL_OK) { /* undo in memory: the file still holds the old ring */
      r->nkeys--;
      OPENSSL_cleanse(&r->keys[r->nkeys], sizeof r->keys[0]);
      r->current = prev;
    } else snprintf(kid, CRYPTO_KID_MAX, "%s", r->keys[r->current].kid);
  }
  pthread_mutex_unlock(&r->mu);
  return rc;
}

int keyring_remove(mcpl_engine *e, const char *kid, char *err, size_t errn) {
  ring *r = ring_of(e);
  if (!r) { snprintf(err, errn, "crypto is not initialised"); return MCPL_E_INTERNAL; }
  pthread_mutex_lock(&r->mu);
  opened_clear(r);
  int rc = ring_sync(r, 0, err, errn), idx = -1;
  if (rc == MCPL_OK) {
    for (int i = 0; i < r->nkeys; i++)
      if (strcmp(r->keys[i].kid, kid) == 0) idx = i;
    if (idx < 0) { rc = MCPL_E_NOT_FOUND; snprintf(err, errn, "key '%s' not found", kid); }
    else if (idx == r->current) {
      rc = MCPL_E_CONFLICT;
      snprintf(err, errn, "key '%s' is the current key: rotate first", kid);
    }
  }
  if (rc == MCPL_OK) {
    ring_key gone = r->keys[idx];
    int cur = r->current;
    memmove(&r->keys[idx], &r->keys[idx + 1], (size_t)(r->nkeys - idx - 1) * sizeof r->keys[0]);
    r->nkeys--;
    if (r->current > idx) r->current--;
    rc = ring_write(r, 0, err, errn);
    if (rc != MCPL_OK) { /* put it back */
      memmove(&r->keys[idx + 1], &r->keys[idx], (size_t)(r->nkeys - idx) * sizeof r->keys[0]);
      r->keys[idx] = gone;
      r->nkeys++;
      r->current = cur;
    }
    OPENSSL_cleanse(&gone, sizeof gone);
    OPENSSL_cleanse(&r->keys[r->nkeys], sizeof r->keys[0]);
  }
  pthread_mutex_unlock(&r->mu);
  return rc;
}

int keyring_list(mcpl_engine *e, keyring_key_info *out, int max) {
  ring *r = ring_of(e);
  if (!r) return 0;
  char why[CRYPTO_ERR_MAX];
  pthread_mutex_lock(&r->mu);
  int n = ring_sync(r, 0, why, sizeof why) == MCPL_OK ? r->nkeys : 0;
  for (int i = 0; i < n && i < max; i++) {
    snprintf(out[i].kid, sizeof out[i].kid, "%s", r->keys[i].kid);
    out[i].created = r->keys[i].created;
    out[i].current = i == r->current;
  }
  pthread_mutex_unlock(&r->mu);
  return n;
}
