/*
 * dmt-cira: the CIRA terminator (DMT MPS replacement). Holds every device's
 * CIRA connection on one event loop, publishes device state and events on
 * MQTT and executes the commands addressed to the devices it holds. This
 * file holds the settings (with DMT's environment names where DMT has one),
 * the start-up order (identity, database, broker with will, release of rows
 * a previous run of ours left, then the listener) and the clean shutdown
 * (every device released in one statement and published disconnected). See
 * docs/cira.md.
 */
#include <errno.h>
#include <malloc.h>
#include <openssl/ssl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "cira.h"
#include "dmt/config.h"
#include "dmt/health.h"
#include "dmt/payloads.h"
#include "dmt/tls.h"

static const struct dmt_config_key keys[] = {
    DMT_CONFIG_COMMON_KEYS,
    {"cira.instance_name", "DMT_CIRA_INSTANCE_NAME", "MPS_INSTANCE_NAME", NULL,
     "instance name recorded in devices.mps_instance when instance.id is unset (k8s: the pod name or IP)", 0},
    {"cira.listen_address", "DMT_CIRA_LISTEN_ADDRESS", NULL, "0.0.0.0", "address the CIRA listener binds (IPv4 or IPv6)", 0},
    {"cira.port", "DMT_CIRA_PORT", "MPSPORT", "4433", "CIRA TLS port devices connect to", 0},
    {"cira.common_name", "DMT_CIRA_COMMON_NAME", "MPS_COMMON_NAME", "localhost",
     "the MPS address configured into devices (FQDN or IP): the generated server certificate's name", 0},
    {"cira.generate_certs", "DMT_CIRA_GENERATE_CERTS", "MPS_GENERATE_CERTS", "true",
     "generate the root CA and server certificate (secret MPSCerts) on first start when no files are given", 0},
    {"cira.cert_file", "DMT_CIRA_CERT_FILE", NULL, NULL, "server certificate chain (PEM); MPSCerts is used when unset", 0},
    {"cira.key_file", "DMT_CIRA_KEY_FILE", NULL, NULL, "server key (PEM)", DMT_CFG_SECRET},
    {"cira.root_file", "DMT_CIRA_ROOT_FILE", NULL, NULL, "root CA devices trust (PEM), served as /api/v1/ciracert", 0},
    {"cira.runtime_dir", "DMT_CIRA_RUNTIME_DIR", NULL, "/tmp", "where MPSCerts is written out for the TLS library", 0},
    {"cira.tls_legacy", "DMT_CIRA_TLS_LEGACY", NULL, "false",
     "also accept TLS 1.0/1.1 and RSA key exchange at OpenSSL security level 0: only for AMT 11/12 and older, "
     "which cannot do better (see docs/cira.md)", 0},
    {"cira.keepalive_s", "DMT_CIRA_KEEPALIVE_S", NULL, "30",
     "keepalive interval asked of devices; a device silent for three intervals is dropped", 0},
    {"cira.keepalive_options_delay_ms", "DMT_CIRA_KEEPALIVE_OPTIONS_DELAY_MS", NULL, "2000",
     "ask for keepalives this long after login if the port forwards did not trigger it (5900 or the 4th)", 0},
    {"cira.window", "DMT_CIRA_WINDOW", "MPS_CIRA_WINDOW_SIZE", "81920",
     "APF channel receive window (32768-1048576; out of range means the default, as DMT)", 0},
    {"cira.max_inflight", "DMT_CIRA_MAX_INFLIGHT", NULL, "3", "WS-Man exchanges in flight per device", 0},
    {"cira.max_commands", "DMT_CIRA_MAX_COMMANDS", NULL, "8",
     "commands executing per device; more are answered busy (409)", 0},
    {"cira.wsman_timeout_ms", "DMT_CIRA_WSMAN_TIMEOUT_MS", "MPS_TIMEOUT_MS_DEFAULT", "10000",
     "deadline of one WS-Man exchange (a command's own deadline may be shorter)", 0},
    {"cira.handshake_ms", "DMT_CIRA_HANDSHAKE_MS", NULL, "30000", "time allowed for TLS + APF login", 0},
    {"cira.last_seen", "DMT_CIRA_LAST_SEEN", "MPS_CIRA_LAST_SEEN", "true", "record devices.last_seen", 0},
    {"cira.lastseen_flush_ms", "DMT_CIRA_LASTSEEN_FLUSH_MS", NULL, "15000",
     "how often last-seen times are written (batched; never one query per keepalive)", 0},
    {"cira.batch_ms", "DMT_CIRA_BATCH_MS", NULL, "20", "how long connection rows and events wait to be batched", 0},
    {"cira.max_connections", "DMT_CIRA_MAX_CONNECTIONS", NULL, "200000", "connections beyond this are refused", 0},
    {"cira.max_output_bytes", "DMT_CIRA_MAX_OUTPUT_BYTES", NULL, "1048576",
     "bytes queued to a device that does not read before it is dropped", 0},
    {"cira.power_refresh_s", "DMT_CIRA_POWER_REFRESH_S", "MPS_POWER_STATE_REFRESH_INTERVAL", "300",
     "seconds between background power-state reads of a connected device (0 = off)", 0},
    {"cira.power_refresh_jitter_s", "DMT_CIRA_POWER_REFRESH_JITTER_S", "MPS_POWER_STATE_REFRESH_JITTER", "60",
     "largest delay of the first power-state read after a device connects", 0},
    {"cira.power_max_concurrent", "DMT_CIRA_POWER_MAX_CONCURRENT", "MPS_POWER_STATE_MAX_CONCURRENT", "20",
     "background power-state reads in flight at once", 0},
    {"cira.auth_free_failures", "DMT_CIRA_AUTH_FREE_FAILURES", NULL, "3",
     "failed logins for one GUID (in 10 minutes) before its logins are throttled", 0},
    {"cira.auth_source_free_failures", "DMT_CIRA_AUTH_SOURCE_FREE_FAILURES", NULL, "100",
     "failed logins from one address (IPv6: /64) in 10 minutes before it is throttled", 0},
    {"cira.auth_block_max_ms", "DMT_CIRA_AUTH_BLOCK_MAX_MS", NULL, "300000",
     "longest throttling block (it starts at 1 s and doubles per further failure)", 0},
    {"health.port", "DMT_HEALTH_PORT", NULL, "9090", "port of /healthz, /readyz and /api/v1/ciracert (0 = off)", 0},
};

