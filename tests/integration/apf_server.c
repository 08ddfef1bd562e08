/* A strict CIRA server for dmt-sim tests (see apf_server.h). */
#include "apf_server.h"

#include <errno.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "dmt/buf.h"
#include "dmt/digest.h"
#include "dmt/evloop.h"
#include "dmt/http.h"
#include "dmt/strmap.h"
#include "dmt/tls.h"

#define PORTS_N 7
static const uint32_t forward_ports[PORTS_N] = {16993, 16992, 664, 623, 16995, 16994, 5900};

enum phase { P_PV, P_AUTH_SERVICE, P_USERAUTH, P_AUTH_FAILED, P_PFWD_SERVICE, P_FORWARD, P_KA_OPTIONS, P_READY };
enum ex_step { E_OPEN1, E_RESP1, E_CLOSE1, E_OPEN2, E_RESP2, E_CLOSE2, E_DONE };

struct expect_dev {
  char guid[37], user[64], password[64], hostname[64];
  size_t sessions;
  struct tconn *conn; /* the current ready connection */
};

struct exchange {
  struct apf_server *srv;
  struct tconn *conn;
  char www[512]; /* the 401's challenge */
  char guid[37];
  char *envelope;
  char password[64];
  uint32_t window;
  size_t pad;
  enum ex_step step;
  uint32_t our_id, dev_id;
  int64_t credit, dev_window;
  struct dmt_http_parser http;
  uint64_t sent_ms;
  struct apf_wsman_result r;
  bool done, orphaned;
  int rc;
};

struct tconn {
  struct apf_server *srv;
  int fd;
  SSL *ssl;
  bool tls_done;
  struct dmt_buf in, out;
  enum phase phase;
  struct expect_dev *dev;
  int forwards;
  uint64_t mark_ms; /* options sent, then the previous keepalive */
  uint32_t next_cookie;
  int keepalives;
  uint32_t next_channel;
  struct exchange *ex;
  struct tconn *next;
};

struct apf_server {
  struct dmt_loop *loop;
  pthread_t thread;
  pthread_mutex_t mu;
  pthread_cond_t cond;
  SSL_CTX *ctx;
  int lfd, port;
  uint32_t ka_s;
  struct dmt_strmap devs;
  struct tconn *conns;
  struct apf_server_stats st;
  char violations[4096];
};

void apf_uuid_to_guid(const uint8_t u[16], char out[37]) {
  snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", u[3], u[2], u[1], u[0],
           u[5], u[4], u[7], u[6], u[8], u[9], u[10], u[11], u[12], u[13], u[14], u[15]);
}

static uint64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* ---- the reference layouts, written here independently of common/apf ---- */

static void w8(struct dmt_buf *b, uint8_t v) { dmt_buf_append_u8(b, v); }
static void w32(struct dmt_buf *b, uint32_t v) { dmt_buf_append_u32be(b, v); }
static void wstr(struct dmt_buf *b, const char *s) { dmt_buf_append_str(b, s, strlen(s)); }
static uint32_t r32(const uint8_t *p) { return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]; }

