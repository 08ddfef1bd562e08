/* Fixtures for the RPS agent's tests (see rps_fixture.h). */
#include "rps_fixture.h"

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/pkcs12.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dmt/evloop.h"
#include "dmt/mptree.h"
#include "dmt/mqtt.h"
#include "dmt/payloads.h"
#include "dmt/pg.h"
#include "dmt/secrets.h"
#include "dmt/tls.h"
#include "harness.h"

static struct dmt_secrets *open_secrets(struct rps_world *w) {
  struct dmt_secrets_config sc = {.backend = "embedded", .key = w->key, .key_id = "test"};
  char err[256];
  return dmt_secrets_open(&sc, err, sizeof err);
}

static PGconn *conn(struct rps_world *w) {
  char err[256];
  PGconn *c = dmt_pg_connect(w->dsn, err, sizeof err);
  if (!c) fprintf(stderr, "rps fixture: %s\n", err);
  return c;
}

static int exec(PGconn *c, const char *sql, int n, const char *const *p) {
  char err[512];
  int rc = dmt_pg_exec(c, sql, n, p, NULL, err, sizeof err);
  if (rc != DMT_PG_OK) fprintf(stderr, "rps fixture: %s: %s\n", sql, err);
  return rc;
}

static int put_secret(struct rps_world *w, PGconn *c, const char *tenant, const char *path, json_t *obj) {
  struct dmt_secrets *s = open_secrets(w);
  char err[256];
  int rc = s ? dmt_secrets_put(s, c, tenant, path, obj, err, sizeof err) : -1;
  if (rc != DMT_SECRETS_OK) fprintf(stderr, "rps fixture: secret %s: %s\n", path, s ? err : "no store");
  dmt_secrets_close(s);
  json_decref(obj);
  return rc == DMT_SECRETS_OK ? 0 : -1;
}

int rps_world_init(struct rps_world *w, const char *name) {
  memset(w, 0, sizeof *w);
  w->dsn = dmt_test_pg_create_db(name);
  w->dir = dmt_test_tmpdir(name);
  snprintf(w->key, sizeof w->key, "%s", dmt_test_secrets_key());
  snprintf(w->instance, sizeof w->instance, "rps-%s-%d", name, (int)getpid());
  PGconn *c = conn(w);
  char err[256];
  int rc = c && dmt_pg_migrate(c, NULL, err, sizeof err) >= 0 ? 0 : -1;
  if (c) PQfinish(c);
  return w->dsn && w->dir && rc == 0 ? 0 : -1;
}

int rps_world_start(struct rps_world *w) {
  static char e[12][800];
  w->port = dmt_test_free_port();
  snprintf(w->url, sizeof w->url, "ws://127.0.0.1:%d/activate", w->port);
  snprintf(e[0], sizeof e[0], "DMT_DB_DSN=%s", w->dsn);
  snprintf(e[1], sizeof e[1], "DMT_MQTT_URL=%s", dmt_test_mqtt_url());
  snprintf(e[2], sizeof e[2], "DMT_SECRETS_KEY=%s", w->key);
  snprintf(e[3], sizeof e[3], "DMT_SECRETS_KEY_ID=test");
  snprintf(e[4], sizeof e[4], "DMT_RPS_PORT=%d", w->port);
  snprintf(e[5], sizeof e[5], "DMT_INSTANCE_ID=%s", w->instance);
  snprintf(e[6], sizeof e[6], "DMT_RPS_DELAY_MS=0");
  snprintf(e[7], sizeof e[7], "DMT_LOG_LEVEL=info");
  char *env[32];
  size_t n = 0;
  for (int i = 0; i < 8; i++) env[n++] = e[i];
  for (size_t i = 0; i < 16 && w->env[i]; i++) env[n++] = (char *)w->env[i];
  env[n] = NULL;
  /* DMT_TEST_RPS_BIN: another build of the agent; DMT_TEST_RPS_WRAPPER: e.g. "/usr/bin/valgrind --error-exitcode=99" */
  char bin[1024], wrap[1024];
  const char *b = getenv("DMT_TEST_RPS_BIN");
  snprintf(bin, sizeof bin, "%s", b && *b ? b : dmt_test_bin("agents/rps/dmt-rps"));
  snprintf(wrap, sizeof wrap, "%s", getenv("DMT_TEST_RPS_WRAPPER") ? getenv("DMT_TEST_RPS_WRAPPER") : "");
  char *argv[24];
  size_t na = 0;
  for (char *tok = strtok(wrap, " "); tok && na < 20; tok = strtok(NULL, " ")) argv[na++] = tok;
  argv[na++] = bin;
  argv[na] = NULL;
  snprintf(w->log, sizeof w->log, "%s/%s.log", w->dir, w->instance);
  w->pid = dmt_test_spawn(argv, env, w->log);
  return w->pid > 0 && dmt_test_wait_port(w->port, 120000) ? 0 : -1;
}

