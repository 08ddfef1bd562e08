/*
 * HTTP Digest (see dmt/digest.h). The header parser is a small tokenizer over
 * `name=value` pairs with RFC 7230 quoted strings; everything is bounded by
 * the fixed-size fields of the result structs, and over-long values are
 * rejected rather than truncated (a truncated nonce would verify wrongly).
 */
#include "dmt/digest.h"

#include <ctype.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

static void md5_hex_parts(const char *const *parts, size_t n, char out[DMT_DIGEST_HEX]) {
  EVP_MD_CTX *ctx = EVP_MD_CTX_new();
  unsigned char md[16];
  unsigned int len = 0;
  EVP_DigestInit_ex(ctx, EVP_md5(), NULL);
  for (size_t i = 0; i < n; i++) {
    if (i) EVP_DigestUpdate(ctx, ":", 1);
    EVP_DigestUpdate(ctx, parts[i], strlen(parts[i]));
  }
  EVP_DigestFinal_ex(ctx, md, &len);
  EVP_MD_CTX_free(ctx);
  for (int i = 0; i < 16; i++) snprintf(out + 2 * i, 3, "%02x", md[i]);
}

void dmt_digest_ha1_raw(const char *user, const char *realm, const char *password, uint8_t out[16]) {
  EVP_MD_CTX *ctx = EVP_MD_CTX_new();
  unsigned int len = 0;
  EVP_DigestInit_ex(ctx, EVP_md5(), NULL);
  EVP_DigestUpdate(ctx, user, strlen(user));
  EVP_DigestUpdate(ctx, ":", 1);
  EVP_DigestUpdate(ctx, realm, strlen(realm));
  EVP_DigestUpdate(ctx, ":", 1);
  EVP_DigestUpdate(ctx, password, strlen(password));
  EVP_DigestFinal_ex(ctx, out, &len);
  EVP_MD_CTX_free(ctx);
}

void dmt_digest_ha1(const char *user, const char *realm, const char *password, char out[DMT_DIGEST_HEX]) {
  const char *parts[] = {user, realm, password};
  md5_hex_parts(parts, 3, out);
}

void dmt_digest_response(const char *ha1, const char *nonce, uint32_t nc, const char *cnonce,
                         const char *method, const char *uri, char out[DMT_DIGEST_HEX]) {
  char ha2[DMT_DIGEST_HEX], ncs[9];
  const char *a2[] = {method, uri};
  md5_hex_parts(a2, 2, ha2);
  snprintf(ncs, sizeof ncs, "%08x", nc);
  const char *parts[] = {ha1, nonce, ncs, cnonce, "auth", ha2};
  md5_hex_parts(parts, 6, out);
}

int dmt_digest_authorization(const char *user, const char *password, const struct dmt_digest_challenge *c,
                             const char *method, const char *uri, uint32_t nc, const char *cnonce,
                             char *out, size_t outlen) {
  char ha1[DMT_DIGEST_HEX], resp[DMT_DIGEST_HEX];
  dmt_digest_ha1(user, c->realm, password, ha1);
  dmt_digest_response(ha1, c->nonce, nc, cnonce, method, uri, resp);
  OPENSSL_cleanse(ha1, sizeof ha1);
  int n = snprintf(out, outlen,
                   "Digest username=\"%s\",realm=\"%s\",nonce=\"%s\",uri=\"%s\",qop=\"auth\","
                   "response=\"%s\",nc=\"%08x\",cnonce=\"%s\"",
                   user, c->realm, c->nonce, uri, resp, nc, cnonce);
  return (n < 0 || (size_t)n >= outlen) ? -1 : n;
}

int dmt_digest_random_hex(char *out, size_t nbytes) {
  unsigned char raw[64];
  if (nbytes > sizeof raw || RAND_bytes(raw, (int)nbytes) != 1) return -1;
  for (size_t i = 0; i < nbytes; i++) snprintf(out + 2 * i, 3, "%02x", raw[i]);
  return 0;
}

/* ---- `name=value, name="quoted, value"` tokenizer ---- */

struct param_sink {
  void (*fn)(void *ud, const char *name, size_t nlen, const char *value, size_t vlen, int *err);
  void *ud;
};

static int parse_params(const char *s, struct param_sink sink) {
  char value[512];
  int err = 0;
  while (*s && !err) {
    while (*s == ' ' || *s == '\t' || *s == ',') s++;
    if (!*s) break;
    const char *name = s;
    while (*s && *s != '=' && *s != ',' && *s != ' ') s++;
    size_t nlen = (size_t)(s - name);
    while (*s == ' ') s++;
    if (*s != '=' || nlen == 0) return -1;
    s++;
    while (*s == ' ') s++;
    size_t vlen = 0;
    if (*s == '"') {
      s++;
      while (*s && *s != '"') {
        if (*s == '\\' && s[1]) s++;
        if (vlen + 1 >= sizeof value) return -1;
        value[vlen++] = *s++;
      }
      if (*s != '"') return -1; /* unterminated quote */
      s++;
    } else {
      while (*s && *s != ',' && *s != ' ' && *s != '\t') {
        if (vlen + 1 >= sizeof value) return -1;
        value[vlen++] = *s++;
      }
    }
    value[vlen] = '\0';
    sink.fn(sink.ud, name, nlen, value, vlen, &err);
  }
  return err ? -1 : 0;
}