static void violation(struct tconn *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void violation(struct tconn *c, const char *fmt, ...) {
  struct apf_server *s = c->srv;
  s->st.violations++;
  size_t used = strlen(s->violations);
  if (used + 200 >= sizeof s->violations) return;
  used += (size_t)snprintf(s->violations + used, sizeof s->violations - used, "[%s] ", c->dev ? c->dev->guid : "?");
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(s->violations + used, sizeof s->violations - used, fmt, ap);
  va_end(ap);
  strcat(s->violations, "\n");
}

static void on_io(struct dmt_loop *loop, int fd, unsigned ev, void *ud);

/* Ends an exchange and wakes the test thread (or frees it if the test thread gave up). */
static void finish_exchange(struct exchange *ex, int rc, const char *error) {
  if (ex->done) return;
  ex->done = true;
  ex->rc = rc;
  if (error) snprintf(ex->r.error, sizeof ex->r.error, "%s", error);
  if (ex->conn) ex->conn->ex = NULL;
  ex->conn = NULL;
  if (ex->orphaned) {
    dmt_http_parser_free(&ex->http);
    apf_wsman_result_free(&ex->r);
    free(ex->envelope);
    free(ex);
    return;
  }
  pthread_cond_broadcast(&ex->srv->cond);
}

static void conn_close(struct tconn *c) {
  struct apf_server *s = c->srv;
  if (c->ex) finish_exchange(c->ex, -1, "connection closed during the exchange");
  if (c->dev && c->dev->conn == c) c->dev->conn = NULL;
  if (c->phase == P_READY) s->st.ready--;
  for (struct tconn **pp = &s->conns; *pp; pp = &(*pp)->next)
    if (*pp == c) {
      *pp = c->next;
      break;
    }
  dmt_loop_unwatch(s->loop, c->fd);
  SSL_free(c->ssl);
  close(c->fd);
  dmt_buf_free(&c->in);
  dmt_buf_free(&c->out);
  free(c);
  ERR_clear_error();
}

static int flush(struct tconn *c) {
  while (dmt_buf_size(&c->out) > 0) {
    int w = SSL_write(c->ssl, dmt_buf_ptr(&c->out), (int)dmt_buf_size(&c->out));
    if (w <= 0) {
      int e = SSL_get_error(c->ssl, w);
      if (e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ) {
        dmt_loop_watch(c->srv->loop, c->fd, DMT_EV_READ | DMT_EV_WRITE, on_io, c);
        return 0;
      }
      return -1;
    }
    dmt_buf_consume(&c->out, (size_t)w);
  }
  dmt_loop_watch(c->srv->loop, c->fd, DMT_EV_READ, on_io, c);
  return 0;
}

/* Compares the next len bytes with the expected message: 1 matched, 0 need more, -1 mismatch. */
static int expect_bytes(struct tconn *c, const struct dmt_buf *want, const char *what) {
  size_t len = dmt_buf_size(want);
  if (dmt_buf_size(&c->in) < len) {
    /* a prefix that already differs is wrong now */
    if (memcmp(dmt_buf_ptr(&c->in), dmt_buf_ptr(want), dmt_buf_size(&c->in))) goto bad;
    return 0;
  }
  if (memcmp(dmt_buf_ptr(&c->in), dmt_buf_ptr(want), len)) goto bad;
  dmt_buf_consume(&c->in, len);
  return 1;
bad:
  for (size_t i = 0; i < len && i < dmt_buf_size(&c->in); i++)
    if (dmt_buf_ptr(&c->in)[i] != dmt_buf_ptr(want)[i]) {
      violation(c, "%s: byte %zu is 0x%02x, expected 0x%02x", what, i, dmt_buf_ptr(&c->in)[i], dmt_buf_ptr(want)[i]);
      break;
    }
  return -1;
}

static void service_message(struct dmt_buf *b, uint8_t type, const char *name) {
  w8(b, type);
  wstr(b, name);
}

/* PROTOCOLVERSION: C0 | u32 1 | u32 0 | u32 trigger | 16 UUID bytes | 64 zero bytes. */
static int check_protocol_version(struct tconn *c) {
  if (dmt_buf_size(&c->in) < 93) return 0;
  const uint8_t *p = dmt_buf_ptr(&c->in);
  static const uint8_t zeros[64];
  if (p[0] != 0xC0 || r32(p + 1) != 1 || r32(p + 5) != 0 || r32(p + 9) != 4 || memcmp(p + 29, zeros, 64)) {
    violation(c, "PROTOCOLVERSION: type %02x major %u minor %u trigger %u or reserved bytes wrong", p[0], r32(p + 1),
              r32(p + 5), r32(p + 9));
    return -1;
  }
  char guid[37];
  apf_uuid_to_guid(p + 13, guid);
  c->dev = dmt_strmap_get(&c->srv->devs, guid);
  if (!c->dev) {
    violation(c, "PROTOCOLVERSION: unknown device %s", guid);
    return -1;
  }
  dmt_buf_consume(&c->in, 93);
  return 1;
}

/* USERAUTH_REQUEST: 32 | str user | str "pfwd@amt.intel.com" | str "password" | 00 | str password. */
static int check_userauth(struct tconn *c) {
  const uint8_t *p = dmt_buf_ptr(&c->in);
  size_t n = dmt_buf_size(&c->in), off = 1;
  const uint8_t *f[4];
  uint32_t fl[4];
  if (n < 1) return 0;
  if (p[0] != 0x32) {
    violation(c, "USERAUTH_REQUEST expected, type 0x%02x", p[0]);
    return -1;
  }
  for (int i = 0; i < 4; i++) {
    if (i == 3) { /* the change-password flag before the password */
      if (n < off + 1) return 0;
      if (p[off] != 0) {
        violation(c, "USERAUTH_REQUEST: change-password flag %u", p[off]);
        return -1;
      }
      off++;
    }
    if (n < off + 4) return 0;
    fl[i] = r32(p + off);
    if (fl[i] > 2048) {
      violation(c, "USERAUTH_REQUEST: string length %u", fl[i]);
      return -1;
    }
    if (n < off + 4 + fl[i]) return 0;
    f[i] = p + off + 4;
    off += 4 + fl[i];
  }
  const struct expect_dev *d = c->dev;
  if (fl[0] != strlen(d->user) || memcmp(f[0], d->user, fl[0]) || fl[1] != 18 || memcmp(f[1], "pfwd@amt.intel.com", 18) ||
      fl[2] != 8 || memcmp(f[2], "password", 8)) {
    violation(c, "USERAUTH_REQUEST: user, service or method differs");
    return -1;
  }
  bool ok = fl[3] == strlen(d->password) && !memcmp(f[3], d->password, fl[3]);
  dmt_buf_consume(&c->in, off);
  return ok ? 1 : 2;
}

static void send_forward_reply(struct tconn *c, uint32_t port) {
  w8(&c->out, 0x51);
  w32(&c->out, port);
}

static void expected_forward(struct tconn *c, struct dmt_buf *b) {
  w8(b, 0x50);
  wstr(b, "tcpip-forward");
  w8(b, 1);
  wstr(b, c->dev->hostname);
  w32(b, forward_ports[c->forwards]);
}

static void keepalive_timing(struct tconn *c) {
  struct apf_server *s = c->srv;
  uint64_t now = now_ms(), gap = now - c->mark_ms, want = (uint64_t)s->ka_s * 1000u;
  c->mark_ms = now;
  if (gap + 400 < want * 3 / 4 || gap > want * 3 / 2 + 1000) {
    s->st.keepalive_early++;
    violation(c, "keepalive %d after %lu ms, interval %lu ms", c->keepalives, (unsigned long)gap,
              (unsigned long)want);
    return;
  }
  if (++c->keepalives == 2) s->st.keepalive_checked++;
}

/* ---- WS-Man exchanges over channels ---- */

static void channel_open(struct tconn *c, struct exchange *ex) {
  ex->our_id = c->next_channel++;
  ex->credit = ex->window;
  w8(&c->out, 0x5A);
  wstr(&c->out, "forwarded-tcpip");
  w32(&c->out, ex->our_id);
  w32(&c->out, ex->window);
  w32(&c->out, 0xFFFFFFFFu);
  wstr(&c->out, "");
  w32(&c->out, 16992);
  wstr(&c->out, "1.2.3.4");
  w32(&c->out, ex->our_id % 30000 + 1024);
}

static void send_request(struct tconn *c, struct exchange *ex, bool authorized) {
  char auth[1024];
  const char *authorization = NULL;
  if (authorized) {
    struct dmt_digest_challenge ch;
    dmt_digest_parse_challenge(ex->www, &ch);
    dmt_digest_authorization("admin", ex->password, &ch, "POST", "/wsman", 1, "5ca1ab1e", auth, sizeof auth);
    authorization = auth;
  }
  struct dmt_buf body, http;
  dmt_buf_init(&body, 0);
  dmt_buf_init(&http, 0);
  dmt_buf_append(&body, ex->envelope, strlen(ex->envelope));
  if (ex->pad) {
    dmt_buf_printf(&body, "<!--");
    for (size_t i = 0; i < ex->pad; i++) dmt_buf_append_u8(&body, 'x');
    dmt_buf_printf(&body, "-->");
  }
  dmt_http_build_wsman_request(&http, authorization, c->dev->guid, 16992, (const char *)dmt_buf_ptr(&body),
                               dmt_buf_size(&body));
  /* Never more than the device's window, as MPS sends. */
  if ((int64_t)dmt_buf_size(&http) > ex->dev_window) violation(c, "request larger than the device's window");
  w8(&c->out, 0x5E);
  w32(&c->out, ex->dev_id);
  w32(&c->out, (uint32_t)dmt_buf_size(&http));
  dmt_buf_append(&c->out, dmt_buf_ptr(&http), dmt_buf_size(&http));
  ex->dev_window -= (int64_t)dmt_buf_size(&http);
  ex->sent_ms = now_ms();
  dmt_buf_free(&body);
  dmt_buf_free(&http);
  dmt_http_parser_init(&ex->http, false, 4u << 20);
}

static void response_done(struct tconn *c, struct exchange *ex) {
  if (ex->step == E_RESP1) {
    ex->r.first_status = ex->http.status;
    const char *conn = dmt_http_header(&ex->http, "Connection");
    ex->r.first_connection_close = conn && !strcasecmp(conn, "close");
    const char *www = dmt_http_header(&ex->http, "WWW-Authenticate");
    struct dmt_digest_challenge ch;
    if (ex->http.status != 401 || !www || dmt_digest_parse_challenge(www, &ch) != 0) {
      finish_exchange(ex, -1, "the first request did not get a digest 401");
      return;
    }
    snprintf(ex->r.realm, sizeof ex->r.realm, "%s", ch.realm);
    snprintf(ex->www, sizeof ex->www, "%s", www);
    ex->step = E_CLOSE1;
    dmt_http_parser_free(&ex->http);
  } else {
    ex->r.status = ex->http.status;
    ex->r.elapsed_ms = now_ms() - ex->sent_ms;
    const char *te = dmt_http_header(&ex->http, "Transfer-Encoding");
    ex->r.chunked = te && !strcasecmp(te, "chunked");
    ex->r.body = strndup((const char *)dmt_buf_ptr(&ex->http.body), dmt_buf_size(&ex->http.body));
    dmt_http_parser_free(&ex->http);
    /* The server ends the request: CHANNEL_CLOSE, which the device must echo. */
    w8(&c->out, 0x61);
    w32(&c->out, ex->dev_id);
    ex->step = E_CLOSE2;
  }
}

static void channel_message(struct tconn *c, uint8_t type, const uint8_t *p, uint32_t len) {
  struct exchange *ex = c->ex;
  uint32_t recipient = r32(p + 1);
  if (!ex || recipient != ex->our_id) {
    violation(c, "channel message 0x%02x for unknown channel %u", type, recipient);
    return;
  }
  switch (type) {
    case 0x5B: /* OPEN_CONFIRMATION: recipient | sender | window | 0xFFFFFFFF */
      if (ex->step != E_OPEN1 && ex->step != E_OPEN2) break;
      if (r32(p + 13) != 0xFFFFFFFFu) violation(c, "OPEN_CONFIRMATION reserved field %08x", r32(p + 13));
      ex->dev_id = r32(p + 5);
      ex->dev_window = r32(p + 9);
      send_request(c, ex, ex->step == E_OPEN2);
      ex->step = ex->step == E_OPEN1 ? E_RESP1 : E_RESP2;
      return;
    case 0x5C: /* OPEN_FAILURE: recipient | reason | 0 | 0 */
      ex->r.refused = true;
      finish_exchange(ex, 0, NULL);
      return;
    case 0x5D: /* WINDOW_ADJUST */
      ex->dev_window += r32(p + 5);
      ex->r.device_adjusted = true;
      return;
    case 0x5E: { /* DATA: recipient | length | bytes */
      if (ex->step != E_RESP1 && ex->step != E_RESP2) break;
      ex->credit -= len;
      if (ex->credit < 0) ex->r.window_respected = false;
      w8(&c->out, 0x5D); /* credits back at once */
      w32(&c->out, ex->dev_id);
      w32(&c->out, len);
      ex->credit += len;
      size_t used = 0;
      int rc = dmt_http_parse(&ex->http, p + 9, len, &used);
      if (rc < 0 || (rc == DMT_HTTP_DONE && used != len)) finish_exchange(ex, -1, "malformed HTTP response");
      else if (rc == DMT_HTTP_DONE) response_done(c, ex);
      return;
    }
    case 0x61: /* CLOSE */
      if (ex->step == E_CLOSE1) {
        ex->r.first_closed = true;
        w8(&c->out, 0x61); /* MPS answers a close with its own */
        w32(&c->out, ex->dev_id);
        ex->step = E_OPEN2;
        channel_open(c, ex);
      } else if (ex->step == E_CLOSE2) {
        ex->step = E_DONE;
        finish_exchange(ex, 0, NULL);
      } else {
        finish_exchange(ex, -1, "the device closed the channel early");
      }
      return;
  }
  violation(c, "channel message 0x%02x in step %d", type, ex->step);
}

/* After the handshake: keepalives, channel traffic, DISCONNECT. */
static int ready_message(struct tconn *c) {
  struct apf_server *s = c->srv;
  const uint8_t *p = dmt_buf_ptr(&c->in);
  size_t n = dmt_buf_size(&c->in), need;
  switch (p[0]) {
    case 0xD0: need = 5; break;
    case 0x01: need = 7; break;
    case 0x5B: case 0x5C: need = 17; break;
    case 0x5D: need = 9; break;
    case 0x61: need = 5; break;
    case 0x5E:
      if (n < 9) return 0;
      need = 9 + (size_t)r32(p + 5);
      break;
    default:
      s->st.bad_frames++;
      violation(c, "message of unknown type 0x%02x", p[0]);
      return -1;
  }
  if (n < need) return 0;
  if (p[0] == 0xD0) {
    uint32_t cookie = r32(p + 1);
    if (cookie != c->next_cookie) violation(c, "keepalive cookie %u, expected %u", cookie, c->next_cookie);
    c->next_cookie = cookie + 1;
    keepalive_timing(c);
    w8(&c->out, 0xD1);
    w32(&c->out, cookie);
  } else if (p[0] == 0x01) {
    if (r32(p + 1) != 11 || p[5] || p[6]) violation(c, "DISCONNECT reason %u", r32(p + 1));
    else s->st.disconnects++;
  } else {
    channel_message(c, p[0], p, p[0] == 0x5E ? r32(p + 5) : 0);
  }
  dmt_buf_consume(&c->in, need);
  return 1;
}

static int step(struct tconn *c) {
  struct apf_server *s = c->srv;
  struct dmt_buf want;
  dmt_buf_init(&want, 0);
  int rc = 0;
  switch (c->phase) {
    case P_PV:
      if ((rc = check_protocol_version(c)) == 1) c->phase = P_AUTH_SERVICE;
      break;
    case P_AUTH_SERVICE:
      service_message(&want, 0x05, "auth@amt.intel.com");
      if ((rc = expect_bytes(c, &want, "SERVICE_REQUEST auth")) == 1) {
        service_message(&c->out, 0x06, "auth@amt.intel.com");
        c->phase = P_USERAUTH;
      }
      break;
    case P_USERAUTH:
      rc = check_userauth(c);
      if (rc == 1) {
        w8(&c->out, 0x34);
        c->phase = P_PFWD_SERVICE;
      } else if (rc == 2) { /* wrong password: DMT MPS's 15-byte failure, the socket stays open */
        s->st.auth_failures++;
        w8(&c->out, 0x33);
        wstr(&c->out, "password");
        w8(&c->out, 0);
        w8(&c->out, 0);
        c->phase = P_AUTH_FAILED;
        rc = 1;
      }
      break;
    case P_AUTH_FAILED: /* the device may say goodbye; nothing else */
      if (dmt_buf_ptr(&c->in)[0] == 0x01) {
        if (dmt_buf_size(&c->in) < 7) return 0;
        dmt_buf_consume(&c->in, 7);
        rc = 1;
      } else {
        violation(c, "traffic after USERAUTH_FAILURE");
        rc = -1;
      }
      break;
    case P_PFWD_SERVICE:
      service_message(&want, 0x05, "pfwd@amt.intel.com");
      if ((rc = expect_bytes(c, &want, "SERVICE_REQUEST pfwd")) == 1) {
        service_message(&c->out, 0x06, "pfwd@amt.intel.com");
        c->phase = P_FORWARD;
        c->forwards = 0;
      }
      break;
    case P_FORWARD:
      expected_forward(c, &want);
      if ((rc = expect_bytes(c, &want, "GLOBAL_REQUEST tcpip-forward")) == 1) {
        send_forward_reply(c, forward_ports[c->forwards]);
        if (++c->forwards == PORTS_N) { /* as MPS: options once 5900 is forwarded */
          w8(&c->out, 0xD2);
          w32(&c->out, s->ka_s);
          w32(&c->out, 0);
          c->phase = P_KA_OPTIONS;
        }
      }
      break;
    case P_KA_OPTIONS:
      w8(&want, 0xD3);
      w32(&want, s->ka_s);
      w32(&want, 0);
      if ((rc = expect_bytes(c, &want, "KEEPALIVE_OPTIONS_REPLY")) == 1) {
        c->phase = P_READY;
        c->mark_ms = now_ms();
        c->next_cookie = 1;
        c->next_channel = 4; /* MPS starts channel ids at 4 */
        s->st.ready++;
        s->st.sessions++;
        c->dev->sessions++;
        if (c->dev->conn && c->dev->conn != c) c->dev->conn = NULL; /* the newest connection wins */
        c->dev->conn = c;
      }
      break;
    case P_READY:
      rc = ready_message(c);
      break;
  }
  dmt_buf_free(&want);
  return rc;
}

static void on_io(struct dmt_loop *loop, int fd, unsigned ev, void *ud) {
  struct tconn *c = ud;
  struct apf_server *s = c->srv;
  pthread_mutex_lock(&s->mu);
  if (!c->tls_done) {
    int r = SSL_do_handshake(c->ssl);
    if (r != 1) {
      int e = SSL_get_error(c->ssl, r);
      if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
        dmt_loop_watch(loop, fd, DMT_EV_READ | (e == SSL_ERROR_WANT_WRITE ? DMT_EV_WRITE : 0), on_io, c);
      else conn_close(c);
      pthread_mutex_unlock(&s->mu);
      return;
    }
    c->tls_done = true;
  }
  uint8_t buf[16384];
  bool eof = false;
  for (;;) {
    int r = SSL_read(c->ssl, buf, sizeof buf);
    if (r > 0) {
      dmt_buf_append(&c->in, buf, (size_t)r);
      continue;
    }
    int e = SSL_get_error(c->ssl, r);
    if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) eof = true;
    break;
  }
  int rc = 1;
  while (dmt_buf_size(&c->in) > 0 && (rc = step(c)) == 1) {
  }
  if (rc < 0 || eof || flush(c) != 0) conn_close(c);
  pthread_mutex_unlock(&s->mu);
}

