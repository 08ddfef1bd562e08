/*
 * The device side of CIRA: a non-blocking TLS client per device on the shared
 * loop, speaking APF in the order real firmware does (mps-cira.md §1.6):
 * PROTOCOLVERSION, auth@ service, USERAUTH, pfwd@ service, one tcpip-forward
 * per AMT port waiting for each reply, then keepalives at the interval the
 * server asked for. One heap timer per device serves as the handshake
 * deadline, the keepalive tick or the reconnect back-off, by state.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "dmt/apf.h"
#include "sim.h"

#define HANDSHAKE_DEADLINE_MS 15000u
static const uint32_t amt_ports[] = {16993, 16992, 664, 623, 16995, 16994, 5900};
#define NPORTS (sizeof amt_ports / sizeof amt_ports[0])

static void on_io(struct dmt_loop *loop, int fd, unsigned ev, void *ud);

static const char *current_host(const struct sim_device *d) { return d->use_alt ? d->alt_host : d->mps_host; }
static void on_timer(struct dmt_loop *loop, struct dmt_timer *t);

static void watch(struct sim_device *d, unsigned events) {
  if (d->faults & SIM_FAULT_STALL) events = 0;
  dmt_loop_watch(d->sim->loop, d->fd, events, on_io, d);
}

static unsigned next_backoff(struct sim_device *d) {
  struct sim *s = d->sim;
  d->backoff_ms = d->backoff_ms ? d->backoff_ms * 2 : s->reconnect_min_ms;
  if (d->backoff_ms > s->reconnect_max_ms) d->backoff_ms = s->reconnect_max_ms;
  /* Spread a fleet's reconnects so a server restart is not hit by all devices in the same millisecond. */
  return d->backoff_ms / 2 + (unsigned)((d->index * 7919u) % (d->backoff_ms / 2 + 1));
}

void sim_cira_drop(struct sim_device *d, const char *why) {
  struct sim *s = d->sim;
  if (d->fd >= 0) {
    DMT_DEBUG(&s->log, "cira_drop", "guid=%s reason=%s", d->guid, why);
    if (d->state == SIM_READY) s->count.disconnects++;
    dmt_loop_unwatch(s->loop, d->fd);
    if (d->ssl) {
      SSL_shutdown(d->ssl);
      SSL_free(d->ssl);
      d->ssl = NULL;
    }
    close(d->fd);
    d->fd = -1;
    ERR_clear_error();
  }
  sim_channels_free(d);
  /* Like firmware with two MPS in its policy: after a failure, try the other one. */
  if (d->alt_host[0]) d->use_alt = !d->use_alt;
  dmt_buf_reset(&d->in);
  dmt_buf_reset(&d->out);
  d->state = SIM_IDLE;
  d->nonce[0] = '\0';
  if (!d->mps_user[0]) return; /* no CIRA configuration: nowhere to call */
  s->count.reconnects++;
  dmt_timer_start(s->loop, &d->timer, next_backoff(d));
}

int sim_cira_send(struct sim_device *d) {
  while (dmt_buf_size(&d->out) > 0 && d->ssl && d->state >= SIM_AUTH) {
    if (d->faults & SIM_FAULT_STALL) return 0;
    size_t n = dmt_buf_size(&d->out);
    int w = SSL_write(d->ssl, dmt_buf_ptr(&d->out), n > 65536 ? 65536 : (int)n);
    if (w > 0) {
      dmt_buf_consume(&d->out, (size_t)w);
      continue;
    }
    int e = SSL_get_error(d->ssl, w);
    if (e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ) {
      watch(d, DMT_EV_READ | DMT_EV_WRITE);
      return 0;
    }
    sim_cira_drop(d, "write failed");
    return -1;
  }
  if (dmt_buf_size(&d->out) == 0) dmt_buf_reset(&d->out); /* idle devices hold no buffers */
  if (d->fd >= 0 && d->state >= SIM_AUTH) watch(d, DMT_EV_READ);
  return 0;
}

static void send_next_forward(struct sim_device *d) {
  dmt_apf_put_tcpip_forward(&d->out, false, d->hostname, amt_ports[d->forwards_acked]);
}

static void become_ready(struct sim_device *d) {
  struct sim *s = d->sim;
  if (d->state == SIM_READY) return;
  d->state = SIM_READY;
  d->backoff_ms = 0;
  d->last_rx_ms = dmt_loop_now(s->loop);
  s->count.connected++;
  DMT_DEBUG(&s->log, "cira_ready", "guid=%s", d->guid);
  if (!d->keepalive_ms) d->keepalive_ms = s->keepalive_default_ms;
  dmt_timer_start(s->loop, &d->timer, d->keepalive_ms);
}

