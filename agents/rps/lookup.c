/*
 * Everything a job needs from PostgreSQL and the secret store, read in one
 * database-worker job (DMT reads the profile about five times per job,
 * §2.10): the profile (names compared case-insensitively, with lower())
 * with its proxies and secret profiles/<p>, its CIRA config with
 * CIRAConfigs/<c> and the terminator's root (MPSCerts.ROOT_CERTIFICATE, else
 * the config's mps_root_certificate), the domain whose suffix matches the
 * device (§2.2) with certs/<domain>, and the device's record (row +
 * devices/<guid>). The worker may run the function again after a lost
 * connection, so it starts by clearing what a previous run filled.
 *
 * The job's `lk` belongs to the worker between lookup_start and the done
 * callback; the loop does not touch it meanwhile (the job holds a reference).
 */
#include <ctype.h>
#include <openssl/crypto.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dmt/pg.h"
#include "rps.h"

static void free_str(char **s) {
  if (*s) {
    OPENSSL_cleanse(*s, strlen(*s));
    free(*s);
    *s = NULL;
  }
}

void lookup_free(struct rps_lookup *lk) {
  struct rps_profile *p = &lk->profile;
  free_str(&p->amt_password);
  free_str(&p->mebx_password);
  for (size_t i = 0; i < p->ntags; i++) free(p->tags[i]);
  free(p->tags);
  free(p->proxies);
  memset(p, 0, sizeof *p);
  free_str(&lk->cira.mps_password);
  free(lk->cira.root_der_b64);
  memset(&lk->cira, 0, sizeof lk->cira);
  if (lk->domain.p12) OPENSSL_cleanse(lk->domain.p12, lk->domain.p12_len);
  free(lk->domain.p12);
  free_str(&lk->domain.p12_password);
  memset(&lk->domain, 0, sizeof lk->domain);
  free_str(&lk->record.amt_password);
  free_str(&lk->record.mebx_password);
  free_str(&lk->record.mps_password);
  memset(&lk->record, 0, sizeof lk->record);
}

static char *dup_field(json_t *o, const char *key) {
  const char *v = json_string_value(json_object_get(o, key));
  return v ? strdup(v) : NULL;
}

/* Reads a secret; 1 found, 0 absent (or unaddressable), -1 store error, -2 connection lost. */
static int secret(struct rps *s, PGconn *db, const char *tenant, const char *path, json_t **out, char *err,
                  size_t errlen) {
  *out = NULL;
  if (!s->secrets) {
    snprintf(err, errlen, "no secret store");
    return -1;
  }
  int rc = dmt_secrets_get(s->secrets, db, tenant, path, out, err, errlen);
  if (rc == DMT_SECRETS_OK) return 1;
  if (rc == DMT_SECRETS_NOT_FOUND || rc == DMT_SECRETS_BAD_INPUT) return 0;
  if (PQstatus(db) != CONNECTION_OK) return -2;
  return -1;
}

static int bool_col(PGresult *r, int col) {
  if (PQgetisnull(r, 0, col)) return -1;
  return PQgetvalue(r, 0, col)[0] == 't';
}

static void split_tags(struct rps_profile *p, const char *joined) {
  if (!joined || !*joined) return;
  size_t n = 1;
  for (const char *q = joined; *q; q++) n += *q == 0x1f;
  p->tags = calloc(n, sizeof *p->tags);
  if (!p->tags) return;
  const char *q = joined;
  for (;;) {
    const char *e = strchr(q, 0x1f);
    size_t len = e ? (size_t)(e - q) : strlen(q);
    p->tags[p->ntags] = strndup(q, len);
    if (p->tags[p->ntags]) p->ntags++;
    if (!e) break;
    q = e + 1;
  }
}

/* PEM or bare base64 DER -> bare base64 DER (what AddTrustedRootCertificate takes). */
static char *root_der_b64(const char *text) {
  if (!text || !*text) return NULL;
  if (!strstr(text, "-----BEGIN")) {
    char *out = malloc(strlen(text) + 1), *w = out;
    if (!out) return NULL;
    for (const char *p = text; *p; p++)
      if (!isspace((unsigned char)*p)) *w++ = *p;
    *w = '\0';
    return out;
  }
  BIO *b = BIO_new_mem_buf(text, -1);
  X509 *x = b ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;
  BIO_free(b);
  if (!x) return NULL;
  unsigned char *der = NULL;
  int n = i2d_X509(x, &der);
  X509_free(x);
  char *out = n > 0 ? rps_b64_encode(der, (size_t)n) : NULL;
  OPENSSL_free(der);
  return out;
}

