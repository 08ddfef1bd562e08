/*
 * Non-blocking client streams on the shared loop: TCP connect, optional TLS
 * with server verification as firmware does it (the chain against the
 * device's trusted roots through a shared per-trust-set X509_STORE, the name
 * against the configured FQDN, or the IP/CN), buffered writes and reads.
 * Used by the CIRA client (one stream per device) and the RPC client (one per
 * job). Buffers are released whenever they are empty, and the SSL_CTX runs
 * with SSL_MODE_RELEASE_BUFFERS, so an idle stream costs little beyond
 * OpenSSL's own session state.
 *
 * Callbacks may close the stream; nothing here touches it afterwards except
 * its state field, so the owner must not free the stream inside a callback.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "sim.h"

#define STREAM_MAX_INPUT (2u << 20)
#define STREAM_MAX_OUTPUT (8u << 20)
#define WRITE_SLICE 65536
/* What AMT 11/12 offer (Console issue #445): TLS_RSA_WITH_AES_128_GCM_SHA256, _AES_128_CBC_SHA,
 * _AES_256_CBC_SHA and TLS_DHE_RSA_WITH_AES_256_GCM_SHA384. */
#define AMT_LEGACY_CIPHERS "AES128-GCM-SHA256:AES128-SHA:AES256-SHA:DHE-RSA-AES256-GCM-SHA384:@SECLEVEL=0"

static void on_io(struct dmt_loop *loop, int fd, unsigned ev, void *ud);

void sim_stream_init(struct sim_stream *st, struct sim *s, void *ud) {
  memset(st, 0, sizeof *st);
  st->sim = s;
  st->fd = -1;
  st->ud = ud;
  dmt_buf_init(&st->in, STREAM_MAX_INPUT);
  dmt_buf_init(&st->out, STREAM_MAX_OUTPUT);
}

static void watch(struct sim_stream *st) {
  if (st->fd < 0) return;
  unsigned ev = 0;
  if (!st->stalled) {
    ev = DMT_EV_READ;
    if (st->state == SIM_STREAM_CONNECTING || dmt_buf_size(&st->out) > 0) ev |= DMT_EV_WRITE;
  }
  dmt_loop_watch(st->sim->loop, st->fd, ev, on_io, st);
}

void sim_stream_close(struct sim_stream *st, bool graceful) {
  if (st->fd >= 0) {
    dmt_loop_unwatch(st->sim->loop, st->fd);
    if (st->ssl) {
      if (graceful && st->state == SIM_STREAM_OPEN) SSL_shutdown(st->ssl); /* close_notify, not waited for */
      SSL_free(st->ssl);
      st->ssl = NULL;
    }
    close(st->fd);
    st->fd = -1;
  }
  ERR_clear_error();
  dmt_buf_free(&st->in);
  dmt_buf_free(&st->out);
  st->state = SIM_STREAM_CLOSED;
  st->stalled = false;
}

static void fail(struct sim_stream *st, const char *why) {
  sim_stream_close(st, false);
  if (st->on_close) st->on_close(st, why);
}

void sim_stream_stall(struct sim_stream *st, bool stalled) {
  st->stalled = stalled;
  watch(st);
}

void sim_stream_flush(struct sim_stream *st) {
  if (st->state != SIM_STREAM_OPEN || st->stalled) return;
  while (dmt_buf_size(&st->out) > 0) {
    size_t n = dmt_buf_size(&st->out);
    if (n > WRITE_SLICE) n = WRITE_SLICE;
    ssize_t w;
    if (st->ssl) {
      int r = SSL_write(st->ssl, dmt_buf_ptr(&st->out), (int)n);
      if (r <= 0) {
        int e = SSL_get_error(st->ssl, r);
        if (e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ) break;
        fail(st, "write failed");
        return;
      }
      w = r;
    } else {
      w = send(st->fd, dmt_buf_ptr(&st->out), n, MSG_NOSIGNAL);
      if (w < 0) {
        if (errno == EAGAIN || errno == EINTR) break;
        fail(st, "write failed");
        return;
      }
    }
    dmt_buf_consume(&st->out, (size_t)w);
  }
  if (dmt_buf_size(&st->out) == 0) dmt_buf_free(&st->out);
  watch(st);
}