static void on_accept(struct dmt_loop *loop, int lfd, unsigned ev, void *ud) {
  struct apf_server *s = ud;
  pthread_mutex_lock(&s->mu);
  for (;;) {
    int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) break;
    struct tconn *c = calloc(1, sizeof *c);
    c->srv = s;
    c->fd = fd;
    c->ssl = SSL_new(s->ctx);
    SSL_set_fd(c->ssl, fd);
    SSL_set_accept_state(c->ssl);
    dmt_buf_init(&c->in, 8u << 20);
    dmt_buf_init(&c->out, 8u << 20);
    c->next = s->conns;
    s->conns = c;
    s->st.connections++;
    dmt_loop_watch(loop, fd, DMT_EV_READ, on_io, c);
  }
  pthread_mutex_unlock(&s->mu);
}

static void *run(void *arg) {
  struct apf_server *s = arg;
  dmt_loop_run(s->loop);
  return NULL;
}

struct apf_server *apf_server_start(const char *cert_pem, const char *key_pem, uint32_t keepalive_s) {
  return apf_server_start_tls(cert_pem, key_pem, keepalive_s, false);
}

struct apf_server *apf_server_start_tls(const char *cert_pem, const char *key_pem, uint32_t keepalive_s, bool legacy) {
  signal(SIGPIPE, SIG_IGN); /* a device that hangs up must not end the test */
  struct apf_server *s = calloc(1, sizeof *s);
  char err[512];
  struct dmt_tls_server_opts o = {.cert_file = cert_pem, .key_file = key_pem, .legacy = legacy};
  s->ctx = dmt_tls_server_ctx(&o, err, sizeof err);
  if (!s->ctx) {
    fprintf(stderr, "apf_server: %s\n", err);
    free(s);
    return NULL;
  }
  s->ka_s = keepalive_s;
  pthread_mutex_init(&s->mu, NULL);
  pthread_cond_init(&s->cond, NULL);
  dmt_strmap_init(&s->devs);
  s->loop = dmt_loop_new();
  s->lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t al = sizeof a;
  if (bind(s->lfd, (struct sockaddr *)&a, sizeof a) != 0 || listen(s->lfd, 4096) != 0 ||
      getsockname(s->lfd, (struct sockaddr *)&a, &al) != 0) {
    fprintf(stderr, "apf_server: %s\n", strerror(errno));
    return NULL;
  }
  s->port = ntohs(a.sin_port);
  dmt_loop_watch(s->loop, s->lfd, DMT_EV_READ, on_accept, s);
  pthread_create(&s->thread, NULL, run, s);
  return s;
}

