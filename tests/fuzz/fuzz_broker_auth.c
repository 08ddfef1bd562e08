/*
 * Fuzz target for everything the broker plugin parses from the network or
 * from its files: tokens (shape, header, signature path), Keycloak claims and
 * their role -> tenant mapping, topic and filter ACL decisions, JWKS
 * documents, agent credential files and base64url. The first input byte picks
 * the parser. Beyond "no crash", the ACL mode checks the property the plugin
 * exists for: whatever a north client is allowed, the tenant level of the
 * topic is a literal tenant its token grants.
 */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dmt/b64url.h"
#include "dmt/jwks.h"
#include "dmt/jwt_auth.h"
#include "dmt/svc_auth.h"
#include "dmt/topic_acl.h"
#include "jwtkit.h"

#define NOW 1700000000

static struct dmt_jwt_verifier *ver;
static struct dmt_jwks *keys;

static void init(void) {
  char err[256];
  struct dmt_jwt_config cfg = {.issuer = "https://kc.test/realms/master", .audience = "dmt-broker,dmt-bridge",
                               .clock_skew = 30, .roles_client = "dmt"};
  ver = dmt_jwt_verifier_new(&cfg, err, sizeof err);
  struct jwtkit_key k;
  if (!ver || jwtkit_key_new(&k, "k1", 2048) != 0) abort();
  const struct jwtkit_key *pub[] = {&k};
  char *jwks = jwtkit_jwks(pub, 1);
  keys = dmt_jwks_parse(jwks, strlen(jwks), err, sizeof err);
  free(jwks);
  jwtkit_key_free(&k);
  if (!keys) abort();
}

static char *text(const uint8_t *data, size_t size) {
  char *s = malloc(size + 1);
  memcpy(s, data, size);
  s[size] = '\0';
  return s;
}

/* The property: an allowed north request names, in its tenant level, a tenant the grants hold. */
static void check_north(const struct dmt_grants *g, const char *client_id, const char *topic, enum dmt_acl_access a,
                        bool retain) {
  const char *why = NULL;
  if (!dmt_acl_north(g, client_id, topic, a, retain, &why) || a == DMT_ACL_UNSUBSCRIBE) return;
  const char *t = topic;
  if (a == DMT_ACL_SUBSCRIBE && !strncmp(t, "$share/", 7)) {
    t = strchr(t + 7, '/');
    if (!t) abort();
    t++;
  }
  if (strncmp(t, "dmt/v1/", 7) != 0) abort();
  const char *tenant = t + 7, *end = strchr(tenant, '/');
  if (!end) abort();
  enum dmt_perm perm = dmt_grants_perm(g, tenant, (size_t)(end - tenant));
  if (perm == DMT_PERM_NONE || !dmt_topic_tenant_valid_n(tenant, (size_t)(end - tenant))) abort();
  if (a == DMT_ACL_WRITE && (perm != DMT_PERM_READ_WRITE || retain || strchr(topic, '+') || strchr(topic, '#'))) abort();
  if (!why) abort();
}

static void fuzz_acl(const uint8_t *data, size_t size) {
  if (size < 2) return;
  static struct dmt_tenant_grant v[] = {{"A", DMT_PERM_READ_WRITE}, {"RO", DMT_PERM_READ}, {"_default", DMT_PERM_READ}};
  const struct dmt_grants g = {v, 3};
  enum dmt_acl_access a = (enum dmt_acl_access)(data[0] % 4);
  bool retain = data[1] & 1;
  char *s = text(data + 2, size - 2);
  char *topic = s + strlen(s) + 1 <= s + (size - 2) ? s + strlen(s) + 1 : s; /* "client\0topic", or one string */
  const char *client = topic == s ? "cli-a" : s;
  check_north(&g, client, topic, a, retain);
  (void)dmt_acl_agent(topic, a, NULL);
  /* Matcher sanity: intersection is symmetric, and a match is an intersection. */
  if (dmt_topic_filters_intersect(client, topic) != dmt_topic_filters_intersect(topic, client)) abort();
  if (!strpbrk(client, "+#") && dmt_topic_matches(topic, client) && !dmt_topic_filters_intersect(topic, client)) abort();
  free(s);
}

static void fuzz_claims(const uint8_t *data, size_t size) {
  json_t *claims = json_loadb((const char *)data, size, 0, NULL);
  struct dmt_identity id;
  if (dmt_jwt_check_claims(ver, claims, NOW, &id) == DMT_JWT_OK) {
    if (id.grants.n == 0 || id.grants.n > DMT_JWT_MAX_GRANTS || id.exp <= NOW - 30) abort();
    for (size_t i = 0; i < id.grants.n; i++) {
      if (!dmt_topic_tenant_valid(id.grants.v[i].tenant) || id.grants.v[i].perm == DMT_PERM_NONE) abort();
      char topic[128];
      snprintf(topic, sizeof topic, "dmt/v1/%s/devices/+/state", id.grants.v[i].tenant);
      if (!dmt_acl_north(&id.grants, "c", topic, DMT_ACL_SUBSCRIBE, false, NULL)) abort();
    }
  }
  dmt_identity_clear(&id);
  json_decref(claims);
}

static void fuzz_token(const uint8_t *data, size_t size) {
  char *tok = text(data, size), kid[129];
  (void)dmt_jwt_parse_header(ver, tok, kid, sizeof kid);
  struct dmt_identity id;
  if (dmt_jwt_verify(ver, keys, tok, NOW, &id) == DMT_JWT_OK) abort(); /* nobody can sign with the fuzzer's key */
  dmt_identity_clear(&id);
  free(tok);
}

static void fuzz_b64url(const uint8_t *data, size_t size) {
  uint8_t out[4096];
  char back[8192];
  if (size > 4096) return;
  long n = dmt_b64url_decode((const char *)data, size, out, sizeof out);
  if (n < 0) return;
  /* Canonical: what decodes re-encodes to exactly the input. */
  if (dmt_b64url_encode(out, (size_t)n, back, sizeof back) != (long)size || memcmp(back, data, size) != 0) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (!ver) init();
  if (size == 0) return 0;
  const uint8_t *d = data + 1;
  size_t n = size - 1;
  char err[256];
  switch (data[0] % 6) {
  case 0: fuzz_token(d, n); break;
  case 1: fuzz_claims(d, n); break;
  case 2: fuzz_acl(d, n); break;
  case 3: dmt_jwks_free(dmt_jwks_parse((const char *)d, n, err, sizeof err)); break;
  case 4: {
    struct dmt_svc_creds *c = dmt_svc_creds_parse((const char *)d, n, err, sizeof err);
    char *s = text(d, n);
    (void)dmt_svc_username_valid(s);
    free(s);
    dmt_svc_creds_free(c);
    break;
  }
  default: fuzz_b64url(d, n); break;
  }
  return 0;
}
