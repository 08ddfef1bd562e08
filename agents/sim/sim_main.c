/*
 * dmt-sim: a fleet of simulated Intel AMT devices in one process on one event
 * loop. Devices come from a fleet file (already provisioned with CIRA) or a
 * template (N devices with templated GUIDs); each calls home over CIRA when
 * configured, answers WS-Man through its APF channels (and optionally on a
 * local port), and can be activated or deactivated through RPS by its RPC
 * side. A UNIX control socket injects faults and starts RPC jobs; SIGINT or
 * SIGTERM ends the run, sending DISCONNECT on every tunnel and printing the
 * counters. See docs/simulator.md.
 */
#include <malloc.h>
#include <openssl/evp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dmt/config.h"
#include "dmt/tls.h"
#include "sim.h"

static const struct dmt_config_key keys[] = {
    {"log.level", "DMT_LOG_LEVEL", NULL, "info", "debug, info, warn or error", 0},
    {"sim.fleet", "DMT_SIM_FLEET", NULL, NULL,
     "fleet file (JSON, see docs/simulator.md); without it sim.count devices are generated", 0},
    {"sim.count", "DMT_SIM_COUNT", NULL, "10", "devices to generate when no fleet file is given", 0},
    {"sim.guid_prefix", "DMT_SIM_GUID_PREFIX", NULL, "5a5a0000-0000-4000-8000-",
     "first 24 characters of generated GUIDs (the index fills the last 12 hex digits)", 0},
    {"sim.mode", "DMT_SIM_MODE", NULL, NULL,
     "control mode of generated devices: pre, ccm or acm (default acm with a CIRA password, else pre)", 0},
    {"sim.mps_host", "DMT_SIM_MPS_HOST", NULL, "127.0.0.1", "MPS address(es) of generated devices, comma list", 0},
    {"sim.mps_port", "DMT_SIM_MPS_PORT", NULL, "4433", "MPS port(s) of generated devices, comma list", 0},
    {"sim.mps_username", "DMT_SIM_MPS_USERNAME", NULL, "simuser", "CIRA user name of generated devices", 0},
    {"sim.mps_password", "DMT_SIM_MPS_PASSWORD", NULL, NULL,
     "CIRA password of generated devices (none: generated devices are not CIRA-provisioned)", DMT_CFG_SECRET},
    {"sim.amt_password", "DMT_SIM_AMT_PASSWORD", NULL, "P@ssw0rd1", "AMT admin password of provisioned generated devices",
     DMT_CFG_SECRET},
    {"sim.amt_version", "DMT_SIM_AMT_VERSION", NULL, "16.1.27", "AMT firmware version(s), comma list cycled", 0},
    {"sim.amt_build", "DMT_SIM_AMT_BUILD", NULL, "2225", "AMT firmware build(s), comma list cycled", 0},
    {"sim.amt_sku", "DMT_SIM_AMT_SKU", NULL, "16392", "AMT SKU(s), comma list cycled", 0},
    {"sim.dns_suffix", "DMT_SIM_DNS_SUFFIX", NULL, "vprodemo.com", "DNS suffix of generated devices", 0},
    {"sim.mps_ca", "DMT_SIM_MPS_CA", NULL, NULL,
     "MPS root certificate (PEM) devices trust unless they have their own; without one they cannot verify", 0},
    {"sim.acm_root_hashes", "DMT_SIM_ACM_ROOT_HASHES", NULL, NULL,
     "provisioning root hashes firmware trusts for ACM (hex SHA-1/256/384, comma list)", 0},
    {"sim.acm_roots", "DMT_SIM_ACM_ROOTS", NULL, NULL, "provisioning root certificates (PEM files, comma list) to trust", 0},
    {"sim.state_dir", "DMT_SIM_STATE_DIR", NULL, NULL, "directory for per-device state (survives restarts)", 0},
    {"sim.control", "DMT_SIM_CONTROL", NULL, NULL, "UNIX socket path for the control protocol", 0},
    {"sim.wsman_port", "DMT_SIM_WSMAN_PORT", NULL, "0",
     "local TCP port answering WS-Man for every device (Host header picks the device); 0 = off", 0},
    {"sim.connect_rate", "DMT_SIM_CONNECT_RATE", NULL, "500", "initial connections per second across the fleet", 0},
    {"sim.reconnect_min_ms", "DMT_SIM_RECONNECT_MIN_MS", NULL, "1000", "first reconnect delay", 0},
    {"sim.reconnect_max_ms", "DMT_SIM_RECONNECT_MAX_MS", NULL, "0",
     "longest reconnect delay; 0 = the device's periodic policy interval, as firmware retries", 0},
    {"sim.policy_interval_s", "DMT_SIM_POLICY_INTERVAL_S", NULL, "25",
     "periodic policy interval of fleet devices (RPS installs 25 s)", 0},
    {"sim.keepalive_ms", "DMT_SIM_KEEPALIVE_MS", NULL, "60000",
     "keepalive interval when the server sends no KEEPALIVE_OPTIONS (firmware default)", 0},
    {"sim.boot_ms", "DMT_SIM_BOOT_MS", NULL, "5000", "firmware restart time of the reboot fault", 0},
    {"sim.max_handshakes", "DMT_SIM_MAX_HANDSHAKES", NULL, "256",
     "devices connecting at once (TLS + APF handshake); 0 = no limit", 0},
    {"sim.rpc_url", "DMT_SIM_RPC_URL", NULL, NULL, "RPS WebSocket URL: run sim.rpc_action on every device at start", 0},
    {"sim.rpc_action", "DMT_SIM_RPC_ACTION", NULL, "activate", "activate or deactivate", 0},
    {"sim.rpc_profile", "DMT_SIM_RPC_PROFILE", NULL, NULL, "RPS profile for activate", 0},
    {"sim.rpc_password", "DMT_SIM_RPC_PASSWORD", NULL, NULL, "AMT password for deactivate (default: the fleet's)",
     DMT_CFG_SECRET},
    {"sim.rpc_tenant", "DMT_SIM_RPC_TENANT", NULL, "", "tenantId sent to RPS", 0},
    {"sim.rpc_rate", "DMT_SIM_RPC_RATE", NULL, "50", "RPC jobs started per second", 0},
    {"sim.rpc_ca", "DMT_SIM_RPC_CA", NULL, NULL, "CA (PEM) verifying a wss:// RPS; without it wss is not verified", 0},
    {"sim.insecure", "DMT_SIM_INSECURE", NULL, "false", "do not verify MPS certificates even when a root is known", 0},
    {"sim.tls13", "DMT_SIM_TLS13", NULL, "false", "offer TLS 1.3 (firmware in the field stops at TLS 1.2)", 0},
};

