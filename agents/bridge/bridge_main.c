/*
 * dmt-bridge: the REST bridge. DMT's MPS routes (default port 3000) and RPS
 * admin routes (default port 8081) on one libwebsockets loop; CRUD against
 * PostgreSQL through dmt_db workers, device commands as MQTT v5 requests to
 * whichever terminator holds the device. See docs/bridge.md.
 */
#include <openssl/rand.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bridge.h"

static const struct dmt_config_key keys[] = {
    DMT_CONFIG_COMMON_KEYS,
    {"bridge.listen_address", "DMT_BRIDGE_LISTEN_ADDRESS", NULL, "0.0.0.0", "address both listeners bind", 0},
    {"bridge.mps_port", "DMT_BRIDGE_MPS_PORT", "MPS_WEB_PORT", "3000", "MPS API port (every route is served)", 0},
    {"bridge.rps_port", "DMT_BRIDGE_RPS_PORT", "RPS_WEB_PORT", "8081",
     "RPS admin API port (every route is served; 0 = only the MPS port)", 0},
    {"bridge.tls_cert_file", "DMT_BRIDGE_TLS_CERT_FILE", NULL, NULL,
     "serve HTTPS (and h2 by ALPN) with this certificate chain (PEM)", 0},
    {"bridge.tls_key_file", "DMT_BRIDGE_TLS_KEY_FILE", NULL, NULL, "key of bridge.tls_cert_file", DMT_CFG_SECRET},
    {"bridge.max_body_bytes", "DMT_BRIDGE_MAX_BODY_BYTES", NULL, "1048576", "larger request bodies get 413", 0},
    {"bridge.max_header_bytes", "DMT_BRIDGE_MAX_HEADER_BYTES", NULL, "8192", "request header budget per request", 0},
    {"bridge.client_timeout_s", "DMT_BRIDGE_CLIENT_TIMEOUT_S", NULL, "10",
     "a client idle this long while sending its request headers or body is disconnected", 0},
    {"bridge.keepalive_s", "DMT_BRIDGE_KEEPALIVE_S", NULL, "30", "idle keep-alive connections close after this", 0},
    {"bridge.request_timeout_ms", "DMT_BRIDGE_REQUEST_TIMEOUT_MS", NULL, "15000",
     "a request not answered by then gets 503 (device commands: their own deadline)", 0},
    {"bridge.health_timeout_ms", "DMT_BRIDGE_HEALTH_TIMEOUT_MS", NULL, "3000",
     "the health probe's database deadline", 0},
    {"bridge.db_workers", "DMT_BRIDGE_DB_WORKERS", NULL, "4", "PostgreSQL worker threads (connections)", 0},
    {"bridge.command_timeout_ms", "DMT_BRIDGE_COMMAND_TIMEOUT_MS", "MPS_TIMEOUT_MS_DEFAULT", "60000",
     "deadline of a device command (MQTT message expiry and the executor's deadline)", 0},
    {"bridge.command_grace_ms", "DMT_BRIDGE_COMMAND_GRACE_MS", NULL, "2000",
     "extra wait for a reply after a command's deadline before answering 404", 0},
    {"bridge.ciracert_file", "DMT_BRIDGE_CIRACERT_FILE", NULL, NULL,
     "PEM served by /api/v1/ciracert (default: ROOT_CERTIFICATE of the MPSCerts secret)", 0},
    {"auth.mode", "DMT_AUTH_MODE", NULL, "standalone", "standalone (DMT's own behaviour) or emf (Keycloak JWT)", 0},
    {"auth.web_auth_enabled", "DMT_WEB_AUTH_ENABLED", "MPS_WEB_AUTH_ENABLED", "true",
     "standalone: POST /api/v1/authorize issues tokens (false: 405)", 0},
    {"auth.admin_user", "DMT_WEB_ADMIN_USER", "MPS_WEB_ADMIN_USER", NULL, "standalone: login user", 0},
    {"auth.admin_password", "DMT_WEB_ADMIN_PASSWORD", "MPS_WEB_ADMIN_PASSWORD", NULL, "standalone: login password",
     DMT_CFG_SECRET},
    {"auth.jwt_secret", "DMT_JWT_SECRET", "MPS_JWT_SECRET", NULL,
     "standalone: HS256 key of /authorize tokens (random per start when unset)", DMT_CFG_SECRET},
    {"auth.jwt_issuer", "DMT_JWT_ISSUER", "MPS_JWT_ISSUER", "9EmRJTbIiIb4bIeSsmgcWIjrR6HyETqc",
     "standalone: iss of /authorize tokens", 0},
    {"auth.jwt_expiration_min", "DMT_JWT_EXPIRATION", "MPS_JWT_EXPIRATION", "1440", "standalone: token lifetime", 0},
    {"auth.redirection_expiration_min", "DMT_REDIRECTION_EXPIRATION", "MPS_REDIRECTION_EXPIRATION_TIME", "5",
     "standalone: redirection token lifetime", 0},
    {"auth.standalone_verify_tokens", "DMT_AUTH_STANDALONE_VERIFY_TOKENS", NULL, "false",
     "standalone: require a valid /authorize token on every route (DMT leaves this to its gateway)", 0},
    {"auth.standalone_tenant_header", "DMT_AUTH_STANDALONE_TENANT_HEADER", NULL, NULL,
     "standalone: header naming the tenant (DMT custom middleware); unset: every request is tenant \"\"", 0},
    {"auth.jwks_file", "DMT_AUTH_JWKS_FILE", NULL, NULL, "emf: JWKS file with the RS256 keys", 0},
    {"auth.jwks_url", "DMT_AUTH_JWKS_URL", NULL, NULL, "emf: JWKS URL (Keycloak certs endpoint)", 0},
    {"auth.issuer", "DMT_AUTH_ISSUER", NULL, NULL, "emf: expected iss", 0},
    {"auth.audience", "DMT_AUTH_AUDIENCE", NULL, NULL, "emf: accepted aud values (comma-separated)", 0},
    {"auth.clock_skew_s", "DMT_AUTH_CLOCK_SKEW_S", NULL, "30", "emf: tolerated clock skew for exp/nbf", 0},
    {"auth.jwks_ca_file", "DMT_AUTH_JWKS_CA_FILE", NULL, NULL, "emf: CA bundle for an https auth.jwks_url", 0},
    {"auth.jwks_refresh_s", "DMT_AUTH_JWKS_REFRESH_S", NULL, "300", "emf: seconds between JWKS fetches", 0},
    {"auth.roles_rw", "DMT_AUTH_ROLES_RW", NULL, NULL,
     "emf: role suffixes granting read-write on <project> (default im-rw)", 0},
    {"auth.roles_ro", "DMT_AUTH_ROLES_RO", NULL, NULL, "emf: role suffixes granting read-only (default im-r)", 0},
    {"auth.roles_client", "DMT_AUTH_ROLES_CLIENT", NULL, NULL,
     "emf: also read resource_access.<client>.roles", 0},
};