static void opened(struct sim_stream *st) {
  st->state = SIM_STREAM_OPEN;
  watch(st);
  if (st->on_open) st->on_open(st);
  if (st->state == SIM_STREAM_OPEN) sim_stream_flush(st);
}

/*
 * Firmware matches the MPS certificate against the configured FQDN, or
 * against the configured CN when the MPS address is an IP (mps-cira.md §1.1).
 * MPS's own certificates carry the name only in the subject CN (their SANs are
 * URIs), so an IP is accepted in an IP SAN or as the CN, and a DNS name by the
 * usual host check, which falls back to the CN when there are no DNS SANs.
 */
static bool name_matches(X509 *cert, const char *name) {
  if (!name) return true;
  struct in6_addr a6;
  struct in_addr a4;
  if (inet_pton(AF_INET, name, &a4) == 1 || inet_pton(AF_INET6, name, &a6) == 1) {
    if (X509_check_ip_asc(cert, name, 0) == 1) return true;
    char cn[256];
    return X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, cn, sizeof cn) > 0 &&
           !strcmp(cn, name);
  }
  return X509_check_host(cert, name, 0, 0, NULL) == 1;
}

static void handshake(struct sim_stream *st) {
  int r = SSL_do_handshake(st->ssl);
  if (r == 1) {
    if (st->trust && !name_matches(SSL_get0_peer_certificate(st->ssl), st->name)) {
      fail(st, "tls: certificate name does not match the MPS address");
      return;
    }
    opened(st);
    return;
  }
  int e = SSL_get_error(st->ssl, r);
  if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
    dmt_loop_watch(st->sim->loop, st->fd, DMT_EV_READ | (e == SSL_ERROR_WANT_WRITE ? DMT_EV_WRITE : 0), on_io, st);
    return;
  }
  char why[256];
  long vr = SSL_get_verify_result(st->ssl);
  if (vr != X509_V_OK) snprintf(why, sizeof why, "tls: certificate %s", X509_verify_cert_error_string(vr));
  else {
    unsigned long ec = ERR_peek_error();
    snprintf(why, sizeof why, "tls: %s", ec ? ERR_reason_error_string(ec) : "handshake failed");
  }
  fail(st, why);
}

static void setup_tls(struct sim_stream *st) {
  SSL *ssl = SSL_new(st->sim->tls);
  if (!ssl) {
    fail(st, "tls: out of memory");
    return;
  }
  st->ssl = ssl;
  SSL_set_fd(ssl, st->fd);
  SSL_set_connect_state(ssl);
  if (st->legacy_tls && SSL_set_cipher_list(ssl, AMT_LEGACY_CIPHERS) != 1) {
    fail(st, "tls: legacy cipher suites unavailable");
    return;
  }
  if (st->trust) {
    SSL_set1_verify_cert_store(ssl, st->trust->store);
    SSL_set_verify(ssl, SSL_VERIFY_PEER, NULL);
  } else {
    SSL_set_verify(ssl, SSL_VERIFY_NONE, NULL);
  }
  if (st->name && !strchr(st->name, ':') && inet_addr(st->name) == INADDR_NONE) SSL_set_tlsext_host_name(ssl, st->name);
  st->state = SIM_STREAM_HANDSHAKE;
  handshake(st);
}