int rps_world_stop(struct rps_world *w) {
  int st = 0;
  if (w->pid > 0) {
    st = dmt_test_stop(w->pid, SIGTERM, getenv("DMT_TEST_RPS_WRAPPER") ? 60000 : 15000);
    if (st != 0) fprintf(stderr, "rps fixture: dmt-rps exited with %d (log %s)\n", st, w->log);
  }
  w->pid = 0;
  return st;
}

int rps_add_profile(struct rps_world *w, const char *tenant, const char *name, const char *activation,
                    const char *amt_password, const char *mebx_password, const char *cira, const char *tags) {
  PGconn *c = conn(w);
  if (!c) return -1;
  const char *p[] = {tenant, name, activation, amt_password ? "false" : "true", mebx_password ? "false" : "true", cira,
                     tags ? tags : "{}"};
  int rc = exec(c,
                "INSERT INTO dmt.profiles (tenant_id, profile_name, activation, amt_password, generate_random_password, "
                "mebx_password, generate_random_mebx_password, cira_config_name, tags, dhcp_enabled, kvm_enabled, "
                "user_consent) VALUES ($1, $2, $3, 'AMT_PASSWORD', $4::boolean, 'MEBX_PASSWORD', $5::boolean, $6, "
                "$7::text[], true, true, 'All')",
                7, p);
  char path[300];
  snprintf(path, sizeof path, "profiles/%s", name);
  if (rc == DMT_PG_OK)
    rc = put_secret(w, c, tenant, path,
                    json_pack("{s:s, s:s}", "AMT_PASSWORD", amt_password ? amt_password : "", "MEBX_PASSWORD",
                              mebx_password ? mebx_password : ""));
  PQfinish(c);
  return rc == 0 ? 0 : -1;
}

int rps_add_cira(struct rps_world *w, const char *tenant, const char *name, const char *address, int port,
                 const char *user, const char *password, const char *root_der_b64) {
  PGconn *c = conn(w);
  if (!c) return -1;
  char ports[16];
  snprintf(ports, sizeof ports, "%d", port);
  const char *p[] = {tenant, name, address, ports, user, root_der_b64};
  int rc = exec(c,
                "INSERT INTO dmt.ciraconfigs (tenant_id, cira_config_name, mps_server_address, mps_port, user_name, "
                "password, common_name, server_address_format, auth_method, mps_root_certificate) VALUES ($1, $2, $3, "
                "$4::int, $5, NULL, $3, 3, 2, $6)",
                6, p);
  char path[300];
  snprintf(path, sizeof path, "CIRAConfigs/%s", name);
  if (rc == DMT_PG_OK && password) rc = put_secret(w, c, tenant, path, json_pack("{s:s}", "MPS_PASSWORD", password));
  PQfinish(c);
  return rc == 0 ? 0 : -1;
}

int rps_put_mpscerts(struct rps_world *w, const char *root_pem) {
  PGconn *c = conn(w);
  if (!c) return -1;
  int rc = put_secret(w, c, "", "MPSCerts", json_pack("{s:s}", "ROOT_CERTIFICATE", root_pem));
  PQfinish(c);
  return rc;
}

