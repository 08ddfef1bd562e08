/*
 * dmt-sim: a fleet of simulated Intel AMT devices in one process on one
 * event loop. Each device calls home over CIRA (TLS + APF) to the configured
 * MPS address and answers WS-Man through its APF channels as firmware does.
 * See docs/simulator.md.
 */
#include <malloc.h>
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
    {"sim.fleet", "DMT_SIM_FLEET", NULL, NULL, "fleet file (JSON: {mps:{host,port}, devices:[{guid, amt_password, "
                                               "mps_username, mps_password, ...}]})", 0},
    {"sim.count", "DMT_SIM_COUNT", NULL, "10", "devices to generate when no fleet file is given", 0},
    {"sim.guid_prefix", "DMT_SIM_GUID_PREFIX", NULL, "5a5a0000-0000-4000-8000-",
     "first 24 characters of generated GUIDs (the index fills the last 12 hex digits)", 0},
    {"sim.mps_host", "DMT_SIM_MPS_HOST", NULL, "127.0.0.1", "MPS (CIRA terminator) address for generated devices", 0},
    {"sim.mps_port", "DMT_SIM_MPS_PORT", NULL, "4433", "MPS port for generated devices", 0},
    {"sim.mps_username", "DMT_SIM_MPS_USERNAME", NULL, "simuser", "CIRA user name of generated devices", 0},
    {"sim.mps_password", "DMT_SIM_MPS_PASSWORD", NULL, NULL, "CIRA password of generated devices", DMT_CFG_SECRET},
    {"sim.amt_password", "DMT_SIM_AMT_PASSWORD", NULL, "P@ssw0rd1", "AMT admin password of generated devices",
     DMT_CFG_SECRET},
    {"sim.mps_ca", "DMT_SIM_MPS_CA", NULL, NULL,
     "MPS root certificate (PEM) the devices trust; without it the server is not verified", 0},
    {"sim.state_dir", "DMT_SIM_STATE_DIR", NULL, NULL, "directory for per-device state (survives restarts)", 0},
    {"sim.control", "DMT_SIM_CONTROL", NULL, NULL, "UNIX socket path for the control protocol", 0},
    {"sim.connect_rate", "DMT_SIM_CONNECT_RATE", NULL, "500", "initial connections per second across the fleet", 0},
    {"sim.reconnect_min_ms", "DMT_SIM_RECONNECT_MIN_MS", NULL, "1000", "first reconnect delay", 0},
    {"sim.reconnect_max_ms", "DMT_SIM_RECONNECT_MAX_MS", NULL, "30000", "longest reconnect delay", 0},
    {"sim.keepalive_ms", "DMT_SIM_KEEPALIVE_MS", NULL, "60000",
     "keepalive interval when the server sends no KEEPALIVE_OPTIONS (firmware default)", 0},
};

static void on_signal(struct dmt_loop *loop, int signo, void *ud) { dmt_loop_stop(loop); }

/* A connect storm leaves the heap fragmented; idle fleets hand freed pages back. */
static void trim_heap(struct dmt_loop *loop, struct dmt_timer *t) {
  malloc_trim(0);
  dmt_timer_start(loop, t, 30000);
}

static void raise_fd_limit(void) {
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
}

