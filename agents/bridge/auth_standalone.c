/*
 * DMT-standalone authentication: what DMT's MPS does on its own, for drop-in
 * use and the conformance suites. POST /api/v1/authorize checks the
 * configured admin user (MPS_WEB_ADMIN_USER / MPS_WEB_ADMIN_PASSWORD) and
 * issues DMT's HS256 token {tenantId, iss, deviceId:"*", exp};
 * GET /api/v1/authorize/redirection/:guid issues a device-scoped one.
 *
 * Like MPS, REST routes do not verify tokens by default (DMT leaves that to
 * Kong); bridge.standalone_verify_tokens=true makes every non-public route
 * require a valid /authorize token (signature, issuer, expiry) and takes the
 * tenant from its tenantId claim. Otherwise the tenant is DMT's default ""
 * (or the value of a configured header, as a DMT custom middleware would do).
 */
#include <jwt.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "bridge.h"

char *br_sign_token(const struct br_auth *a, const char *device_id, const char *tenant, long minutes) {
  jwt_t *j = NULL;
  if (jwt_new(&j) != 0) return NULL;
  char *out = NULL;
  if (jwt_add_grant(j, "tenantId", tenant ? tenant : "") == 0 && jwt_add_grant(j, "iss", a->jwt_issuer) == 0 &&
      jwt_add_grant(j, "deviceId", device_id) == 0 &&
      jwt_add_grant_int(j, "exp", (long)time(NULL) + minutes * 60) == 0 &&
      jwt_set_alg(j, JWT_ALG_HS256, (const unsigned char *)a->jwt_secret, (int)strlen(a->jwt_secret)) == 0)
    out = jwt_encode_str(j);
  jwt_free(j);
  return out;
}

static bool verify_token(const struct br_auth *a, const char *token, char tenant[BR_TENANT_MAX + 1]) {
  jwt_t *j = NULL;
  if (jwt_decode(&j, token, (const unsigned char *)a->jwt_secret, (int)strlen(a->jwt_secret)) != 0) return false;
  bool ok = jwt_get_alg(j) == JWT_ALG_HS256;
  const char *iss = jwt_get_grant(j, "iss");
  long exp = jwt_get_grant_int(j, "exp");
  ok = ok && iss && !strcmp(iss, a->jwt_issuer) && exp > (long)time(NULL);
  const char *t = jwt_get_grant(j, "tenantId");
  if (ok) snprintf(tenant, BR_TENANT_MAX + 1, "%s", t ? t : "");
  ok = ok && (!tenant[0] || br_fmt_tenant(tenant));
  jwt_free(j);
  return ok;
}

static const char *bearer(const char *h) {
  if (!h || strncasecmp(h, "Bearer ", 7) != 0) return NULL;
  h += 7;
  while (*h == ' ') h++;
  return *h ? h : NULL;
}

bool br_auth_standalone(struct br_txn *t) {
  const struct br_auth *a = &t->srv->auth;
  t->who.perms = BR_PERM_READ | BR_PERM_WRITE;
  t->who.tenant[0] = '\0';
  snprintf(t->who.subject, sizeof t->who.subject, "standalone");
  if (a->verify_tokens) {
    const char *tok = bearer(t->req.authorization);
    if (!tok || !verify_token(a, tok, t->who.tenant)) {
      br_out_message(&t->out, 401, "Unauthorized");
      return false;
    }
    snprintf(t->who.subject, sizeof t->who.subject, "%s", a->admin_user ? a->admin_user : "standalone");
    return true;
  }
  if (a->tenant_header && t->req.project_id && *t->req.project_id) {
    if (!br_fmt_tenant(t->req.project_id)) {
      br_out_error(&t->out, 400, "Incorrect URI or Bad Request", "invalid tenant");
      return false;
    }
    snprintf(t->who.tenant, sizeof t->who.tenant, "%s", t->req.project_id);
  }
  return true;
}

bool br_authenticate(struct br_txn *t) {
  return t->srv->auth.mode == BR_AUTH_EMF ? br_auth_emf(t) : br_auth_standalone(t);
}

/* ------------------------------------------------------------ /api/v1/authorize */

BR_CHAIN(login_chain,
         V_FIELD("username", BR_REQUIRED, V_STRING(NULL), V_NOT_EMPTY("User name is required")),
         V_FIELD("password", BR_REQUIRED, V_NOT_EMPTY("Password is required"), V_STRING(NULL)));

static void login(struct br_txn *t) {
  const struct br_auth *a = &t->srv->auth;
  if (a->mode == BR_AUTH_EMF || !a->web_auth_enabled) {
    json_t *j = json_pack("{s:s}", "message", "Authentication disabled on MPS");
    br_respond_json(t, 405, j);
    return;
  }
  const char *user = json_string_value(json_object_get(t->body, "username"));
  const char *pass = json_string_value(json_object_get(t->body, "password"));
  bool ok = a->admin_user && a->admin_password && user && pass && !strcasecmp(user, a->admin_user) &&
            strlen(pass) == strlen(a->admin_password) &&
            CRYPTO_memcmp(pass, a->admin_password, strlen(pass)) == 0;
  if (!ok) {
    br_respond_json(t, 401, json_pack("{s:s}", "message", "Incorrect Username and/or Password!"));
    return;
  }
  char *tok = br_sign_token(a, "*", "", a->jwt_expiration_min);
  if (!tok) {
    br_out_empty(&t->out, 500);
    br_send(t);
    return;
  }
  br_respond_json(t, 200, json_pack("{s:s}", "token", tok));
  free(tok);
}

BR_CHAIN(redirection_chain, V_FIELD_AT(BR_LOC_PARAMS, "guid", BR_REQUIRED, V_UUID(NULL)));

static int redirection_work(PGconn *c, struct br_txn *t, struct br_out *o) {
  const struct br_auth *a = &t->srv->auth;
  /* DMT looks the device up in every tenant; in EMF mode we only see the caller's. */
  const char *p[] = {br_param(t, 0), t->who.tenant};
  PGresult *r = a->mode == BR_AUTH_EMF
                    ? br_sql(c, o, "SELECT 1 FROM dmt.devices WHERE guid = $1::uuid AND tenant_id = $2", 2, p)
                    : br_sql(c, o, "SELECT 1 FROM dmt.devices WHERE guid = $1::uuid", 1, p);
  if (!r) {
    br_out_empty(o, 500);
    return 0;
  }
  bool found = PQntuples(r) > 0;
  PQclear(r);
  if (!found) {
    br_out_empty(o, 404);
    return 0;
  }
  char *tok = br_sign_token(a, br_param(t, 0), t->who.tenant, a->redirection_expiration_min);
  if (!tok) {
    br_out_empty(o, 500);
    return 0;
  }
  br_out_json(o, 200, json_pack("{s:s}", "token", tok));
  free(tok);
  return 0;
}

static void redirection(struct br_txn *t) { br_db_run(t, redirection_work); }

static const struct br_route routes[] = {
    {.methods = BR_M_POST, .pattern = "/api/v1/authorize", .handler = login, .chain = &login_chain, .flags = BR_RF_PUBLIC},
    {.methods = BR_M_GET, .pattern = "/api/v1/authorize/redirection/:guid", .handler = redirection, .chain = &redirection_chain, .flags = 0},
};

const struct br_route_table br_routes_auth = {routes, sizeof routes / sizeof routes[0]};
