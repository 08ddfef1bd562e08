/*
 * The device's HTTP/1.1 WS-Man responder, the same for APF channels, RPC
 * relays and the optional local TCP port. Digest authentication exactly as
 * AMT does it (mps-cira.md §2.3, rps-activation.md §1.6, Appendix A):
 *   - a request without (or with wrong) credentials gets 401 with
 *     WWW-Authenticate: Digest realm="Digest:<32 hex>", nonce, stale, qop="auth",
 *     an HTML body and Connection: close;
 *   - one nonce stays valid until the firmware restarts, with any nc, so DMT
 *     can reuse a cached challenge on new channels and RPS keeps its nonce
 *     across the whole job (even across the switch to the new admin password);
 *   - user "admin" with the provisioned password; the local OS account
 *     $$OsAdmin only on the host side (RPC), never through CIRA.
 * Then the SOAP envelope is parsed (codec dmt/wsman.h), dispatched to the
 * class tables and answered chunked (200) or as a SOAP fault (400).
 */
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "dmt/digest.h"
#include "sim.h"

#define AMT_CHUNK_MAX 0x0FFF
#define LOCAL_MAX_BODY (1u << 20)
#define OS_ADMIN_USER "$$OsAdmin"

static void http_simple(struct dmt_buf *resp, int status, const char *reason) {
  dmt_buf_printf(resp, "HTTP/1.1 %d %s\r\nContent-Length: 0\r\nConnection: close\r\n\r\n", status, reason);
}

static bool authorized(struct sim_device *d, enum sim_transport tr, const struct dmt_http_parser *req) {
  const char *auth = dmt_http_header(req, "Authorization");
  struct dmt_digest_credentials cr;
  if (!auth || !d->nonce[0] || dmt_digest_parse_authorization(auth, &cr) != 0) return false;
  char realm[40];
  sim_device_realm(d, realm);
  if (!strcmp(cr.username, "admin"))
    return d->amt_ha1[0] && dmt_digest_verify(&cr, req->method, "admin", realm, d->nonce, d->amt_ha1);
  if (tr == SIM_TRANSPORT_LOCAL && !strcmp(cr.username, OS_ADMIN_USER)) {
    char ha1[DMT_DIGEST_HEX];
    dmt_digest_ha1(OS_ADMIN_USER, realm, d->lsa_password, ha1);
    return dmt_digest_verify(&cr, req->method, OS_ADMIN_USER, realm, d->nonce, ha1);
  }
  return false;
}

void sim_wsman_handle(struct sim_device *d, enum sim_transport tr, const struct dmt_http_parser *req,
                      struct dmt_buf *resp, bool *close_after) {
  struct sim *s = d->sim;
  s->count.wsman_requests++;
  if (strcmp(req->method, "POST") || !req->target || strcmp(req->target, "/wsman")) {
    http_simple(resp, 404, "Not Found");
    *close_after = true;
    return;
  }
  if (!authorized(d, tr, req)) {
    if (!d->nonce[0]) dmt_digest_random_hex(d->nonce, 16);
    char realm[40];
    sim_device_realm(d, realm);
    dmt_http_build_amt_401(resp, realm, d->nonce, d->model->version);
    s->count.wsman_401++;
    *close_after = true;
    return;
  }
  struct dmt_wsman_request w;
  char err[256];
  if (dmt_wsman_parse_request((const char *)dmt_buf_ptr(&req->body), dmt_buf_size(&req->body), &w, err, sizeof err)) {
    DMT_WARN(&s->log, "wsman_bad_request", "guid=%s error=\"%s\"", d->guid, err);
    http_simple(resp, 400, "Bad Request");
    *close_after = true;
    return;
  }
  struct dmt_buf body, env;
  dmt_buf_init(&body, 0);
  dmt_buf_init(&env, 0);
  struct amt_fault fault = {0};
  amt_dispatch(d, &w, &body, &fault);
  dmt_buf_append_u8(&body, 0);
  if (fault.subcode) {
    s->count.wsman_faults++;
    dmt_wsman_build_fault(&env, &w, ++s->msg_seq, fault.code ? fault.code : "a:Sender", fault.subcode, fault.reason);
  } else {
    dmt_wsman_build_response(&env, &w, ++s->msg_seq, (const char *)dmt_buf_ptr(&body));
  }
  dmt_http_build_amt_soap(resp, fault.subcode ? (fault.http_status ? fault.http_status : 400) : 200,
                          d->model->version, (const char *)dmt_buf_ptr(&env), dmt_buf_size(&env), AMT_CHUNK_MAX);
  dmt_buf_free(&body);
  dmt_buf_free(&env);
  dmt_wsman_request_free(&w);
}