#define HOUSEKEEPING_MS 5000

static struct sim S;
static struct dmt_timer rpc_pacer, housekeeping;
static uint64_t connects_at_last_trim;
static size_t rpc_next;
static const struct dmt_config *CFG;

static void on_signal(struct dmt_loop *loop, int signo, void *ud) { dmt_loop_stop(loop); }

/*
 * TLS handshakes allocate and free far more than an established session
 * keeps; after a wave of connections glibc holds those pages. Returning them
 * keeps the resident size at what the idle fleet really uses.
 */
static void on_housekeeping(struct dmt_loop *loop, struct dmt_timer *t) {
  if (S.count.connects != connects_at_last_trim) {
    connects_at_last_trim = S.count.connects;
    malloc_trim(0);
  }
  dmt_timer_start(loop, t, HOUSEKEEPING_MS);
}

static void raise_fd_limit(struct sim *s) {
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < s->ndevices + 64)
    DMT_WARN(&s->log, "fd_limit", "devices=%zu nofile=%lu hint=\"each connected device needs a descriptor\"",
             s->ndevices, (unsigned long)rl.rlim_cur);
}

/* Starts RPC jobs a few at a time so a fleet-wide activation does not hit RPS all at once. */
static void pace_rpc(struct dmt_loop *loop, struct dmt_timer *t) {
  struct sim *s = &S;
  unsigned rate = (unsigned)dmt_config_int(CFG, "sim.rpc_rate", 50);
  unsigned batch = rate >= 10 ? rate / 10 : 1;
  bool deactivate = !strcmp(dmt_config_str(CFG, "sim.rpc_action"), "deactivate");
  struct sim_rpc_request req = {.action = deactivate ? SIM_RPC_DEACTIVATE : SIM_RPC_ACTIVATE,
                                .url = dmt_config_str(CFG, "sim.rpc_url"),
                                .profile = dmt_config_str(CFG, "sim.rpc_profile"),
                                .password = dmt_config_str(CFG, "sim.rpc_password"),
                                .tenant = dmt_config_str(CFG, "sim.rpc_tenant")};
  for (unsigned i = 0; i < batch && rpc_next < s->ndevices; i++, rpc_next++) {
    char err[256];
    if (sim_rpc_start(&s->devices[rpc_next], &req, err, sizeof err) != 0)
      DMT_WARN(&s->log, "rpc_not_started", "guid=%s error=\"%s\"", s->devices[rpc_next].guid, err);
  }
  if (rpc_next < s->ndevices) dmt_timer_start(loop, t, rate >= 10 ? 100 : 1000 / (rate ? rate : 1));
}