static struct cira_server srv;

static void on_mqtt_message(void *ud, const struct dmt_mqtt_msg *m) {
  struct cira_server *s = ud;
  if (s->shutting_down || !s->mqtt) return;
  if (!strncmp(m->topic, "dmt/_sys/instances/", 19)) instances_on_message(s, m);
  else if (!strncmp(m->topic, "dmt/_sys/cira/takeover/", 23)) registry_on_takeover(s, m);
  else commands_on_message(s, m);
}

static void on_mqtt_connection(void *ud, bool up) {
  struct cira_server *s = ud;
  if (s->shutting_down || !s->mqtt) return;
  instances_on_connection(s, up);
}

static bool ready(void *ud, char *detail, unsigned len) {
  struct cira_server *s = ud;
  bool mqtt = dmt_mqtt_is_connected(s->mqtt), db = dmt_db_connected(s->db);
  snprintf(detail, len, "mqtt=%s db=%s devices=%zu connections=%zu", mqtt ? "up" : "down", db ? "up" : "down",
           s->devices.len, s->nconns);
  return mqtt && db;
}

static void housekeeping(struct dmt_loop *loop, struct dmt_timer *t) {
  struct cira_server *s = t->ud;
  static uint64_t last_flush, last_expire;
  uint64_t now = dmt_loop_now(loop);
  if (now - last_flush >= s->set.lastseen_flush_ms) {
    lastseen_flush(s);
    last_flush = now;
  }
  if (now - last_expire >= 60000) {
    commands_housekeeping(s);
    size_t dropped = limiter_expire(&s->by_source, now) + limiter_expire(&s->by_guid, now);
    if (dropped)
      DMT_DEBUG(&s->log, "limiter_expired", "entries=%zu left=%zu", dropped, s->by_source.map.len + s->by_guid.map.len);
    /* Handshake storms leave the heap fragmented: hand freed pages back (RSS per connection is a target). */
    malloc_trim(0);
    last_expire = now;
  }
  dmt_timer_start(loop, t, 1000);
}