#define SQL_FAIL(code)                                               \
  do {                                                               \
    lk->rc = -1;                                                     \
    return (code) == DMT_PG_CONN_LOST ? DMT_PG_CONN_LOST : DMT_PG_OK; \
  } while (0)

static int load_profile(struct rps *s, PGconn *db, struct rps_lookup *lk) {
  struct rps_profile *p = &lk->profile;
  const char *params[] = {lk->tenant, lk->profile_name};
  PGresult *r = NULL;
  int rc = dmt_pg_exec(
      db,
      "SELECT profile_name, activation, generate_random_password, generate_random_mebx_password, "
      "coalesce(cira_config_name, ''), array_to_string(tags, chr(31)), dhcp_enabled, ip_sync_enabled, "
      "coalesce(user_consent, ''), ider_enabled, kvm_enabled, sol_enabled, coalesce(tls_mode, -1), "
      "coalesce(ieee8021x_profile_name, ''), (SELECT count(*) FROM dmt.profiles_wirelessconfigs w "
      "WHERE w.tenant_id = p.tenant_id AND w.profile_name = p.profile_name) "
      "FROM dmt.profiles p WHERE tenant_id = $1 AND lower(profile_name) = lower($2)",
      2, params, &r, lk->err, sizeof lk->err);
  if (rc != DMT_PG_OK) SQL_FAIL(rc);
  if (PQntuples(r) == 0) {
    PQclear(r);
    return DMT_PG_OK;
  }
  p->found = true;
  snprintf(p->name, sizeof p->name, "%s", PQgetvalue(r, 0, 0));
  snprintf(p->activation, sizeof p->activation, "%s", PQgetvalue(r, 0, 1));
  p->random_amt = bool_col(r, 2) == 1;
  p->random_mebx = bool_col(r, 3) == 1;
  snprintf(p->cira_name, sizeof p->cira_name, "%s", PQgetvalue(r, 0, 4));
  split_tags(p, PQgetisnull(r, 0, 5) ? NULL : PQgetvalue(r, 0, 5));
  p->dhcp = bool_col(r, 6);
  p->ip_sync = bool_col(r, 7);
  snprintf(p->user_consent, sizeof p->user_consent, "%s", PQgetvalue(r, 0, 8));
  p->ider = bool_col(r, 9);
  p->kvm = bool_col(r, 10);
  p->sol = bool_col(r, 11);
  p->tls_mode = atoi(PQgetvalue(r, 0, 12));
  snprintf(p->ieee8021x, sizeof p->ieee8021x, "%s", PQgetvalue(r, 0, 13));
  p->nwifi = (size_t)atol(PQgetvalue(r, 0, 14));
  PQclear(r);
  const char *pp[] = {lk->tenant, p->name};
  rc = dmt_pg_exec(db,
                   "SELECT c.address, c.info_format, c.port, coalesce(c.network_dns_suffix, '') "
                   "FROM dmt.profiles_proxyconfigs l JOIN dmt.proxyconfigs c ON c.tenant_id = l.tenant_id AND "
                   "c.proxy_config_name = l.proxy_config_name WHERE l.tenant_id = $1 AND l.profile_name = $2 "
                   "ORDER BY l.priority",
                   2, pp, &r, lk->err, sizeof lk->err);
  if (rc != DMT_PG_OK) SQL_FAIL(rc);
  int n = PQntuples(r);
  if (n > 0 && (p->proxies = calloc((size_t)n, sizeof *p->proxies))) {
    for (int i = 0; i < n; i++) {
      struct rps_proxy *x = &p->proxies[p->nproxies++];
      snprintf(x->address, sizeof x->address, "%s", PQgetvalue(r, i, 0));
      x->info_format = atoi(PQgetvalue(r, i, 1));
      x->port = atoi(PQgetvalue(r, i, 2));
      snprintf(x->dns_suffix, sizeof x->dns_suffix, "%s", PQgetvalue(r, i, 3));
    }
  }
  PQclear(r);
  char path[300];
  json_t *o;
  snprintf(path, sizeof path, "profiles/%s", p->name);
  int src = secret(s, db, lk->tenant, path, &o, lk->err, sizeof lk->err);
  if (src == -2) return DMT_PG_CONN_LOST;
  if (src < 0) SQL_FAIL(DMT_PG_ERROR);
  if (src == 1) {
    p->amt_password = dup_field(o, "AMT_PASSWORD");
    p->mebx_password = dup_field(o, "MEBX_PASSWORD");
    dmt_secrets_wipe(o);
  }
  return DMT_PG_OK;
}