/* ---- optional local port: every device reachable on one 127.0.0.1 port, chosen by the Host header ---- */

struct local_conn {
  struct sim *sim;
  int fd;
  struct dmt_http_parser http;
  struct dmt_buf out;
  struct dmt_timer slow;
  bool close_after;
};

static void local_close(struct local_conn *c) {
  dmt_loop_unwatch(c->sim->loop, c->fd);
  dmt_timer_stop(c->sim->loop, &c->slow);
  close(c->fd);
  dmt_http_parser_free(&c->http);
  dmt_buf_free(&c->out);
  free(c);
}

static void on_local(struct dmt_loop *loop, int fd, unsigned ev, void *ud);

static void local_flush(struct local_conn *c) {
  if (dmt_timer_armed(&c->slow)) return;
  while (dmt_buf_size(&c->out) > 0) {
    ssize_t w = send(c->fd, dmt_buf_ptr(&c->out), dmt_buf_size(&c->out), MSG_NOSIGNAL);
    if (w > 0) {
      dmt_buf_consume(&c->out, (size_t)w);
      continue;
    }
    if (w < 0 && errno == EAGAIN) {
      dmt_loop_watch(c->sim->loop, c->fd, DMT_EV_READ | DMT_EV_WRITE, on_local, c);
      return;
    }
    local_close(c);
    return;
  }
  if (c->close_after) {
    local_close(c);
    return;
  }
  dmt_loop_watch(c->sim->loop, c->fd, DMT_EV_READ, on_local, c);
}

static void slow_done(struct dmt_loop *loop, struct dmt_timer *t) { local_flush(t->ud); }

static struct sim_device *device_for(struct sim *s, const struct dmt_http_parser *req) {
  const char *host = dmt_http_header(req, "Host");
  char guid[40];
  if (host) {
    snprintf(guid, sizeof guid, "%.36s", host);
    struct sim_device *d = sim_fleet_find(s, guid);
    if (d) return d;
  }
  return s->ndevices == 1 ? &s->devices[0] : NULL;
}

static void on_local(struct dmt_loop *loop, int fd, unsigned ev, void *ud) {
  struct local_conn *c = ud;
  if (ev & DMT_EV_WRITE) {
    local_flush(c);
    return;
  }
  uint8_t buf[16384];
  ssize_t r = recv(fd, buf, sizeof buf, 0);
  if (r <= 0) {
    if (r < 0 && errno == EAGAIN) return;
    local_close(c);
    return;
  }
  size_t off = 0;
  while (off < (size_t)r && !c->close_after) {
    size_t used = 0;
    int rc = dmt_http_parse(&c->http, buf + off, (size_t)r - off, &used);
    if (rc < 0) {
      http_simple(&c->out, 400, "Bad Request");
      c->close_after = true;
      break;
    }
    off += used;
    if (rc != DMT_HTTP_DONE) break;
    struct sim_device *d = device_for(c->sim, &c->http);
    if (!d) {
      http_simple(&c->out, 404, "Not Found");
      c->close_after = true;
      break;
    }
    bool close_after = !c->http.keep_alive;
    sim_wsman_handle(d, SIM_TRANSPORT_LOCAL, &c->http, &c->out, &close_after);
    c->close_after = close_after;
    dmt_http_parser_reset(&c->http);
    if ((d->faults & SIM_FAULT_SLOW) && d->slow_ms) dmt_timer_start(loop, &c->slow, d->slow_ms);
  }
  local_flush(c);
}

static void on_local_accept(struct dmt_loop *loop, int lfd, unsigned ev, void *ud) {
  struct sim *s = ud;
  for (;;) {
    int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) return;
    struct local_conn *c = calloc(1, sizeof *c);
    if (!c) {
      close(fd);
      return;
    }
    c->sim = s;
    c->fd = fd;
    dmt_http_parser_init(&c->http, true, LOCAL_MAX_BODY);
    dmt_buf_init(&c->out, 8u << 20);
    dmt_timer_init(&c->slow, slow_done, c);
    dmt_loop_watch(loop, fd, DMT_EV_READ, on_local, c);
  }
}

int sim_wsman_listen(struct sim *s, unsigned port, char *err, size_t errlen) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                          .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) != 0 || listen(fd, 128) != 0) {
    snprintf(err, errlen, "WS-Man port %u: %s", port, strerror(errno));
    if (fd >= 0) close(fd);
    return -1;
  }
  s->wsman_fd = fd;
  return dmt_loop_watch(s->loop, fd, DMT_EV_READ, on_local_accept, s);
}
