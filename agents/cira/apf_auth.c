/*
 * CIRA login (mps-cira.md §4.4, §8.2-8.3). The device's GUID (from
 * PROTOCOLVERSION), user name and password are checked off the loop, in a
 * database job: the dmt.devices row of that GUID (GUIDs are globally unique,
 * so the row names the device's tenant) must exist and its mps_username
 * match, and the password must equal devices/<guid>.MPS_PASSWORD read from
 * the secret store under that tenant. RPS writes a random password per
 * device by default; a CIRA configuration with a stored password makes RPS
 * write that shared one instead, and nothing else accepts it. Comparisons
 * are constant-time (SHA-256 of both sides, compared with CRYPTO_memcmp, so
 * lengths do not leak either). Failures are throttled per GUID (strict: a
 * few guesses per device) and per source (lenient enough that one broken
 * device behind a site's NAT does not lock out its neighbours, strict
 * enough to stop spraying many GUIDs), see limiter.c, and each one is an
 * auth_failure audit event. A refused
 * login gets USERAUTH_FAILURE and DISCONNECT: no retry on the same session.
 */
#include <ctype.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cira.h"
#include "dmt/pg.h"

#define MAX_CREDENTIAL 64 /* AMT allows 16; anything near this is refused unseen */

enum auth_outcome { AUTH_OK, AUTH_UNKNOWN_DEVICE, AUTH_BAD_CREDENTIALS, AUTH_NO_CREDENTIALS, AUTH_ERROR };

struct auth_job {
  struct cira_conn *c;
  struct cira_server *srv;
  char guid[37], username[MAX_CREDENTIAL], password[MAX_CREDENTIAL];
  enum auth_outcome outcome;
  struct cira_device *dev; /* filled on success */
  char tenant[65];
  char error[256];
};

static void digest(const char *s, unsigned char out[32]) {
  unsigned int n = 0;
  EVP_Digest(s, strlen(s), out, &n, EVP_sha256(), NULL);
}

/* Constant-time in the content and in the lengths of both strings. */
static bool equal_ct(const char *a, const char *b) {
  unsigned char da[32], db[32];
  digest(a, da);
  digest(b, db);
  bool same = CRYPTO_memcmp(da, db, sizeof da) == 0;
  OPENSSL_cleanse(da, sizeof da);
  OPENSSL_cleanse(db, sizeof db);
  return same;
}

/* RPS stores currentMode as text ("ACM", "ccm") or DMT's numbers (1 CCM, 2 ACM); state says acm/ccm/pre. */
static void normalise_mode(const char *in, char out[8]) {
  char low[16] = "";
  for (size_t i = 0; in[i] && i < sizeof low - 1; i++) low[i] = (char)tolower((unsigned char)in[i]);
  const char *m = !strcmp(low, "acm") || !strcmp(low, "2") || strstr(low, "admin") ? "acm"
                  : !strcmp(low, "ccm") || !strcmp(low, "1") || strstr(low, "client") ? "ccm"
                  : !strcmp(low, "pre") || !strcmp(low, "0")                       ? "pre"
                                                                                   : "";
  snprintf(out, 8, "%s", m);
}

static char *dup_nonempty(const char *s) { return *s ? strdup(s) : NULL; }