int rps_add_domain(struct rps_world *w, const char *tenant, const char *name, const char *suffix,
                   const unsigned char *pfx, size_t pfx_len, const char *pfx_password) {
  PGconn *c = conn(w);
  if (!c) return -1;
  const char *p[] = {tenant, name, suffix};
  int rc = exec(c,
                "INSERT INTO dmt.domains (tenant_id, name, domain_suffix, provisioning_cert, "
                "provisioning_cert_storage_format, provisioning_cert_key) VALUES ($1, $2, $3, 'CERT', 'raw', "
                "'CERT_PASSWORD')",
                3, p);
  char *b64 = malloc((pfx_len + 2) / 3 * 4 + 1);
  EVP_EncodeBlock((unsigned char *)b64, pfx, (int)pfx_len);
  char path[300];
  snprintf(path, sizeof path, "certs/%s", name);
  if (rc == DMT_PG_OK)
    rc = put_secret(w, c, tenant, path, json_pack("{s:s, s:s}", "CERT", b64, "CERT_PASSWORD", pfx_password));
  free(b64);
  PQfinish(c);
  return rc == 0 ? 0 : -1;
}

int rps_add_record(struct rps_world *w, const char *tenant, const char *guid, const char *amt_password,
                   const char *mps_user, const char *mps_password) {
  PGconn *c = conn(w);
  if (!c) return -1;
  const char *p[] = {guid, tenant, mps_user};
  int rc = exec(c,
                "INSERT INTO dmt.devices (guid, tenant_id, hostname, mps_username, device_info) VALUES ($1::uuid, $2, "
                "'seeded', $3, '{\"currentMode\":\"acm\"}')",
                3, p);
  char path[64];
  snprintf(path, sizeof path, "devices/%s", guid);
  if (rc == DMT_PG_OK) {
    json_t *o = json_pack("{s:s}", "AMT_PASSWORD", amt_password);
    if (mps_password) json_object_set_new(o, "MPS_PASSWORD", json_string(mps_password));
    rc = put_secret(w, c, tenant, path, o);
  }
  PQfinish(c);
  return rc == 0 ? 0 : -1;
}

long rps_device_rows(struct rps_world *w, const char *guid) {
  char sql[160];
  snprintf(sql, sizeof sql, "SELECT count(*) FROM dmt.devices WHERE guid = '%.36s'", guid);
  return dmt_test_pg_count(w->dsn, sql);
}

bool rps_device_secret(struct rps_world *w, const char *tenant, const char *guid, json_t **out) {
  PGconn *c = conn(w);
  struct dmt_secrets *s = open_secrets(w);
  char path[64], err[256];
  snprintf(path, sizeof path, "devices/%s", guid);
  json_t *o = NULL;
  bool found = c && s && dmt_secrets_get(s, c, tenant, path, &o, err, sizeof err) == DMT_SECRETS_OK;
  if (out) *out = o;
  else dmt_secrets_wipe(o);
  dmt_secrets_close(s);
  if (c) PQfinish(c);
  return found;
}

char *rps_query_text(struct rps_world *w, const char *sql, const char *param) {
  PGconn *c = conn(w);
  if (!c) return NULL;
  PGresult *r = NULL;
  char err[256], *out = NULL;
  const char *p[] = {param};
  if (dmt_pg_exec(c, sql, param ? 1 : 0, p, &r, err, sizeof err) == DMT_PG_OK && PQntuples(r) > 0 &&
      !PQgetisnull(r, 0, 0))
    out = strdup(PQgetvalue(r, 0, 0));
  PQclear(r);
  PQfinish(c);
  return out;
}

long rps_event_count(struct rps_world *w, const char *guid, const char *kind, const char *outcome) {
  char sql[300];
  snprintf(sql, sizeof sql, "SELECT count(*) FROM dmt.events WHERE guid = '%.36s' AND kind = '%.31s' AND outcome = '%.15s'",
           guid, kind, outcome);
  return dmt_test_pg_count(w->dsn, sql);
}

/* ---- certificates ---- */

static void sha256_hex(X509 *x, char out[65]) {
  uint8_t md[32];
  unsigned n = 0;
  X509_digest(x, EVP_sha256(), md, &n);
  for (unsigned i = 0; i < n; i++) sprintf(out + 2 * i, "%02x", md[i]);
}

