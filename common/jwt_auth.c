/*
 * Keycloak token verification and role mapping (see dmt/jwt_auth.h). The
 * header is parsed here, strictly, before libjwt sees the token: that is where
 * the algorithm is pinned and the key chosen. libjwt then checks the RS256
 * signature with that key; the claims it returns are judged by
 * dmt_jwt_check_claims(), a pure function the fuzz target drives directly.
 */
#include "dmt/jwt_auth.h"

#include <jwt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "dmt/b64url.h"

#define MAX_LIST 16
#define MAX_HEADER_SEGMENT 2048

struct list {
  char *item[MAX_LIST];
  size_t n;
};

struct dmt_jwt_verifier {
  char *issuer;
  struct list audiences, rw, ro;
  char *client;
  long skew;
  size_t max_len;
};

static void list_free(struct list *l) {
  for (size_t i = 0; i < l->n; i++) free(l->item[i]);
  l->n = 0;
}

/* Comma-separated, spaces trimmed; role_chars restricts items to [A-Za-z0-9._-]. */
static int list_parse(struct list *l, const char *text, bool role_chars) {
  for (const char *p = text; p && *p;) {
    while (*p == ' ' || *p == ',') p++;
    const char *end = p;
    while (*end && *end != ',') end++;
    size_t n = (size_t)(end - p);
    while (n && p[n - 1] == ' ') n--;
    if (n) {
      if (l->n == MAX_LIST) return -1;
      for (size_t i = 0; i < n; i++) {
        char c = p[i];
        bool ok = role_chars ? ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                                c == '.' || c == '_' || c == '-')
                             : (c > ' ' && c < 0x7f);
        if (!ok) return -1;
      }
      if (!(l->item[l->n] = strndup(p, n))) return -1;
      l->n++;
    }
    p = end;
  }
  return 0;
}

void dmt_jwt_verifier_free(struct dmt_jwt_verifier *v) {
  if (!v) return;
  free(v->issuer);
  free(v->client);
  list_free(&v->audiences);
  list_free(&v->rw);
  list_free(&v->ro);
  free(v);
}

struct dmt_jwt_verifier *dmt_jwt_verifier_new(const struct dmt_jwt_config *cfg, char *err, size_t errlen) {
  struct dmt_jwt_verifier *v = calloc(1, sizeof *v);
  if (!v) return NULL;
  const char *why = NULL;
  if (!cfg->issuer || !*cfg->issuer) why = "an issuer is required";
  else if (list_parse(&v->audiences, cfg->audience, false) != 0 || v->audiences.n == 0)
    why = "at least one audience is required (comma-separated)";
  else if (list_parse(&v->rw, cfg->roles_rw ? cfg->roles_rw : "im-rw", true) != 0 ||
           list_parse(&v->ro, cfg->roles_ro ? cfg->roles_ro : "im-r", true) != 0)
    why = "role suffixes are comma-separated [A-Za-z0-9._-] words";
  else if (cfg->clock_skew < 0 || cfg->clock_skew > 600)
    why = "clock skew must be 0..600 seconds";
  if (why) {
    snprintf(err, errlen, "%s", why);
    dmt_jwt_verifier_free(v);
    return NULL;
  }
  v->issuer = strdup(cfg->issuer);
  v->client = cfg->roles_client && *cfg->roles_client ? strdup(cfg->roles_client) : NULL;
  v->skew = cfg->clock_skew;
  v->max_len = cfg->max_token_len ? cfg->max_token_len : DMT_JWT_MAX_TOKEN;
  return v;
}

long dmt_jwt_verifier_skew(const struct dmt_jwt_verifier *v) { return v->skew; }

void dmt_identity_clear(struct dmt_identity *id) {
  if (!id) return;
  free(id->grants.v);
  memset(id, 0, sizeof *id);
}

const char *dmt_jwt_strerror(int status) {
  switch (status) {
  case DMT_JWT_OK: return "ok";
  case DMT_JWT_MALFORMED: return "malformed token";
  case DMT_JWT_BAD_ALG: return "algorithm is not RS256";
  case DMT_JWT_UNKNOWN_KEY: return "no key for the token's kid";
  case DMT_JWT_BAD_SIGNATURE: return "bad signature";
  case DMT_JWT_EXPIRED: return "token expired";
  case DMT_JWT_NOT_YET_VALID: return "token not yet valid";
  case DMT_JWT_BAD_ISSUER: return "wrong issuer";
  case DMT_JWT_BAD_AUDIENCE: return "wrong audience";
  case DMT_JWT_BAD_CLAIMS: return "claims missing or malformed";
  case DMT_JWT_NO_GRANTS: return "token grants no tenant";
  default: return "unknown";
  }
}