int main(int argc, char **argv) {
  struct dmt_config cfg;
  char err[512];
  dmt_config_init(&cfg, keys, sizeof keys / sizeof keys[0]);
  int rc = dmt_config_from_args(&cfg, argc, argv, err, sizeof err);
  if (rc != 0) {
    if (rc < 0) fprintf(stderr, "dmt-sim: %s\n", err);
    dmt_config_free(&cfg);
    return rc < 0 ? 2 : 0;
  }
  signal(SIGPIPE, SIG_IGN);
  raise_fd_limit();
  dmt_wsman_init();

  static struct sim s;
  s.log = (struct dmt_log){.out = stderr, .min = DMT_LOG_INFO, .component = "sim"};
  dmt_log_level_parse(dmt_config_str(&cfg, "log.level"), &s.log.min);
  s.loop = dmt_loop_new();
  s.control_fd = -1;
  s.state_dir = dmt_config_str(&cfg, "sim.state_dir");
  if (s.state_dir) mkdir(s.state_dir, 0700);
  s.connect_rate = (unsigned)dmt_config_int(&cfg, "sim.connect_rate", 500);
  s.reconnect_min_ms = (unsigned)dmt_config_int(&cfg, "sim.reconnect_min_ms", 1000);
  s.reconnect_max_ms = (unsigned)dmt_config_int(&cfg, "sim.reconnect_max_ms", 30000);
  if (s.reconnect_max_ms < s.reconnect_min_ms) s.reconnect_max_ms = s.reconnect_min_ms;
  s.keepalive_default_ms = (unsigned)dmt_config_int(&cfg, "sim.keepalive_ms", 60000);

  const char *ca = dmt_config_str(&cfg, "sim.mps_ca");
  s.verify_server = ca != NULL;
  s.tls = dmt_tls_client_ctx(ca, s.verify_server, err, sizeof err);
  if (!s.tls) {
    DMT_ERROR(&s.log, "tls_setup_failed", "error=\"%s\"", err);
    return 1;
  }
  /* AMT firmware speaks TLS 1.2 (and older, on old models): so does the simulated fleet. */
  SSL_CTX_set_max_proto_version(s.tls, TLS1_2_VERSION);
  if (!s.verify_server) DMT_WARN(&s.log, "tls_unverified", "hint=\"set sim.mps_ca to verify the MPS like firmware\"");

  const char *fleet = dmt_config_str(&cfg, "sim.fleet");
  if (fleet) {
    if (sim_fleet_load(&s, fleet, err, sizeof err) != 0) {
      DMT_ERROR(&s.log, "fleet_load_failed", "error=\"%s\"", err);
      return 1;
    }
  } else {
    const char *mps_pw = dmt_config_str(&cfg, "sim.mps_password");
    if (sim_fleet_template(&s, (size_t)dmt_config_int(&cfg, "sim.count", 10), dmt_config_str(&cfg, "sim.guid_prefix"),
                           dmt_config_str(&cfg, "sim.mps_host"), (unsigned)dmt_config_int(&cfg, "sim.mps_port", 4433),
                           dmt_config_str(&cfg, "sim.mps_username"), mps_pw ? mps_pw : "",
                           dmt_config_str(&cfg, "sim.amt_password")) != 0) {
      DMT_ERROR(&s.log, "fleet_template_failed", "hint=\"sim.guid_prefix must be 8-4-4-4- hex\"");
      return 1;
    }
  }
  const char *control = dmt_config_str(&cfg, "sim.control");
  if (control && sim_control_open(&s, control, err, sizeof err) != 0) {
    DMT_ERROR(&s.log, "control_failed", "error=\"%s\"", err);
    return 1;
  }
  int sigs[] = {SIGINT, SIGTERM};
  dmt_loop_on_signals(s.loop, sigs, 2, on_signal, &s);

  for (size_t i = 0; i < s.ndevices; i++)
    sim_cira_start(&s.devices[i], s.connect_rate ? (uint64_t)i * 1000u / s.connect_rate : 0);
  struct dmt_timer trim;
  dmt_timer_init(&trim, trim_heap, NULL);
  dmt_timer_start(s.loop, &trim, 30000);
  DMT_INFO(&s.log, "fleet_started", "devices=%zu verify_server=%d", s.ndevices, s.verify_server);

  dmt_loop_run(s.loop);

  dmt_timer_stop(s.loop, &trim);
  sim_counters_print(&s, stdout);
  for (size_t i = 0; i < s.ndevices; i++) {
    struct sim_device *d = &s.devices[i];
    if (d->fd >= 0) sim_cira_drop(d, "shutdown");
    dmt_timer_stop(s.loop, &d->timer);
    dmt_timer_stop(s.loop, &d->aux);
    dmt_buf_free(&d->in);
    dmt_buf_free(&d->out);
  }
  if (control) unlink(control);
  free(s.devices);
  SSL_CTX_free(s.tls);
  dmt_loop_free(s.loop);
  dmt_config_free(&cfg);
  return 0;
}
