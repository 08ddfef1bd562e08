/*
 * The APF session on the terminator side: strict framing and ordering.
 * Before authentication only PROTOCOLVERSION, the auth@ service request and
 * one USERAUTH_REQUEST are accepted; anything else, any malformed or
 * oversized message, an unknown type or global request closes that one
 * connection with DISCONNECT and a log line. While credentials are checked
 * off the loop, further input stays buffered. Keepalives are answered and
 * the options requested once the port forwards are in (mps-cira.md §1.6, §10).
 */
#include <string.h>

#include "dmt/amt_guid.h"
#include "dmt/apf.h"
#include "wsman_client.h"

static void protocol_error(struct cira_conn *c, const char *what) {
  c->srv->count.protocol_errors++;
  conn_close(c, DMT_APF_DISC_PROTOCOL_ERROR, what);
}

static void copy_str(char *dst, size_t cap, struct dmt_apf_str s) {
  size_t n = s.len < cap - 1 ? s.len : cap - 1;
  memcpy(dst, s.p, n);
  dst[n] = '\0';
}

static void maybe_keepalive_options(struct cira_conn *c, uint32_t port) {
  /* MPS asks at port 5900, Console after the 4th forward: do whichever comes first. */
  if (c->keepalive_options_sent || (port != 5900 && c->forwards < 4)) return;
  dmt_apf_put_keepalive_options_request(&c->out, c->srv->keepalive_s, 3 * c->srv->keepalive_s);
  c->keepalive_options_sent = true;
}

/* Returns false when the connection was closed. */
static bool handle_before_auth(struct cira_conn *c, const struct dmt_apf_msg *m) {
  switch (m->type) {
    case DMT_APF_PROTOCOLVERSION:
      if (c->have_version) break;
      c->have_version = true;
      dmt_amt_uuid_to_guid(m->u.protocol_version.uuid, c->guid);
      memcpy(c->uuid, m->u.protocol_version.uuid, 16);
      return true;
    case DMT_APF_SERVICE_REQUEST:
      if (!dmt_apf_str_eq(m->u.service.name, DMT_APF_SERVICE_AUTH)) break;
      dmt_apf_put_service_accept(&c->out, DMT_APF_SERVICE_AUTH);
      return true;
    case DMT_APF_USERAUTH_REQUEST:
      if (!c->have_version || c->auth_requested) break;
      if (!dmt_apf_str_eq(m->u.userauth.method, "password")) break;
      c->auth_requested = true;
      copy_str(c->username, sizeof c->username, m->u.userauth.username);
      copy_str(c->password, sizeof c->password, m->u.userauth.password);
      if (m->u.userauth.password.len >= sizeof c->password || m->u.userauth.username.len >= sizeof c->username) {
        conn_close(c, DMT_APF_DISC_INVALID_CREDENTIALS, "credentials longer than any AMT allows");
        return false;
      }
      auth_begin(c);
      return c->state != CONN_CLOSED;
    case DMT_APF_KEEPALIVE_REQUEST: /* harmless at any time */
      dmt_apf_put_keepalive_reply(&c->out, m->u.keepalive.cookie);
      return true;
    default:
      break;
  }
  protocol_error(c, "message out of order before authentication");
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
        c->forwards++;
        dmt_apf_put_request_success(&c->out, true, m->u.global.port);
        maybe_keepalive_options(c, m->u.global.port);
      } else if (m->u.global.kind == DMT_APF_GLOBAL_CANCEL_TCPIP_FORWARD) {
        dmt_apf_put_request_success(&c->out, false, 0);
      } /* udp-send-to: consumed, no reply (as MPS) */
      return true;
    case DMT_APF_KEEPALIVE_REQUEST:
      dmt_apf_put_keepalive_reply(&c->out, m->u.keepalive.cookie);
      registry_touch(c);
      return true;
    case DMT_APF_KEEPALIVE_REPLY:
    case DMT_APF_KEEPALIVE_OPTIONS_REPLY:
      registry_touch(c);
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
  protocol_error(c, "unexpected APF message");
  return false;
}

void apf_process(struct cira_conn *c) {
  conn_ref(c);
  while (c->state == CONN_APF || c->state == CONN_ACTIVE) {
    struct dmt_apf_msg m;
    size_t used;
    int rc = dmt_apf_decode(dmt_buf_ptr(&c->in), dmt_buf_size(&c->in), 0, &m, &used);
    if (rc == DMT_APF_NEED_MORE) break;
    if (rc < 0) {
      DMT_WARN(&c->srv->log, "apf_malformed", "peer=%s guid=%s error=\"%s\"", c->peer, c->guid[0] ? c->guid : "-",
               dmt_apf_strerror(rc));
      protocol_error(c, dmt_apf_strerror(rc));
      break;
    }
    bool ok = c->state == CONN_ACTIVE ? handle_active(c, &m) : handle_before_auth(c, &m);
    if (!ok) break;
    dmt_buf_consume(&c->in, used);
  }
  if (c->state != CONN_CLOSED) {
    if (dmt_buf_size(&c->in) == 0) dmt_buf_reset(&c->in);
    conn_flush(c);
  }
  conn_unref(c);
}