static void on_batch_timer(struct dmt_loop *loop, struct dmt_timer *t) { state_flush_batch(t->ud); }

static void on_signal(struct dmt_loop *loop, int signo, void *ud) { dmt_loop_stop(loop); }

/* Runs completions without the loop (start-up and shutdown) until *flag is set or timeout_ms passes. */
static void wait_for(struct cira_server *s, const bool *flag, int timeout_ms) {
  for (int waited = 0; !*flag && waited < timeout_ms; waited += 10) {
    if (!dmt_workq_run(dmt_loop_workq(s->loop))) usleep(10000);
  }
}

static void close_one(struct cira_conn *c, void *ud) {
  conn_close(c, DMT_APF_DISC_BY_APPLICATION, "terminator shutting down");
}

static void shutdown_gracefully(struct cira_server *s) {
  /* Rows of devices that just connected are written first, then every row naming us is released in one
   * statement (as DMT's clearInstanceStatus) and those devices are published disconnected. */
  state_flush_batch(s);
  for (int i = 0; i < 500 && s->batch_running; i++) {
    if (!dmt_workq_run(dmt_loop_workq(s->loop))) usleep(10000);
  }
  s->shutting_down = true;
  registry_each(s, close_one, NULL);
  instances_release_own(s);
  wait_for(s, &s->shutdown_claimed, 10000);
  events_flush(s);
  instances_mark_shutdown(s);
  size_t left = dmt_mqtt_drain(s->mqtt, 10000);
  if (left) DMT_WARN(&s->log, "mqtt_unsent_at_exit", "messages=%zu", left);
}

static void read_settings(struct cira_server *s, const struct dmt_config *cfg) {
  struct cira_settings *t = &s->set;
  t->keepalive_s = (unsigned)dmt_config_int(cfg, "cira.keepalive_s", 30);
  if (t->keepalive_s < 1) t->keepalive_s = 1;
  t->keepalive_options_delay_ms = (unsigned)dmt_config_int(cfg, "cira.keepalive_options_delay_ms", 2000);
  t->window = (unsigned)dmt_config_int(cfg, "cira.window", 81920);
  if (t->window < 32768 || t->window > 1048576) t->window = 81920; /* DMT's rule for out-of-range values */
  t->max_inflight = (unsigned)dmt_config_int(cfg, "cira.max_inflight", 3);
  if (t->max_inflight < 1) t->max_inflight = 1;
  t->max_commands = (unsigned)dmt_config_int(cfg, "cira.max_commands", 8);
  t->wsman_timeout_ms = (unsigned)dmt_config_int(cfg, "cira.wsman_timeout_ms", 10000);
  t->handshake_ms = (unsigned)dmt_config_int(cfg, "cira.handshake_ms", 30000);
  t->lastseen = dmt_config_bool(cfg, "cira.last_seen", true);
  t->lastseen_flush_ms = (unsigned)dmt_config_int(cfg, "cira.lastseen_flush_ms", 15000);
  t->batch_ms = (unsigned)dmt_config_int(cfg, "cira.batch_ms", 20);
  t->max_conns = (unsigned)dmt_config_int(cfg, "cira.max_connections", 200000);
  t->max_output = (size_t)dmt_config_int(cfg, "cira.max_output_bytes", 1048576);
  t->power_refresh_s = (unsigned)dmt_config_int(cfg, "cira.power_refresh_s", 300);
  t->power_jitter_s = (unsigned)dmt_config_int(cfg, "cira.power_refresh_jitter_s", 60);
  t->power_max_concurrent = (unsigned)dmt_config_int(cfg, "cira.power_max_concurrent", 20);
  struct limiter_policy lp = {.free_failures = (unsigned)dmt_config_int(cfg, "cira.auth_free_failures", 3),
                              .window_ms = 10u * 60u * 1000u, .base_block_ms = 1000,
                              .max_block_ms = (uint64_t)dmt_config_int(cfg, "cira.auth_block_max_ms", 300000),
                              .max_entries = 200000};
  limiter_init(&s->by_guid, &lp);
  lp.free_failures = (unsigned)dmt_config_int(cfg, "cira.auth_source_free_failures", 100);
  lp.max_entries = 100000;
  limiter_init(&s->by_source, &lp);
}

