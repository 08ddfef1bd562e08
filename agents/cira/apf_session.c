/*
 * The APF session on the terminator side: strict framing and ordering
 * (mps-cira.md §1.6, §10). The input buffer is a stream reassembler: a
 * message split across reads waits for the rest, several in one read are
 * handled in turn. Before authentication only PROTOCOLVERSION, the auth@
 * service request, one USERAUTH_REQUEST, keepalives and DISCONNECT are
 * accepted, and the type byte is checked before anything is buffered, so a
 * stranger cannot make us hold a megabyte-sized CHANNEL_DATA. Anything else,
 * any malformed or oversized message, an unknown type or global request
 * closes that one connection with DISCONNECT(PROTOCOL_ERROR) and a log line.
 * While credentials are checked off the loop further input stays buffered.
 * An HTTP request on the CIRA port gets a one-line page, as DMT's MPS does.
 */
#include <string.h>

#include "cira.h"
#include "dmt/amt_guid.h"

static const char http_probe_page[] =
    "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nConnection: close\r\n\r\n"
    "<!DOCTYPE html><html><body>Intel&reg; AMT computers connect here using CIRA.</body></html>";

static void protocol_error(struct cira_conn *c, const char *what) {
  c->srv->count.protocol_errors++;
  DMT_WARN(&c->srv->log, "apf_protocol_error", "peer=%s guid=%s error=\"%s\"", c->peer, c->guid[0] ? c->guid : "-",
           what);
  conn_close(c, DMT_APF_DISC_PROTOCOL_ERROR, what);
}

static bool allowed_before_auth(uint8_t type) {
  return type == DMT_APF_PROTOCOLVERSION || type == DMT_APF_SERVICE_REQUEST || type == DMT_APF_USERAUTH_REQUEST ||
         type == DMT_APF_KEEPALIVE_REQUEST || type == DMT_APF_DISCONNECT;
}

/* MPS asks at port 5900, Console after the 4th forward: whichever comes first (a timer covers the rest). */
static void maybe_keepalive_options(struct cira_conn *c, uint32_t port) {
  if (c->keepalive_options_sent || (port != 5900 && c->forwards < 4)) return;
  dmt_apf_put_keepalive_options_request(&c->out, c->srv->set.keepalive_s, 3 * c->srv->set.keepalive_s);
  c->keepalive_options_sent = true;
}

/* Returns false when the connection was closed or must stop reading (login pending). */
static bool handle_before_auth(struct cira_conn *c, const struct dmt_apf_msg *m) {
  switch (m->type) {
    case DMT_APF_PROTOCOLVERSION:
      if (c->have_version) break;
      c->have_version = true;
      dmt_amt_uuid_to_guid(m->u.protocol_version.uuid, c->guid);
      return true;
    case DMT_APF_SERVICE_REQUEST:
      if (!dmt_apf_str_eq(m->u.service.name, DMT_APF_SERVICE_AUTH)) break;
      dmt_apf_put_service_accept(&c->out, DMT_APF_SERVICE_AUTH);
      return true;
    case DMT_APF_USERAUTH_REQUEST:
      if (!c->have_version || c->auth_requested) break;
      if (!dmt_apf_str_eq(m->u.userauth.method, "password")) break;
      c->auth_requested = true;
      auth_begin(c, &m->u.userauth.username, &m->u.userauth.password);
      return false; /* the rest waits for the verdict */
    case DMT_APF_KEEPALIVE_REQUEST:
      dmt_apf_put_keepalive_reply(&c->out, m->u.keepalive.cookie);
      return true;
    case DMT_APF_DISCONNECT:
      conn_close(c, 0, "device sent DISCONNECT before login");
      return false;
    default:
      break;
  }
  protocol_error(c, "APF message out of order before authentication");
  return false;
}

