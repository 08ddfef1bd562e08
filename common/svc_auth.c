/*
 * Service credential files and checks (see dmt/svc_auth.h). PBKDF2, the
 * random salt and the constant-time comparison are OpenSSL's; this file only
 * parses and formats lines.
 */
#include "dmt/svc_auth.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dmt/b64url.h"

#define SALT_MAX 64
#define HASH_LEN 64 /* SHA-512 */
#define MAX_ITERATIONS 1000000u
#define MAX_FILE (1024 * 1024)

struct entry {
  char user[sizeof DMT_SVC_PREFIX + DMT_SVC_NAME_MAX];
  unsigned iterations;
  unsigned char salt[SALT_MAX];
  size_t salt_len;
  unsigned char hash[HASH_LEN];
};

struct dmt_svc_creds {
  struct entry *v;
  size_t n;
};

bool dmt_svc_username_valid(const char *u) {
  if (!u || strncmp(u, DMT_SVC_PREFIX, 4) != 0) return false;
  const char *name = u + 4;
  size_t n = strlen(name);
  if (n == 0 || n > DMT_SVC_NAME_MAX) return false;
  for (size_t i = 0; i < n; i++) {
    char c = name[i];
    bool alnum = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
    if (!alnum && (i == 0 || (c != '.' && c != '_' && c != '-'))) return false;
  }
  return true;
}