static int add_acm_roots(struct sim *s, const char *list, char *err, size_t errlen) {
  char *copy = strdup(list), *save = NULL;
  int rc = 0;
  for (char *path = strtok_r(copy, ",", &save); path && rc == 0; path = strtok_r(NULL, ",", &save)) {
    const struct sim_cert *c = sim_cert_intern_pem_file(s, path, err, errlen);
    if (!c) {
      rc = -1;
      break;
    }
    char hex[65];
    memcpy(hex, c->sha256_hex, sizeof hex);
    rc = sim_fleet_add_acm_hashes(s, hex);
  }
  free(copy);
  return rc;
}

static int build_fleet(struct sim *s, const struct dmt_config *cfg, char *err, size_t errlen) {
  const char *ca = dmt_config_str(cfg, "sim.mps_ca");
  if (ca) {
    const struct sim_cert *c = sim_cert_intern_pem_file(s, ca, err, errlen);
    if (!c) return -1;
    s->default_trust = sim_trust_with(s, NULL, c);
  }
  const char *rpc_ca = dmt_config_str(cfg, "sim.rpc_ca");
  if (rpc_ca) {
    const struct sim_cert *c = sim_cert_intern_pem_file(s, rpc_ca, err, errlen);
    if (!c) return -1;
    s->rpc_trust = sim_trust_with(s, NULL, c);
  }
  if (sim_fleet_add_acm_hashes(s, dmt_config_str(cfg, "sim.acm_root_hashes")) != 0) {
    snprintf(err, errlen, "sim.acm_root_hashes: not a list of hex SHA-1/256/384 digests");
    return -1;
  }
  const char *roots = dmt_config_str(cfg, "sim.acm_roots");
  if (roots && add_acm_roots(s, roots, err, errlen) != 0) return -1;
  const char *fleet = dmt_config_str(cfg, "sim.fleet");
  if (fleet) return sim_fleet_load(s, fleet, err, errlen);
  struct sim_template t = {.count = (size_t)dmt_config_int(cfg, "sim.count", 10),
                           .guid_prefix = dmt_config_str(cfg, "sim.guid_prefix"),
                           .mps_hosts = dmt_config_str(cfg, "sim.mps_host"),
                           .mps_ports = dmt_config_str(cfg, "sim.mps_port"),
                           .mps_user = dmt_config_str(cfg, "sim.mps_username"),
                           .mps_password = dmt_config_str(cfg, "sim.mps_password"),
                           .amt_password = dmt_config_str(cfg, "sim.amt_password"),
                           .versions = dmt_config_str(cfg, "sim.amt_version"),
                           .builds = dmt_config_str(cfg, "sim.amt_build"),
                           .skus = dmt_config_str(cfg, "sim.amt_sku"),
                           .dns_suffix = dmt_config_str(cfg, "sim.dns_suffix"),
                           .mode = dmt_config_str(cfg, "sim.mode")};
  return sim_fleet_template(s, &t, err, errlen);
}

static void shutdown_fleet(struct sim *s) {
  for (size_t i = 0; i < s->ndevices; i++) {
    struct sim_device *d = &s->devices[i];
    sim_rpc_abort(d);
    sim_cira_stop(d, true); /* DISCONNECT on every tunnel, as a device leaving on purpose */
  }
}