static int load_cira(struct rps *s, PGconn *db, struct rps_lookup *lk) {
  struct rps_cira *c = &lk->cira;
  const char *params[] = {lk->tenant, lk->profile.cira_name};
  PGresult *r = NULL;
  int rc = dmt_pg_exec(db,
                       "SELECT cira_config_name, coalesce(mps_server_address, ''), coalesce(mps_port, 4433), "
                       "coalesce(user_name, ''), coalesce(common_name, ''), coalesce(server_address_format, 201), "
                       "coalesce(auth_method, 2), coalesce(mps_root_certificate, '') FROM dmt.ciraconfigs "
                       "WHERE tenant_id = $1 AND lower(cira_config_name) = lower($2)",
                       2, params, &r, lk->err, sizeof lk->err);
  if (rc != DMT_PG_OK) SQL_FAIL(rc);
  if (PQntuples(r) == 0) {
    PQclear(r);
    return DMT_PG_OK;
  }
  c->found = true;
  snprintf(c->name, sizeof c->name, "%s", PQgetvalue(r, 0, 0));
  snprintf(c->address, sizeof c->address, "%s", PQgetvalue(r, 0, 1));
  c->port = atoi(PQgetvalue(r, 0, 2));
  snprintf(c->username, sizeof c->username, "%s", PQgetvalue(r, 0, 3));
  snprintf(c->common_name, sizeof c->common_name, "%s", PQgetvalue(r, 0, 4));
  c->format = atoi(PQgetvalue(r, 0, 5));
  c->auth_method = atoi(PQgetvalue(r, 0, 6));
  char *config_root = strdup(PQgetvalue(r, 0, 7));
  PQclear(r);
  char path[300];
  json_t *o;
  snprintf(path, sizeof path, "CIRAConfigs/%s", c->name);
  int src = secret(s, db, lk->tenant, path, &o, lk->err, sizeof lk->err);
  if (src == 1) {
    const char *pw = json_string_value(json_object_get(o, "MPS_PASSWORD"));
    if (pw && *pw) c->mps_password = strdup(pw);
    dmt_secrets_wipe(o);
  }
  if (src >= 0) src = secret(s, db, "", "MPSCerts", &o, lk->err, sizeof lk->err);
  if (src == 1) {
    c->root_der_b64 = root_der_b64(json_string_value(json_object_get(o, "ROOT_CERTIFICATE")));
    dmt_secrets_wipe(o);
  }
  if (src >= 0 && !c->root_der_b64) c->root_der_b64 = root_der_b64(config_root);
  free(config_root);
  if (src == -2) return DMT_PG_CONN_LOST;
  if (src < 0) SQL_FAIL(DMT_PG_ERROR);
  return DMT_PG_OK;
}

/* {"a","b"} as a PostgreSQL text[] literal, quoting every element. */
static void array_literal(char cands[][256], size_t n, char *out, size_t outlen) {
  size_t w = 0;
  out[w++] = '{';
  for (size_t i = 0; i < n && w + 4 < outlen; i++) {
    if (i) out[w++] = ',';
    out[w++] = '"';
    for (const char *p = cands[i]; *p && w + 4 < outlen; p++) {
      if (*p == '"' || *p == '\\') out[w++] = '\\';
      out[w++] = *p;
    }
    out[w++] = '"';
  }
  out[w++] = '}';
  out[w] = '\0';
}

static int load_domain(struct rps *s, PGconn *db, struct rps_lookup *lk) {
  struct rps_domain *d = &lk->domain;
  char cands[16][256], lit[16 * 260 + 8];
  size_t n = rps_suffix_candidates(lk->fqdn, cands, 16);
  if (n == 0) return DMT_PG_OK;
  array_literal(cands, n, lit, sizeof lit);
  const char *params[] = {lk->tenant, lit};
  PGresult *r = NULL;
  /* the longest matching suffix wins, as DMT tries them longest first */
  int rc = dmt_pg_exec(db,
                       "SELECT name, domain_suffix FROM dmt.domains WHERE tenant_id = $1 AND "
                       "lower(domain_suffix) = ANY (SELECT lower(x) FROM unnest($2::text[]) x) "
                       "ORDER BY length(domain_suffix) DESC LIMIT 1",
                       2, params, &r, lk->err, sizeof lk->err);
  if (rc != DMT_PG_OK) SQL_FAIL(rc);
  if (PQntuples(r) == 0) {
    PQclear(r);
    return DMT_PG_OK;
  }
  d->found = true;
  snprintf(d->name, sizeof d->name, "%s", PQgetvalue(r, 0, 0));
  snprintf(d->suffix, sizeof d->suffix, "%s", PQgetvalue(r, 0, 1));
  PQclear(r);
  char path[300];
  json_t *o;
  snprintf(path, sizeof path, "certs/%s", d->name);
  int src = secret(s, db, lk->tenant, path, &o, lk->err, sizeof lk->err);
  if (src == -2) return DMT_PG_CONN_LOST;
  if (src < 0) SQL_FAIL(DMT_PG_ERROR);
  if (src == 1) {
    const char *cert = json_string_value(json_object_get(o, "CERT"));
    if (cert && rps_b64_decode(cert, strlen(cert), &d->p12, &d->p12_len) != 0) d->p12 = NULL;
    d->p12_password = dup_field(o, "CERT_PASSWORD");
    dmt_secrets_wipe(o);
  }
  return DMT_PG_OK;
}