static void free_dev(const char *key, void *value, void *ud) { free(value); }

void apf_server_stop(struct apf_server *s) {
  if (!s) return;
  dmt_loop_stop(s->loop);
  pthread_join(s->thread, NULL);
  while (s->conns) conn_close(s->conns);
  close(s->lfd);
  dmt_loop_free(s->loop);
  SSL_CTX_free(s->ctx);
  dmt_strmap_foreach(&s->devs, free_dev, NULL);
  dmt_strmap_free(&s->devs);
  pthread_mutex_destroy(&s->mu);
  pthread_cond_destroy(&s->cond);
  free(s);
}

int apf_server_port(const struct apf_server *s) { return s->port; }

void apf_server_expect(struct apf_server *s, const char *guid, const char *user, const char *password,
                       const char *hostname) {
  pthread_mutex_lock(&s->mu);
  struct expect_dev *d = dmt_strmap_get(&s->devs, guid);
  if (!d) { /* updated in place otherwise: connections point at it */
    d = calloc(1, sizeof *d);
    snprintf(d->guid, sizeof d->guid, "%s", guid);
    dmt_strmap_put(&s->devs, d->guid, d, NULL);
  }
  snprintf(d->user, sizeof d->user, "%s", user);
  snprintf(d->password, sizeof d->password, "%s", password);
  snprintf(d->hostname, sizeof d->hostname, "%s", hostname);
  pthread_mutex_unlock(&s->mu);
}