static struct br_server srv;

static void on_signal(int sig) {
  srv.stopping = 1;
  if (srv.lws) lws_cancel_service(srv.lws);
}

static void on_mqtt_message(void *ud, const struct dmt_mqtt_msg *m) { br_amt_on_message(ud, m); }

static void on_mqtt_connection(void *ud, bool up) {
  struct br_server *s = ud;
  s->mqtt_up = up;
  DMT_INFO(&s->log, up ? "mqtt_connected" : "mqtt_disconnected", NULL);
}

static void random_secret(char out[65]) {
  unsigned char b[32];
  RAND_bytes(b, sizeof b);
  for (int i = 0; i < 32; i++) snprintf(out + 2 * i, 3, "%02x", b[i]);
}

int main(int argc, char **argv) {
  struct dmt_config cfg;
  char err[512];
  int rc = dmt_config_startup(&cfg, keys, sizeof keys / sizeof keys[0], argc, argv, "dmt-bridge");
  if (rc >= 0) return rc;
  struct br_server *s = &srv;
  s->cfg = &cfg;
  s->log = (struct dmt_log){.out = stderr, .min = DMT_LOG_INFO, .component = "bridge"};
  dmt_log_level_parse(dmt_config_str(&cfg, "log.level"), &s->log.min);
  char host[64] = "host";
  gethostname(host, sizeof host);
  const char *inst = dmt_config_str(&cfg, "instance.id");
  if (inst) snprintf(s->instance, sizeof s->instance, "%s", inst);
  else snprintf(s->instance, sizeof s->instance, "bridge-%s-%d", host, (int)getpid());
  s->max_body = (size_t)dmt_config_int(&cfg, "bridge.max_body_bytes", 1048576);
  s->request_timeout_ms = (int)dmt_config_int(&cfg, "bridge.request_timeout_ms", 15000);
  s->health_timeout_ms = (int)dmt_config_int(&cfg, "bridge.health_timeout_ms", 3000);
  s->ciracert_file = dmt_config_str(&cfg, "bridge.ciracert_file");
  br_pfx_init();
  br_sql_log(&s->log);

  struct br_auth *a = &s->auth;
  const char *mode = dmt_config_str(&cfg, "auth.mode");
  a->mode = mode && !strcmp(mode, "emf") ? BR_AUTH_EMF : BR_AUTH_STANDALONE;
  if (mode && strcmp(mode, "emf") && strcmp(mode, "standalone")) {
    fprintf(stderr, "dmt-bridge: auth.mode must be standalone or emf\n");
    return 2;
  }
  a->web_auth_enabled = dmt_config_bool(&cfg, "auth.web_auth_enabled", true);
  a->admin_user = dmt_config_str(&cfg, "auth.admin_user");
  a->admin_password = dmt_config_str(&cfg, "auth.admin_password");
  a->jwt_issuer = dmt_config_str(&cfg, "auth.jwt_issuer");
  a->jwt_expiration_min = dmt_config_int(&cfg, "auth.jwt_expiration_min", 1440);
  a->redirection_expiration_min = dmt_config_int(&cfg, "auth.redirection_expiration_min", 5);
  a->verify_tokens = dmt_config_bool(&cfg, "auth.standalone_verify_tokens", false);
  a->tenant_header = dmt_config_str(&cfg, "auth.standalone_tenant_header");
  static char generated_secret[65];
  a->jwt_secret = dmt_config_str(&cfg, "auth.jwt_secret");
  if (!a->jwt_secret) {
    random_secret(generated_secret);
    a->jwt_secret = generated_secret;
    DMT_WARN(&s->log, "jwt_secret_generated", "effect=\"tokens from /authorize do not survive a restart\"");
  }

  struct sigaction sa = {.sa_handler = on_signal};
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
  signal(SIGPIPE, SIG_IGN);

  if (br_http_start(s, err, sizeof err) != 0) {
    DMT_ERROR(&s->log, "http_setup_failed", "error=\"%s\"", err);
    return 1;
  }
  if (a->mode == BR_AUTH_EMF && br_auth_emf_init(s, err, sizeof err) != 0) {
    DMT_ERROR(&s->log, "auth_setup_failed", "error=\"%s\"", err);
    br_http_stop(s);
    return 1;
  }
  struct dmt_db_opts dbo = {.dsn = dmt_config_str(&cfg, "db.dsn"), .log = &s->log, .owner = &s->q,
                            .workers = (int)dmt_config_int(&cfg, "bridge.db_workers", 4), .max_queue = 10000,
                            .migrate = dmt_config_bool(&cfg, "db.migrate", true)};
  s->db = dmt_db_new(&dbo, err, sizeof err);
  if (!s->db || dmt_db_start(s->db) != 0) {
    DMT_ERROR(&s->log, "db_setup_failed", "error=\"%s\"", err);
    return 1;
  }
  struct dmt_secrets_config sc;
  dmt_secrets_config_from(&cfg, &sc);
  sc.log = &s->log;
  s->secrets = dmt_secrets_open(&sc, err, sizeof err);
  if (!s->secrets) DMT_ERROR(&s->log, "secrets_unavailable", "error=\"%s\" effect=\"domain and profile writes fail\"", err);

  br_amt_init(s);
  struct dmt_mqtt_opts mo = {.url = dmt_config_str(&cfg, "mqtt.url"), .client_id = s->amt.client_id,
                             .username = dmt_config_str(&cfg, "mqtt.username"),
                             .password = dmt_config_str(&cfg, "mqtt.password"),
                             .ca_file = dmt_config_str(&cfg, "mqtt.ca_file"),
                             .cert_file = dmt_config_str(&cfg, "mqtt.cert_file"),
                             .key_file = dmt_config_str(&cfg, "mqtt.key_file"), .keepalive_s = 15, .log = &s->log,
                             .owner = &s->q, .on_message = on_mqtt_message, .on_connection = on_mqtt_connection,
                             .ud = s};
  s->mqtt = dmt_mqtt_new(&mo, err, sizeof err);
  if (!s->mqtt || dmt_mqtt_subscribe(s->mqtt, s->amt.reply_filter, 1) != 0 || dmt_mqtt_start(s->mqtt) != 0) {
    DMT_ERROR(&s->log, "mqtt_setup_failed", "error=\"%s\"", err);
    return 1;
  }
  DMT_INFO(&s->log, "bridge_started", "instance=%s mps_port=%ld rps_port=%ld auth=%s", s->instance,
           dmt_config_int(&cfg, "bridge.mps_port", 3000), dmt_config_int(&cfg, "bridge.rps_port", 8081),
           a->mode == BR_AUTH_EMF ? "emf" : "standalone");

  while (!s->stopping)
    if (lws_service(s->lws, 0) < 0) break;

  DMT_INFO(&s->log, "bridge_stopping", "requests=%llu", (unsigned long long)s->stats.requests);
  dmt_mqtt_free(s->mqtt);
  s->mqtt = NULL;
  dmt_db_free(s->db, 2000);
  s->db = NULL;
  dmt_workq_run(&s->q);
  br_amt_free(s);
  br_http_stop(s);
  dmt_workq_run(&s->q);
  dmt_workq_destroy(&s->q);
  br_auth_emf_free(s);
  dmt_secrets_close(s->secrets);
  br_pfx_cleanup();
  dmt_config_free(&cfg);
  return 0;
}
