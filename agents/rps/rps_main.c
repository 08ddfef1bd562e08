/*
 * dmt-rps: the RPS agent (DMT RPS replacement on the RPC WebSocket protocol).
 * Activation (CCM, ACM), CIRA configuration, deactivation and maintenance
 * for rpc-go clients on one libwebsockets loop, with PostgreSQL work on
 * database workers, PKCS#12/RSA work on a signing pool, and events and
 * provisioning commands on MQTT. See docs/rps.md.
 *
 *   dmt-rps [--config FILE] [--name=value ...]   run
 *   dmt-rps --print-flows                        print every flow's state table
 *   dmt-rps --help                               list the settings
 */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dmt/config.h"
#include "dmt/payloads.h"
#include "rps.h"

static const struct dmt_config_key keys[] = {
    DMT_CONFIG_COMMON_KEYS,
    {"rps.port", "DMT_RPS_PORT", "RPS_WEBSOCKETPORT", "8080", "RPC WebSocket port (also /healthz, /readyz)", 0},
    {"rps.listen_address", "DMT_RPS_LISTEN_ADDRESS", NULL, "0.0.0.0", "address the WebSocket listener binds", 0},
    {"rps.tls_cert_file", "DMT_RPS_TLS_CERT_FILE", NULL, NULL,
     "server certificate (PEM) for wss:// on the same port; plain ws:// when unset (as DMT behind a gateway)", 0},
    {"rps.tls_key_file", "DMT_RPS_TLS_KEY_FILE", NULL, NULL, "key of rps.tls_cert_file", DMT_CFG_SECRET},
    {"rps.delay_ms", "DMT_RPS_DELAY_MS", NULL, "12000",
     "wait after Setup/AdminSetup before talking to AMT as admin (DMT's delay_timer, 12 s)", 0},
    {"rps.wsman_timeout_ms", "DMT_RPS_WSMAN_TIMEOUT_MS", NULL, "12000", "time allowed for one WS-Man answer", 0},
    {"rps.wsman_attempts", "DMT_RPS_WSMAN_ATTEMPTS", "RPS_WSMAN_MAX_ATTEMPTS", "3",
     "sends of one WS-Man request before its step fails (never re-sent: AdminSetup, UpgradeClientToAdmin)", 0},
    {"rps.job_timeout_ms", "DMT_RPS_JOB_TIMEOUT_MS", NULL, "600000", "a whole job's deadline (DMT has none)", 0},
    {"rps.idle_timeout_ms", "DMT_RPS_IDLE_TIMEOUT_MS", NULL, "60000", "a connection without a job is closed after", 0},
    {"rps.relay_timeout_ms", "DMT_RPS_RELAY_TIMEOUT_MS", NULL, "30000",
     "remote deactivation: time the terminator may take (capped by the request's deadline)", 0},
    {"rps.max_connections", "DMT_RPS_MAX_CONNECTIONS", NULL, "20000", "WebSocket connections beyond this are refused",
     0},
    {"rps.time_sync", "DMT_RPS_TIME_SYNC", NULL, "true", "synchronise AMT's clock after activation", 0},
    {"rps.cira_interval_s", "DMT_RPS_CIRA_INTERVAL_S", NULL, "25",
     "interval of the periodic CIRA policy (seconds between the device's connection attempts)", 0},
    {"rps.disable_cira_domain_name", "DMT_RPS_DISABLE_CIRA_DOMAIN_NAME", "RPS_DISABLE_CIRA_DOMAIN_NAME", NULL,
     "environment detection domain written to AMT (default: a random <uuid>.com)", 0},
    {"rps.sign_workers", "DMT_RPS_SIGN_WORKERS", NULL, "0", "signing/PKCS#12 threads (0 = one per CPU)", 0},
    {"rps.db_workers", "DMT_RPS_DB_WORKERS", NULL, "4", "database worker threads", 0},
    {"rps.chain_cache_ms", "DMT_RPS_CHAIN_CACHE_MS", NULL, "60000",
     "how long a decrypted provisioning certificate is kept in memory", 0},
};

static struct rps srv;
static sigset_t blocked;

static void *signal_thread(void *arg) {
  struct rps *s = arg;
  int sig;
  while (sigwait(&blocked, &sig) == 0) {
    s->stopping = 1;
    if (s->lws) lws_cancel_service(s->lws);
    if (sig == SIGTERM || sig == SIGINT) break;
  }
  return NULL;
}

