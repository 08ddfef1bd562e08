/*
 * The RPC side of an RPS job, as rpc-go runs it (rps-activation.md §1, §6):
 * a WebSocket to the RPS endpoint (ws:// or wss://, any path), one JSON text
 * message per frame. The first message is the command line ("activate
 * --profile <p>" or "deactivate --password <pw> [-f]") with the device's
 * payload in base64: version, build, SKU, features, UUID, the local OS
 * account ($$OsAdmin and its password before activation, the admin password
 * after), current control mode, host name, DNS suffix, the trusted root
 * hashes, IP and host name info. Then every "wsman" message's HTTP request
 * goes to the device's own WS-Man responder on the host side (like LMS) and
 * the raw HTTP response goes back base64-encoded in a "response" message,
 * until RPS sends "success" or "error". Heartbeats are answered like rpc-go.
 * A successful activation leaves the device in CCM/ACM, and a CIRA
 * configuration makes it call home on its own (cira_client.c).
 */
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dmt/http.h"
#include "sim.h"

#define RPC_PROTOCOL_VERSION "4.0.0"
#define RPC_APP_VERSION "v2.52.4" /* rpc-go's; RPS ignores it */
#define RPC_JOB_TIMEOUT_MS (10u * 60u * 1000u)
#define RPC_MAX_MESSAGE (4u << 20)
#define RPC_MAX_HTTP (1u << 20)

enum rpc_phase { RPC_CONNECTING, RPC_UPGRADING, RPC_RUNNING, RPC_DONE };

struct sim_rpc {
  struct sim_device *dev;
  struct sim_stream st;
  struct dmt_timer timer; /* job deadline, or the held-back response of the slow fault */
  struct dmt_buf message; /* a fragmented text message being reassembled */
  struct dmt_buf held;    /* a response waiting for the slow fault */
  enum sim_rpc_action action;
  enum rpc_phase phase;
  char host[300], path[256], key[32], tenant[72], password[40], profile[128];
  unsigned port;
  bool tls, force;
  char status[512];
};

static void on_timer(struct dmt_loop *loop, struct dmt_timer *t);

const char *sim_rpc_status(const struct sim_device *d) {
  if (!d->rpc) return "none";
  return d->rpc->phase == RPC_DONE ? d->rpc->status : "running";
}

static void release(struct sim_rpc *r) {
  dmt_timer_stop(r->dev->sim->loop, &r->timer);
  sim_stream_close(&r->st, true);
  dmt_buf_free(&r->message);
  dmt_buf_free(&r->held);
}

static void finish(struct sim_rpc *r, bool ok, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void finish(struct sim_rpc *r, bool ok, const char *fmt, ...) {
  if (r->phase == RPC_DONE) return;
  struct sim *s = r->dev->sim;
  char text[480];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(text, sizeof text, fmt, ap);
  va_end(ap);
  snprintf(r->status, sizeof r->status, "%s: %s", ok ? "success" : "error", text);
  if (r->st.state == SIM_STREAM_OPEN && r->phase == RPC_RUNNING) {
    static const uint8_t normal_closure[] = {0x03, 0xE8};
    sim_ws_frame(&r->st.out, SIM_WS_CLOSE, normal_closure, sizeof normal_closure);
    sim_stream_flush(&r->st);
  }
  r->phase = RPC_DONE;
  release(r);
  if (ok) s->count.rpc_succeeded++;
  else s->count.rpc_failed++;
  s->rpc_active--;
  DMT_INFO(&s->log, ok ? "rpc_success" : "rpc_failed", "guid=%s status=%.200s", r->dev->guid, text);
}

static void send_json(struct sim_rpc *r, json_t *o) {
  char *text = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
  if (text) sim_ws_frame(&r->st.out, SIM_WS_TEXT, text, strlen(text));
  free(text);
  sim_stream_flush(&r->st);
}

/* rpc-go's message envelope. */
static json_t *envelope(struct sim_rpc *r, const char *method, const char *payload_b64) {
  return json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "method", method, "apiKey", "key", "appVersion",
                   RPC_APP_VERSION, "protocolVersion", RPC_PROTOCOL_VERSION, "status", "ok", "message", "ok", "fqdn",
                   "", "payload", payload_b64 ? payload_b64 : "", "tenantId", r->tenant);
}