/* Three non-empty base64url segments within the length cap; *hdr_len = first segment's length. */
static int shape(const struct dmt_jwt_verifier *v, const char *token, size_t *hdr_len) {
  size_t len = token ? strnlen(token, v->max_len + 1) : 0, dots = 0, seg = 0;
  if (len == 0 || len > v->max_len) return DMT_JWT_MALFORMED;
  for (size_t i = 0; i < len; i++) {
    char c = token[i];
    if (c == '.') {
      if (seg == 0) return DMT_JWT_MALFORMED;
      if (dots++ == 0) *hdr_len = i;
      seg = 0;
    } else if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_') {
      seg++;
    } else {
      return DMT_JWT_MALFORMED;
    }
  }
  return dots == 2 && seg > 0 ? DMT_JWT_OK : DMT_JWT_MALFORMED;
}

int dmt_jwt_parse_header(const struct dmt_jwt_verifier *v, const char *token, char *kid, size_t kidlen) {
  size_t hlen = 0;
  int rc = shape(v, token, &hlen);
  if (rc != DMT_JWT_OK) return rc;
  if (hlen > MAX_HEADER_SEGMENT) return DMT_JWT_MALFORMED;
  uint8_t raw[DMT_B64URL_DECODED_MAX(MAX_HEADER_SEGMENT)];
  long n = dmt_b64url_decode(token, hlen, raw, sizeof raw);
  json_t *h = n > 0 ? json_loadb((const char *)raw, (size_t)n, JSON_REJECT_DUPLICATES, NULL) : NULL;
  const char *alg = json_string_value(json_object_get(h, "alg"));
  json_t *jkid = json_object_get(h, "kid"), *typ = json_object_get(h, "typ");
  if (!json_is_object(h)) rc = DMT_JWT_MALFORMED;
  else if (!alg || strcmp(alg, "RS256") != 0 || json_object_get(h, "crit")) rc = DMT_JWT_BAD_ALG;
  else if (typ && (!json_is_string(typ) || (strcasecmp(json_string_value(typ), "JWT") != 0 &&
                                            strcasecmp(json_string_value(typ), "at+jwt") != 0)))
    rc = DMT_JWT_MALFORMED;
  else if (jkid && (!json_is_string(jkid) || json_string_length(jkid) >= kidlen)) rc = DMT_JWT_MALFORMED;
  else snprintf(kid, kidlen, "%s", jkid ? json_string_value(jkid) : "");
  json_decref(h);
  return rc;
}

static bool in_list(const struct list *l, const char *s) {
  for (size_t i = 0; s && i < l->n; i++)
    if (strcmp(l->item[i], s) == 0) return true;
  return false;
}

static bool audience_ok(const struct dmt_jwt_verifier *v, const json_t *aud) {
  if (json_is_string(aud)) return in_list(&v->audiences, json_string_value(aud));
  size_t i;
  json_t *a;
  json_array_foreach(aud, i, a) {
    if (in_list(&v->audiences, json_string_value(a))) return true;
  }
  return false;
}

/* Tenant part of `<tenant>_<suffix>` for a suffix in l; 0 when the role is not one of them. */
static size_t role_tenant(const struct list *l, const char *role, size_t rlen) {
  for (size_t i = 0; i < l->n; i++) {
    size_t slen = strlen(l->item[i]);
    if (rlen > slen + 1 && role[rlen - slen - 1] == '_' && memcmp(role + rlen - slen, l->item[i], slen) == 0 &&
        dmt_topic_tenant_valid_n(role, rlen - slen - 1))
      return rlen - slen - 1;
  }
  return 0;
}

static int grant(struct dmt_grants *g, const char *tenant, size_t len, enum dmt_perm perm) {
  for (size_t i = 0; i < g->n; i++) {
    if (strlen(g->v[i].tenant) == len && memcmp(g->v[i].tenant, tenant, len) == 0) {
      if (perm > g->v[i].perm) g->v[i].perm = perm;
      return 0;
    }
  }
  if (g->n == DMT_JWT_MAX_GRANTS) return -1;
  struct dmt_tenant_grant *nv = realloc(g->v, (g->n + 1) * sizeof *nv);
  if (!nv) return -1;
  g->v = nv;
  memcpy(nv[g->n].tenant, tenant, len);
  nv[g->n].tenant[len] = '\0';
  nv[g->n].perm = perm;
  g->n++;
  return 0;
}