static bool name_is(const char *name, size_t nlen, const char *want) {
  return strlen(want) == nlen && strncasecmp(name, want, nlen) == 0;
}

static void set_field(char *dst, size_t cap, const char *v, size_t vlen, int *err) {
  if (vlen >= cap) *err = 1;
  else memcpy(dst, v, vlen + 1);
}

static bool qop_offers_auth(const char *v) {
  for (const char *s = v; *s;) {
    while (*s == ' ' || *s == ',') s++;
    const char *e = s;
    while (*e && *e != ',' && *e != ' ') e++;
    if (e - s == 4 && strncasecmp(s, "auth", 4) == 0) return true;
    s = e;
  }
  return false;
}

static void challenge_param(void *ud, const char *name, size_t nlen, const char *v, size_t vlen, int *err) {
  struct dmt_digest_challenge *c = ud;
  if (name_is(name, nlen, "realm")) set_field(c->realm, sizeof c->realm, v, vlen, err);
  else if (name_is(name, nlen, "nonce")) set_field(c->nonce, sizeof c->nonce, v, vlen, err);
  else if (name_is(name, nlen, "opaque")) set_field(c->opaque, sizeof c->opaque, v, vlen, err);
  else if (name_is(name, nlen, "qop")) c->qop_auth = qop_offers_auth(v);
  else if (name_is(name, nlen, "stale")) c->stale = strcasecmp(v, "true") == 0;
  else if (name_is(name, nlen, "algorithm") && strcasecmp(v, "MD5") != 0) *err = 1;
}

int dmt_digest_parse_challenge(const char *value, struct dmt_digest_challenge *c) {
  memset(c, 0, sizeof *c);
  while (*value == ' ') value++;
  if (strncasecmp(value, "Digest", 6) != 0 || (value[6] != ' ' && value[6] != '\t')) return -1;
  struct param_sink sink = {challenge_param, c};
  if (parse_params(value + 7, sink) != 0) return -1;
  return (c->realm[0] && c->nonce[0]) ? 0 : -1;
}

static void credential_param(void *ud, const char *name, size_t nlen, const char *v, size_t vlen, int *err) {
  struct dmt_digest_credentials *c = ud;
  if (name_is(name, nlen, "username")) set_field(c->username, sizeof c->username, v, vlen, err);
  else if (name_is(name, nlen, "realm")) set_field(c->realm, sizeof c->realm, v, vlen, err);
  else if (name_is(name, nlen, "nonce")) set_field(c->nonce, sizeof c->nonce, v, vlen, err);
  else if (name_is(name, nlen, "uri")) set_field(c->uri, sizeof c->uri, v, vlen, err);
  else if (name_is(name, nlen, "response")) set_field(c->response, sizeof c->response, v, vlen, err);
  else if (name_is(name, nlen, "qop")) set_field(c->qop, sizeof c->qop, v, vlen, err);
  else if (name_is(name, nlen, "nc")) set_field(c->nc, sizeof c->nc, v, vlen, err);
  else if (name_is(name, nlen, "cnonce")) set_field(c->cnonce, sizeof c->cnonce, v, vlen, err);
}

int dmt_digest_parse_authorization(const char *value, struct dmt_digest_credentials *c) {
  memset(c, 0, sizeof *c);
  while (*value == ' ') value++;
  if (strncasecmp(value, "Digest", 6) != 0 || (value[6] != ' ' && value[6] != '\t')) return -1;
  struct param_sink sink = {credential_param, c};
  if (parse_params(value + 7, sink) != 0) return -1;
  return (c->username[0] && c->nonce[0] && c->uri[0] && c->response[0]) ? 0 : -1;
}

bool dmt_digest_verify(const struct dmt_digest_credentials *c, const char *method, const char *user,
                       const char *realm, const char *nonce, const char *ha1) {
  if (strcmp(c->username, user) || strcmp(c->realm, realm) || strcmp(c->nonce, nonce)) return false;
  if (strcasecmp(c->qop, "auth") != 0 || strlen(c->nc) != 8 || !c->cnonce[0]) return false;
  for (int i = 0; i < 8; i++)
    if (!isxdigit((unsigned char)c->nc[i])) return false;
  char ha2[DMT_DIGEST_HEX], expect[DMT_DIGEST_HEX];
  const char *a2[] = {method, c->uri};
  md5_hex_parts(a2, 2, ha2);
  const char *parts[] = {ha1, c->nonce, c->nc, c->cnonce, c->qop, ha2};
  md5_hex_parts(parts, 6, expect);
  if (strlen(c->response) != 32) return false;
  char given[DMT_DIGEST_HEX];
  for (int i = 0; i < 32; i++) given[i] = (char)tolower((unsigned char)c->response[i]);
  return CRYPTO_memcmp(given, expect, 32) == 0;
}

bool dmt_digest_realm_valid(const char *realm) {
  if (!realm || strncmp(realm, "Digest:", 7) != 0 || strlen(realm) != 7 + 32) return false;
  for (int i = 7; i < 39; i++)
    if (!isxdigit((unsigned char)realm[i])) return false;
  return true;
}