void apf_server_stats(struct apf_server *s, struct apf_server_stats *out) {
  pthread_mutex_lock(&s->mu);
  *out = s->st;
  pthread_mutex_unlock(&s->mu);
}

const char *apf_server_violations(struct apf_server *s) {
  static char copy[4096];
  pthread_mutex_lock(&s->mu);
  memcpy(copy, s->violations, sizeof copy);
  pthread_mutex_unlock(&s->mu);
  return copy;
}

size_t apf_server_sessions_of(struct apf_server *s, const char *guid) {
  pthread_mutex_lock(&s->mu);
  struct expect_dev *d = dmt_strmap_get(&s->devs, guid);
  size_t n = d ? d->sessions : 0;
  pthread_mutex_unlock(&s->mu);
  return n;
}

bool apf_server_is_ready(struct apf_server *s, const char *guid) {
  pthread_mutex_lock(&s->mu);
  struct expect_dev *d = dmt_strmap_get(&s->devs, guid);
  bool ready = d && d->conn && d->conn->phase == P_READY;
  pthread_mutex_unlock(&s->mu);
  return ready;
}

static void start_exchange(void *arg) {
  struct exchange *ex = arg;
  struct apf_server *s = ex->srv;
  pthread_mutex_lock(&s->mu);
  struct expect_dev *d = dmt_strmap_get(&s->devs, ex->guid);
  struct tconn *c = d ? d->conn : NULL;
  if (!c || c->phase != P_READY || c->ex) {
    finish_exchange(ex, -1, "device not connected (or busy)");
    pthread_mutex_unlock(&s->mu);
    return;
  }
  ex->conn = c;
  c->ex = ex;
  ex->step = E_OPEN1;
  channel_open(c, ex);
  if (flush(c) != 0) conn_close(c);
  pthread_mutex_unlock(&s->mu);
}