static bool handle_active(struct cira_conn *c, const struct dmt_apf_msg *m) {
  switch (m->type) {
    case DMT_APF_SERVICE_REQUEST:
      if (!dmt_apf_str_eq(m->u.service.name, DMT_APF_SERVICE_PFWD)) break;
      c->pfwd_accepted = true;
      dmt_apf_put_service_accept(&c->out, DMT_APF_SERVICE_PFWD);
      return true;
    case DMT_APF_GLOBAL_REQUEST:
      if (m->u.global.kind == DMT_APF_GLOBAL_TCPIP_FORWARD) {
        if (!c->pfwd_accepted) break;
        if (c->forwards < UINT8_MAX) c->forwards++;
        dmt_apf_put_request_success(&c->out, true, m->u.global.port);
        maybe_keepalive_options(c, m->u.global.port);
      } else if (m->u.global.kind == DMT_APF_GLOBAL_CANCEL_TCPIP_FORWARD) {
        dmt_apf_put_request_success(&c->out, false, 0);
      } /* udp-send-to: consumed, no reply (as MPS) */
      return true;
    case DMT_APF_KEEPALIVE_REQUEST:
      dmt_apf_put_keepalive_reply(&c->out, m->u.keepalive.cookie);
      lastseen_touch(c);
      power_on_keepalive(c);
      return c->state != CONN_CLOSED;
    case DMT_APF_KEEPALIVE_REPLY:
      lastseen_touch(c);
      return true;
    case DMT_APF_KEEPALIVE_OPTIONS_REPLY:
      DMT_DEBUG(&c->srv->log, "keepalive_options", "guid=%s interval=%u timeout=%u", c->guid,
                m->u.keepalive_options.interval, m->u.keepalive_options.timeout);
      return true;
    case DMT_APF_CHANNEL_OPEN:
      /* AMT-initiated channels (e.g. WS-Eventing) are refused, as MPS does. */
      dmt_apf_put_channel_open_failure(&c->out, m->u.channel_open.sender, DMT_APF_OPEN_UNKNOWN_CHANNEL_TYPE);
      return true;
    case DMT_APF_CHANNEL_OPEN_CONFIRMATION:
      channel_on_confirm(c, m->u.open_confirmation.recipient, m->u.open_confirmation.sender,
                         m->u.open_confirmation.window);
      return c->state != CONN_CLOSED;
    case DMT_APF_CHANNEL_OPEN_FAILURE:
      channel_on_failure(c, m->u.open_failure.recipient);
      return c->state != CONN_CLOSED;
    case DMT_APF_CHANNEL_DATA:
      channel_on_data(c, m->u.channel_data.recipient, m->u.channel_data.data.p, m->u.channel_data.data.len);
      return c->state != CONN_CLOSED;
    case DMT_APF_CHANNEL_WINDOW_ADJUST:
      channel_on_window(c, m->u.window_adjust.recipient, m->u.window_adjust.bytes);
      return c->state != CONN_CLOSED;
    case DMT_APF_CHANNEL_CLOSE:
      channel_on_close(c, m->u.channel_close.recipient);
      return c->state != CONN_CLOSED;
    case DMT_APF_DISCONNECT:
      conn_close(c, 0, "device sent DISCONNECT");
      return false;
    default:
      break;
  }
  protocol_error(c, "unexpected APF message after authentication");
  return false;
}

/* An HTTP client on the CIRA port (a browser, a load-balancer probe): answer and close. */
static bool http_probe(struct cira_conn *c) {
  size_t n = dmt_buf_size(&c->in);
  const uint8_t *p = dmt_buf_ptr(&c->in);
  if (c->any_message || c->state != CONN_APF || n == 0 || (p[0] != 'G' && p[0] != 'H')) return false;
  if (n < 4) return true; /* wait for the method */
  if (memcmp(p, "GET ", 4) != 0 && memcmp(p, "HEAD", 4) != 0) return false;
  c->srv->count.http_probes++;
  dmt_buf_append(&c->out, http_probe_page, sizeof http_probe_page - 1);
  conn_flush(c);
  conn_close(c, 0, "HTTP request on the CIRA port");
  return true;
}

void apf_process(struct cira_conn *c) {
  conn_ref(c);
  if (http_probe(c)) goto out;
  bool consumed = false;
  while (c->state == CONN_APF || c->state == CONN_ACTIVE) {
    size_t avail = dmt_buf_size(&c->in);
    if (avail == 0) break;
    const uint8_t *p = dmt_buf_ptr(&c->in);
    if (c->state == CONN_APF && !allowed_before_auth(p[0])) {
      protocol_error(c, "APF message out of order before authentication");
      break;
    }
    struct dmt_apf_msg m;
    size_t used;
    int rc = dmt_apf_decode(p, avail, 0, &m, &used);
    if (rc == DMT_APF_NEED_MORE) break;
    if (rc < 0) {
      protocol_error(c, dmt_apf_strerror(rc));
      break;
    }
    c->any_message = true;
    bool before = c->state != CONN_ACTIVE;
    bool ok = before ? handle_before_auth(c, &m) : handle_active(c, &m);
    if (c->state == CONN_CLOSED) break;
    dmt_buf_consume(&c->in, used); /* also when the login went off-loop: the message is handled */
    consumed = true;
    if (!ok) break;
  }
  if (c->state != CONN_CLOSED) {
    if (dmt_buf_size(&c->in) == 0) {
      dmt_buf_reset(&c->in);
      c->partial_since_ms = 0;
    } else if (c->state == CONN_ACTIVE && (consumed || !c->partial_since_ms)) {
      /* A new incomplete message starts waiting now; one still incomplete keeps its start time. */
      bool first = !c->partial_since_ms;
      c->partial_since_ms = dmt_loop_now(c->srv->loop);
      if (first) conn_arm_timer(c);
    }
    conn_flush(c);
  }
out:
  conn_unref(c);
}
