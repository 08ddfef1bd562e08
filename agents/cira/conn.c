/*
 * One device connection: non-blocking TLS on the shared loop, a bounded input
 * buffer fed to the APF session, a bounded output buffer flushed when the
 * socket is writable, one timer used first as the handshake deadline and
 * then as the idle check (three keepalive intervals without traffic).
 * Memory matters at 100k connections: buffers are released whenever empty
 * (SSL_MODE_RELEASE_BUFFERS on the OpenSSL side too).
 */
#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "dmt/apf.h"
#include "wsman_client.h"

#define CONN_MAX_INPUT (2u << 20)
#define CONN_MAX_OUTPUT (8u << 20)

static void on_io(struct dmt_loop *loop, int fd, unsigned ev, void *ud);

void conn_ref(struct cira_conn *c) { c->refs++; }

void conn_unref(struct cira_conn *c) {
  if (--c->refs > 0) return;
  OPENSSL_cleanse(c->password, sizeof c->password);
  OPENSSL_cleanse(c->amt_password, sizeof c->amt_password);
  dmt_buf_free(&c->in);
  dmt_buf_free(&c->out);
  free(c);
}

static void watch(struct cira_conn *c) {
  unsigned ev = DMT_EV_READ;
  if (dmt_buf_size(&c->out) > 0) ev |= DMT_EV_WRITE;
  dmt_loop_watch(c->srv->loop, c->fd, ev, on_io, c);
}

void conn_flush(struct cira_conn *c) {
  if (c->state == CONN_CLOSED || c->state == CONN_TLS) return;
  while (dmt_buf_size(&c->out) > 0) {
    size_t n = dmt_buf_size(&c->out);
    int w = SSL_write(c->ssl, dmt_buf_ptr(&c->out), n > 65536 ? 65536 : (int)n);
    if (w > 0) {
      dmt_buf_consume(&c->out, (size_t)w);
      continue;
    }
    int e = SSL_get_error(c->ssl, w);
    if (e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ) break;
    conn_close(c, 0, "write failed");
    return;
  }
  if (dmt_buf_size(&c->out) == 0) dmt_buf_reset(&c->out);
  watch(c);
}

void conn_close(struct cira_conn *c, uint32_t reason, const char *why) {
  struct cira_server *s = c->srv;
  if (c->state == CONN_CLOSED) return;
  DMT_INFO(&s->log, "cira_close", "peer=%s guid=%s reason=\"%s\"", c->peer, c->guid[0] ? c->guid : "-", why);
  if (reason && c->ssl && c->state != CONN_TLS) {
    dmt_apf_put_disconnect(&c->out, reason);
    SSL_write(c->ssl, dmt_buf_ptr(&c->out), (int)dmt_buf_size(&c->out)); /* best effort */
  }
  enum conn_state was = c->state;
  c->state = CONN_CLOSED;
  dmt_timer_stop(s->loop, &c->timer);
  dmt_loop_unwatch(s->loop, c->fd);
  wsman_abort_all(c);
  channels_abort(c);
  if (was == CONN_ACTIVE && c->registered) registry_unregister(c, why);
  if (c->ssl) {
    SSL_free(c->ssl);
    c->ssl = NULL;
  }
  ERR_clear_error();
  close(c->fd);
  c->fd = -1;
  s->nconns--;
  conn_unref(c);
}

static void on_timer(struct dmt_loop *loop, struct dmt_timer *t) {
  struct cira_conn *c = t->ud;
  struct cira_server *s = c->srv;
  if (c->state != CONN_ACTIVE) {
    conn_close(c, DMT_APF_DISC_CONNECTION_TIMED_OUT, "handshake or login took too long");
    return;
  }
  uint64_t idle = dmt_loop_now(loop) - c->last_rx_ms, limit = 3000u * s->keepalive_s;
  if (idle >= limit) {
    conn_close(c, DMT_APF_DISC_CONNECTION_TIMED_OUT, "idle past three keepalive intervals");
    return;
  }
  dmt_timer_start(loop, t, limit - idle + 10);
}

static void read_available(struct cira_conn *c) {
  uint8_t buf[16384];
  const char *eof = NULL; /* the device closed: first handle what it sent before closing (e.g. DISCONNECT) */
  for (;;) {
    int r = SSL_read(c->ssl, buf, sizeof buf);
    if (r > 0) {
      if (dmt_buf_append(&c->in, buf, (size_t)r) != 0) {
        conn_close(c, DMT_APF_DISC_PROTOCOL_ERROR, "input larger than any APF message");
        return;
      }
      continue;
    }
    int e = SSL_get_error(c->ssl, r);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) break;
    eof = e == SSL_ERROR_ZERO_RETURN ? "device closed" : "connection lost";
    break;
  }
  c->last_rx_ms = dmt_loop_now(c->srv->loop);
  conn_ref(c);
  apf_process(c);
  if (eof) conn_close(c, 0, eof);
  conn_unref(c);
}

static void handshake(struct cira_conn *c) {
  int r = SSL_do_handshake(c->ssl);
  if (r == 1) {
    c->state = CONN_APF;
    DMT_DEBUG(&c->srv->log, "tls_established", "peer=%s version=%s cipher=%s", c->peer, SSL_get_version(c->ssl),
              SSL_get_cipher_name(c->ssl));
    read_available(c);
    return;
  }
  int e = SSL_get_error(c->ssl, r);
  if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
    dmt_loop_watch(c->srv->loop, c->fd, e == SSL_ERROR_WANT_WRITE ? DMT_EV_READ | DMT_EV_WRITE : DMT_EV_READ, on_io, c);
    return;
  }
  char detail[256];
  ERR_error_string_n(ERR_peek_error(), detail, sizeof detail);
  DMT_INFO(&c->srv->log, "tls_handshake_failed", "peer=%s error=\"%s\"", c->peer, detail);
  conn_close(c, 0, "TLS handshake failed");
}

static void on_io(struct dmt_loop *loop, int fd, unsigned ev, void *ud) {
  struct cira_conn *c = ud;
  conn_ref(c);
  if (c->state == CONN_TLS) {
    handshake(c);
  } else if (c->state != CONN_CLOSED) {
    if (ev & DMT_EV_WRITE) conn_flush(c);
    if (c->state != CONN_CLOSED && (ev & DMT_EV_READ)) read_available(c);
  }
  conn_unref(c);
}

void conn_accept(struct cira_server *s, int fd, const char *peer) {
  struct cira_conn *c = calloc(1, sizeof *c);
  if (!c) {
    close(fd);
    return;
  }
  c->srv = s;
  c->refs = 1; /* the open connection's own reference */
  c->fd = fd;
  c->state = CONN_TLS;
  c->serial = ++s->next_serial;
  c->next_channel_id = 4; /* as MPS: channel ids start at 4 */
  snprintf(c->peer, sizeof c->peer, "%s", peer);
  dmt_buf_init(&c->in, CONN_MAX_INPUT);
  dmt_buf_init(&c->out, CONN_MAX_OUTPUT);
  c->ssl = SSL_new(s->tls);
  SSL_set_fd(c->ssl, fd);
  SSL_set_accept_state(c->ssl);
  s->nconns++;
  s->count.accepted++;
  c->last_rx_ms = dmt_loop_now(s->loop);
  dmt_timer_init(&c->timer, on_timer, c);
  dmt_timer_start(s->loop, &c->timer, s->handshake_ms);
  dmt_loop_watch(s->loop, fd, DMT_EV_READ, on_io, c);
}