static char *device_payload(struct sim_rpc *r) {
  struct sim_device *d = r->dev;
  struct sim *s = d->sim;
  json_t *hashes = json_array();
  for (size_t i = 0; i < s->nacm_hashes; i++) {
    char hex[97];
    for (size_t k = 0; k < s->acm_hashes[i].len; k++) snprintf(hex + 2 * k, 3, "%02x", s->acm_hashes[i].md[k]);
    json_array_append_new(hashes, json_string(hex));
  }
  /* HECI hands out the local system account before activation; afterwards rpc-go sends the admin password. */
  const char *password = d->mode == SIM_MODE_PRE ? d->lsa_password : r->password;
  json_t *p = json_pack(
      "{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:i, s:s, s:s, s:s, s:o, "
      "s:{s:b, s:b, s:b, s:s, s:s, s:s, s:s, s:s}, s:{s:s, s:s}}",
      "ver", d->model->version, "build", d->model->build, "sku", d->model->sku, "features", d->model->features,
      "uuid", d->guid, "username", "$$OsAdmin", "password", password, "currentMode", (int)d->mode, "hostname",
      d->hostname, "fqdn", d->dns_suffix ? d->dns_suffix : "", "client", "RPC", "certHashes", hashes,
      "ipConfiguration", "dhcp", 0, "static", 0, "ipsync", 0, "ipAddress", "", "netmask", "", "gateway", "",
      "primaryDns", "", "secondaryDns", "", "hostnameInfo", "dnsSuffixOS", "", "hostname", "");
  char *text = json_dumps(p, JSON_COMPACT | JSON_PRESERVE_ORDER);
  json_decref(p);
  char *b64 = text ? sim_base64_encode((const uint8_t *)text, strlen(text)) : NULL;
  free(text);
  return b64;
}

static void send_first_message(struct sim_rpc *r) {
  char method[256];
  if (r->action == SIM_RPC_ACTIVATE) snprintf(method, sizeof method, "activate --profile %s", r->profile);
  else snprintf(method, sizeof method, "deactivate --password %s%s", r->password, r->force ? " -f" : "");
  char *payload = device_payload(r);
  json_t *o = envelope(r, method, payload);
  send_json(r, o);
  json_decref(o);
  free(payload);
}

static void send_response(struct sim_rpc *r, const struct dmt_buf *http) {
  char *b64 = sim_base64_encode(dmt_buf_ptr(http), dmt_buf_size(http));
  json_t *o = envelope(r, "response", b64);
  send_json(r, o);
  json_decref(o);
  free(b64);
}

