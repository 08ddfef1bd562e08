/*
 * APF (AMT Port Forwarding), the SSH-like protocol AMT speaks inside its CIRA
 * TLS tunnel (../shared/reference/mps-cira.md §1). Pure codec: no I/O.
 *
 * APF has no generic length header: a message's length is known only after
 * parsing its type-specific fields, so an unknown type cannot be skipped.
 * dmt_apf_decode() is therefore a stream reassembler's core: given the bytes
 * accumulated so far it returns one message (zero-copy: strings point into
 * the input), NEED_MORE for any proper prefix of a valid message, or an error
 * after which the connection must be closed. Every length is bounds-checked
 * before it is used.
 */
#ifndef DMT_APF_H
#define DMT_APF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dmt/buf.h"

enum dmt_apf_type {
  DMT_APF_DISCONNECT = 1,
  DMT_APF_SERVICE_REQUEST = 5,
  DMT_APF_SERVICE_ACCEPT = 6,
  DMT_APF_USERAUTH_REQUEST = 50,
  DMT_APF_USERAUTH_FAILURE = 51,
  DMT_APF_USERAUTH_SUCCESS = 52,
  DMT_APF_GLOBAL_REQUEST = 80,
  DMT_APF_REQUEST_SUCCESS = 81,
  DMT_APF_REQUEST_FAILURE = 82,
  DMT_APF_CHANNEL_OPEN = 90,
  DMT_APF_CHANNEL_OPEN_CONFIRMATION = 91,
  DMT_APF_CHANNEL_OPEN_FAILURE = 92,
  DMT_APF_CHANNEL_WINDOW_ADJUST = 93,
  DMT_APF_CHANNEL_DATA = 94,
  DMT_APF_CHANNEL_CLOSE = 97,
  DMT_APF_PROTOCOLVERSION = 192,
  DMT_APF_KEEPALIVE_REQUEST = 208,
  DMT_APF_KEEPALIVE_REPLY = 209,
  DMT_APF_KEEPALIVE_OPTIONS_REQUEST = 210,
  DMT_APF_KEEPALIVE_OPTIONS_REPLY = 211,
};

/* DISCONNECT reason codes (§1.5). */
enum dmt_apf_disconnect_reason {
  DMT_APF_DISC_HOST_NOT_ALLOWED = 1,
  DMT_APF_DISC_PROTOCOL_ERROR = 2,
  DMT_APF_DISC_SERVICE_NOT_AVAILABLE = 7,
  DMT_APF_DISC_PROTOCOL_VERSION_NOT_SUPPORTED = 8,
  DMT_APF_DISC_CONNECTION_LOST = 10,
  DMT_APF_DISC_BY_APPLICATION = 11,
  DMT_APF_DISC_TOO_MANY_CONNECTIONS = 12,
  DMT_APF_DISC_NO_MORE_AUTH_METHODS = 14,
  DMT_APF_DISC_INVALID_CREDENTIALS = 15,
  DMT_APF_DISC_CONNECTION_TIMED_OUT = 16,
  DMT_APF_DISC_BY_POLICY = 17,
  DMT_APF_DISC_TEMPORARILY_UNAVAILABLE = 18,
};

/* CHANNEL_OPEN_FAILURE reasons. */
enum dmt_apf_open_failure_reason {
  DMT_APF_OPEN_ADMINISTRATIVELY_PROHIBITED = 1,
  DMT_APF_OPEN_CONNECT_FAILED = 2,
  DMT_APF_OPEN_UNKNOWN_CHANNEL_TYPE = 3,
  DMT_APF_OPEN_RESOURCE_SHORTAGE = 4,
};

/* PROTOCOLVERSION TriggerReason. */
enum dmt_apf_trigger {
  DMT_APF_TRIGGER_USER_INITIATED = 1,
  DMT_APF_TRIGGER_ALERT = 2,
  DMT_APF_TRIGGER_HIT_PROVISIONING = 3,
  DMT_APF_TRIGGER_PERIODIC = 4,
  DMT_APF_TRIGGER_LME = 254,
};

#define DMT_APF_MAX_STRING 2048u
#define DMT_APF_MAX_DATA (1024u * 1024u)
#define DMT_APF_PROTOCOLVERSION_LEN 93u
#define DMT_APF_SERVICE_AUTH "auth@amt.intel.com"
#define DMT_APF_SERVICE_PFWD "pfwd@amt.intel.com"
#define DMT_APF_WSMAN_PORT 16992u
#define DMT_APF_REDIRECTION_PORT 16994u

/* A length-prefixed string, pointing into the decoded input (not NUL-terminated). */
struct dmt_apf_str {
  const uint8_t *p;
  uint32_t len;
};

/* True if s equals the C string lit. */
bool dmt_apf_str_eq(struct dmt_apf_str s, const char *lit);

enum dmt_apf_global_kind {
  DMT_APF_GLOBAL_TCPIP_FORWARD,
  DMT_APF_GLOBAL_CANCEL_TCPIP_FORWARD,
  DMT_APF_GLOBAL_UDP_SEND_TO,
};

