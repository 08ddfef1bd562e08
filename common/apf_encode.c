/*
 * APF encoders (see dmt/apf.h): each appends one message, laid out byte for
 * byte as in ../shared/reference/mps-cira.md §1.4. The whole message is built
 * before it is appended, so a buffer that hits its cap never holds half a
 * message.
 */
#include <string.h>

#include "dmt/apf.h"

/* A message under construction, on the stack; larger ones go straight to out. */
struct msg {
  uint8_t b[512];
  size_t n;
  bool overflow;
};

static void m_u8(struct msg *m, uint8_t v) {
  if (m->n + 1 > sizeof m->b) m->overflow = true;
  else m->b[m->n++] = v;
}

static void m_u32(struct msg *m, uint32_t v) {
  m_u8(m, (uint8_t)(v >> 24));
  m_u8(m, (uint8_t)(v >> 16));
  m_u8(m, (uint8_t)(v >> 8));
  m_u8(m, (uint8_t)v);
}

static void m_bytes(struct msg *m, const void *p, size_t n) {
  if (m->n + n > sizeof m->b) {
    m->overflow = true;
    return;
  }
  memcpy(m->b + m->n, p, n);
  m->n += n;
}

static void m_str(struct msg *m, const char *s) {
  size_t n = s ? strlen(s) : 0;
  m_u32(m, (uint32_t)n);
  m_bytes(m, s, n);
}

static int flush(struct dmt_buf *out, const struct msg *m) {
  return m->overflow ? -1 : dmt_buf_append(out, m->b, m->n);
}

int dmt_apf_put_disconnect(struct dmt_buf *out, uint32_t reason) {
  struct msg m = {.n = 0};
  m_u8(&m, DMT_APF_DISCONNECT);
  m_u32(&m, reason);
  m_u8(&m, 0);
  m_u8(&m, 0);
  return flush(out, &m);
}

static int put_service(struct dmt_buf *out, uint8_t type, const char *name) {
  struct msg m = {.n = 0};
  m_u8(&m, type);
  m_str(&m, name);
  return flush(out, &m);
}

int dmt_apf_put_service_request(struct dmt_buf *out, const char *name) {
  return put_service(out, DMT_APF_SERVICE_REQUEST, name);
}

int dmt_apf_put_service_accept(struct dmt_buf *out, const char *name) {
  return put_service(out, DMT_APF_SERVICE_ACCEPT, name);
}

int dmt_apf_put_userauth_password(struct dmt_buf *out, const char *user, const char *service,
                                  const char *password) {
  struct msg m = {.n = 0};
  m_u8(&m, DMT_APF_USERAUTH_REQUEST);
  m_str(&m, user);
  m_str(&m, service);
  m_str(&m, "password");
  m_u8(&m, 0); /* FALSE: not a password change */
  m_str(&m, password);
  int rc = flush(out, &m);
  memset(m.b, 0, sizeof m.b); /* the password was in it */
  return rc;
}

int dmt_apf_put_userauth_success(struct dmt_buf *out) {
  return dmt_buf_append_u8(out, DMT_APF_USERAUTH_SUCCESS);
}

int dmt_apf_put_userauth_failure(struct dmt_buf *out, bool extra_zero_byte) {
  struct msg m = {.n = 0};
  m_u8(&m, DMT_APF_USERAUTH_FAILURE);
  m_str(&m, "password");
  m_u8(&m, 0); /* partial success: false */
  if (extra_zero_byte) m_u8(&m, 0);
  return flush(out, &m);
}

int dmt_apf_put_tcpip_forward(struct dmt_buf *out, bool cancel, const char *address, uint32_t port) {
  struct msg m = {.n = 0};
  m_u8(&m, DMT_APF_GLOBAL_REQUEST);
  m_str(&m, cancel ? "cancel-tcpip-forward" : "tcpip-forward");
  m_u8(&m, 1); /* want reply, as AMT sets it */
  m_str(&m, address);
  m_u32(&m, port);
  return flush(out, &m);
}

int dmt_apf_put_request_success(struct dmt_buf *out, bool with_port, uint32_t port) {
  struct msg m = {.n = 0};
  m_u8(&m, DMT_APF_REQUEST_SUCCESS);
  if (with_port) m_u32(&m, port);
  return flush(out, &m);
}

int dmt_apf_put_request_failure(struct dmt_buf *out) {
  return dmt_buf_append_u8(out, DMT_APF_REQUEST_FAILURE);
}