int main(int argc, char **argv) {
  struct dmt_config cfg;
  char err[512];
  int rc = dmt_config_startup(&cfg, keys, sizeof keys / sizeof keys[0], argc, argv, "dmt-sim");
  if (rc >= 0) return rc;
  CFG = &cfg;
  signal(SIGPIPE, SIG_IGN);
  dmt_wsman_init();

  struct sim *s = &S;
  s->log = (struct dmt_log){.out = stderr, .min = DMT_LOG_INFO, .component = "sim"};
  dmt_log_level_parse(dmt_config_str(&cfg, "log.level"), &s->log.min);
  s->loop = dmt_loop_new();
  sim_cira_fleet_init(s);
  s->control_fd = s->wsman_fd = -1;
  const char *state_dir = dmt_config_str(&cfg, "sim.state_dir");
  if (state_dir) {
    mkdir(state_dir, 0700);
    s->state_dir = strdup(state_dir);
  }
  s->connect_rate = (unsigned)dmt_config_int(&cfg, "sim.connect_rate", 500);
  s->reconnect_min_ms = (unsigned)dmt_config_int(&cfg, "sim.reconnect_min_ms", 1000);
  s->reconnect_max_ms = (unsigned)dmt_config_int(&cfg, "sim.reconnect_max_ms", 0);
  s->keepalive_default_ms = (unsigned)dmt_config_int(&cfg, "sim.keepalive_ms", 60000);
  s->policy_interval_s = (unsigned)dmt_config_int(&cfg, "sim.policy_interval_s", 25);
  s->boot_ms = (unsigned)dmt_config_int(&cfg, "sim.boot_ms", 5000);
  s->max_handshakes = (unsigned)dmt_config_int(&cfg, "sim.max_handshakes", 256);
  if (!s->reconnect_min_ms) s->reconnect_min_ms = 1;
  s->verify_server = !dmt_config_bool(&cfg, "sim.insecure", false);

  s->tls = dmt_tls_client_ctx(NULL, false, err, sizeof err);
  if (!s->tls) {
    DMT_ERROR(&s->log, "tls_setup_failed", "error=\"%s\"", err);
    return 1;
  }
  /* AMT firmware speaks TLS 1.2 at most (1.0 and up for AMT 11/12, whose suites net.c narrows per device). */
  SSL_CTX_set_min_proto_version(s->tls, TLS1_VERSION);
  SSL_CTX_set_max_proto_version(s->tls, dmt_config_bool(&cfg, "sim.tls13", false) ? TLS1_3_VERSION : TLS1_2_VERSION);
  if (build_fleet(s, &cfg, err, sizeof err) != 0) {
    DMT_ERROR(&s->log, "fleet_failed", "error=\"%s\"", err);
    return 1;
  }
  raise_fd_limit(s);
  size_t unverified = 0;
  for (size_t i = 0; i < s->ndevices; i++) unverified += s->devices[i].cira && !s->devices[i].trust;
  if (unverified || !s->verify_server)
    DMT_WARN(&s->log, "tls_unverified", "devices=%zu hint=\"give the MPS root (sim.mps_ca) so devices verify it\"",
             s->verify_server ? unverified : s->ndevices);

  const char *control = dmt_config_str(&cfg, "sim.control");
  if (control && sim_control_open(s, control, err, sizeof err) != 0) {
    DMT_ERROR(&s->log, "control_failed", "error=\"%s\"", err);
    return 1;
  }
  long wsman_port = dmt_config_int(&cfg, "sim.wsman_port", 0);
  if (wsman_port > 0 && sim_wsman_listen(s, (unsigned)wsman_port, err, sizeof err) != 0) {
    DMT_ERROR(&s->log, "wsman_listen_failed", "error=\"%s\"", err);
    return 1;
  }
  int sigs[] = {SIGINT, SIGTERM};
  dmt_loop_on_signals(s->loop, sigs, 2, on_signal, s);

  s->start_ms = dmt_wall_ms();
  for (size_t i = 0; i < s->ndevices; i++)
    sim_cira_start(&s->devices[i], s->connect_rate ? (uint64_t)i * 1000u / s->connect_rate : 0);
  dmt_timer_init(&housekeeping, on_housekeeping, NULL);
  dmt_timer_start(s->loop, &housekeeping, HOUSEKEEPING_MS);
  if (dmt_config_str(&cfg, "sim.rpc_url")) {
    dmt_timer_init(&rpc_pacer, pace_rpc, NULL);
    dmt_timer_start(s->loop, &rpc_pacer, 0);
  }
  DMT_INFO(&s->log, "fleet_started", "devices=%zu models=%zu acm_hashes=%zu state_dir=%s", s->ndevices, s->nmodels,
           s->nacm_hashes, s->state_dir ? s->state_dir : "-");

  dmt_loop_run(s->loop);

  shutdown_fleet(s);
  sim_counters_print(s, stdout);
  fflush(stdout);
  for (size_t i = 0; i < s->ndevices; i++) {
    dmt_timer_stop(s->loop, &s->devices[i].timer);
    free(s->devices[i].rpc);
    s->devices[i].rpc = NULL;
  }
  sim_cira_fleet_free(s);
  sim_control_close(s);
  if (s->wsman_fd >= 0) close(s->wsman_fd);
  sim_fleet_free(s);
  free(s->state_dir);
  SSL_CTX_free(s->tls);
  dmt_loop_free(s->loop);
  dmt_config_free(&cfg);
  return 0;
}
