/*
 * dmt-cira: the CIRA terminator (DMT MPS replacement). Holds every device's
 * CIRA connection on one event loop, publishes device state and events on
 * MQTT and executes the commands addressed to the devices it holds. See
 * docs/cira.md.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <malloc.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "dmt/apf.h"
#include "dmt/config.h"
#include "dmt/health.h"
#include "dmt/payloads.h"
#include "dmt/tls.h"
#include "dmt/wsman.h"
#include "wsman_client.h"

static const struct dmt_config_key keys[] = {
    DMT_CONFIG_COMMON_KEYS,
    {"cira.listen_address", "DMT_CIRA_LISTEN_ADDRESS", NULL, "0.0.0.0", "address the CIRA listener binds", 0},
    {"cira.port", "DMT_CIRA_PORT", "MPS_PORT", "4433", "CIRA TLS port devices connect to", 0},
    {"cira.common_name", "DMT_CIRA_COMMON_NAME", "MPS_COMMON_NAME", "localhost",
     "the MPS address configured into devices; the generated server certificate's name", 0},
    {"cira.cert_file", "DMT_CIRA_CERT_FILE", NULL, NULL, "server certificate chain (PEM); generated when unset", 0},
    {"cira.key_file", "DMT_CIRA_KEY_FILE", NULL, NULL, "server key (PEM)", DMT_CFG_SECRET},
    {"cira.root_file", "DMT_CIRA_ROOT_FILE", NULL, NULL, "root CA that devices trust (PEM), with cert_file", 0},
    {"cira.runtime_dir", "DMT_CIRA_RUNTIME_DIR", NULL, "/tmp", "where generated certificates are written for TLS", 0},
    {"cira.tls_legacy", "DMT_CIRA_TLS_LEGACY", NULL, "false",
     "allow TLS 1.0/1.1 and RSA key exchange (AMT 11/12 and older need it; off by default)", 0},
    {"cira.keepalive_s", "DMT_CIRA_KEEPALIVE_S", NULL, "30",
     "keepalive interval asked of devices; a device silent for three intervals is dropped", 0},
    {"cira.window", "DMT_CIRA_WINDOW", "MPS_CIRA_WINDOW_SIZE", "81920", "APF channel receive window (32768-1048576)", 0},
    {"cira.max_inflight", "DMT_CIRA_MAX_INFLIGHT", NULL, "3", "WS-Man requests in flight per device", 0},
    {"cira.wsman_timeout_ms", "DMT_CIRA_WSMAN_TIMEOUT_MS", "MPS_TIMEOUT_MS_DEFAULT", "10000",
     "deadline of one WS-Man call (a command's own deadline may be shorter)", 0},
    {"cira.handshake_ms", "DMT_CIRA_HANDSHAKE_MS", NULL, "30000", "time allowed for TLS + APF login", 0},
    {"cira.lastseen_flush_ms", "DMT_CIRA_LASTSEEN_FLUSH_MS", NULL, "15000", "how often last-seen times are written", 0},
    {"cira.max_connections", "DMT_CIRA_MAX_CONNECTIONS", NULL, "200000", "connections beyond this are refused", 0},
    {"health.port", "DMT_HEALTH_PORT", NULL, "9090", "port of /healthz and /readyz (0 = off)", 0},
};

static struct cira_server srv;

static void on_accept(struct dmt_loop *loop, int fd, unsigned ev, void *ud) {
  struct cira_server *s = ud;
  for (int i = 0; i < 64; i++) {
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    int c = accept4(fd, (struct sockaddr *)&ss, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (c < 0) return;
    if (s->nconns >= s->max_conns) {
      close(c);
      continue;
    }
    int one = 1;
    setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    char peer[64] = "?";
    if (ss.ss_family == AF_INET) inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, peer, sizeof peer);
    else if (ss.ss_family == AF_INET6) inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr, peer, sizeof peer);
    conn_accept(s, c, peer);
  }
}

static int listen_on(const char *addr, int port) {
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  if (inet_pton(AF_INET, addr, &a.sin_addr) != 1) return -1;
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0), one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) != 0 || listen(fd, 4096) != 0) {
    if (fd >= 0) close(fd);
    return -1;
  }
  return fd;
}

static void on_mqtt_message(void *ud, const struct dmt_mqtt_msg *m) {
  struct cira_server *s = ud;
  if (!strncmp(m->topic, "dmt/_sys/instances/", 19)) instances_on_message(s, m);
  else commands_on_message(s, m);
}

static void on_mqtt_connection(void *ud, bool up) {
  struct cira_server *s = ud;
  if (up) instances_start(s); /* (re)announce: a broker restart may have lost the retained status */
}

