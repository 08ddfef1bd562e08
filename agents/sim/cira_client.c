/*
 * The device side of CIRA: a TLS client to the configured MPS, verifying the
 * server against the root RPS installed (AddTrustedRootCertificate), then APF
 * in the order real firmware sends it (mps-cira.md §1.6):
 *   PROTOCOLVERSION (1.0, trigger PERIODIC, the raw UUID) and
 *   SERVICE_REQUEST auth@amt.intel.com, then USERAUTH_REQUEST (password
 *   method, service pfwd@amt.intel.com), SERVICE_REQUEST pfwd@amt.intel.com,
 *   one GLOBAL_REQUEST tcpip-forward per AMT port (16993, 16992, 664, 623,
 *   16995, 16994, 5900) each waiting for its REQUEST_SUCCESS, then
 *   KEEPALIVE_OPTIONS_REPLY to the server's options and KEEPALIVE_REQUEST at
 *   the negotiated interval; DISCONNECT when it leaves on purpose.
 * One heap timer per device is the connect/handshake deadline, the keepalive
 * tick, the reconnect back-off or the firmware boot delay, by state.
 *
 * Reconnects: firmware retries on its periodic policy (RPS installs one with
 * a 25 s interval). The simulator retries after sim.reconnect_min_ms,
 * doubling per consecutive failure up to sim.reconnect_max_ms (default: the
 * device's policy interval), spread +-50% so a restarted MPS is not hit by
 * the whole fleet in the same millisecond.
 */
#include <openssl/rand.h>
#include <stdlib.h>
#include <string.h>

#include "dmt/apf.h"
#include "sim.h"

#define HANDSHAKE_DEADLINE_MS 30000u
#define DISCONNECT_BY_APPLICATION 11u
static const uint32_t amt_ports[] = {16993, 16992, 664, 623, 16995, 16994, 5900};
#define NPORTS (sizeof amt_ports / sizeof amt_ports[0])

static void on_timer(struct dmt_loop *loop, struct dmt_timer *t);
static void connect_now(struct sim_device *d);

const char *sim_conn_state_name(uint8_t state) {
  static const char *names[] = {"idle", "connecting", "handshake", "auth", "forwarding", "ready"};
  return state < sizeof names / sizeof names[0] ? names[state] : "?";
}

static unsigned reconnect_delay(struct sim_device *d) {
  struct sim *s = d->sim;
  uint64_t cap = s->reconnect_max_ms;
  if (!cap) cap = (uint64_t)(d->cira && d->cira->periodic_interval_s ? d->cira->periodic_interval_s : 25) * 1000u;
  uint64_t delay = (uint64_t)s->reconnect_min_ms << (d->failures < 16 ? d->failures : 16);
  if (delay > cap) delay = cap;
  if (delay < s->reconnect_min_ms) delay = s->reconnect_min_ms;
  if (d->failures < 255) d->failures++;
  uint32_t r;
  RAND_bytes((uint8_t *)&r, sizeof r);
  return (unsigned)(delay / 2 + r % (delay + 1));
}

static void schedule(struct sim_device *d, uint64_t delay_ms) {
  d->timer.fn = on_timer;
  dmt_timer_start(d->sim->loop, &d->timer, delay_ms);
}

/*
 * Handshake admission: one process plays a whole fleet, so at most
 * sim.max_handshakes devices are between connect() and the end of their APF
 * handshake; the others wait in arrival order and start as slots free up.
 * That keeps a fleet-wide (re)connect wave from trading throughput for
 * heap fragmentation.
 */
static void admit_waiting(struct dmt_loop *loop, struct dmt_timer *t) {
  struct sim *s = t->ud;
  while (s->admission_len && (!s->max_handshakes || s->handshaking < s->max_handshakes)) {
    struct sim_device *d = &s->devices[s->admission[s->admission_head]];
    s->admission_head = (s->admission_head + 1) % s->ndevices;
    s->admission_len--;
    d->waiting = false;
    if (d->state == SIM_IDLE && d->conn.state == SIM_STREAM_CLOSED && !dmt_timer_armed(&d->timer) &&
        sim_device_wants_cira(d))
      connect_now(d);
  }
}

