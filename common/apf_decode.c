/*
 * APF decoder (see dmt/apf.h). A cursor walks the input; every read checks
 * the remaining length first, and running out of input means NEED_MORE, never
 * an error, so a message split anywhere across reads is reassembled.
 */
#include <string.h>

#include "dmt/apf.h"

struct cursor {
  const uint8_t *p;
  size_t len, off;
  int status; /* DMT_APF_OK until something fails */
};

static bool have(struct cursor *c, size_t n) {
  if (c->status != DMT_APF_OK) return false;
  if (n > c->len - c->off) {
    c->status = DMT_APF_NEED_MORE;
    return false;
  }
  return true;
}

static uint32_t u32(struct cursor *c) {
  if (!have(c, 4)) return 0;
  const uint8_t *b = c->p + c->off;
  c->off += 4;
  return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
}

static uint8_t u8(struct cursor *c) {
  if (!have(c, 1)) return 0;
  return c->p[c->off++];
}

static struct dmt_apf_str str(struct cursor *c, uint32_t max, int too_long) {
  struct dmt_apf_str s = {NULL, 0};
  uint32_t n = u32(c);
  if (c->status != DMT_APF_OK) return s;
  if (n > max) {
    c->status = too_long;
    return s;
  }
  if (!have(c, n)) return s;
  s.p = c->p + c->off;
  s.len = n;
  c->off += n;
  return s;
}

static struct dmt_apf_str name(struct cursor *c) {
  return str(c, DMT_APF_MAX_STRING, DMT_APF_ERR_STRING_TOO_LONG);
}

bool dmt_apf_str_eq(struct dmt_apf_str s, const char *lit) {
  size_t n = strlen(lit);
  return s.len == n && (n == 0 || memcmp(s.p, lit, n) == 0);
}

static void decode_userauth(struct cursor *c, struct dmt_apf_msg *m) {
  m->u.userauth.username = name(c);
  m->u.userauth.service = name(c);
  m->u.userauth.method = name(c);
  if (c->status != DMT_APF_OK) return;
  if (dmt_apf_str_eq(m->u.userauth.method, "password")) {
    uint8_t change = u8(c);
    if (c->status == DMT_APF_OK && change != 0) {
      c->status = DMT_APF_ERR_BAD_FLAG; /* a password change is never legitimate here */
      return;
    }
    m->u.userauth.password = name(c);
  } else if (!dmt_apf_str_eq(m->u.userauth.method, "none")) {
    c->status = DMT_APF_ERR_UNKNOWN_AUTH_METHOD;
  }
}

static void decode_global(struct cursor *c, struct dmt_apf_msg *m) {
  m->u.global.name = name(c);
  m->u.global.want_reply = u8(c);
  if (c->status != DMT_APF_OK) return;
  if (dmt_apf_str_eq(m->u.global.name, "tcpip-forward")) {
    m->u.global.kind = DMT_APF_GLOBAL_TCPIP_FORWARD;
  } else if (dmt_apf_str_eq(m->u.global.name, "cancel-tcpip-forward")) {
    m->u.global.kind = DMT_APF_GLOBAL_CANCEL_TCPIP_FORWARD;
  } else if (dmt_apf_str_eq(m->u.global.name, "udp-send-to@amt.intel.com")) {
    m->u.global.kind = DMT_APF_GLOBAL_UDP_SEND_TO;
  } else {
    /* Its payload layout is unknown, so skipping it would desync the stream. */
    c->status = DMT_APF_ERR_UNKNOWN_REQUEST;
    return;
  }
  m->u.global.address = name(c);
  m->u.global.port = u32(c);
  if (m->u.global.kind == DMT_APF_GLOBAL_UDP_SEND_TO) {
    m->u.global.originator = name(c);
    m->u.global.originator_port = u32(c);
    m->u.global.data = str(c, DMT_APF_MAX_DATA, DMT_APF_ERR_DATA_TOO_LONG);
  }
}

static void decode_channel_open(struct cursor *c, struct dmt_apf_msg *m) {
  m->u.channel_open.channel_type = name(c);
  m->u.channel_open.sender = u32(c);
  m->u.channel_open.window = u32(c);
  m->u.channel_open.reserved = u32(c);
  m->u.channel_open.target = name(c);
  m->u.channel_open.target_port = u32(c);
  m->u.channel_open.originator = name(c);
  m->u.channel_open.originator_port = u32(c);
}