static void handle(struct sim_device *d, const struct dmt_apf_msg *m) {
  struct sim *s = d->sim;
  switch (m->type) {
    case DMT_APF_SERVICE_ACCEPT:
      if (dmt_apf_str_eq(m->u.service.name, DMT_APF_SERVICE_AUTH)) {
        const char *pw = (d->faults & SIM_FAULT_WRONG_PASSWORD) ? "Wr0ng-Passw0rd!" : d->mps_password;
        dmt_apf_put_userauth_password(&d->out, d->mps_user, DMT_APF_SERVICE_PFWD, pw);
      } else if (dmt_apf_str_eq(m->u.service.name, DMT_APF_SERVICE_PFWD)) {
        d->state = SIM_FORWARDING;
        d->forwards_acked = 0;
        send_next_forward(d);
      }
      break;
    case DMT_APF_USERAUTH_SUCCESS:
      dmt_apf_put_service_request(&d->out, DMT_APF_SERVICE_PFWD);
      break;
    case DMT_APF_USERAUTH_FAILURE:
      s->count.auth_failures++;
      sim_cira_drop(d, "authentication refused");
      return;
    case DMT_APF_REQUEST_SUCCESS:
      if (d->state != SIM_FORWARDING) break;
      if (++d->forwards_acked < NPORTS) send_next_forward(d);
      else become_ready(d);
      break;
    case DMT_APF_KEEPALIVE_OPTIONS_REQUEST:
      dmt_apf_put_keepalive_options_reply(&d->out, m->u.keepalive_options.interval, m->u.keepalive_options.timeout);
      if (m->u.keepalive_options.interval) d->keepalive_ms = m->u.keepalive_options.interval * 1000u;
      if (d->state == SIM_READY) dmt_timer_start(s->loop, &d->timer, d->keepalive_ms);
      break;
    case DMT_APF_KEEPALIVE_REQUEST:
      dmt_apf_put_keepalive_reply(&d->out, m->u.keepalive.cookie);
      break;
    case DMT_APF_CHANNEL_OPEN:
      sim_channel_open(d, m->u.channel_open.sender, m->u.channel_open.window, m->u.channel_open.target_port);
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
      sim_cira_drop(d, "server sent DISCONNECT");
      return;
    default: /* PROTOCOLVERSION echo (Console), KEEPALIVE_REPLY, ... */
      break;
  }
}

static void read_available(struct sim_device *d) {
  uint8_t buf[16384];
  const char *eof = NULL; /* the server closed: first handle what it sent before closing */
  for (;;) {
    int r = SSL_read(d->ssl, buf, sizeof buf);
    if (r > 0) {
      if (dmt_buf_append(&d->in, buf, (size_t)r) != 0) {
        sim_cira_drop(d, "input overflow");
        return;
      }
      continue;
    }
    int e = SSL_get_error(d->ssl, r);
    if (e == SSL_ERROR_WANT_READ) break;
    if (e == SSL_ERROR_WANT_WRITE) {
      watch(d, DMT_EV_READ | DMT_EV_WRITE);
      break;
    }
    eof = e == SSL_ERROR_ZERO_RETURN ? "server closed" : "read failed";
    break;
  }
  d->last_rx_ms = dmt_loop_now(d->sim->loop);
  for (;;) {
    struct dmt_apf_msg m;
    size_t used;
    int rc = dmt_apf_decode(dmt_buf_ptr(&d->in), dmt_buf_size(&d->in), DMT_APF_DECODE_REQUEST_SUCCESS_PORT, &m, &used);
    if (rc == DMT_APF_NEED_MORE) break;
    if (rc < 0) {
      DMT_WARN(&d->sim->log, "apf_error", "guid=%s error=\"%s\"", d->guid, dmt_apf_strerror(rc));
      sim_cira_drop(d, "protocol error");
      return;
    }
    handle(d, &m);
    if (d->state == SIM_IDLE) return; /* dropped while handling */
    dmt_buf_consume(&d->in, used);
  }
  if (dmt_buf_size(&d->in) == 0) dmt_buf_reset(&d->in);
  if (eof) sim_cira_drop(d, eof);
  else sim_cira_send(d);
}

static void start_apf(struct sim_device *d) {
  d->state = SIM_AUTH;
  d->next_channel_id = 1;
  d->cookie = 0;
  d->keepalive_ms = 0;
  dmt_apf_put_protocol_version(&d->out, 1, 0, DMT_APF_TRIGGER_PERIODIC, d->uuid);
  dmt_apf_put_service_request(&d->out, DMT_APF_SERVICE_AUTH);
  sim_cira_send(d);
}

static void handshake(struct sim_device *d) {
  int r = SSL_do_handshake(d->ssl);
  if (r == 1) {
    start_apf(d);
    return;
  }
  int e = SSL_get_error(d->ssl, r);
  if (e == SSL_ERROR_WANT_READ) watch(d, DMT_EV_READ);
  else if (e == SSL_ERROR_WANT_WRITE) watch(d, DMT_EV_READ | DMT_EV_WRITE);
  else {
    char detail[256];
    unsigned long ec = ERR_peek_error();
    ERR_error_string_n(ec, detail, sizeof detail);
    DMT_WARN(&d->sim->log, "tls_handshake_failed", "guid=%s error=\"%s\"", d->guid, detail);
    d->sim->count.tls_failures++;
    sim_cira_drop(d, "tls handshake failed");
  }
}

