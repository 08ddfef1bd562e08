/*
 * CIRA login: the device's GUID (from PROTOCOLVERSION), user name and
 * password are checked off the loop against dmt.devices.mps_username and the
 * secret devices/<guid>.MPS_PASSWORD of the device's tenant, with
 * constant-time comparisons. Failures are throttled per source address and
 * per GUID (exponential block after three failures) and each one is an
 * audit event. A refused login gets USERAUTH_FAILURE and the connection is
 * closed, so an attacker cannot retry on the same TLS session.
 */
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dmt/apf.h"
#include "dmt/pg.h"
#include "wsman_client.h"

#define FREE_FAILURES 3
#define FAILURE_WINDOW_MS (10u * 60u * 1000u)
#define MAX_BLOCK_MS (5u * 60u * 1000u)

enum auth_outcome { AUTH_OK, AUTH_UNKNOWN_DEVICE, AUTH_BAD_CREDENTIALS, AUTH_NO_CREDENTIALS, AUTH_ERROR };

struct auth_job {
  struct cira_conn *c;
  struct cira_server *srv;
  char guid[37], username[64], password[64];
  enum auth_outcome outcome;
  char tenant[65], amt_password[64], amt_version[32], mode[8];
  char hostname[64], friendly_name[64], tags[512];
  char error[256];
};

static bool equal_ct(const char *a, const char *b) {
  size_t la = strlen(a), lb = strlen(b);
  char pa[128] = {0}, pb[128] = {0};
  if (la >= sizeof pa || lb >= sizeof pb) return false;
  memcpy(pa, a, la);
  memcpy(pb, b, lb);
  bool same = CRYPTO_memcmp(pa, pb, sizeof pa) == 0 && la == lb;
  OPENSSL_cleanse(pa, sizeof pa);
  OPENSSL_cleanse(pb, sizeof pb);
  return same;
}

static int lookup(PGconn *db, void *arg) {
  struct auth_job *j = arg;
  const char *p[] = {j->guid};
  PGresult *r;
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
  snprintf(j->amt_version, sizeof j->amt_version, "%s", PQgetvalue(r, 0, 2));
  snprintf(j->mode, sizeof j->mode, "%s", PQgetvalue(r, 0, 3));
  snprintf(j->hostname, sizeof j->hostname, "%s", PQgetvalue(r, 0, 4));
  snprintf(j->friendly_name, sizeof j->friendly_name, "%s", PQgetvalue(r, 0, 5));
  snprintf(j->tags, sizeof j->tags, "%s", PQgetvalue(r, 0, 6));
  PQclear(r);
  char path[64];
  snprintf(path, sizeof path, "devices/%s", j->guid);
  json_t *secret = NULL;
  int src = j->srv->secrets ? dmt_secrets_get(j->srv->secrets, db, j->tenant, path, &secret, j->error, sizeof j->error)
                            : DMT_SECRETS_ERROR;
  if (src == DMT_SECRETS_ERROR && PQstatus(db) != CONNECTION_OK) return DMT_PG_CONN_LOST;
  if (src != DMT_SECRETS_OK) {
    j->outcome = src == DMT_SECRETS_NOT_FOUND ? AUTH_NO_CREDENTIALS : AUTH_ERROR;
    return DMT_PG_OK;
  }
  const char *mps = json_string_value(json_object_get(secret, "MPS_PASSWORD"));
  const char *amt = json_string_value(json_object_get(secret, "AMT_PASSWORD"));
  bool pass_ok = mps && equal_ct(j->password, mps);
  if (amt) snprintf(j->amt_password, sizeof j->amt_password, "%s", amt);
  dmt_secrets_wipe(secret);
  j->outcome = (user_ok && pass_ok) ? AUTH_OK : (mps ? AUTH_BAD_CREDENTIALS : AUTH_NO_CREDENTIALS);
  return DMT_PG_OK;
}

static struct auth_throttle *throttle_entry(struct cira_server *s, const char *key, bool create) {
  struct auth_throttle *t = dmt_strmap_get(&s->throttle, key);
  if (!t && create && (t = calloc(1, sizeof *t))) dmt_strmap_put(&s->throttle, key, t, NULL);
  return t;
}