static bool ready(void *ud, char *detail, unsigned len) {
  struct cira_server *s = ud;
  bool mqtt = dmt_mqtt_is_connected(s->mqtt), db = dmt_db_connected(s->db);
  snprintf(detail, len, "mqtt=%s db=%s devices=%zu", mqtt ? "up" : "down", db ? "up" : "down", s->devices.len);
  return mqtt && db;
}

static void free_entry(const char *key, void *value, void *ud) { free(value); }

static void housekeeping(struct dmt_loop *loop, struct dmt_timer *t) {
  struct cira_server *s = t->ud;
  static uint64_t last_flush, last_expire;
  uint64_t now = dmt_loop_now(loop);
  if (now - last_flush >= s->lastseen_flush_ms) {
    registry_flush_lastseen(s);
    last_flush = now;
  }
  if (now - last_expire >= 60000) {
    commands_expire_cache(s);
    /* Handshake storms leave the heap fragmented: hand freed pages back (RSS per connection is a target). */
    malloc_trim(0);
    last_expire = now;
  }
  dmt_timer_start(loop, t, 1000);
}

static void on_signal(struct dmt_loop *loop, int signo, void *ud) { dmt_loop_stop(loop); }

struct active_list {
  struct cira_conn **v;
  size_t n;
};

static void collect(const char *k, void *value, void *ud) {
  struct active_list *l = ud;
  l->v[l->n++] = value;
}

static void shutdown_gracefully(struct cira_server *s) {
  /* Like MPS's clearInstanceStatus, in one statement: every row naming us is released and republished. */
  s->shutting_down = true;
  struct active_list l = {calloc(s->devices.len + 1, sizeof(struct cira_conn *)), 0};
  dmt_strmap_foreach(&s->devices, collect, &l);
  for (size_t i = 0; i < l.n; i++) conn_close(l.v[i], DMT_APF_DISC_BY_APPLICATION, "terminator shutting down");
  free(l.v);
  instances_release_own(s);
  for (int i = 0; i < 500 && !s->shutdown_claimed; i++) {
    usleep(20000);
    dmt_workq_run(dmt_loop_workq(s->loop));
  }
  instances_mark_shutdown(s);
  size_t left = dmt_mqtt_drain(s->mqtt, 10000);
  if (left) DMT_WARN(&s->log, "mqtt_unsent_at_exit", "messages=%zu", left);
}