static bool admitted(struct sim_device *d) {
  struct sim *s = d->sim;
  if (!s->max_handshakes || s->handshaking < s->max_handshakes) return true;
  if (!s->admission) s->admission = calloc(s->ndevices, sizeof *s->admission);
  if (!s->admission) return true;
  if (!d->waiting) {
    s->admission[(s->admission_head + s->admission_len) % s->ndevices] = d->index;
    s->admission_len++;
    d->waiting = true;
  }
  return false;
}

static void slot_freed(struct sim *s) {
  if (s->admission_len && !dmt_timer_armed(&s->admit)) dmt_timer_start(s->loop, &s->admit, 0);
}

void sim_cira_fleet_init(struct sim *s) { dmt_timer_init(&s->admit, admit_waiting, s); }

void sim_cira_fleet_free(struct sim *s) {
  dmt_timer_stop(s->loop, &s->admit);
  free(s->admission);
  s->admission = NULL;
  s->admission_len = 0;
}

/* Leaves the handshake/ready bookkeeping of the state the device is in. */
static void leave_state(struct sim_device *d) {
  struct sim *s = d->sim;
  if (d->state == SIM_READY) {
    s->count.disconnects++;
    s->ready_now--;
  } else if (d->state != SIM_IDLE) {
    s->handshaking--;
    slot_freed(s);
  }
}

/* Common teardown; reconnect decides whether a new attempt is scheduled. */
static void teardown(struct sim_device *d, const char *why, bool graceful, bool reconnect) {
  struct sim *s = d->sim;
  if (d->conn.state != SIM_STREAM_CLOSED) {
    DMT_DEBUG(&s->log, "cira_closed", "guid=%s reason=\"%s\"", d->guid, why);
    if (graceful && d->state >= SIM_AUTH) {
      d->conn.on_close = NULL; /* a failing flush must not re-enter */
      dmt_apf_put_disconnect(&d->conn.out, DISCONNECT_BY_APPLICATION);
      sim_stream_flush(&d->conn);
    }
    sim_stream_close(&d->conn, graceful);
  }
  sim_channels_free(d);
  leave_state(d);
  d->state = SIM_IDLE;
  dmt_timer_stop(s->loop, &d->timer);
  if (!reconnect || !sim_device_wants_cira(d)) return;
  /* Like firmware with two MPS in its policy: after a failure, try the other one. */
  if (d->cira->alt_host) d->use_alt = !d->use_alt;
  s->count.reconnects++;
  schedule(d, reconnect_delay(d));
}

void sim_cira_drop(struct sim_device *d, const char *why, bool graceful) { teardown(d, why, graceful, true); }

void sim_cira_stop(struct sim_device *d, bool graceful) { teardown(d, "stopped", graceful, false); }

void sim_cira_flush(struct sim_device *d) {
  if (d->conn.state == SIM_STREAM_OPEN) sim_stream_flush(&d->conn);
}

static void send_next_forward(struct sim_device *d) {
  dmt_apf_put_tcpip_forward(&d->conn.out, false, d->hostname, amt_ports[d->forwards_acked]);
}

static void become_ready(struct sim_device *d) {
  struct sim *s = d->sim;
  d->state = SIM_READY;
  d->failures = 0;
  d->last_rx_ms = dmt_loop_now(s->loop);
  s->count.connected++;
  s->handshaking--;
  slot_freed(s);
  s->ready_now++;
  uint64_t since_start = dmt_wall_ms() - s->start_ms;
  if (!s->half_ready_ms && s->ready_now >= (s->ndevices + 1) / 2) s->half_ready_ms = since_start;
  if (!s->all_ready_ms && s->ready_now == s->ndevices) s->all_ready_ms = since_start;
  DMT_DEBUG(&s->log, "cira_ready", "guid=%s", d->guid);
  if (!d->keepalive_ms) d->keepalive_ms = s->keepalive_default_ms;
  schedule(d, d->keepalive_ms);
}