int apf_server_wsman(struct apf_server *s, const char *guid, const char *envelope, const char *amt_password,
                     uint32_t window, size_t pad_bytes, struct apf_wsman_result *r, int timeout_ms) {
  memset(r, 0, sizeof *r);
  pthread_mutex_lock(&s->mu);
  struct expect_dev *d = dmt_strmap_get(&s->devs, guid);
  if (!d || !d->conn || d->conn->phase != P_READY || d->conn->ex) {
    pthread_mutex_unlock(&s->mu);
    snprintf(r->error, sizeof r->error, "device not connected (or busy)");
    return -1;
  }
  struct exchange *ex = calloc(1, sizeof *ex);
  ex->srv = s;
  snprintf(ex->guid, sizeof ex->guid, "%s", guid);
  ex->envelope = strdup(envelope);
  snprintf(ex->password, sizeof ex->password, "%s", amt_password);
  ex->window = window;
  ex->pad = pad_bytes;
  ex->r.window_respected = true;
  ex->r.first_status = -1;
  ex->r.status = -1;
  dmt_workq_post(dmt_loop_workq(s->loop), start_exchange, ex);
  struct timespec until;
  clock_gettime(CLOCK_REALTIME, &until);
  until.tv_sec += timeout_ms / 1000;
  until.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
  if (until.tv_nsec >= 1000000000L) {
    until.tv_sec++;
    until.tv_nsec -= 1000000000L;
  }
  while (!ex->done)
    if (pthread_cond_timedwait(&s->cond, &s->mu, &until) != 0) break;
  int rc;
  if (ex->done) {
    *r = ex->r;
    rc = ex->rc;
    dmt_http_parser_free(&ex->http);
    free(ex->envelope);
    free(ex);
  } else {
    ex->orphaned = true; /* the server thread frees it when it ends */
    snprintf(r->error, sizeof r->error, "timed out in step %d", ex->step);
    rc = -1;
  }
  pthread_mutex_unlock(&s->mu);
  return rc;
}

