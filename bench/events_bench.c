/*
 * Event-stream benchmarks (numbers for docs/events.md; nothing is asserted).
 * Run through bench/events_bench.sh (`./dmt bench events`), which provides a
 * PostgreSQL and a Mosquitto the way `./dmt test` does.
 *
 *   pipeline   a publisher standing in for the terminator publishes N event
 *              payloads (QoS 1) as fast as the client allows; one consumer
 *              subscribed like OBaaS counts them: events/s and latency.
 *   terminator the real dmt-cira with D simulated devices: R rounds of
 *              `dmtctl power state --tag lab1` make the terminator emit one
 *              command event per device per round; a consumer counts the
 *              events arriving: events/s from terminator to consumer.
 *   eim        with the same fleet: what EIM pays to track D devices over
 *              MQTT (the retained snapshot once, then bytes per change,
 *              measured on real messages) against polling GET
 *              /api/v1/devices every 10 s (the response measured on the
 *              bridge when agents/bridge/dmt-bridge is built, otherwise
 *              computed from DMT's list row shape over the same device rows);
 *              extrapolated to 10,000 devices per hour.
 *
 * Usage: events_bench [--events N] [--devices D] [--rounds R]
 */
#include <libpq-fe.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "dmt/evloop.h"
#include "dmt/log.h"
#include "dmt/mqtt.h"
#include "dmt/payloads.h"
#include "dmt/workq.h"
#include "dmtctl_stack.h"

/* Wire size of a QoS 1 PUBLISH without properties (MQTT v5) plus its PUBACK. */
static size_t wire_bytes(size_t topic_len, size_t payload_len) {
  size_t rl = 2 + topic_len + 2 + 1 + payload_len, vb = rl < 128 ? 1 : rl < 16384 ? 2 : rl < 2097152 ? 3 : 4;
  return 1 + vb + rl + 4;
}

/* ---- a counting consumer on its own thread-free work queue ---- */

struct counter {
  struct dmt_workq q;
  struct dmt_mqtt *m;
  bool up;
  size_t events, states, retained, bytes_events, bytes_states, bytes_snapshot;
  uint64_t first_ms, last_ms;
  double *lat;
  size_t nlat, caplat;
};

static void counter_msg(void *ud, const struct dmt_mqtt_msg *m) {
  struct counter *c = ud;
  uint64_t now = dmt_wall_ms();
  size_t tl = strlen(m->topic), w = wire_bytes(tl, m->len);
  if (tl > 6 && !strcmp(m->topic + tl - 6, "/state")) {
    c->states++;
    if (m->retained) {
      c->retained++;
      c->bytes_snapshot += w;
    } else {
      c->bytes_states += w;
    }
    return;
  }
  c->events++;
  c->bytes_events += w;
  if (!c->first_ms) c->first_ms = now;
  c->last_ms = now;
  struct dmt_event ev;
  char err[128];
  if (c->lat && dmt_event_decode(m->payload, m->len, &ev, err, sizeof err) == 0) {
    if (c->nlat < c->caplat) c->lat[c->nlat++] = (double)(now - (uint64_t)ev.ts_ms);
    dmt_event_free(&ev);
  }
}

static void counter_conn(void *ud, bool up) { ((struct counter *)ud)->up = up; }

static const struct dmt_log quiet = {.out = NULL, .min = DMT_LOG_WARN, .component = "bench"};

static void counter_open_at(struct counter *c, const char *url, const char *id, const char *const *filters, size_t n,
                            size_t caplat) {
  memset(c, 0, sizeof *c);
  dmt_workq_init(&c->q, NULL, NULL);
  c->caplat = caplat;
  c->lat = caplat ? calloc(caplat, sizeof *c->lat) : NULL;
  struct dmt_mqtt_opts o = {.url = url, .client_id = id, .owner = &c->q, .on_message = counter_msg,
                            .on_connection = counter_conn, .ud = c, .log = &quiet};
  char err[256];
  c->m = dmt_mqtt_new(&o, err, sizeof err);
  for (size_t i = 0; i < n; i++) dmt_mqtt_subscribe(c->m, filters[i], 1);
  dmt_mqtt_start(c->m);
  for (int i = 0; i < 500 && !c->up; i++) {
    dmt_workq_run(&c->q);
    usleep(10000);
  }
  usleep(200000);
}

static void counter_open(struct counter *c, const char *id, const char *const *filters, size_t n, size_t caplat) {
  counter_open_at(c, dmt_test_mqtt_url(), id, filters, n, caplat);
}