static void handle(struct sim_device *d, const struct dmt_apf_msg *m) {
  struct sim *s = d->sim;
  struct dmt_buf *out = &d->conn.out;
  switch (m->type) {
    case DMT_APF_SERVICE_ACCEPT:
      if (dmt_apf_str_eq(m->u.service.name, DMT_APF_SERVICE_AUTH) && d->state == SIM_AUTH) {
        const char *pw = (d->faults & SIM_FAULT_WRONG_PASSWORD) ? "Wr0ng-Passw0rd!" : d->cira->password;
        dmt_apf_put_userauth_password(out, d->cira->user, DMT_APF_SERVICE_PFWD, pw);
      } else if (dmt_apf_str_eq(m->u.service.name, DMT_APF_SERVICE_PFWD) && d->state == SIM_AUTH) {
        d->state = SIM_FORWARDING;
        d->forwards_acked = 0;
        send_next_forward(d);
      }
      break;
    case DMT_APF_USERAUTH_SUCCESS:
      dmt_apf_put_service_request(out, DMT_APF_SERVICE_PFWD);
      break;
    case DMT_APF_USERAUTH_FAILURE:
      s->count.auth_failures++;
      DMT_WARN(&s->log, "cira_auth_refused", "guid=%s user=%s", d->guid, d->cira->user);
      sim_cira_drop(d, "authentication refused", true);
      return;
    case DMT_APF_REQUEST_SUCCESS:
      if (d->state != SIM_FORWARDING) break;
      if (++d->forwards_acked < NPORTS) send_next_forward(d);
      else become_ready(d);
      break;
    case DMT_APF_REQUEST_FAILURE:
      if (d->state == SIM_FORWARDING && ++d->forwards_acked < NPORTS) send_next_forward(d);
      else if (d->state == SIM_FORWARDING) become_ready(d);
      break;
    case DMT_APF_KEEPALIVE_OPTIONS_REQUEST:
      dmt_apf_put_keepalive_options_reply(out, m->u.keepalive_options.interval, m->u.keepalive_options.timeout);
      if (m->u.keepalive_options.interval) d->keepalive_ms = m->u.keepalive_options.interval * 1000u;
      d->keepalive_timeout_ms = m->u.keepalive_options.timeout * 1000u;
      if (d->state == SIM_READY) schedule(d, d->keepalive_ms);
      break;
    case DMT_APF_KEEPALIVE_REQUEST:
      dmt_apf_put_keepalive_reply(out, m->u.keepalive.cookie);
      break;
    case DMT_APF_CHANNEL_OPEN:
      if (d->state == SIM_READY)
        sim_channel_open(d, m->u.channel_open.sender, m->u.channel_open.window, m->u.channel_open.target_port);
      else dmt_apf_put_channel_open_failure(out, m->u.channel_open.sender, DMT_APF_OPEN_ADMINISTRATIVELY_PROHIBITED);
      break;
    case DMT_APF_CHANNEL_DATA:
      sim_channel_data(d, m->u.channel_data.recipient, m->u.channel_data.data.p, m->u.channel_data.data.len);
      break;
    case DMT_APF_CHANNEL_WINDOW_ADJUST:
      sim_channel_window(d, m->u.window_adjust.recipient, m->u.window_adjust.bytes);
      break;
    case DMT_APF_CHANNEL_CLOSE:
      sim_channel_closed(d, m->u.channel_close.recipient);
      break;
    case DMT_APF_DISCONNECT:
      sim_cira_drop(d, "server sent DISCONNECT", false);
      return;
    default: /* PROTOCOLVERSION echo (Console), KEEPALIVE_REPLY, SERVICE_ACCEPT of other names */
      break;
  }
}

static void on_data(struct sim_stream *st) {
  struct sim_device *d = st->ud;
  d->last_rx_ms = dmt_loop_now(d->sim->loop);
  while (d->conn.state == SIM_STREAM_OPEN) {
    struct dmt_apf_msg m;
    size_t used;
    int rc = dmt_apf_decode(dmt_buf_ptr(&st->in), dmt_buf_size(&st->in), DMT_APF_DECODE_REQUEST_SUCCESS_PORT, &m,
                            &used);
    if (rc == DMT_APF_NEED_MORE) break;
    if (rc < 0) {
      d->sim->count.protocol_errors++;
      DMT_WARN(&d->sim->log, "apf_error", "guid=%s error=\"%s\"", d->guid, dmt_apf_strerror(rc));
      sim_cira_drop(d, "protocol error", true);
      return;
    }
    handle(d, &m);
    if (d->conn.state != SIM_STREAM_OPEN) return; /* dropped while handling */
    dmt_buf_consume(&st->in, used);
  }
  sim_cira_flush(d);
}