int dmt_apf_decode(const uint8_t *buf, size_t len, unsigned flags, struct dmt_apf_msg *m,
                   size_t *consumed) {
  struct cursor c = {buf, len, 0, DMT_APF_OK};
  memset(m, 0, sizeof *m);
  if (len == 0) return DMT_APF_NEED_MORE;
  m->type = u8(&c);
  switch (m->type) {
    case DMT_APF_DISCONNECT:
      m->u.disconnect.reason = u32(&c);
      if (have(&c, 2)) c.off += 2; /* reserved */
      break;
    case DMT_APF_SERVICE_REQUEST:
    case DMT_APF_SERVICE_ACCEPT:
      m->u.service.name = name(&c);
      break;
    case DMT_APF_USERAUTH_REQUEST:
      decode_userauth(&c, m);
      break;
    case DMT_APF_USERAUTH_FAILURE:
      m->u.userauth_failure.methods = name(&c);
      m->u.userauth_failure.partial_success = u8(&c);
      if (c.status == DMT_APF_OK && c.off < len && buf[c.off] == 0) c.off++; /* MPS's 15-byte form */
      break;
    case DMT_APF_USERAUTH_SUCCESS:
    case DMT_APF_REQUEST_FAILURE:
      break;
    case DMT_APF_GLOBAL_REQUEST:
      decode_global(&c, m);
      break;
    case DMT_APF_REQUEST_SUCCESS:
      if (flags & DMT_APF_DECODE_REQUEST_SUCCESS_PORT) {
        m->u.request_success.has_port = true;
        m->u.request_success.port = u32(&c);
      }
      break;
    case DMT_APF_CHANNEL_OPEN:
      decode_channel_open(&c, m);
      break;
    case DMT_APF_CHANNEL_OPEN_CONFIRMATION:
      m->u.open_confirmation.recipient = u32(&c);
      m->u.open_confirmation.sender = u32(&c);
      m->u.open_confirmation.window = u32(&c);
      m->u.open_confirmation.reserved = u32(&c);
      break;
    case DMT_APF_CHANNEL_OPEN_FAILURE:
      m->u.open_failure.recipient = u32(&c);
      m->u.open_failure.reason = u32(&c);
      u32(&c);
      u32(&c);
      break;
    case DMT_APF_CHANNEL_WINDOW_ADJUST:
      m->u.window_adjust.recipient = u32(&c);
      m->u.window_adjust.bytes = u32(&c);
      break;
    case DMT_APF_CHANNEL_DATA:
      m->u.channel_data.recipient = u32(&c);
      m->u.channel_data.data = str(&c, DMT_APF_MAX_DATA, DMT_APF_ERR_DATA_TOO_LONG);
      break;
    case DMT_APF_CHANNEL_CLOSE:
      m->u.channel_close.recipient = u32(&c);
      break;
    case DMT_APF_PROTOCOLVERSION:
      m->u.protocol_version.major = u32(&c);
      m->u.protocol_version.minor = u32(&c);
      m->u.protocol_version.trigger = u32(&c);
      if (have(&c, 16 + 64)) {
        m->u.protocol_version.uuid = buf + c.off;
        c.off += 16 + 64;
      }
      break;
    case DMT_APF_KEEPALIVE_REQUEST:
    case DMT_APF_KEEPALIVE_REPLY:
      m->u.keepalive.cookie = u32(&c);
      break;
    case DMT_APF_KEEPALIVE_OPTIONS_REQUEST:
    case DMT_APF_KEEPALIVE_OPTIONS_REPLY:
      m->u.keepalive_options.interval = u32(&c);
      m->u.keepalive_options.timeout = u32(&c);
      break;
    default:
      return DMT_APF_ERR_UNKNOWN_TYPE;
  }
  if (c.status != DMT_APF_OK) return c.status;
  *consumed = c.off;
  return DMT_APF_OK;
}

const char *dmt_apf_strerror(int status) {
  switch (status) {
    case DMT_APF_OK: return "ok";
    case DMT_APF_NEED_MORE: return "incomplete message";
    case DMT_APF_ERR_UNKNOWN_TYPE: return "unknown message type";
    case DMT_APF_ERR_STRING_TOO_LONG: return "string longer than 2048 bytes";
    case DMT_APF_ERR_DATA_TOO_LONG: return "channel data longer than 1 MiB";
    case DMT_APF_ERR_BAD_FLAG: return "USERAUTH change-password flag set";
    case DMT_APF_ERR_UNKNOWN_REQUEST: return "unknown global request";
    case DMT_APF_ERR_UNKNOWN_AUTH_METHOD: return "unknown authentication method";
    default: return "unknown error";
  }
}

const char *dmt_apf_type_name(uint8_t type) {
  switch (type) {
    case DMT_APF_DISCONNECT: return "DISCONNECT";
    case DMT_APF_SERVICE_REQUEST: return "SERVICE_REQUEST";
    case DMT_APF_SERVICE_ACCEPT: return "SERVICE_ACCEPT";
    case DMT_APF_USERAUTH_REQUEST: return "USERAUTH_REQUEST";
    case DMT_APF_USERAUTH_FAILURE: return "USERAUTH_FAILURE";
    case DMT_APF_USERAUTH_SUCCESS: return "USERAUTH_SUCCESS";
    case DMT_APF_GLOBAL_REQUEST: return "GLOBAL_REQUEST";
    case DMT_APF_REQUEST_SUCCESS: return "REQUEST_SUCCESS";
    case DMT_APF_REQUEST_FAILURE: return "REQUEST_FAILURE";
    case DMT_APF_CHANNEL_OPEN: return "CHANNEL_OPEN";
    case DMT_APF_CHANNEL_OPEN_CONFIRMATION: return "CHANNEL_OPEN_CONFIRMATION";
    case DMT_APF_CHANNEL_OPEN_FAILURE: return "CHANNEL_OPEN_FAILURE";
    case DMT_APF_CHANNEL_WINDOW_ADJUST: return "CHANNEL_WINDOW_ADJUST";
    case DMT_APF_CHANNEL_DATA: return "CHANNEL_DATA";
    case DMT_APF_CHANNEL_CLOSE: return "CHANNEL_CLOSE";
    case DMT_APF_PROTOCOLVERSION: return "PROTOCOLVERSION";
    case DMT_APF_KEEPALIVE_REQUEST: return "KEEPALIVE_REQUEST";
    case DMT_APF_KEEPALIVE_REPLY: return "KEEPALIVE_REPLY";
    case DMT_APF_KEEPALIVE_OPTIONS_REQUEST: return "KEEPALIVE_OPTIONS_REQUEST";
    case DMT_APF_KEEPALIVE_OPTIONS_REPLY: return "KEEPALIVE_OPTIONS_REPLY";
    default: return "UNKNOWN";
  }
}