int rps_make_pki(struct rps_pki *p, const char *leaf_cn, int days_valid, const char *password) {
  memset(p, 0, sizeof *p);
  char err[256];
  EVP_PKEY *rk = dmt_tls_rsa_key(2048), *ik = dmt_tls_rsa_key(2048), *lk = dmt_tls_rsa_key(2048);
  struct dmt_cert_spec rs = {.common_name = "Test AMT Provisioning Root", .is_ca = true, .days_before = 1,
                             .days_valid = 3650};
  struct dmt_cert_spec is = {.common_name = "Test AMT Provisioning CA", .is_ca = true, .days_before = 1,
                             .days_valid = 3650};
  struct dmt_cert_spec ls = {.common_name = leaf_cn, .ext_key_usage = "serverAuth,2.16.840.1.113741.1.2.3",
                             .days_before = 3, .days_valid = days_valid};
  X509 *root = dmt_tls_issue(&rs, rk, NULL, NULL, err, sizeof err);
  X509 *inter = root ? dmt_tls_issue(&is, ik, root, rk, err, sizeof err) : NULL;
  X509 *leaf = inter ? dmt_tls_issue(&ls, lk, inter, ik, err, sizeof err) : NULL;
  int rc = -1;
  if (leaf) {
    STACK_OF(X509) *ca = sk_X509_new_null();
    sk_X509_push(ca, inter);
    sk_X509_push(ca, root);
    PKCS12 *p12 = PKCS12_create(password, "provisioning", lk, leaf, ca, 0, 0, 0, 0, 0);
    sk_X509_free(ca);
    unsigned char *der = NULL;
    int n = p12 ? i2d_PKCS12(p12, &der) : -1;
    if (n > 0) {
      p->pfx = malloc((size_t)n);
      memcpy(p->pfx, der, (size_t)n);
      p->pfx_len = (size_t)n;
      sha256_hex(root, p->root_sha256);
      char *pem = dmt_tls_cert_pem(root);
      snprintf(p->root_pem, sizeof p->root_pem, "%s", pem);
      free(pem);
      rc = 0;
    }
    OPENSSL_free(der);
    PKCS12_free(p12);
  }
  X509_free(root);
  X509_free(inter);
  X509_free(leaf);
  EVP_PKEY_free(rk);
  EVP_PKEY_free(ik);
  EVP_PKEY_free(lk);
  return rc;
}

void rps_pki_free(struct rps_pki *p) { free(p->pfx); }

int rps_make_root(char *pem, size_t pemlen, char *der_b64, size_t b64len) {
  char err[256];
  EVP_PKEY *k = dmt_tls_rsa_key(2048);
  struct dmt_cert_spec s = {.common_name = "MPSRoot-test", .is_ca = true, .days_before = 1, .days_valid = 365};
  X509 *x = dmt_tls_issue(&s, k, NULL, NULL, err, sizeof err);
  EVP_PKEY_free(k);
  if (!x) return -1;
  char *p = dmt_tls_cert_pem(x);
  snprintf(pem, pemlen, "%s", p);
  free(p);
  unsigned char *der = NULL;
  int n = i2d_X509(x, &der);
  X509_free(x);
  if (n <= 0 || (size_t)((n + 2) / 3 * 4 + 1) > b64len) return -1;
  EVP_EncodeBlock((unsigned char *)der_b64, der, n);
  OPENSSL_free(der);
  return 0;
}

/* ---- provisioning commands ---- */

struct requester {
  struct dmt_workq q;
  bool up, replied;
  char corr[96];
  int code;
  char *error, *message;
  json_t *result;
};

static void req_on_message(void *ud, const struct dmt_mqtt_msg *m) {
  struct requester *r = ud;
  if (!m->correlation || m->correlation_len != strlen(r->corr) || memcmp(m->correlation, r->corr, m->correlation_len))
    return;
  struct dmt_command_reply rep;
  char err[256];
  if (dmt_command_reply_decode(m->payload, m->len, &rep, err, sizeof err) != 0) return;
  r->replied = true;
  r->code = (int)rep.code;
  r->error = rep.error ? strdup(rep.error) : NULL;
  r->message = rep.message ? strdup(rep.message) : NULL;
  r->result = rep.result ? dmt_mp_buf_to_json(rep.result, rep.result_len) : NULL;
  dmt_command_reply_free(&rep);
}