int main(int argc, char **argv) {
  struct dmt_config cfg;
  char err[512];
  dmt_config_init(&cfg, keys, sizeof keys / sizeof keys[0]);
  int rc = dmt_config_from_args(&cfg, argc, argv, err, sizeof err);
  if (rc != 0) {
    if (rc < 0) fprintf(stderr, "dmt-cira: %s\n", err);
    dmt_config_free(&cfg);
    return rc < 0 ? 2 : 0;
  }
  signal(SIGPIPE, SIG_IGN);
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
  dmt_wsman_init();
  struct cira_server *s = &srv;
  s->cfg = &cfg;
  s->log = (struct dmt_log){.out = stderr, .min = DMT_LOG_INFO, .component = "cira"};
  dmt_log_level_parse(dmt_config_str(&cfg, "log.level"), &s->log.min);
  const char *inst = dmt_config_str(&cfg, "instance.id");
  char host[64] = "host";
  gethostname(host, sizeof host);
  if (inst) snprintf(s->instance, sizeof s->instance, "%s", inst);
  else snprintf(s->instance, sizeof s->instance, "cira-%s-%d", host, (int)getpid());
  s->keepalive_s = (unsigned)dmt_config_int(&cfg, "cira.keepalive_s", 30);
  s->window = (unsigned)dmt_config_int(&cfg, "cira.window", 81920);
  if (s->window < 32768 || s->window > 1048576) s->window = 81920; /* DMT's rule for out-of-range values */
  s->max_inflight = (unsigned)dmt_config_int(&cfg, "cira.max_inflight", 3);
  s->wsman_timeout_ms = (unsigned)dmt_config_int(&cfg, "cira.wsman_timeout_ms", 10000);
  s->handshake_ms = (unsigned)dmt_config_int(&cfg, "cira.handshake_ms", 30000);
  s->lastseen_flush_ms = (unsigned)dmt_config_int(&cfg, "cira.lastseen_flush_ms", 15000);
  s->max_conns = (unsigned)dmt_config_int(&cfg, "cira.max_connections", 200000);
  dmt_strmap_init(&s->devices);
  dmt_strmap_init(&s->throttle);
  dmt_strmap_init(&s->lastseen);
  dmt_strmap_init(&s->recent_cmds);
  s->loop = dmt_loop_new();
  /* Before any thread exists, so every thread inherits the blocked signals and signalfd sees them. */
  int sigs[] = {SIGINT, SIGTERM};
  dmt_loop_on_signals(s->loop, sigs, 2, on_signal, s);

  struct dmt_db_opts dbo = {.dsn = dmt_config_str(&cfg, "db.dsn"), .log = &s->log, .owner = dmt_loop_workq(s->loop),
                            .workers = 2, .migrate = dmt_config_bool(&cfg, "db.migrate", true)};
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
  if (to.legacy) DMT_WARN(&s->log, "tls_legacy_enabled", "min_version=TLSv1 note=\"only for AMT 11/12 and older\"");

  msgpack_sbuffer will;
  msgpack_sbuffer_init(&will);
  struct dmt_instance_status offline = {.instance = s->instance, .agent = "cira", .online = false,
                                        .present = DMT_INSTANCE_STATUS_ONLINE};
  dmt_instance_status_encode(&offline, &will, err, sizeof err);
  char will_topic[192];
  snprintf(will_topic, sizeof will_topic, "dmt/_sys/instances/%.127s", s->instance);
  struct dmt_mqtt_opts mo = {.url = dmt_config_str(&cfg, "mqtt.url"), .client_id = s->instance,
                             .username = dmt_config_str(&cfg, "mqtt.username"),
                             .password = dmt_config_str(&cfg, "mqtt.password"),
                             .ca_file = dmt_config_str(&cfg, "mqtt.ca_file"),
                             .cert_file = dmt_config_str(&cfg, "mqtt.cert_file"),
                             .key_file = dmt_config_str(&cfg, "mqtt.key_file"), .keepalive_s = 15,
                             .will_topic = will_topic, .will_payload = will.data, .will_len = will.size,
                             .will_retain = true, .log = &s->log, .owner = dmt_loop_workq(s->loop),
                             .on_message = on_mqtt_message, .on_connection = on_mqtt_connection, .ud = s};
  s->mqtt = dmt_mqtt_new(&mo, err, sizeof err);
  msgpack_sbuffer_destroy(&will);
  if (!s->mqtt || dmt_mqtt_start(s->mqtt) != 0) {
    DMT_ERROR(&s->log, "mqtt_setup_failed", "error=\"%s\"", err);
    return 1;
  }

  int port = (int)dmt_config_int(&cfg, "cira.port", 4433);
  s->listen_fd = listen_on(dmt_config_str(&cfg, "cira.listen_address"), port);
  if (s->listen_fd < 0) {
    DMT_ERROR(&s->log, "listen_failed", "port=%d error=\"%s\"", port, strerror(errno));
    return 1;
  }
  dmt_loop_watch(s->loop, s->listen_fd, DMT_EV_READ, on_accept, s);
  int hport = (int)dmt_config_int(&cfg, "health.port", 9090);
  struct dmt_health *health = hport > 0 ? dmt_health_start(s->loop, "0.0.0.0", hport, ready, s) : NULL;
  if (hport > 0 && !health) DMT_WARN(&s->log, "health_listen_failed", "port=%d", hport);
  dmt_timer_init(&s->housekeeping, housekeeping, s);
  dmt_timer_start(s->loop, &s->housekeeping, 1000);
  DMT_INFO(&s->log, "cira_started", "instance=%s port=%d keepalive_s=%u window=%u root=%s", s->instance, port,
           s->keepalive_s, s->window, s->root_pem_path);

  dmt_loop_run(s->loop);

  DMT_INFO(&s->log, "cira_stopping", "devices=%zu", s->devices.len);
  dmt_loop_unwatch(s->loop, s->listen_fd);
  close(s->listen_fd);
  dmt_health_stop(health);
  shutdown_gracefully(s);
  dmt_mqtt_free(s->mqtt);
  dmt_db_free(s->db, 2000);
  dmt_workq_run(dmt_loop_workq(s->loop));
  dmt_secrets_close(s->secrets);
  dmt_strmap_foreach(&s->throttle, free_entry, NULL);
  dmt_strmap_free(&s->throttle);
  dmt_strmap_free(&s->devices);
  dmt_strmap_free(&s->lastseen);
  commands_free_cache(s);
  dmt_timer_stop(s->loop, &s->housekeeping);
  SSL_CTX_free(s->tls);
  dmt_loop_free(s->loop);
  dmt_config_free(&cfg);
  return 0;
}