int apf_test_pki(const char *dir, struct apf_pki *o) {
  snprintf(o->root, sizeof o->root, "%s/root.pem", dir);
  snprintf(o->cert, sizeof o->cert, "%s/server.pem", dir);
  snprintf(o->key, sizeof o->key, "%s/server.key", dir);
  snprintf(o->named_cert, sizeof o->named_cert, "%s/named.pem", dir);
  snprintf(o->named_key, sizeof o->named_key, "%s/named.key", dir);
  snprintf(o->other_cert, sizeof o->other_cert, "%s/other.pem", dir);
  snprintf(o->other_key, sizeof o->other_key, "%s/other.key", dir);
  char err[256];
  EVP_PKEY *rk = dmt_tls_rsa_key(2048), *sk = dmt_tls_rsa_key(2048), *ok = dmt_tls_rsa_key(2048);
  const char *ips[] = {"127.0.0.1", NULL};
  const char *names[] = {"mps.example.com", NULL};
  /* shaped like the certificates DMT's MPS generates (mps-cira.md §1.1) */
  struct dmt_cert_spec root = {.common_name = "MPSRoot-5e5e5e", .org = "unknown", .is_ca = true,
                               .ns_cert_type = "sslCA", .days_before = 1, .days_valid = 30};
  struct dmt_cert_spec srv = {.common_name = "127.0.0.1", .org = "unknown", .ip_addrs = ips,
                              .ext_key_usage = "serverAuth", .ns_cert_type = "server", .days_before = 1,
                              .days_valid = 30};
  struct dmt_cert_spec named = {.common_name = "mps.example.com", .dns_names = names, .ext_key_usage = "serverAuth",
                                .days_before = 1, .days_valid = 30};
  struct dmt_cert_spec other = {.common_name = "127.0.0.1", .ip_addrs = ips, .days_before = 1, .days_valid = 30};
  X509 *r = dmt_tls_issue(&root, rk, NULL, NULL, err, sizeof err);
  X509 *s = dmt_tls_issue(&srv, sk, r, rk, err, sizeof err);
  X509 *n = dmt_tls_issue(&named, sk, r, rk, err, sizeof err);
  X509 *x = dmt_tls_issue(&other, ok, NULL, NULL, err, sizeof err);
  X509 *chain[] = {s, r};
  int rc = (!r || !s || !n || !x || dmt_tls_write_cert(o->root, &r, 1, err, sizeof err) ||
            dmt_tls_write_cert(o->cert, chain, 2, err, sizeof err) || dmt_tls_write_key(o->key, sk, err, sizeof err) ||
            dmt_tls_write_cert(o->named_cert, &n, 1, err, sizeof err) ||
            dmt_tls_write_key(o->named_key, sk, err, sizeof err) ||
            dmt_tls_write_cert(o->other_cert, &x, 1, err, sizeof err) ||
            dmt_tls_write_key(o->other_key, ok, err, sizeof err))
               ? -1
               : 0;
  X509_free(r);
  X509_free(s);
  X509_free(n);
  X509_free(x);
  EVP_PKEY_free(rk);
  EVP_PKEY_free(sk);
  EVP_PKEY_free(ok);
  return rc;
}

void apf_wsman_result_free(struct apf_wsman_result *r) {
  free(r->body);
  r->body = NULL;
}