static int lookup(PGconn *db, void *arg) {
  struct auth_job *j = arg;
  const char *p[] = {j->guid};
  PGresult *r;
  /* Keyed by the GUID alone: it is unique across tenants and its row is what names the tenant. */
  int rc = dmt_pg_exec(db,
                       "SELECT tenant_id, coalesce(mps_username, ''), coalesce(device_info->>'fwVersion', ''), "
                       "coalesce(device_info->>'currentMode', ''), coalesce(hostname, ''), "
                       "coalesce(friendly_name, ''), array_to_string(tags, chr(31)) FROM dmt.devices WHERE guid = $1",
                       1, p, &r, j->error, sizeof j->error);
  if (rc != DMT_PG_OK) {
    j->outcome = AUTH_ERROR;
    return rc;
  }
  if (PQntuples(r) == 0) {
    j->outcome = AUTH_UNKNOWN_DEVICE;
    PQclear(r);
    return DMT_PG_OK;
  }
  snprintf(j->tenant, sizeof j->tenant, "%s", PQgetvalue(r, 0, 0));
  bool user_ok = equal_ct(j->username, PQgetvalue(r, 0, 1));
  struct cira_device *d = calloc(1, sizeof *d);
  if (!d) {
    PQclear(r);
    j->outcome = AUTH_ERROR;
    snprintf(j->error, sizeof j->error, "out of memory");
    return DMT_PG_OK;
  }
  snprintf(d->tenant, sizeof d->tenant, "%s", j->tenant);
  snprintf(d->amt_version, sizeof d->amt_version, "%s", PQgetvalue(r, 0, 2));
  normalise_mode(PQgetvalue(r, 0, 3), d->mode);
  d->hostname = dup_nonempty(PQgetvalue(r, 0, 4));
  d->friendly_name = dup_nonempty(PQgetvalue(r, 0, 5));
  d->tags = dup_nonempty(PQgetvalue(r, 0, 6));
  PQclear(r);
  char path[64];
  snprintf(path, sizeof path, "devices/%s", j->guid);
  json_t *secret = NULL;
  int src = j->srv->secrets ? dmt_secrets_get(j->srv->secrets, db, j->tenant, path, &secret, j->error, sizeof j->error)
                            : DMT_SECRETS_ERROR;
  if (src == DMT_SECRETS_ERROR && PQstatus(db) != CONNECTION_OK) {
    device_free(d);
    return DMT_PG_CONN_LOST; /* retried once the database is back */
  }
  if (src != DMT_SECRETS_OK) {
    device_free(d);
    j->outcome = src == DMT_SECRETS_NOT_FOUND ? AUTH_NO_CREDENTIALS : AUTH_ERROR;
    return DMT_PG_OK;
  }
  const char *mps = json_string_value(json_object_get(secret, "MPS_PASSWORD"));
  const char *amt = json_string_value(json_object_get(secret, "AMT_PASSWORD"));
  bool have_mps = mps && *mps, pass_ok = have_mps && equal_ct(j->password, mps);
  if (amt) snprintf(d->amt_password, sizeof d->amt_password, "%s", amt);
  dmt_secrets_wipe(secret); /* mps and amt point into it: not used below */
  if (user_ok && pass_ok) {
    j->outcome = AUTH_OK;
    j->dev = d;
  } else {
    j->outcome = have_mps ? AUTH_BAD_CREDENTIALS : AUTH_NO_CREDENTIALS;
    device_free(d);
  }
  return DMT_PG_OK;
}

static const char *outcome_text(enum auth_outcome o) {
  switch (o) {
    case AUTH_UNKNOWN_DEVICE: return "unknown device";
    case AUTH_BAD_CREDENTIALS: return "wrong user name or password";
    case AUTH_NO_CREDENTIALS: return "no CIRA credentials stored for the device";
    case AUTH_ERROR: return "credential lookup failed";
    default: return "ok";
  }
}

/* Refuses the login: audit event, throttling (unless it was our own failure), FAILURE + DISCONNECT. */
static void refuse(struct cira_conn *c, const char *tenant, const char *username, const char *why, bool count) {
  struct cira_server *s = c->srv;
  uint64_t block = 0;
  if (count) {
    char sk[LIMITER_KEY_LEN], gk[LIMITER_KEY_LEN];
    uint64_t now = dmt_loop_now(s->loop);
    limiter_source_key(c->peer, sk);
    limiter_guid_key(c->guid, gk);
    uint64_t b1 = limiter_fail(&s->by_source, sk, now), b2 = limiter_fail(&s->by_guid, gk, now);
    block = b1 > b2 ? b1 : b2;
  }
  s->count.auth_failures++;
  msgpack_sbuffer sb;
  msgpack_sbuffer_init(&sb);
  msgpack_packer pk;
  msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
  msgpack_pack_map(&pk, 4);
  shape_str(&pk, "peer");
  shape_str(&pk, c->peer);
  shape_str(&pk, "reason");
  shape_str(&pk, why);
  shape_str(&pk, "username");
  shape_str(&pk, username ? username : "");
  shape_str(&pk, "blocked_ms");
  msgpack_pack_uint64(&pk, block);
  char msg[256];
  snprintf(msg, sizeof msg, "CIRA login refused from %s: %s", c->peer, why);
  event_emit(s, tenant, c->guid, "auth_failure", "cira_login", false, NULL, msg, sb.data, sb.size);
  msgpack_sbuffer_destroy(&sb);
  char q[96];
  DMT_WARN(&s->log, "cira_login_refused", "peer=%s guid=%s user=%s reason=\"%s\" blocked_ms=%llu", c->peer, c->guid,
           dmt_log_kv_quote(username ? username : "", q, sizeof q), why, (unsigned long long)block);
  dmt_apf_put_userauth_failure(&c->out, true);
  conn_close(c, count ? DMT_APF_DISC_INVALID_CREDENTIALS : DMT_APF_DISC_TEMPORARILY_UNAVAILABLE, why);
}