int dmt_apf_put_channel_open(struct dmt_buf *out, const char *channel_type, uint32_t sender,
                             uint32_t window, const char *target, uint32_t target_port,
                             const char *originator, uint32_t originator_port) {
  struct msg m = {.n = 0};
  m_u8(&m, DMT_APF_CHANNEL_OPEN);
  m_str(&m, channel_type);
  m_u32(&m, sender);
  m_u32(&m, window);
  m_u32(&m, 0xFFFFFFFFu); /* reserved: SSH's max packet slot, as MPS sends it */
  m_str(&m, target);
  m_u32(&m, target_port);
  m_str(&m, originator);
  m_u32(&m, originator_port);
  return flush(out, &m);
}

int dmt_apf_put_channel_open_confirmation(struct dmt_buf *out, uint32_t recipient, uint32_t sender,
                                          uint32_t window) {
  struct msg m = {.n = 0};
  m_u8(&m, DMT_APF_CHANNEL_OPEN_CONFIRMATION);
  m_u32(&m, recipient);
  m_u32(&m, sender);
  m_u32(&m, window);
  m_u32(&m, 0xFFFFFFFFu);
  return flush(out, &m);
}

int dmt_apf_put_channel_open_failure(struct dmt_buf *out, uint32_t recipient, uint32_t reason) {
  struct msg m = {.n = 0};
  m_u8(&m, DMT_APF_CHANNEL_OPEN_FAILURE);
  m_u32(&m, recipient);
  m_u32(&m, reason);
  m_u32(&m, 0);
  m_u32(&m, 0);
  return flush(out, &m);
}

static int put_u32_msg(struct dmt_buf *out, uint8_t type, uint32_t a) {
  struct msg m = {.n = 0};
  m_u8(&m, type);
  m_u32(&m, a);
  return flush(out, &m);
}

static int put_2u32_msg(struct dmt_buf *out, uint8_t type, uint32_t a, uint32_t b) {
  struct msg m = {.n = 0};
  m_u8(&m, type);
  m_u32(&m, a);
  m_u32(&m, b);
  return flush(out, &m);
}

int dmt_apf_put_window_adjust(struct dmt_buf *out, uint32_t recipient, uint32_t bytes) {
  return put_2u32_msg(out, DMT_APF_CHANNEL_WINDOW_ADJUST, recipient, bytes);
}

int dmt_apf_put_channel_data(struct dmt_buf *out, uint32_t recipient, const void *data, uint32_t len) {
  if (len > DMT_APF_MAX_DATA) return -1;
  struct msg m = {.n = 0};
  m_u8(&m, DMT_APF_CHANNEL_DATA);
  m_u32(&m, recipient);
  m_u32(&m, len);
  uint8_t *w = dmt_buf_reserve(out, m.n + len);
  if (!w) return -1;
  memcpy(w, m.b, m.n);
  if (len) memcpy(w + m.n, data, len);
  dmt_buf_commit(out, m.n + len);
  return 0;
}

int dmt_apf_put_channel_close(struct dmt_buf *out, uint32_t recipient) {
  return put_u32_msg(out, DMT_APF_CHANNEL_CLOSE, recipient);
}

int dmt_apf_put_protocol_version(struct dmt_buf *out, uint32_t major, uint32_t minor,
                                 uint32_t trigger, const uint8_t uuid[16]) {
  static const uint8_t reserved[64];
  struct msg m = {.n = 0};
  m_u8(&m, DMT_APF_PROTOCOLVERSION);
  m_u32(&m, major);
  m_u32(&m, minor);
  m_u32(&m, trigger);
  m_bytes(&m, uuid, 16);
  m_bytes(&m, reserved, sizeof reserved);
  return flush(out, &m);
}

int dmt_apf_put_keepalive_request(struct dmt_buf *out, uint32_t cookie) {
  return put_u32_msg(out, DMT_APF_KEEPALIVE_REQUEST, cookie);
}

int dmt_apf_put_keepalive_reply(struct dmt_buf *out, uint32_t cookie) {
  return put_u32_msg(out, DMT_APF_KEEPALIVE_REPLY, cookie);
}

int dmt_apf_put_keepalive_options_request(struct dmt_buf *out, uint32_t interval, uint32_t timeout) {
  return put_2u32_msg(out, DMT_APF_KEEPALIVE_OPTIONS_REQUEST, interval, timeout);
}

int dmt_apf_put_keepalive_options_reply(struct dmt_buf *out, uint32_t interval, uint32_t timeout) {
  return put_2u32_msg(out, DMT_APF_KEEPALIVE_OPTIONS_REPLY, interval, timeout);
}