struct dmt_apf_msg {
  uint8_t type;
  union {
    struct { uint32_t reason; } disconnect;
    struct { struct dmt_apf_str name; } service; /* SERVICE_REQUEST and SERVICE_ACCEPT */
    struct {
      struct dmt_apf_str username, service, method;
      struct dmt_apf_str password; /* empty unless method is "password" */
    } userauth;
    struct { struct dmt_apf_str methods; uint8_t partial_success; } userauth_failure;
    struct {
      struct dmt_apf_str name;
      enum dmt_apf_global_kind kind;
      uint8_t want_reply;
      struct dmt_apf_str address;
      uint32_t port;
      /* udp-send-to only */
      struct dmt_apf_str originator;
      uint32_t originator_port;
      struct dmt_apf_str data;
    } global;
    struct { bool has_port; uint32_t port; } request_success;
    struct {
      struct dmt_apf_str channel_type;
      uint32_t sender, window, reserved;
      struct dmt_apf_str target;
      uint32_t target_port;
      struct dmt_apf_str originator;
      uint32_t originator_port;
    } channel_open;
    struct { uint32_t recipient, sender, window, reserved; } open_confirmation;
    struct { uint32_t recipient, reason; } open_failure;
    struct { uint32_t recipient, bytes; } window_adjust;
    struct { uint32_t recipient; struct dmt_apf_str data; } channel_data;
    struct { uint32_t recipient; } channel_close;
    struct { uint32_t major, minor, trigger; const uint8_t *uuid; /* 16 raw bytes */ } protocol_version;
    struct { uint32_t cookie; } keepalive;
    struct { uint32_t interval, timeout; } keepalive_options;
  } u;
};

enum dmt_apf_status {
  DMT_APF_OK = 1,
  DMT_APF_NEED_MORE = 0,
  DMT_APF_ERR_UNKNOWN_TYPE = -1,
  DMT_APF_ERR_STRING_TOO_LONG = -2,
  DMT_APF_ERR_DATA_TOO_LONG = -3,
  DMT_APF_ERR_BAD_FLAG = -4,
  DMT_APF_ERR_UNKNOWN_REQUEST = -5,
  DMT_APF_ERR_UNKNOWN_AUTH_METHOD = -6,
};

/* Decoder options. REQUEST_SUCCESS is 5 bytes in answer to tcpip-forward and 1
 * byte in answer to cancel-tcpip-forward: only the requester knows which. */
#define DMT_APF_DECODE_REQUEST_SUCCESS_PORT 0x1u

/*
 * Decodes the first message in buf[0..len). Returns DMT_APF_OK with *out and
 * *consumed set, DMT_APF_NEED_MORE (nothing consumed), or a negative error.
 * A USERAUTH_FAILURE followed by one zero byte (DMT's MPS sends 15 bytes, the
 * SSH form is 14) consumes that byte too.
 */
int dmt_apf_decode(const uint8_t *buf, size_t len, unsigned flags, struct dmt_apf_msg *out,
                   size_t *consumed);
const char *dmt_apf_strerror(int status);
const char *dmt_apf_type_name(uint8_t type);

/* ---- encoders: append one message to out; 0 or -1 (buffer cap/OOM) ---- */

int dmt_apf_put_disconnect(struct dmt_buf *out, uint32_t reason);
int dmt_apf_put_service_request(struct dmt_buf *out, const char *name);
int dmt_apf_put_service_accept(struct dmt_buf *out, const char *name);
int dmt_apf_put_userauth_password(struct dmt_buf *out, const char *user, const char *service,
                                  const char *password);
int dmt_apf_put_userauth_success(struct dmt_buf *out);
/* extra_zero_byte: write DMT MPS's 15-byte form instead of the 14-byte SSH form. */
int dmt_apf_put_userauth_failure(struct dmt_buf *out, bool extra_zero_byte);
int dmt_apf_put_tcpip_forward(struct dmt_buf *out, bool cancel, const char *address, uint32_t port);
int dmt_apf_put_request_success(struct dmt_buf *out, bool with_port, uint32_t port);
int dmt_apf_put_request_failure(struct dmt_buf *out);
int dmt_apf_put_channel_open(struct dmt_buf *out, const char *channel_type, uint32_t sender,
                             uint32_t window, const char *target, uint32_t target_port,
                             const char *originator, uint32_t originator_port);
int dmt_apf_put_channel_open_confirmation(struct dmt_buf *out, uint32_t recipient, uint32_t sender,
                                          uint32_t window);
int dmt_apf_put_channel_open_failure(struct dmt_buf *out, uint32_t recipient, uint32_t reason);
int dmt_apf_put_window_adjust(struct dmt_buf *out, uint32_t recipient, uint32_t bytes);
int dmt_apf_put_channel_data(struct dmt_buf *out, uint32_t recipient, const void *data, uint32_t len);
int dmt_apf_put_channel_close(struct dmt_buf *out, uint32_t recipient);
int dmt_apf_put_protocol_version(struct dmt_buf *out, uint32_t major, uint32_t minor,
                                 uint32_t trigger, const uint8_t uuid[16]);
int dmt_apf_put_keepalive_request(struct dmt_buf *out, uint32_t cookie);
int dmt_apf_put_keepalive_reply(struct dmt_buf *out, uint32_t cookie);
int dmt_apf_put_keepalive_options_request(struct dmt_buf *out, uint32_t interval, uint32_t timeout);
int dmt_apf_put_keepalive_options_reply(struct dmt_buf *out, uint32_t interval, uint32_t timeout);

#endif