static void tcp_connected(struct sim_device *d) {
  int soerr = 0;
  socklen_t len = sizeof soerr;
  getsockopt(d->fd, SOL_SOCKET, SO_ERROR, &soerr, &len);
  if (soerr) {
    sim_cira_drop(d, "connect failed");
    return;
  }
  d->ssl = SSL_new(d->sim->tls);
  SSL_set_fd(d->ssl, d->fd);
  SSL_set_connect_state(d->ssl);
  if (d->sim->verify_server) {
    /* Firmware checks the MPS name: the FQDN, or the configured CN for an IP address. */
    struct in6_addr a6;
    struct in_addr a4;
    const char *host = current_host(d);
    if (inet_pton(AF_INET, host, &a4) == 1 || inet_pton(AF_INET6, host, &a6) == 1)
      X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(d->ssl), host);
    else {
      SSL_set1_host(d->ssl, host);
      SSL_set_tlsext_host_name(d->ssl, host);
    }
  }
  d->state = SIM_HANDSHAKE;
  handshake(d);
}

static void on_io(struct dmt_loop *loop, int fd, unsigned ev, void *ud) {
  struct sim_device *d = ud;
  switch (d->state) {
    case SIM_CONNECTING:
      if (ev & (DMT_EV_WRITE | DMT_EV_ERROR)) tcp_connected(d);
      break;
    case SIM_HANDSHAKE:
      handshake(d);
      break;
    case SIM_AUTH:
    case SIM_FORWARDING:
    case SIM_READY:
      if (ev & DMT_EV_WRITE && sim_cira_send(d) != 0) return;
      if (ev & DMT_EV_READ) read_available(d);
      break;
    case SIM_IDLE:
      break;
  }
}

static int resolve(const char *host, unsigned port, struct sockaddr_storage *ss, socklen_t *len) {
  struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res = NULL;
  char p[8];
  snprintf(p, sizeof p, "%u", port);
  if (getaddrinfo(host, p, &hints, &res) != 0 || !res) return -1;
  memcpy(ss, res->ai_addr, res->ai_addrlen);
  *len = res->ai_addrlen;
  freeaddrinfo(res);
  return 0;
}

static void connect_now(struct sim_device *d) {
  struct sim *s = d->sim;
  struct sockaddr_storage ss;
  socklen_t len;
  if (resolve(current_host(d), d->use_alt ? d->alt_port : d->mps_port, &ss, &len) != 0) {
    DMT_WARN(&s->log, "resolve_failed", "guid=%s host=%s", d->guid, current_host(d));
    d->state = SIM_IDLE;
    dmt_timer_start(s->loop, &d->timer, next_backoff(d));
    return;
  }
  d->fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (d->fd < 0) {
    d->state = SIM_IDLE;
    dmt_timer_start(s->loop, &d->timer, next_backoff(d));
    return;
  }
  int one = 1;
  setsockopt(d->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  s->count.connects++;
  d->state = SIM_CONNECTING;
  dmt_timer_start(s->loop, &d->timer, HANDSHAKE_DEADLINE_MS);
  if (connect(d->fd, (struct sockaddr *)&ss, len) != 0 && errno != EINPROGRESS) {
    sim_cira_drop(d, "connect failed");
    return;
  }
  watch(d, DMT_EV_WRITE);
}

static void on_timer(struct dmt_loop *loop, struct dmt_timer *t) {
  struct sim_device *d = t->ud;
  if (d->faults & SIM_FAULT_STALL) {
    dmt_timer_start(loop, t, 1000);
    return;
  }
  switch (d->state) {
    case SIM_IDLE:
      connect_now(d);
      break;
    case SIM_READY: {
      /* Firmware gives up on a server that stays silent for three intervals. */
      if (dmt_loop_now(loop) - d->last_rx_ms > 3u * d->keepalive_ms + 1000u) {
        sim_cira_drop(d, "server silent");
        return;
      }
      dmt_apf_put_keepalive_request(&d->out, ++d->cookie);
      d->sim->count.keepalives_sent++;
      if (sim_cira_send(d) == 0) dmt_timer_start(loop, t, d->keepalive_ms);
      break;
    }
    default:
      sim_cira_drop(d, "handshake deadline");
      break;
  }
}

void sim_cira_start(struct sim_device *d, uint64_t delay_ms) {
  dmt_timer_init(&d->timer, on_timer, d);
  d->state = SIM_IDLE;
  dmt_timer_start(d->sim->loop, &d->timer, delay_ms);
}