static void req_on_conn(void *ud, bool up) { ((struct requester *)ud)->up = up; }

int rps_provisioning_command(const char *tenant, const char *verb, const char *args_json, long deadline_ms,
                             int wait_ms, char **error, char **message, json_t **result) {
  static unsigned seq;
  struct requester r = {0};
  dmt_workq_init(&r.q, NULL, NULL);
  char id[64], reply[200], topic[200], err[256];
  snprintf(id, sizeof id, "rps-test-req-%d-%u", (int)getpid(), ++seq);
  snprintf(r.corr, sizeof r.corr, "corr-%s", id);
  const char *t = *tenant ? tenant : "_default";
  snprintf(reply, sizeof reply, "dmt/v1/%s/replies/%s/r", t, id);
  snprintf(topic, sizeof topic, "dmt/v1/%s/provisioning/cmd/%s", t, verb);
  struct dmt_mqtt_opts o = {.url = dmt_test_mqtt_url(), .client_id = id, .owner = &r.q, .on_message = req_on_message,
                            .on_connection = req_on_conn, .ud = &r};
  struct dmt_mqtt *m = dmt_mqtt_new(&o, err, sizeof err);
  if (!m) return -1;
  dmt_mqtt_start(m);
  dmt_mqtt_subscribe(m, reply, 1);
  for (int i = 0; i < 500 && !r.up; i++) {
    dmt_workq_run(&r.q);
    usleep(10000);
  }
  usleep(100000); /* the subscription is in place */
  msgpack_sbuffer args;
  msgpack_sbuffer_init(&args);
  if (args_json) {
    json_t *j = json_loads(args_json, 0, NULL);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &args, msgpack_sbuffer_write);
    dmt_json_to_mp(j, &pk);
    json_decref(j);
  }
  struct dmt_command_request q = {.verb = (char *)verb, .deadline_ms = (int64_t)dmt_wall_ms() + deadline_ms,
                                  .present = DMT_COMMAND_REQUEST_DEADLINE_MS};
  if (args.size) {
    q.args = (uint8_t *)args.data;
    q.args_len = args.size;
  }
  msgpack_sbuffer sb;
  msgpack_sbuffer_init(&sb);
  dmt_command_request_encode(&q, &sb, err, sizeof err);
  struct dmt_mqtt_user_prop up[] = {{"dmt-requester", "rps-test"}};
  struct dmt_mqtt_publish p = {.topic = topic, .payload = sb.data, .len = sb.size, .qos = 1, .response_topic = reply,
                               .correlation = r.corr, .correlation_len = strlen(r.corr),
                               .expiry_s = deadline_ms > 0 ? (uint32_t)(deadline_ms / 1000 + 1) : 60, .user = up,
                               .nuser = 1};
  dmt_mqtt_publish(m, &p);
  msgpack_sbuffer_destroy(&sb);
  msgpack_sbuffer_destroy(&args);
  uint64_t until = dmt_test_now_ms() + (uint64_t)wait_ms;
  while (!r.replied && dmt_test_now_ms() < until) {
    dmt_workq_run(&r.q);
    usleep(5000);
  }
  dmt_mqtt_free(m);
  dmt_workq_run(&r.q);
  dmt_workq_destroy(&r.q);
  if (error) *error = r.error;
  else free(r.error);
  if (message) *message = r.message;
  else free(r.message);
  if (result) *result = r.result;
  else json_decref(r.result);
  return r.replied ? r.code : -1;
}

int rps_write_pem(const char *path, const char *der_b64) {
  FILE *f = fopen(path, "w");
  if (!f) return -1;
  fprintf(f, "-----BEGIN CERTIFICATE-----\n");
  for (size_t i = 0, n = strlen(der_b64); i < n; i += 64) fprintf(f, "%.64s\n", der_b64 + i);
  fprintf(f, "-----END CERTIFICATE-----\n");
  return fclose(f);
}