/* Standard base64 with padding (at most 128 characters); returns the decoded length or -1. */
static long b64_decode(const char *in, size_t len, unsigned char *out, size_t cap) {
  unsigned char tmp[96];
  if (len == 0 || len % 4 != 0 || len > 128) return -1;
  for (size_t i = 0; i < len; i++) {
    char c = in[i];
    bool pad = c == '=' && (i == len - 1 || (i == len - 2 && in[len - 1] == '='));
    if (!pad && !((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' || c == '/'))
      return -1;
  }
  int n = EVP_DecodeBlock(tmp, (const unsigned char *)in, (int)len);
  size_t pad = (size_t)(in[len - 1] == '=') + (size_t)(in[len - 2] == '=');
  if (n < 0 || (size_t)n < pad || (size_t)n - pad > cap) return -1;
  memcpy(out, tmp, (size_t)n - pad);
  OPENSSL_cleanse(tmp, sizeof tmp);
  return (long)((size_t)n - pad);
}

/* "$7$<iterations>$<salt>$<hash>" */
static int parse_hash(const char *s, struct entry *e) {
  if (strncmp(s, "$7$", 3) != 0) return -1;
  char *end;
  unsigned long it = strtoul(s + 3, &end, 10);
  if (end == s + 3 || *end != '$' || it == 0 || it > MAX_ITERATIONS) return -1;
  e->iterations = (unsigned)it;
  const char *salt = end + 1, *dollar = strchr(salt, '$');
  if (!dollar) return -1;
  long sl = b64_decode(salt, (size_t)(dollar - salt), e->salt, sizeof e->salt);
  if (sl < 8) return -1;
  e->salt_len = (size_t)sl;
  const char *hash = dollar + 1;
  return b64_decode(hash, strlen(hash), e->hash, sizeof e->hash) == HASH_LEN ? 0 : -1;
}

static const struct entry *find(const struct dmt_svc_creds *c, const char *user) {
  for (size_t i = 0; c && user && i < c->n; i++)
    if (strcmp(c->v[i].user, user) == 0) return &c->v[i];
  return NULL;
}

void dmt_svc_creds_free(struct dmt_svc_creds *c) {
  if (!c) return;
  OPENSSL_cleanse(c->v, c->n * sizeof *c->v);
  free(c->v);
  free(c);
}

size_t dmt_svc_creds_count(const struct dmt_svc_creds *c) { return c ? c->n : 0; }

struct dmt_svc_creds *dmt_svc_creds_parse(const char *text, size_t len, char *err, size_t errlen) {
  struct dmt_svc_creds *c = calloc(1, sizeof *c);
  if (!c) return NULL;
  size_t lineno = 0;
  for (size_t off = 0; off < len;) {
    const char *line = text + off, *nl = memchr(line, '\n', len - off);
    size_t n = nl ? (size_t)(nl - line) : len - off;
    off += n + 1;
    lineno++;
    while (n && (line[n - 1] == '\r' || line[n - 1] == ' ')) n--;
    if (n == 0 || line[0] == '#') continue;
    char buf[512];
    if (n >= sizeof buf || memchr(line, '\0', n)) goto bad;
    memcpy(buf, line, n);
    buf[n] = '\0';
    char *colon = strrchr(buf, ':');
    if (!colon) goto bad;
    *colon = '\0';
    struct entry e = {0};
    if (!dmt_svc_username_valid(buf) || find(c, buf) || parse_hash(colon + 1, &e) != 0) goto bad;
    memcpy(e.user, buf, strlen(buf) + 1); /* fits: dmt_svc_username_valid() bounds it */
    struct entry *nv = realloc(c->v, (c->n + 1) * sizeof *nv);
    if (!nv) goto bad;
    c->v = nv;
    c->v[c->n++] = e;
    continue;
  bad:
    snprintf(err, errlen, "line %zu: expected svc:<name>:$7$<iterations>$<salt>$<hash> (unique names)", lineno);
    dmt_svc_creds_free(c);
    return NULL;
  }
  return c;
}

struct dmt_svc_creds *dmt_svc_creds_load_file(const char *path, char *err, size_t errlen) {
  FILE *f = fopen(path, "rb");
  if (!f) {
    snprintf(err, errlen, "cannot open credentials file %s", path);
    return NULL;
  }
  char *buf = malloc(MAX_FILE + 1);
  size_t n = buf ? fread(buf, 1, MAX_FILE + 1, f) : 0;
  fclose(f);
  struct dmt_svc_creds *c = NULL;
  if (n > MAX_FILE) snprintf(err, errlen, "credentials file larger than %d bytes", MAX_FILE);
  else if (buf) c = dmt_svc_creds_parse(buf, n, err, errlen);
  free(buf);
  return c;
}

bool dmt_svc_creds_check(const struct dmt_svc_creds *c, const char *user, const char *secret) {
  /* Unknown users are hashed against a fixed entry so the answer takes as long either way. */
  static const struct entry dummy = {.iterations = DMT_SVC_ITERATIONS, .salt_len = 12};
  size_t slen = secret ? strnlen(secret, DMT_SVC_MAX_SECRET + 1) : 0;
  if (slen < DMT_SVC_MIN_SECRET || slen > DMT_SVC_MAX_SECRET) return false;
  const struct entry *e = find(c, user);
  const struct entry *use = e ? e : &dummy;
  unsigned char out[HASH_LEN];
  bool ok = PKCS5_PBKDF2_HMAC(secret, (int)slen, use->salt, (int)use->salt_len, (int)use->iterations, EVP_sha512(),
                              HASH_LEN, out) == 1 &&
            CRYPTO_memcmp(out, use->hash, HASH_LEN) == 0;
  OPENSSL_cleanse(out, sizeof out);
  return ok && e != NULL;
}

void dmt_svc_creds_changed(const struct dmt_svc_creds *old, const struct dmt_svc_creds *new,
                           void (*fn)(const char *username, void *ud), void *ud) {
  for (size_t i = 0; old && i < old->n; i++) {
    const struct entry *o = &old->v[i], *n = find(new, o->user);
    if (!n || n->iterations != o->iterations || n->salt_len != o->salt_len ||
        memcmp(n->salt, o->salt, o->salt_len) != 0 || memcmp(n->hash, o->hash, HASH_LEN) != 0)
      fn(o->user, ud);
  }
}

int dmt_svc_hash_line(const char *user, const char *secret, unsigned iterations, char *out, size_t outlen) {
  unsigned char salt[12], hash[HASH_LEN];
  char salt64[4 * sizeof salt / 3 + 4], hash64[4 * HASH_LEN / 3 + 4];
  size_t slen = secret ? strlen(secret) : 0;
  if (!dmt_svc_username_valid(user) || slen < DMT_SVC_MIN_SECRET || slen > DMT_SVC_MAX_SECRET || iterations == 0 ||
      iterations > MAX_ITERATIONS || RAND_bytes(salt, sizeof salt) != 1 ||
      PKCS5_PBKDF2_HMAC(secret, (int)slen, salt, sizeof salt, (int)iterations, EVP_sha512(), HASH_LEN, hash) != 1)
    return -1;
  EVP_EncodeBlock((unsigned char *)salt64, salt, sizeof salt);
  EVP_EncodeBlock((unsigned char *)hash64, hash, HASH_LEN);
  OPENSSL_cleanse(hash, sizeof hash);
  int n = snprintf(out, outlen, "%s:$7$%u$%s$%s", user, iterations, salt64, hash64);
  return n > 0 && (size_t)n < outlen ? 0 : -1;
}

int dmt_svc_new_secret(char out[44]) {
  unsigned char raw[32];
  if (RAND_bytes(raw, sizeof raw) != 1) return -1;
  long n = dmt_b64url_encode(raw, sizeof raw, out, 44);
  OPENSSL_cleanse(raw, sizeof raw);
  return n == 43 ? 0 : -1;
}