static int start_mqtt(struct cira_server *s, struct dmt_config *cfg, char *err, size_t errlen) {
  msgpack_sbuffer will;
  msgpack_sbuffer_init(&will);
  struct dmt_instance_status offline = {.instance = s->instance, .agent = "cira", .online = false,
                                        .present = DMT_INSTANCE_STATUS_ONLINE};
  dmt_instance_status_encode(&offline, &will, err, errlen);
  char will_topic[192];
  snprintf(will_topic, sizeof will_topic, "dmt/_sys/instances/%.127s", s->instance);
  struct dmt_mqtt_opts mo = {.url = dmt_config_str(cfg, "mqtt.url"), .client_id = s->instance,
                             .username = dmt_config_str(cfg, "mqtt.username"),
                             .password = dmt_config_str(cfg, "mqtt.password"),
                             .ca_file = dmt_config_str(cfg, "mqtt.ca_file"),
                             .cert_file = dmt_config_str(cfg, "mqtt.cert_file"),
                             .key_file = dmt_config_str(cfg, "mqtt.key_file"), .keepalive_s = 15,
                             .will_topic = will_topic, .will_payload = will.data, .will_len = will.size,
                             .will_retain = true, .max_buffered = 400000, .log = &s->log,
                             .owner = dmt_loop_workq(s->loop), .on_message = on_mqtt_message,
                             .on_connection = on_mqtt_connection, .ud = s};
  s->mqtt = dmt_mqtt_new(&mo, err, errlen);
  msgpack_sbuffer_destroy(&will);
  return s->mqtt && dmt_mqtt_start(s->mqtt) == 0 ? 0 : -1;
}