static void counter_pump(struct counter *c) { dmt_workq_run(&c->q); }

static void counter_close(struct counter *c) {
  dmt_mqtt_free(c->m);
  dmt_workq_run(&c->q);
  dmt_workq_destroy(&c->q);
  free(c->lat);
}

static int cmp_d(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static double pct(double *v, size_t n, double p) {
  if (!n) return 0;
  qsort(v, n, sizeof *v, cmp_d);
  size_t i = (size_t)(p / 100.0 * (double)(n - 1) + 0.5);
  return v[i];
}

/* ---- pipeline: a publisher standing in for the terminator ---- */

static void bench_pipeline(const char *url, const char *broker_desc, size_t n) {
  char tenant[48], filter[128], topic[192];
  snprintf(tenant, sizeof tenant, "bench-pipe-%d", (int)getpid());
  snprintf(filter, sizeof filter, "dmt/v1/%s/devices/+/events/#", tenant);
  const char *f[] = {filter};
  struct counter c;
  counter_open_at(&c, url, "bench-consumer", f, 1, n);
  struct dmt_workq pq;
  dmt_workq_init(&pq, NULL, NULL);
  struct dmt_mqtt_opts o = {.url = url, .client_id = "bench-publisher", .owner = &pq, .log = &quiet};
  char err[256];
  struct dmt_mqtt *pub = dmt_mqtt_new(&o, err, sizeof err);
  dmt_mqtt_start(pub);
  for (int i = 0; i < 500 && !dmt_mqtt_is_connected(pub); i++) usleep(10000);
  uint64_t t0 = dmt_wall_ms();
  size_t payload_bytes = 0;
  for (size_t i = 0; i < n; i++) {
    char id[48], guid[48];
    snprintf(id, sizeof id, "00000000-0000-4000-8000-%012zx", i & 0xffffffffffffu);
    snprintf(guid, sizeof guid, "6b6b0000-0000-4000-8000-%012zx", i % 10000);
    struct dmt_event ev = {.id = id, .ts_ms = (int64_t)dmt_wall_ms(), .tenant = tenant, .guid = guid, .kind = "command",
                           .action = "power_action", .outcome = "success", .requester = "bench",
                           .source = "cira-bench-0", .message = "power_action: ok", .present = DMT_EVENT_TS_MS};
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    dmt_event_encode(&ev, &sb, err, sizeof err);
    payload_bytes += sb.size;
    snprintf(topic, sizeof topic, "dmt/v1/%s/devices/%s/events/command", tenant, guid);
    struct dmt_mqtt_publish p = {.topic = topic, .payload = sb.data, .len = sb.size, .qos = 1};
    while (dmt_mqtt_publish(pub, &p) != 0) {
      counter_pump(&c);
      usleep(1000);
    }
    msgpack_sbuffer_destroy(&sb);
    if (i % 1000 == 0) counter_pump(&c);
  }
  uint64_t t_pub = dmt_wall_ms() - t0;
  for (int i = 0; i < 12000 && c.events < n; i++) {
    counter_pump(&c);
    usleep(10000);
  }
  double secs = (double)(c.last_ms - c.first_ms) / 1000.0;
  printf("| pipeline: publisher standing in for the terminator -> Mosquitto (%s) -> 1 consumer, QoS 1 | %zu events, "
         "%.0f B payload | published in %.2f s | received %zu in %.2f s: **%.0f events/s** | latency p50 %.0f ms, "
         "p99 %.0f ms |\n",
         broker_desc, n, (double)payload_bytes / (double)n, (double)t_pub / 1000.0, c.events, secs,
         secs > 0 ? (double)c.events / secs : 0, pct(c.lat, c.nlat, 50), pct(c.lat, c.nlat, 99));
  fflush(stdout);
  dmt_mqtt_free(pub);
  dmt_workq_run(&pq);
  dmt_workq_destroy(&pq);
  counter_close(&c);
}

/* ---- the real terminator ---- */

struct measured {
  double snapshot_msg_bytes;   /* wire bytes of one retained state, as a late subscriber gets it */
  double change_bytes;         /* wire bytes EIM receives for one power change (state + power + command events) */
  double disconnect_bytes;     /* ... for one drop-and-reconnect (2 states + 2 events) */
  double row_bytes;            /* one device in GET /api/v1/devices */
  const char *row_source;
  double http_overhead;        /* request + response headers per request */
};

static void run_dmtctl(struct ctl_env *e, const char *a1, const char *a2, const char *a3, const char *a4,
                       const char *a5, const char *a6) {
  struct run r;
  const char *args[] = {a1, a2, a3, a4, a5, a6, NULL};
  run_prog(&r, e, 600000, dmtctl_bin(), args);
  if (r.status != 0 && r.status != 2) fprintf(stderr, "dmtctl %s %s: exit %d\n%s", a1, a2, r.status, r.err);
  run_free(&r);
}

static void bench_terminator(struct stack *s, struct ctl_env *e, int rounds) {
  char filter[128];
  snprintf(filter, sizeof filter, "dmt/v1/%s/devices/+/events/#", s->tenant);
  const char *f[] = {filter};
  struct counter c;
  counter_open(&c, "bench-obaas", f, 1, (size_t)rounds * s->n * 2);
  /* first round makes every power state known (power events), later rounds are command events only */
  run_dmtctl(e, "power", "state", "--tag", "lab1", "--parallel", "512");
  for (int i = 0; i < 300; i++) {
    counter_pump(&c);
    usleep(10000);
  }
  c.events = 0;
  c.first_ms = c.last_ms = 0;
  c.nlat = 0;
  uint64_t t0 = dmt_wall_ms();
  for (int r = 0; r < rounds; r++) {
    run_dmtctl(e, "power", "state", "--tag", "lab1", "--parallel", "512");
    counter_pump(&c);
  }
  size_t want = (size_t)rounds * s->n;
  for (int i = 0; i < 3000 && c.events < want; i++) {
    counter_pump(&c);
    usleep(10000);
  }
  double secs = (double)(c.last_ms - c.first_ms) / 1000.0;
  printf("| terminator (dmt-cira, %zu simulated devices, %d rounds of `dmtctl power state --tag`) -> Mosquitto -> 1 "
         "consumer | %zu command events | wall %.2f s | received %zu in %.2f s: **%.0f events/s** | event latency "
         "(emitted -> received) p50 %.0f ms, p99 %.0f ms |\n",
         s->n, rounds, want, (double)(dmt_wall_ms() - t0) / 1000.0, c.events, secs,
         secs > 0 ? (double)c.events / secs : 0, pct(c.lat, c.nlat, 50), pct(c.lat, c.nlat, 99));
  fflush(stdout);
  counter_close(&c);
}

static bool counter_reached(struct counter *c, size_t states, size_t events, int timeout_ms) {
  for (int i = 0; i < timeout_ms / 10; i++) {
    counter_pump(c);
    if (c->states >= states && c->events >= events) return true;
    usleep(10000);
  }
  return false;
}

/* GET /api/v1/devices?$top=n on the bridge: body bytes per device and header bytes; false if no bridge. */
static bool measure_bridge_rows(struct stack *s, struct measured *m) {
  const char *bin = dmt_test_bin("agents/bridge/dmt-bridge");
  if (access(bin, X_OK) != 0) return false;
  int mps = dmt_test_free_port(), rps = dmt_test_free_port();
  char e[8][800];
  snprintf(e[0], sizeof e[0], "DMT_DB_DSN=%s", s->dsn);
  snprintf(e[1], sizeof e[1], "DMT_MQTT_URL=%s", dmt_test_mqtt_url());
  snprintf(e[2], sizeof e[2], "DMT_BRIDGE_MPS_PORT=%d", mps);
  snprintf(e[3], sizeof e[3], "DMT_BRIDGE_RPS_PORT=%d", rps);
  snprintf(e[4], sizeof e[4], "DMT_HEALTH_PORT=%d", dmt_test_free_port());
  snprintf(e[5], sizeof e[5], "DMT_SECRETS_KEY=%s", s->key);
  snprintf(e[6], sizeof e[6], "DMT_AUTH_STANDALONE_TENANT_HEADER=ActiveProjectID");
  snprintf(e[7], sizeof e[7], "DMT_SECRETS_KEY_ID=test");
  char *env[] = {e[0], e[1], e[2], e[3], e[4], e[5], e[6], e[7], NULL};
  char b[1024], log[700];
  snprintf(b, sizeof b, "%s", bin);
  snprintf(log, sizeof log, "%s/bridge.log", s->dir);
  char *argv[] = {b, NULL};
  pid_t pid = dmt_test_spawn(argv, env, log);
  bool ok = false;
  if (pid > 0 && dmt_test_wait_port(mps, 30000)) {
    char cmd[1200], out[700];
    snprintf(out, sizeof out, "%s/devices.json", s->dir);
    /* one request for the whole fleet, as a poller would */
    snprintf(cmd, sizeof cmd,
             "curl -s -D %s/headers -o %s -H 'ActiveProjectID: %s' 'http://127.0.0.1:%d/api/v1/devices?$top=%zu'",
             s->dir, out, s->tenant, mps, s->n);
    if (system(cmd) == 0) {
      char *body = read_text(out), hp[760];
      snprintf(hp, sizeof hp, "%s/headers", s->dir);
      char *hdr = read_text(hp);
      json_t *j = json_loads(body, 0, NULL);
      if (json_is_array(j) && json_array_size(j) == s->n) {
        m->row_bytes = (double)strlen(body) / (double)s->n;
        m->http_overhead = (double)strlen(hdr) + 180.0; /* response headers + a typical request line and headers */
        m->row_source = "measured on dmt-bridge (GET /api/v1/devices)";
        ok = true;
      }
      json_decref(j);
      free(body);
      free(hdr);
    }
  }
  if (pid > 0) dmt_test_stop(pid, SIGTERM, 10000);
  return ok;
}

/* DMT's list row (mps-cira.md §3.2: list rows omit the timestamps) built from the same dmt.devices rows. */
static void computed_rows(struct stack *s, struct measured *m) {
  PGconn *c = PQconnectdb(s->dsn);
  PGresult *r = PQexec(c, "SELECT avg(length(json_build_object('guid', guid, 'hostname', hostname, 'tags', tags, "
                          "'mpsInstance', mps_instance, 'connectionStatus', connection_status, 'mpsusername', "
                          "mps_username, 'tenantId', tenant_id, 'friendlyName', friendly_name, 'dnsSuffix', dns_suffix, "
                          "'deviceInfo', device_info)::text)) FROM dmt.devices");
  m->row_bytes = PQresultStatus(r) == PGRES_TUPLES_OK ? atof(PQgetvalue(r, 0, 0)) + 1.0 /* comma */ : 0;
  m->row_source = "computed: DMT's list row shape over the same dmt.devices rows (no bridge built)";
  m->http_overhead = 180.0 + 260.0; /* request line and headers; Express-style response headers */
  PQclear(r);
  PQfinish(c);
}

static void bench_eim(struct stack *s, struct ctl_env *e) {
  struct measured m = {0};
  char fs[128], fe[128];
  snprintf(fs, sizeof fs, "dmt/v1/%s/devices/+/state", s->tenant);
  snprintf(fe, sizeof fe, "dmt/v1/%s/devices/+/events/#", s->tenant);
  const char *f[] = {fs, fe};
  struct counter c;
  counter_open(&c, "bench-eim", f, 2, 0);
  counter_reached(&c, s->n, 0, 60000); /* the late joiner's snapshot */
  size_t snap_msgs = c.retained;
  m.snapshot_msg_bytes = snap_msgs ? (double)c.bytes_snapshot / (double)snap_msgs : 0;
  /* 100 power changes */
  size_t k = s->n < 100 ? s->n : 100;
  size_t st0 = c.states, ev0 = c.events, bs0 = c.bytes_states, be0 = c.bytes_events;
  for (size_t i = 0; i < k; i += 10) {
    const char *g[10];
    for (size_t j = 0; j < 10; j++) g[j] = s->devs[(i + j) % s->n].guid;
    struct run r;
    const char *args[] = {"power", "off", g[0], g[1], g[2], g[3], g[4], g[5], g[6], g[7], g[8], g[9], NULL};
    run_prog(&r, e, 60000, dmtctl_bin(), args);
    run_free(&r);
  }
  counter_reached(&c, st0 + k, ev0 + 2 * k, 30000);
  m.change_bytes = (double)((c.bytes_states - bs0) + (c.bytes_events - be0)) / (double)k;
  size_t power_msgs = (c.states - st0) + (c.events - ev0);
  /* 20 drops and reconnects */
  st0 = c.states;
  ev0 = c.events;
  bs0 = c.bytes_states;
  be0 = c.bytes_events;
  for (size_t i = 0; i < 20; i++) stack_sim(s, "fault %s drop", s->devs[(k + i) % s->n].guid);
  counter_reached(&c, st0 + 40, ev0 + 40, 30000);
  m.disconnect_bytes = (double)((c.bytes_states - bs0) + (c.bytes_events - be0)) / 20.0;
  counter_close(&c);

  if (!measure_bridge_rows(s, &m)) computed_rows(s, &m);

  const double fleet = 10000, polls_per_hour = 360;
  printf("\nEIM cost of tracking %.0f devices for one hour (fleet measured: %zu devices)\n\n", fleet, s->n);
  printf("Measured per message (MQTT v5 wire size incl. PUBACK): retained state %.0f B; one power change reaches EIM "
         "as %.1f messages, %.0f B (state + power event + command event); one drop-and-reconnect %.0f B (2 states + 2 "
         "events). DMT list row: %.0f B (%s).\n\n",
         m.snapshot_msg_bytes, (double)power_msgs / (double)k, m.change_bytes, m.disconnect_bytes, m.row_bytes,
         m.row_source);
  printf("| approach | requests or messages / hour | bytes / hour |\n|---|---|---|\n");
  double snap = fleet * m.snapshot_msg_bytes;
  printf("| MQTT: initial snapshot (once per EIM (re)connect) | %.0f messages | %.1f MB |\n", fleet, snap / 1e6);
  const double rates[] = {0.1, 1, 12};
  for (size_t i = 0; i < 3; i++) {
    double msgs = fleet * rates[i] * ((double)power_msgs / (double)k);
    double bytes = fleet * rates[i] * m.change_bytes + 120 * 4; /* + keepalives */
    printf("| MQTT: %g changes per device per hour | %.0f messages | %.2f MB |\n", rates[i], msgs, bytes / 1e6);
  }
  double body = fleet * m.row_bytes + 2;
  printf("| polling GET /api/v1/devices?$top=10000 every 10 s | %.0f requests | %.1f MB |\n", polls_per_hour,
         polls_per_hour * (body + m.http_overhead) / 1e6);
  double pages = ceil(fleet / 25.0);
  printf("| polling with DMT's default page ($top=25) every 10 s | %.0f requests | %.1f MB |\n", polls_per_hour * pages,
         polls_per_hour * (body + pages * m.http_overhead) / 1e6);
  fflush(stdout);
}

int main(int argc, char **argv) {
  size_t events = 200000, devices = 2000;
  int rounds = 5;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!strcmp(argv[i], "--events")) events = strtoul(argv[i + 1], NULL, 10);
    else if (!strcmp(argv[i], "--devices")) devices = strtoul(argv[i + 1], NULL, 10);
    else if (!strcmp(argv[i], "--rounds")) rounds = atoi(argv[i + 1]);
  }
  dmt_test_mqtt_url();
  printf("| scenario | load | send | receive | latency |\n|---|---|---|---|---|\n");
  fflush(stdout);
  if (events) {
    bench_pipeline(dmt_test_mqtt_url(), "the test configuration: max_inflight_messages 20 (default)", events);
    /* the same with a larger in-flight window towards each client */
    char *dir = dmt_test_tmpdir("tunedbroker"), conf[700], log[700], url[64];
    int port = dmt_test_free_port();
    snprintf(conf, sizeof conf, "%s/mosquitto.conf", dir);
    snprintf(log, sizeof log, "%s/mosquitto.log", dir);
    FILE *f = fopen(conf, "w");
    fprintf(f, "listener %d 127.0.0.1\nallow_anonymous true\nmax_queued_messages 1000000\nmax_inflight_messages 1000\n%s",
            port, geteuid() == 0 ? "user root\n" : "");
    fclose(f);
    char *margv[] = {"/usr/sbin/mosquitto", "-c", conf, NULL};
    pid_t broker = dmt_test_spawn(margv, NULL, log);
    snprintf(url, sizeof url, "tcp://127.0.0.1:%d", port);
    if (broker > 0 && dmt_test_wait_port(port, 5000)) bench_pipeline(url, "max_inflight_messages 1000", events);
    dmt_test_stop(broker, SIGTERM, 5000);
    free(dir);
  }
  if (!devices) return 0;
  struct stack s;
  if (stack_start(&s, "bench", devices, "6c6c0000-0000-4000-8000-", NULL) != 0 || !stack_wait_connected(&s, 600000)) {
    fprintf(stderr, "the fleet did not come up\n");
    return 1;
  }
  struct ctl_env e;
  ctl_env_init(&e, dmt_test_mqtt_url(), s.tenant);
  bench_terminator(&s, &e, rounds);
  bench_eim(&s, &e);
  stack_stop(&s);
  return 0;
}