static void throttle_fail(struct cira_server *s, const char *key) {
  struct auth_throttle *t = throttle_entry(s, key, true);
  if (!t) return;
  uint64_t now = dmt_loop_now(s->loop);
  if (now - t->last_failure_ms > FAILURE_WINDOW_MS) t->failures = 0;
  t->failures++;
  t->last_failure_ms = now;
  if (t->failures > FREE_FAILURES) {
    unsigned shift = t->failures - FREE_FAILURES - 1;
    uint64_t block = shift > 20 ? MAX_BLOCK_MS : 1000ull << shift;
    t->blocked_until_ms = now + (block > MAX_BLOCK_MS ? MAX_BLOCK_MS : block);
  }
}

static void keys(const char *peer, const char *guid, char ip_key[80], char guid_key[48]) {
  snprintf(ip_key, 80, "ip:%s", peer);
  snprintf(guid_key, 48, "guid:%s", guid);
}

bool auth_throttled(struct cira_server *s, const char *peer, const char *guid) {
  char ik[80], gk[48];
  keys(peer, guid, ik, gk);
  uint64_t now = dmt_loop_now(s->loop);
  struct auth_throttle *a = throttle_entry(s, ik, false), *b = throttle_entry(s, gk, false);
  return (a && a->blocked_until_ms > now) || (b && b->blocked_until_ms > now);
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

static void refuse(struct cira_conn *c, const char *tenant, const char *why) {
  struct cira_server *s = c->srv;
  char ik[80], gk[48];
  keys(c->peer, c->guid, ik, gk);
  throttle_fail(s, ik);
  throttle_fail(s, gk);
  s->count.auth_failures++;
  char msg[256];
  snprintf(msg, sizeof msg, "CIRA login refused from %s: %s", c->peer, why);
  event_emit(s, tenant, c->guid, "auth_failure", "cira_login", false, NULL, msg, NULL, 0);
  dmt_apf_put_userauth_failure(&c->out, true);
  conn_flush(c);
  conn_close(c, 0, why);
}

static void looked_up(void *arg, int rc) {
  struct auth_job *j = arg;
  struct cira_conn *c = j->c;
  if (c->state == CONN_AUTHENTICATING) {
    if (j->outcome == AUTH_ERROR)
      DMT_ERROR(&c->srv->log, "auth_lookup_failed", "guid=%s error=\"%s\"", c->guid, j->error);
    if (j->outcome != AUTH_OK) {
      refuse(c, j->outcome == AUTH_UNKNOWN_DEVICE ? NULL : j->tenant, outcome_text(j->outcome));
    } else {
      snprintf(c->tenant, sizeof c->tenant, "%s", j->tenant);
      snprintf(c->amt_password, sizeof c->amt_password, "%s", j->amt_password);
      snprintf(c->amt_version, sizeof c->amt_version, "%s", j->amt_version);
      snprintf(c->mode, sizeof c->mode, "%s", j->mode);
      snprintf(c->hostname, sizeof c->hostname, "%s", j->hostname);
      snprintf(c->friendly_name, sizeof c->friendly_name, "%s", j->friendly_name);
      snprintf(c->tags, sizeof c->tags, "%s", j->tags);
      char gk[48], ik[80];
      keys(c->peer, c->guid, ik, gk);
      free(dmt_strmap_del(&c->srv->throttle, gk));
      registry_register(c); /* replaces an older connection of the GUID, then answers SUCCESS */
      if (c->state == CONN_ACTIVE) apf_process(c);
    }
  }
  OPENSSL_cleanse(j, sizeof *j);
  free(j);
  conn_unref(c);
}

void auth_begin(struct cira_conn *c) {
  struct cira_server *s = c->srv;
  if (auth_throttled(s, c->peer, c->guid)) {
    s->count.throttled++;
    refuse(c, NULL, "too many failed logins: throttled");
    OPENSSL_cleanse(c->password, sizeof c->password);
    return;
  }
  struct auth_job *j = calloc(1, sizeof *j);
  if (!j) {
    conn_close(c, DMT_APF_DISC_TEMPORARILY_UNAVAILABLE, "out of memory");
    return;
  }
  conn_ref(c);
  j->c = c;
  j->srv = s;
  memcpy(j->guid, c->guid, sizeof j->guid);
  memcpy(j->username, c->username, sizeof j->username);
  memcpy(j->password, c->password, sizeof j->password);
  OPENSSL_cleanse(c->password, sizeof c->password);
  c->state = CONN_AUTHENTICATING;
  if (dmt_db_submit(s->db, lookup, looked_up, j) != 0) {
    conn_close(c, DMT_APF_DISC_TEMPORARILY_UNAVAILABLE, "database queue full");
    OPENSSL_cleanse(j, sizeof *j);
    free(j);
    conn_unref(c);
  }
}
