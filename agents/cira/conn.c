/*
 * One device connection: non-blocking TLS on the shared loop, a bounded input
 * buffer fed to the APF session, an output buffer flushed when the socket is
 * writable and bounded (a device that stops reading is dropped rather than
 * buffered without end), and one heap timer per connection used first as the
 * handshake-and-login deadline, then for the delayed keepalive-options
 * request, then as the idle check (three keepalive intervals without
 * traffic) and the slowloris check (an incomplete APF message left waiting).
 * Memory matters at 100k connections: buffers are released whenever empty
 * and OpenSSL releases its own (SSL_MODE_RELEASE_BUFFERS), so an idle
 * connection holds no I/O buffer at all.
 */
#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cira.h"

#define PRE_AUTH_MAX_INPUT (16u << 10) /* the largest login message is about 6 KiB */
#define CONN_MAX_INPUT (2u << 20)      /* one CHANNEL_DATA of 1 MiB plus what follows it */

static void on_io(struct dmt_loop *loop, int fd, unsigned ev, void *ud);

void conn_ref(struct cira_conn *c) { c->refs++; }

void device_free(struct cira_device *d) {
  if (!d) return;
  OPENSSL_cleanse(d->amt_password, sizeof d->amt_password);
  free(d->hostname);
  free(d->friendly_name);
  free(d->tags);
  free(d->challenge);
  free(d);
}

void conn_unref(struct cira_conn *c) {
  if (--c->refs > 0) return;
  device_free(c->dev);
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
  if (dmt_buf_size(&c->out) == 0) {
    dmt_buf_reset(&c->out);
  } else if (dmt_buf_size(&c->out) > c->srv->set.max_output) {
    conn_close(c, 0, "device stopped reading (output queue full)");
    return;
  }
  watch(c);
}

void conn_close(struct cira_conn *c, uint32_t reason, const char *why) {
  struct cira_server *s = c->srv;
  if (c->state == CONN_CLOSED) return;
  DMT_INFO(&s->log, "cira_close", "peer=%s guid=%s reason=\"%s\"", c->peer, c->guid[0] ? c->guid : "-", why);
  if (reason && c->ssl && c->state != CONN_TLS) {
    /* Best effort: the DISCONNECT goes after whatever was already queued. */
    dmt_apf_put_disconnect(&c->out, reason);
    size_t n = dmt_buf_size(&c->out);
    if (SSL_write(c->ssl, dmt_buf_ptr(&c->out), n > 65536 ? 65536 : (int)n) <= 0) ERR_clear_error();
  }
  enum conn_state was = c->state;
  c->state = CONN_CLOSED;
  conn_ref(c);
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
  conn_unref(c); /* the open connection's own reference */
  conn_unref(c);
}

void conn_arm_timer(struct cira_conn *c) {
  struct cira_server *s = c->srv;
  if (c->state != CONN_ACTIVE) return;
  uint64_t now = dmt_loop_now(s->loop), ka = 1000ull * s->set.keepalive_s;
  uint64_t due = c->last_rx_ms + 3 * ka;
  if (c->partial_since_ms && c->partial_since_ms + 2 * ka < due) due = c->partial_since_ms + 2 * ka;
  dmt_timer_start(s->loop, &c->timer, due > now ? due - now + 5 : 0);
}

static void on_timer(struct dmt_loop *loop, struct dmt_timer *t) {
  struct cira_conn *c = t->ud;
  struct cira_server *s = c->srv;
  if (c->state != CONN_ACTIVE) {
    conn_close(c, DMT_APF_DISC_CONNECTION_TIMED_OUT, "TLS handshake or CIRA login took too long");
    return;
  }
  if (!c->keepalive_options_sent) {
    /* A device that never forwarded 5900 nor four ports is still asked for keepalives. */
    c->keepalive_options_sent = true;
    dmt_apf_put_keepalive_options_request(&c->out, s->set.keepalive_s, 3 * s->set.keepalive_s);
    conn_flush(c);
    if (c->state == CONN_CLOSED) return;
  }
  uint64_t now = dmt_loop_now(loop), ka = 1000ull * s->set.keepalive_s;
  if (now - c->last_rx_ms >= 3 * ka) {
    conn_close(c, DMT_APF_DISC_CONNECTION_TIMED_OUT, "idle past three keepalive intervals");
    return;
  }
  if (c->partial_since_ms && now - c->partial_since_ms >= 2 * ka) {
    s->count.protocol_errors++;
    conn_close(c, DMT_APF_DISC_PROTOCOL_ERROR, "incomplete APF message left waiting (slow sender)");
    return;
  }
  conn_arm_timer(c);
}

static void read_available(struct cira_conn *c) {
  uint8_t buf[16384];
  const char *eof = NULL; /* the device closed: first handle what it sent before closing (e.g. DISCONNECT) */
  bool got = false;
  for (;;) {
    int r = SSL_read(c->ssl, buf, sizeof buf);
    if (r > 0) {
      got = true;
      if (dmt_buf_append(&c->in, buf, (size_t)r) != 0) {
        c->srv->count.protocol_errors++;
        conn_close(c, DMT_APF_DISC_PROTOCOL_ERROR,
                   c->state == CONN_ACTIVE ? "input larger than any APF message" : "too much input before login");
        return;
      }
      continue;
    }
    int e = SSL_get_error(c->ssl, r);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) break;
    eof = e == SSL_ERROR_ZERO_RETURN ? "device closed" : "connection lost";
    ERR_clear_error();
    break;
  }
  if (got) {
    c->last_rx_ms = dmt_loop_now(c->srv->loop);
    c->seen = true;
  }
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
  char detail[256] = "peer closed";
  unsigned long err = ERR_peek_error();
  if (err) ERR_error_string_n(err, detail, sizeof detail);
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
    if (c->state != CONN_CLOSED && (ev & (DMT_EV_READ | DMT_EV_ERROR))) read_available(c);
  }
  conn_unref(c);
}

void conn_accept(struct cira_server *s, int fd, const char *peer) {
  struct cira_conn *c = calloc(1, sizeof *c);
  SSL *ssl = c ? SSL_new(s->tls) : NULL;
  if (!ssl) {
    free(c);
    close(fd);
    return;
  }
  c->srv = s;
  c->refs = 1; /* the open connection's own reference */
  c->fd = fd;
  c->ssl = ssl;
  c->state = CONN_TLS;
  c->serial = ++s->next_serial;
  c->next_channel_id = 4; /* as MPS: channel ids start at 4 */
  snprintf(c->peer, sizeof c->peer, "%s", peer);
  dmt_buf_init(&c->in, PRE_AUTH_MAX_INPUT);
  dmt_buf_init(&c->out, 0); /* bounded by set.max_output in conn_flush */
  SSL_set_fd(ssl, fd);
  SSL_set_accept_state(ssl);
  s->nconns++;
  s->count.accepted++;
  c->last_rx_ms = dmt_loop_now(s->loop);
  dmt_timer_init(&c->timer, on_timer, c);
  dmt_timer_start(s->loop, &c->timer, s->set.handshake_ms);
  dmt_loop_watch(s->loop, fd, DMT_EV_READ, on_io, c);
}

/* Called by the registry once the login succeeded: the connection may now carry channel data. */
void conn_authenticated(struct cira_conn *c) {
  c->in.max = CONN_MAX_INPUT;
  c->last_rx_ms = dmt_loop_now(c->srv->loop);
  if (!c->keepalive_options_sent)
    dmt_timer_start(c->srv->loop, &c->timer, c->srv->set.keepalive_options_delay_ms);
  else
    conn_arm_timer(c);
}