static void wake(void *arg) {
  struct rps *s = arg;
  if (s->lws) lws_cancel_service(s->lws);
}

static void on_mqtt_message(void *ud, const struct dmt_mqtt_msg *m) { provisioning_on_message(ud, m); }

static void housekeeping(lws_sorted_usec_list_t *sul) {
  struct rps *s = lws_container_of(sul, struct rps, housekeeping);
  provisioning_expire(s);
  chain_cache_expire(s, false);
  rps_timer_start(s, &s->housekeeping, housekeeping, 10000);
}

static unsigned cpus(void) {
  long n = sysconf(_SC_NPROCESSORS_ONLN);
  return n > 0 ? (unsigned)n : 1;
}

static void print_flows(void) {
  const struct flow *all[] = {&flow_ccm, &flow_acm, &flow_reconfigure, &flow_post_activation, &flow_timesync,
                              &flow_unconfigure, &flow_network, &flow_features, &flow_cira, &flow_deactivate_local,
                              &flow_deactivate_remote, &flow_maintenance, &flow_change_password, &flow_sync_hostname,
                              &flow_sync_ip, &flow_sync_device_info};
  for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
    flow_print(all[i], stdout);
    fputc('\n', stdout);
  }
}

int main(int argc, char **argv) {
  if (argc == 2 && !strcmp(argv[1], "--print-flows")) {
    print_flows();
    return 0;
  }
  struct dmt_config cfg;
  char err[512];
  int rc = dmt_config_startup(&cfg, keys, sizeof keys / sizeof keys[0], argc, argv, "dmt-rps");
  if (rc >= 0) return rc;
  struct rps *s = &srv;
  s->cfg = &cfg;
  s->log = (struct dmt_log){.out = stderr, .min = DMT_LOG_INFO, .component = "rps"};
  dmt_log_level_parse(dmt_config_str(&cfg, "log.level"), &s->log.min);
  char host[64] = "host";
  gethostname(host, sizeof host);
  const char *inst = dmt_config_str(&cfg, "instance.id");
  if (inst) snprintf(s->instance, sizeof s->instance, "%s", inst);
  else snprintf(s->instance, sizeof s->instance, "rps-%s-%d", host, (int)getpid());
  s->set = (struct rps_settings){
      .delay_ms = (unsigned)dmt_config_int(&cfg, "rps.delay_ms", 12000),
      .wsman_timeout_ms = (unsigned)dmt_config_int(&cfg, "rps.wsman_timeout_ms", 12000),
      .wsman_attempts = (unsigned)dmt_config_int(&cfg, "rps.wsman_attempts", 3),
      .job_timeout_ms = (unsigned)dmt_config_int(&cfg, "rps.job_timeout_ms", 600000),
      .idle_timeout_ms = (unsigned)dmt_config_int(&cfg, "rps.idle_timeout_ms", 60000),
      .relay_timeout_ms = (unsigned)dmt_config_int(&cfg, "rps.relay_timeout_ms", 30000),
      .time_sync = dmt_config_bool(&cfg, "rps.time_sync", true),
      .cira_interval_s = (unsigned)dmt_config_int(&cfg, "rps.cira_interval_s", 25),
      .disable_cira_domain_name = dmt_config_str(&cfg, "rps.disable_cira_domain_name"),
      .max_connections = (size_t)dmt_config_int(&cfg, "rps.max_connections", 20000),
      .chain_cache_ms = (unsigned)dmt_config_int(&cfg, "rps.chain_cache_ms", 60000),
  };
  if (s->set.wsman_attempts < 1) s->set.wsman_attempts = 1;
  signal(SIGPIPE, SIG_IGN);
  /* Before any thread exists: every thread inherits the mask, the signal thread takes them. */
  sigemptyset(&blocked);
  sigaddset(&blocked, SIGINT);
  sigaddset(&blocked, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &blocked, NULL);
  dmt_wsman_init();
  if (acm_init_providers() != 0) DMT_WARN(&s->log, "openssl_legacy_provider_missing", "effect=\"RC2/3DES PKCS#12 files cannot be read\"");
  dmt_workq_init(&s->q, wake, s);
  dmt_strmap_init(&s->chains);
  dmt_strmap_init(&s->commands);
  dmt_strmap_init(&s->relays);
  dmt_strmap_init(&s->active);

  if (ws_server_start(s, err, sizeof err) != 0) {
    DMT_ERROR(&s->log, "listen_failed", "error=\"%s\"", err);
    return 1;
  }
  long workers = dmt_config_int(&cfg, "rps.sign_workers", 0);
  s->pool = work_pool_new(workers > 0 ? (unsigned)workers : cpus(), &s->q);
  struct dmt_db_opts dbo = {.dsn = dmt_config_str(&cfg, "db.dsn"), .log = &s->log, .owner = &s->q,
                            .workers = (int)dmt_config_int(&cfg, "rps.db_workers", 4),
                            .migrate = dmt_config_bool(&cfg, "db.migrate", true)};
  s->db = dmt_db_new(&dbo, err, sizeof err);
  if (!s->pool || !s->db || dmt_db_start(s->db) != 0) {
    DMT_ERROR(&s->log, "setup_failed", "error=\"%s\"", s->pool ? err : "no signing threads");
    return 1;
  }
  struct dmt_secrets_config sc;
  dmt_secrets_config_from(&cfg, &sc);
  sc.log = &s->log;
  s->secrets = dmt_secrets_open(&sc, err, sizeof err);
  if (!s->secrets) DMT_ERROR(&s->log, "secrets_unavailable", "error=\"%s\" effect=\"every job will fail\"", err);
  struct dmt_mqtt_opts mo = {.url = dmt_config_str(&cfg, "mqtt.url"), .client_id = s->instance,
                             .username = dmt_config_str(&cfg, "mqtt.username"),
                             .password = dmt_config_str(&cfg, "mqtt.password"),
                             .ca_file = dmt_config_str(&cfg, "mqtt.ca_file"),
                             .cert_file = dmt_config_str(&cfg, "mqtt.cert_file"),
                             .key_file = dmt_config_str(&cfg, "mqtt.key_file"), .keepalive_s = 15, .log = &s->log,
                             .owner = &s->q, .on_message = on_mqtt_message, .ud = s};
  s->mqtt = dmt_mqtt_new(&mo, err, sizeof err);
  if (!s->mqtt || dmt_mqtt_start(s->mqtt) != 0 || provisioning_cmd_start(s) != 0) {
    DMT_ERROR(&s->log, "mqtt_setup_failed", "error=\"%s\"", err);
    return 1;
  }
  pthread_t sigt;
  pthread_create(&sigt, NULL, signal_thread, s);
  rps_timer_start(s, &s->housekeeping, housekeeping, 10000);
  DMT_INFO(&s->log, "rps_started", "instance=%s port=%ld tls=%s delay_ms=%u sign_workers=%ld", s->instance,
           dmt_config_int(&cfg, "rps.port", 8080), dmt_config_str(&cfg, "rps.tls_cert_file") ? "on" : "off",
           s->set.delay_ms, workers > 0 ? workers : (long)cpus());

  while (!s->stopping)
    if (lws_service(s->lws, 0) < 0) break;

  DMT_INFO(&s->log, "rps_stopping", "connections=%zu jobs=%zu ok=%llu failed=%llu", s->nconns, s->njobs,
           (unsigned long long)s->count.jobs_ok, (unsigned long long)s->count.jobs_failed);
  /* Close every connection and keep serving until their jobs have ended and saved what they must. */
  ws_server_close_all(s);
  uint64_t until = rps_now_us() + 10000000u;
  while ((s->njobs > 0 || s->nconns > 0) && rps_now_us() < until)
    if (lws_service(s->lws, 0) < 0) break;
  if (s->njobs) DMT_WARN(&s->log, "jobs_left_at_exit", "jobs=%zu", s->njobs);
  rps_timer_stop(&s->housekeeping);
  work_pool_free(s->pool); /* finishes queued signing work; completions wait in the queue */
  dmt_db_free(s->db, 5000); /* drains record writes and events */
  size_t left = dmt_mqtt_drain(s->mqtt, 5000);
  if (left) DMT_WARN(&s->log, "mqtt_unsent_at_exit", "messages=%zu", left);
  dmt_mqtt_free(s->mqtt);
  dmt_workq_run(&s->q);
  ws_server_stop(s); /* last: no thread can wake the loop any more */
  dmt_workq_destroy(&s->q);
  chain_cache_expire(s, true);
  dmt_strmap_free(&s->chains);
  dmt_strmap_free(&s->relays);
  dmt_strmap_free(&s->active);
  provisioning_free(s);
  dmt_secrets_close(s->secrets);
  acm_release_providers();
  pthread_cancel(sigt);
  pthread_join(sigt, NULL);
  dmt_config_free(&cfg);
  return 0;
}