static void on_open(struct sim_stream *st) {
  struct sim_device *d = st->ud;
  d->state = SIM_AUTH;
  d->next_channel_id = 1;
  d->cookie = 0;
  d->keepalive_ms = 0;
  d->keepalive_timeout_ms = 0;
  dmt_apf_put_protocol_version(&st->out, 1, 0, DMT_APF_TRIGGER_PERIODIC, d->uuid);
  dmt_apf_put_service_request(&st->out, DMT_APF_SERVICE_AUTH);
}

static void on_close(struct sim_stream *st, const char *why) {
  struct sim_device *d = st->ud;
  if (d->state < SIM_AUTH && !strncmp(why, "tls", 3)) {
    d->sim->count.tls_failures++;
    DMT_WARN(&d->sim->log, "cira_tls_failed", "guid=%s error=\"%s\"", d->guid, why);
  }
  sim_cira_drop(d, why, false);
}

static void connect_now(struct sim_device *d) {
  struct sim *s = d->sim;
  if (!admitted(d)) return;
  struct sim_cira_config *c = d->cira;
  bool alt = d->use_alt && c->alt_host;
  const char *host = alt ? c->alt_host : c->host;
  unsigned port = alt ? c->alt_port : c->port;
  /* The name firmware checks: the FQDN, or the configured CN when the MPS is an IP address. */
  const char *name = (c->info_format == 3 || c->info_format == 4) && c->cn && !alt ? c->cn : host;
  d->conn.on_open = on_open;
  d->conn.on_data = on_data;
  d->conn.on_close = on_close;
  s->count.connects++;
  s->handshaking++;
  d->state = SIM_CONNECTING;
  schedule(d, HANDSHAKE_DEADLINE_MS);
  d->conn.legacy_tls = d->model->legacy_tls;
  sim_stream_connect(&d->conn, host, port, true, s->verify_server ? d->trust : NULL, name);
}

static void keepalive_tick(struct sim_device *d) {
  struct sim *s = d->sim;
  uint64_t now = dmt_loop_now(s->loop);
  uint64_t limit = d->keepalive_timeout_ms ? (uint64_t)d->keepalive_timeout_ms + d->keepalive_ms
                                           : 3u * (uint64_t)d->keepalive_ms;
  if (now - d->last_rx_ms > limit + 1000u) {
    sim_cira_drop(d, "server silent", false);
    return;
  }
  dmt_apf_put_keepalive_request(&d->conn.out, ++d->cookie);
  s->count.keepalives_sent++;
  sim_cira_flush(d);
  if (d->state == SIM_READY) schedule(d, d->keepalive_ms);
}

static void on_timer(struct dmt_loop *loop, struct dmt_timer *t) {
  struct sim_device *d = t->ud;
  if (d->rebooting) { /* the firmware is back up */
    d->rebooting = false;
    d->state = SIM_IDLE;
    if (sim_device_wants_cira(d)) connect_now(d);
    return;
  }
  if (d->faults & SIM_FAULT_STALL) { /* a hung device does nothing on time */
    schedule(d, 1000);
    return;
  }
  switch (d->state) {
    case SIM_IDLE:
      if (sim_device_wants_cira(d)) connect_now(d);
      break;
    case SIM_READY:
      keepalive_tick(d);
      break;
    default:
      sim_cira_drop(d, "handshake deadline", false);
      break;
  }
}

void sim_cira_reboot(struct sim_device *d, unsigned ms) {
  sim_cira_stop(d, false);
  d->rebooting = true;
  d->failures = 0;
  schedule(d, ms);
}

void sim_cira_start(struct sim_device *d, uint64_t delay_ms) {
  if (d->conn.state != SIM_STREAM_CLOSED || dmt_timer_armed(&d->timer) || !sim_device_wants_cira(d)) return;
  d->state = SIM_IDLE;
  schedule(d, delay_ms);
}

void sim_cira_reconsider(struct sim_device *d) {
  if (d->rebooting) return; /* the boot timer decides */
  bool wants = sim_device_wants_cira(d);
  if (wants && d->state == SIM_IDLE && !dmt_timer_armed(&d->timer)) {
    /* Firmware acts on a new policy shortly after it is committed. */
    sim_cira_start(d, d->sim->reconnect_min_ms);
  } else if (!wants && d->conn.state != SIM_STREAM_CLOSED) {
    sim_cira_stop(d, true);
  } else if (!wants) {
    dmt_timer_stop(d->sim->loop, &d->timer);
  }
}