static void read_available(struct sim_stream *st) {
  uint8_t buf[16384];
  const char *eof = NULL;
  for (;;) {
    ssize_t r;
    if (st->ssl) {
      int n = SSL_read(st->ssl, buf, sizeof buf);
      if (n <= 0) {
        int e = SSL_get_error(st->ssl, n);
        if (e == SSL_ERROR_WANT_READ) break;
        if (e == SSL_ERROR_WANT_WRITE) {
          dmt_loop_watch(st->sim->loop, st->fd, DMT_EV_READ | DMT_EV_WRITE, on_io, st);
          break;
        }
        eof = e == SSL_ERROR_ZERO_RETURN ? "peer closed" : "connection lost";
        break;
      }
      r = n;
    } else {
      r = recv(st->fd, buf, sizeof buf, 0);
      if (r < 0 && (errno == EAGAIN || errno == EINTR)) break;
      if (r <= 0) {
        eof = r == 0 ? "peer closed" : "connection lost";
        break;
      }
    }
    if (dmt_buf_append(&st->in, buf, (size_t)r) != 0) {
      fail(st, "input overflow");
      return;
    }
    if (dmt_buf_size(&st->in) >= STREAM_MAX_INPUT / 2) break; /* let the consumer catch up */
  }
  /* What the peer sent before closing is handled first. */
  if (dmt_buf_size(&st->in) > 0 && st->on_data) st->on_data(st);
  if (st->state != SIM_STREAM_OPEN) return;
  if (dmt_buf_size(&st->in) == 0) dmt_buf_free(&st->in);
  if (eof) fail(st, eof);
}

static void on_io(struct dmt_loop *loop, int fd, unsigned ev, void *ud) {
  struct sim_stream *st = ud;
  if (st->fd != fd || st->stalled) return;
  switch (st->state) {
    case SIM_STREAM_CONNECTING: {
      int soerr = 0;
      socklen_t len = sizeof soerr;
      getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len);
      if (soerr) {
        char why[96];
        snprintf(why, sizeof why, "connect: %s", strerror(soerr));
        fail(st, why);
      } else if (!(ev & (DMT_EV_WRITE | DMT_EV_ERROR))) {
        return;
      } else if (st->tls) {
        setup_tls(st);
      } else {
        opened(st);
      }
      break;
    }
    case SIM_STREAM_HANDSHAKE:
      handshake(st);
      break;
    case SIM_STREAM_OPEN:
      if (ev & DMT_EV_WRITE) {
        sim_stream_flush(st);
        if (st->state != SIM_STREAM_OPEN) return;
      }
      if (ev & DMT_EV_READ) read_available(st);
      break;
    default:
      break;
  }
}

static int resolve(const char *host, unsigned port, struct sockaddr_storage *ss, socklen_t *len) {
  memset(ss, 0, sizeof *ss);
  struct sockaddr_in *a4 = (struct sockaddr_in *)ss;
  struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ss;
  if (inet_pton(AF_INET, host, &a4->sin_addr) == 1) { /* the common case, without a resolver round trip */
    a4->sin_family = AF_INET;
    a4->sin_port = htons((uint16_t)port);
    *len = sizeof *a4;
    return 0;
  }
  if (inet_pton(AF_INET6, host, &a6->sin6_addr) == 1) {
    a6->sin6_family = AF_INET6;
    a6->sin6_port = htons((uint16_t)port);
    *len = sizeof *a6;
    return 0;
  }
  struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res = NULL;
  char p[8];
  snprintf(p, sizeof p, "%u", port);
  if (getaddrinfo(host, p, &hints, &res) != 0 || !res) return -1;
  memcpy(ss, res->ai_addr, res->ai_addrlen);
  *len = res->ai_addrlen;
  freeaddrinfo(res);
  return 0;
}

int sim_stream_connect(struct sim_stream *st, const char *host, unsigned port, bool tls, const struct sim_trust *trust,
                       const char *name) {
  sim_stream_close(st, false);
  st->tls = tls;
  st->trust = trust;
  st->name = name ? name : host;
  struct sockaddr_storage ss;
  socklen_t len;
  if (resolve(host, port, &ss, &len) != 0) {
    fail(st, "cannot resolve the server address");
    return -1;
  }
  st->fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (st->fd < 0) {
    char why[96];
    snprintf(why, sizeof why, "socket: %s", strerror(errno));
    fail(st, why);
    return -1;
  }
  int one = 1;
  setsockopt(st->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  st->state = SIM_STREAM_CONNECTING;
  if (connect(st->fd, (struct sockaddr *)&ss, len) != 0 && errno != EINPROGRESS) {
    char why[96];
    snprintf(why, sizeof why, "connect: %s", strerror(errno));
    fail(st, why);
    return -1;
  }
  watch(st);
  return 0;
}