/* Grants from one roles array (absent is fine; present must be an array). */
static int map_roles(const struct dmt_jwt_verifier *v, const json_t *roles, struct dmt_grants *g) {
  if (!roles) return 0;
  if (!json_is_array(roles)) return -1;
  size_t i;
  json_t *r;
  json_array_foreach(roles, i, r) {
    const char *role = json_string_value(r);
    if (!role) continue;
    size_t rlen = strlen(role), t;
    if ((t = role_tenant(&v->rw, role, rlen)) && grant(g, role, t, DMT_PERM_READ_WRITE) != 0) return -1;
    if ((t = role_tenant(&v->ro, role, rlen)) && grant(g, role, t, DMT_PERM_READ) != 0) return -1;
  }
  return 0;
}

static bool int_claim(const json_t *claims, const char *name, long long *out, bool *present) {
  json_t *c = json_object_get(claims, name);
  *present = c != NULL;
  if (!c) return true;
  if (!json_is_integer(c)) return false;
  *out = json_integer_value(c);
  return true;
}

static void set_name(struct dmt_identity *id, const char *src) {
  size_t o = 0;
  for (const char *p = src; *p && o < DMT_IDENTITY_NAME_MAX; p++) {
    char c = *p;
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || strchr("._@:+-", c);
    id->name[o++] = ok ? c : '_';
  }
  id->name[o] = '\0';
}

int dmt_jwt_check_claims(const struct dmt_jwt_verifier *v, const json_t *claims, time_t now,
                         struct dmt_identity *out) {
  memset(out, 0, sizeof *out);
  if (!json_is_object(claims)) return DMT_JWT_BAD_CLAIMS;
  const char *iss = json_string_value(json_object_get(claims, "iss"));
  if (!iss || strcmp(iss, v->issuer) != 0) return DMT_JWT_BAD_ISSUER;
  if (!audience_ok(v, json_object_get(claims, "aud"))) return DMT_JWT_BAD_AUDIENCE;
  long long exp = 0, nbf = 0;
  bool has_exp, has_nbf;
  if (!int_claim(claims, "exp", &exp, &has_exp) || !has_exp || !int_claim(claims, "nbf", &nbf, &has_nbf))
    return DMT_JWT_BAD_CLAIMS;
  long long t = (long long)now;
  if (t - v->skew >= exp) return DMT_JWT_EXPIRED;
  if (has_nbf && t + v->skew < nbf) return DMT_JWT_NOT_YET_VALID;
  json_t *typ = json_object_get(claims, "typ");
  if (typ && (!json_is_string(typ) || strcasecmp(json_string_value(typ), "Bearer") != 0)) return DMT_JWT_BAD_CLAIMS;
  const char *who = json_string_value(json_object_get(claims, "preferred_username"));
  if (!who || !*who) who = json_string_value(json_object_get(claims, "sub"));
  if (!who || !*who) return DMT_JWT_BAD_CLAIMS;

  const json_t *realm = json_object_get(claims, "realm_access");
  const json_t *client = v->client ? json_object_get(json_object_get(claims, "resource_access"), v->client) : NULL;
  if (map_roles(v, json_object_get(realm, "roles"), &out->grants) != 0 ||
      map_roles(v, json_object_get(client, "roles"), &out->grants) != 0) {
    dmt_identity_clear(out);
    return DMT_JWT_BAD_CLAIMS;
  }
  if (out->grants.n == 0) {
    dmt_identity_clear(out);
    return DMT_JWT_NO_GRANTS;
  }
  set_name(out, who);
  out->exp = exp;
  return DMT_JWT_OK;
}

int dmt_jwt_verify(const struct dmt_jwt_verifier *v, const struct dmt_jwks *keys, const char *token, time_t now,
                   struct dmt_identity *out) {
  memset(out, 0, sizeof *out);
  char kid[129];
  int rc = dmt_jwt_parse_header(v, token, kid, sizeof kid);
  if (rc != DMT_JWT_OK) return rc;
  size_t pem_len = 0;
  const char *pem = dmt_jwks_find(keys, kid[0] ? kid : NULL, &pem_len);
  if (!pem) return DMT_JWT_UNKNOWN_KEY;
  jwt_t *jwt = NULL;
  if (jwt_decode(&jwt, token, (const unsigned char *)pem, (int)pem_len) != 0 || !jwt) return DMT_JWT_BAD_SIGNATURE;
  if (jwt_get_alg(jwt) != JWT_ALG_RS256) {
    jwt_free(jwt);
    return DMT_JWT_BAD_ALG;
  }
  char *text = jwt_get_grants_json(jwt, NULL);
  jwt_free(jwt);
  json_t *claims = text ? json_loads(text, JSON_REJECT_DUPLICATES, NULL) : NULL;
  free(text);
  rc = claims ? dmt_jwt_check_claims(v, claims, now, out) : DMT_JWT_MALFORMED;
  json_decref(claims);
  return rc;
}