static void job_free(struct auth_job *j) {
  device_free(j->dev);
  OPENSSL_cleanse(j, sizeof *j);
  free(j);
}

static void looked_up(void *arg, int rc) {
  struct auth_job *j = arg;
  struct cira_conn *c = j->c;
  if (c->state == CONN_AUTHENTICATING) {
    if (rc != DMT_PG_OK && j->outcome == AUTH_OK) j->outcome = AUTH_ERROR; /* job abandoned (shutdown) */
    if (j->outcome == AUTH_ERROR)
      DMT_ERROR(&c->srv->log, "auth_lookup_failed", "guid=%s error=\"%s\"", c->guid, j->error);
    if (j->outcome != AUTH_OK) {
      refuse(c, j->outcome == AUTH_UNKNOWN_DEVICE ? NULL : j->tenant, j->username, outcome_text(j->outcome),
             j->outcome != AUTH_ERROR);
    } else {
      char gk[LIMITER_KEY_LEN];
      limiter_guid_key(c->guid, gk);
      limiter_reset(&c->srv->by_guid, gk);
      c->dev = j->dev;
      j->dev = NULL;
      registry_register(c); /* replaces an older connection of the GUID, then answers SUCCESS */
      if (c->state == CONN_ACTIVE) apf_process(c); /* input that arrived during the lookup */
    }
  }
  job_free(j);
  conn_unref(c);
}

static bool copy_credential(char *dst, const struct dmt_apf_str *s) {
  if (s->len >= MAX_CREDENTIAL || memchr(s->p, 0, s->len)) return false;
  memcpy(dst, s->p, s->len);
  dst[s->len] = '\0';
  return true;
}

void auth_begin(struct cira_conn *c, const struct dmt_apf_str *user, const struct dmt_apf_str *password) {
  struct cira_server *s = c->srv;
  char sk[LIMITER_KEY_LEN], gk[LIMITER_KEY_LEN], shown[MAX_CREDENTIAL] = "";
  limiter_source_key(c->peer, sk);
  limiter_guid_key(c->guid, gk);
  copy_credential(shown, user);
  uint64_t now = dmt_loop_now(s->loop);
  if (limiter_blocked_for(&s->by_source, sk, now) || limiter_blocked_for(&s->by_guid, gk, now)) {
    s->count.throttled++;
    refuse(c, NULL, shown, "too many failed logins: throttled", false);
    return;
  }
  struct auth_job *j = calloc(1, sizeof *j);
  if (!j) {
    conn_close(c, DMT_APF_DISC_TEMPORARILY_UNAVAILABLE, "out of memory");
    return;
  }
  if (!copy_credential(j->username, user) || !copy_credential(j->password, password)) {
    job_free(j);
    refuse(c, NULL, shown, "credentials longer than any AMT allows", true);
    return;
  }
  conn_ref(c);
  j->c = c;
  j->srv = s;
  memcpy(j->guid, c->guid, sizeof j->guid);
  c->state = CONN_AUTHENTICATING;
  if (dmt_db_submit(s->db, lookup, looked_up, j) != 0) {
    job_free(j);
    conn_close(c, DMT_APF_DISC_TEMPORARILY_UNAVAILABLE, "database queue full");
    conn_unref(c);
  }
}