static int load_record(struct rps *s, PGconn *db, struct rps_lookup *lk) {
  struct rps_record *rec = &lk->record;
  const char *params[] = {lk->guid};
  PGresult *r = NULL;
  int rc = dmt_pg_exec(db, "SELECT tenant_id, coalesce(mps_username, '') FROM dmt.devices WHERE guid = $1::uuid", 1,
                       params, &r, lk->err, sizeof lk->err);
  if (rc != DMT_PG_OK) SQL_FAIL(rc);
  if (PQntuples(r) > 0) {
    rec->exists = true;
    snprintf(rec->tenant, sizeof rec->tenant, "%s", PQgetvalue(r, 0, 0));
    snprintf(rec->mps_username, sizeof rec->mps_username, "%s", PQgetvalue(r, 0, 1));
  }
  PQclear(r);
  char path[64];
  json_t *o;
  snprintf(path, sizeof path, "devices/%s", lk->guid);
  int src = secret(s, db, rec->exists ? rec->tenant : lk->tenant, path, &o, lk->err, sizeof lk->err);
  if (src == -2) return DMT_PG_CONN_LOST;
  if (src < 0) SQL_FAIL(DMT_PG_ERROR);
  if (src == 1) {
    rec->has_secret = true;
    rec->amt_password = dup_field(o, "AMT_PASSWORD");
    rec->mebx_password = dup_field(o, "MEBX_PASSWORD");
    rec->mps_password = dup_field(o, "MPS_PASSWORD");
    dmt_secrets_wipe(o);
  }
  return DMT_PG_OK;
}

struct lookup_req {
  struct rps_job *j;
  void (*done)(struct rps_job *j);
  uint64_t t0;
};

static int lookup_work(PGconn *db, void *arg) {
  struct lookup_req *q = arg;
  struct rps *s = q->j->srv;
  struct rps_lookup *lk = &q->j->lk;
  /* a retry after a lost connection starts over */
  struct rps_lookup keep = *lk;
  memset(&keep.profile, 0, sizeof keep.profile);
  memset(&keep.cira, 0, sizeof keep.cira);
  memset(&keep.domain, 0, sizeof keep.domain);
  memset(&keep.record, 0, sizeof keep.record);
  lookup_free(lk);
  *lk = keep;
  lk->rc = 0;
  lk->err[0] = '\0';
  int rc = DMT_PG_OK;
  if (lk->want_profile) rc = load_profile(s, db, lk);
  if (rc == DMT_PG_OK && lk->rc == 0 && lk->profile.found && lk->profile.cira_name[0]) rc = load_cira(s, db, lk);
  if (rc == DMT_PG_OK && lk->rc == 0 && lk->want_domain && lk->profile.found &&
      !strcmp(lk->profile.activation, "acmactivate"))
    rc = load_domain(s, db, lk);
  if (rc == DMT_PG_OK && lk->rc == 0 && lk->want_record) rc = load_record(s, db, lk);
  return rc;
}

static void lookup_done_cb(void *arg, int rc) {
  struct lookup_req *q = arg;
  struct rps_job *j = q->j;
  j->t_db += rps_now_us() - q->t0;
  if (rc != DMT_PG_OK && j->lk.rc == 0) {
    j->lk.rc = -1;
    snprintf(j->lk.err, sizeof j->lk.err, "database unavailable");
  }
  if (j->lk.rc != 0) DMT_WARN(&j->srv->log, "lookup_failed", "job=%s guid=%s error=\"%s\"", j->id, j->guid, j->lk.err);
  void (*done)(struct rps_job *) = q->done;
  free(q);
  done(j);
}

int lookup_start(struct rps_job *j, void (*done)(struct rps_job *j)) {
  struct lookup_req *q = calloc(1, sizeof *q);
  if (!q) return -1;
  q->j = j;
  q->done = done;
  q->t0 = rps_now_us();
  if (dmt_db_submit(j->srv->db, lookup_work, lookup_done_cb, q) != 0) {
    free(q);
    return -1;
  }
  return 0;
}