int main(int argc, char **argv) {
  struct dmt_config cfg;
  char err[512];
  int rc = dmt_config_startup(&cfg, keys, sizeof keys / sizeof keys[0], argc, argv, "dmt-cira");
  if (rc >= 0) return rc;
  signal(SIGPIPE, SIG_IGN);
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
  dmt_wsman_init();
  struct cira_server *s = &srv;
  s->cfg = &cfg;
  s->listen_fd = -1;
  s->log = (struct dmt_log){.out = stderr, .min = DMT_LOG_INFO, .component = "cira"};
  dmt_log_level_parse(dmt_config_str(&cfg, "log.level"), &s->log.min);
  const char *inst = dmt_config_str(&cfg, "instance.id");
  if (!inst) inst = dmt_config_str(&cfg, "cira.instance_name");
  char host[64] = "host";
  gethostname(host, sizeof host);
  if (inst) snprintf(s->instance, sizeof s->instance, "%s", inst);
  else snprintf(s->instance, sizeof s->instance, "cira-%s-%d", host, (int)getpid());
  read_settings(s, &cfg);
  if (s->set.max_conns + 64 > rl.rlim_cur && rl.rlim_cur != RLIM_INFINITY)
    DMT_WARN(&s->log, "fd_limit", "open_files=%llu max_connections=%u effect=\"at most about %llu devices\"",
             (unsigned long long)rl.rlim_cur, s->set.max_conns, (unsigned long long)rl.rlim_cur - 64);
  dmt_strmap_init(&s->devices);
  commands_init(s);
  events_init(s);
  s->loop = dmt_loop_new();
  dmt_timer_init(&s->batch_timer, on_batch_timer, s);
  dmt_timer_init(&s->housekeeping, housekeeping, s);
  instances_init(s);
  /* Before any thread exists, so every thread inherits the blocked signals and signalfd sees them. */
  int sigs[] = {SIGINT, SIGTERM};
  dmt_loop_on_signals(s->loop, sigs, 2, on_signal, s);

  struct dmt_db_opts dbo = {.dsn = dmt_config_str(&cfg, "db.dsn"), .log = &s->log, .owner = dmt_loop_workq(s->loop),
                            .workers = 2, .max_queue = 400000, .migrate = dmt_config_bool(&cfg, "db.migrate", true)};
  s->db = dmt_db_new(&dbo, err, sizeof err);
  if (!s->db || dmt_db_start(s->db) != 0) {
    DMT_ERROR(&s->log, "db_setup_failed", "error=\"%s\"", err);
    return 1;
  }
  struct dmt_secrets_config sc;
  dmt_secrets_config_from(&cfg, &sc);
  sc.log = &s->log;
  s->secrets = dmt_secrets_open(&sc, err, sizeof err);
  if (!s->secrets) DMT_ERROR(&s->log, "secrets_unavailable", "error=\"%s\" effect=\"devices cannot log in\"", err);

  char cert[512], key[512];
  if (certs_prepare(s, cert, sizeof cert, key, sizeof key, err, sizeof err) != 0) {
    DMT_ERROR(&s->log, "certificates_failed", "error=\"%s\"", err);
    return 1;
  }
  struct dmt_tls_server_opts to = {.cert_file = cert, .key_file = key,
                                   .legacy = dmt_config_bool(&cfg, "cira.tls_legacy", false),
                                   .request_client_cert = true};
  s->tls = dmt_tls_server_ctx(&to, err, sizeof err);
  if (!s->tls) {
    DMT_ERROR(&s->log, "tls_setup_failed", "error=\"%s\"", err);
    return 1;
  }
  /* No server-side session cache: 100k idle devices must not pin 100k sessions (resumption stays
   * possible through stateless tickets). */
  SSL_CTX_set_session_cache_mode(s->tls, SSL_SESS_CACHE_OFF);
  SSL_CTX_set_num_tickets(s->tls, 1);
  if (to.legacy)
    DMT_WARN(&s->log, "tls_legacy_enabled", "min_version=TLSv1 seclevel=0 note=\"only for AMT 11/12 and older\"");

  if (start_mqtt(s, &cfg, err, sizeof err) != 0) {
    DMT_ERROR(&s->log, "mqtt_setup_failed", "error=\"%s\"", err);
    return 1;
  }
  /* Rows still naming us were left by a previous run of this instance: nothing is connected here yet. */
  instances_release_own(s);
  wait_for(s, &s->shutdown_claimed, 15000);

  int port = (int)dmt_config_int(&cfg, "cira.port", 4433);
  if (listener_open(s, dmt_config_str(&cfg, "cira.listen_address"), port) != 0) {
    DMT_ERROR(&s->log, "listen_failed", "port=%d error=\"%s\"", port, strerror(errno));
    return 1;
  }
  int hport = (int)dmt_config_int(&cfg, "health.port", 9090);
  struct dmt_health *health = hport > 0 ? dmt_health_start(s->loop, "0.0.0.0", hport, ready, s) : NULL;
  if (hport > 0 && !health) DMT_WARN(&s->log, "health_listen_failed", "port=%d", hport);
  if (health && s->root_pem) dmt_health_add_static(health, "/api/v1/ciracert", "text/plain", s->root_pem);
  dmt_timer_start(s->loop, &s->housekeeping, 1000);
  DMT_INFO(&s->log, "cira_started", "instance=%s port=%d keepalive_s=%u window=%u tls_legacy=%d root=%s", s->instance,
           port, s->set.keepalive_s, s->set.window, to.legacy, s->root_pem_path);

  dmt_loop_run(s->loop);

  DMT_INFO(&s->log, "cira_stopping", "devices=%zu", s->devices.len);
  listener_close(s);
  dmt_health_stop(health);
  shutdown_gracefully(s);
  dmt_db_free(s->db, 2000);
  dmt_workq_run(dmt_loop_workq(s->loop)); /* database completions may still publish */
  dmt_mqtt_free(s->mqtt);
  s->mqtt = NULL;
  dmt_workq_run(dmt_loop_workq(s->loop)); /* MQTT tasks left: ignored */
  dmt_secrets_close(s->secrets);
  limiter_free(&s->by_source);
  limiter_free(&s->by_guid);
  dmt_strmap_free(&s->devices);
  commands_free(s);
  power_wait_free(s);
  state_batch_free(s);
  dmt_timer_stop(s->loop, &s->housekeeping);
  dmt_timer_stop(s->loop, &s->batch_timer);
  dmt_timer_stop(s->loop, &s->events_timer);
  dmt_timer_stop(s->loop, &s->reassert_timer);
  SSL_CTX_free(s->tls);
  free(s->root_pem);
  dmt_loop_free(s->loop);
  dmt_config_free(&cfg);
  return 0;
}