/* One "wsman" message: the HTTP request RPS built, answered by the device as LMS would relay it. */
static void relay_wsman(struct sim_rpc *r, const char *payload) {
  struct sim_device *d = r->dev;
  uint8_t *raw = NULL;
  int n = sim_base64_decode(payload, &raw);
  struct dmt_http_parser http;
  dmt_http_parser_init(&http, true, RPC_MAX_HTTP);
  struct dmt_buf resp;
  dmt_buf_init(&resp, 0);
  size_t used = 0;
  if (n > 0 && dmt_http_parse(&http, raw, (size_t)n, &used) == DMT_HTTP_DONE) {
    bool close_after = true;
    sim_wsman_handle(d, SIM_TRANSPORT_LOCAL, &http, &resp, &close_after);
  } else {
    dmt_buf_printf(&resp, "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
  }
  free(raw);
  dmt_http_parser_free(&http);
  if ((d->faults & SIM_FAULT_SLOW) && d->slow_ms) {
    dmt_buf_append(&r->held, dmt_buf_ptr(&resp), dmt_buf_size(&resp));
    dmt_timer_start(d->sim->loop, &r->timer, d->slow_ms);
  } else {
    send_response(r, &resp);
  }
  dmt_buf_free(&resp);
}

static void handle_message(struct sim_rpc *r, const char *text, size_t len) {
  json_error_t jerr;
  json_t *o = json_loadb(text, len, 0, &jerr);
  const char *method = json_string_value(json_object_get(o, "method"));
  const char *payload = json_string_value(json_object_get(o, "payload"));
  const char *message = json_string_value(json_object_get(o, "message"));
  if (!method) finish(r, false, "unreadable message from RPS");
  else if (!strcmp(method, "wsman")) relay_wsman(r, payload);
  else if (!strcmp(method, "success")) finish(r, true, "%s", message ? message : "");
  else if (!strcmp(method, "error")) finish(r, false, "%s", message ? message : "");
  else if (!strcmp(method, "heartbeat_request")) {
    json_object_set_new(o, "method", json_string("heartbeat_response"));
    json_object_set_new(o, "status", json_string("success"));
    send_json(r, o);
  } else if (!strcmp(method, "progress")) {
    /* informational */
  } else {
    finish(r, false, "unsupported RPS message %s (TLS tunnel mode is not simulated)", method);
  }
  json_decref(o);
}

static void on_frames(struct sim_rpc *r) {
  struct dmt_buf *in = &r->st.in;
  while (r->phase == RPC_RUNNING && dmt_buf_size(in) > 0) {
    struct sim_ws_frame f;
    size_t used = 0;
    int rc = sim_ws_parse((uint8_t *)dmt_buf_ptr(in), dmt_buf_size(in), RPC_MAX_MESSAGE, &f, &used);
    if (rc == 0) return;
    if (rc < 0) {
      finish(r, false, "WebSocket protocol error");
      return;
    }
    if (f.opcode == SIM_WS_PING) {
      sim_ws_frame(&r->st.out, SIM_WS_PONG, f.data, f.len);
      sim_stream_flush(&r->st);
    } else if (f.opcode == SIM_WS_CLOSE) {
      finish(r, false, "RPS closed the WebSocket");
      return;
    } else if (f.opcode == SIM_WS_TEXT || f.opcode == 0) {
      if (dmt_buf_append(&r->message, f.data, f.len) != 0) {
        finish(r, false, "message too large");
        return;
      }
      if (f.fin) {
        handle_message(r, (const char *)dmt_buf_ptr(&r->message), dmt_buf_size(&r->message));
        if (r->phase != RPC_RUNNING) return;
        dmt_buf_free(&r->message);
      }
    } else if (f.opcode == SIM_WS_BINARY) {
      finish(r, false, "binary frame from RPS");
      return;
    }
    dmt_buf_consume(in, used);
  }
}

static void on_data(struct sim_stream *st) {
  struct sim_rpc *r = st->ud;
  if (r->phase == RPC_UPGRADING) {
    size_t used = 0;
    int rc = sim_ws_handshake_response(dmt_buf_ptr(&st->in), dmt_buf_size(&st->in), r->key, &used);
    if (rc == 0) return;
    if (rc < 0) {
      finish(r, false, "WebSocket upgrade refused");
      return;
    }
    dmt_buf_consume(&st->in, used);
    r->phase = RPC_RUNNING;
    send_first_message(r);
  }
  on_frames(r);
}

static void on_open(struct sim_stream *st) {
  struct sim_rpc *r = st->ud;
  r->phase = RPC_UPGRADING;
  sim_ws_handshake_request(&st->out, r->host, r->port, r->path, r->key);
}

static void on_close(struct sim_stream *st, const char *why) {
  struct sim_rpc *r = st->ud;
  finish(r, false, "connection to RPS lost (%s)", why);
}

static void on_timer(struct dmt_loop *loop, struct dmt_timer *t) {
  struct sim_rpc *r = t->ud;
  if (dmt_buf_size(&r->held) > 0) { /* the slow fault's delay is over */
    send_response(r, &r->held);
    dmt_buf_free(&r->held);
    dmt_timer_start(loop, t, RPC_JOB_TIMEOUT_MS);
    return;
  }
  finish(r, false, "no final status from RPS in time");
}

/* ws://host[:port][/path] or wss://...; IPv6 hosts in brackets. */
static int parse_url(struct sim_rpc *r, const char *url) {
  const char *p;
  if (!strncmp(url, "ws://", 5)) {
    p = url + 5;
    r->tls = false;
    r->port = 80;
  } else if (!strncmp(url, "wss://", 6)) {
    p = url + 6;
    r->tls = true;
    r->port = 443;
  } else {
    return -1;
  }
  const char *slash = strchr(p, '/');
  size_t authlen = slash ? (size_t)(slash - p) : strlen(p);
  snprintf(r->path, sizeof r->path, "%s", slash ? slash : "/");
  char auth[300];
  if (authlen == 0 || authlen >= sizeof auth) return -1;
  memcpy(auth, p, authlen);
  auth[authlen] = '\0';
  char *host = auth, *port = NULL;
  if (auth[0] == '[') {
    char *close = strchr(auth, ']');
    if (!close) return -1;
    *close = '\0';
    host = auth + 1;
    if (close[1] == ':') port = close + 2;
  } else if ((port = strrchr(auth, ':'))) {
    *port++ = '\0';
  }
  if (port) {
    char *end;
    unsigned long v = strtoul(port, &end, 10);
    if (*end || v == 0 || v > 65535) return -1;
    r->port = (unsigned)v;
  }
  snprintf(r->host, sizeof r->host, "%s", host);
  return r->host[0] ? 0 : -1;
}

int sim_rpc_start(struct sim_device *d, const struct sim_rpc_request *req, char *err, size_t errlen) {
  struct sim *s = d->sim;
  if (d->rpc && d->rpc->phase != RPC_DONE) {
    snprintf(err, errlen, "an RPC job is already running on %s", d->guid);
    return -1;
  }
  const char *password = req->password ? req->password : d->amt_password;
  if (req->action == SIM_RPC_DEACTIVATE && (!password || !*password)) {
    snprintf(err, errlen, "deactivation needs the AMT admin password of %s", d->guid);
    return -1;
  }
  struct sim_rpc *r = d->rpc ? d->rpc : calloc(1, sizeof *r);
  if (!r) {
    snprintf(err, errlen, "out of memory");
    return -1;
  }
  memset(r, 0, sizeof *r);
  d->rpc = r;
  r->dev = d;
  r->action = req->action;
  snprintf(r->profile, sizeof r->profile, "%s", req->profile ? req->profile : "");
  snprintf(r->password, sizeof r->password, "%s", password ? password : "");
  snprintf(r->tenant, sizeof r->tenant, "%s", req->tenant ? req->tenant : "");
  r->force = req->force;
  if (parse_url(r, req->url) != 0 || (r->action == SIM_RPC_ACTIVATE && !r->profile[0])) {
    snprintf(err, errlen, "bad RPS URL or profile");
    r->phase = RPC_DONE;
    snprintf(r->status, sizeof r->status, "error: %s", err);
    return -1;
  }
  dmt_buf_init(&r->message, RPC_MAX_MESSAGE);
  dmt_buf_init(&r->held, 0);
  dmt_timer_init(&r->timer, on_timer, r);
  sim_stream_init(&r->st, s, r);
  r->st.on_open = on_open;
  r->st.on_data = on_data;
  r->st.on_close = on_close;
  r->phase = RPC_CONNECTING;
  s->count.rpc_started++;
  s->rpc_active++;
  dmt_timer_start(s->loop, &r->timer, RPC_JOB_TIMEOUT_MS);
  sim_stream_connect(&r->st, r->host, r->port, r->tls, s->rpc_trust, r->host);
  return 0;
}

void sim_rpc_abort(struct sim_device *d) {
  if (!d->rpc) return;
  finish(d->rpc, false, "aborted");
  free(d->rpc);
  d->rpc = NULL;
}
