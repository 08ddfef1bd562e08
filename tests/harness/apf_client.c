/* A minimal device side of CIRA for tests (see apf_client.h). */
#include "apf_client.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "dmt/amt_guid.h"
#include "dmt/tls.h"
#include "harness.h"

bool raw_connect_from(struct raw *r, SSL_CTX *ctx, int port, const char *source) {
  memset(r, 0, sizeof *r);
  dmt_buf_init(&r->in, 0);
  r->fd = socket(AF_INET, SOCK_STREAM, 0);
  if (source) {
    struct sockaddr_in s = {.sin_family = AF_INET};
    inet_pton(AF_INET, source, &s.sin_addr);
    if (bind(r->fd, (struct sockaddr *)&s, sizeof s) != 0) return false;
  }
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                          .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  int one = 1;
  setsockopt(r->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  struct timeval tv = {10, 0}; /* the handshake may wait behind other work of the terminator */
  setsockopt(r->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  if (connect(r->fd, (struct sockaddr *)&a, sizeof a) != 0) {
    fprintf(stderr, "raw: connect from %s: %s\n", source ? source : "-", strerror(errno));
    return false;
  }
  r->ssl = SSL_new(ctx);
  SSL_set_fd(r->ssl, r->fd);
  X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(r->ssl), "127.0.0.1"); /* as firmware checks the MPS name */
  if (SSL_connect(r->ssl) != 1) {
    char e[256];
    fprintf(stderr, "raw: TLS from %s: %s\n", source ? source : "-", dmt_tls_error(e, sizeof e));
    return false;
  }
  tv = (struct timeval){0, 100000};
  setsockopt(r->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  return true;
}

void raw_free(struct raw *r) {
  if (r->ssl) SSL_free(r->ssl);
  if (r->fd > 0) close(r->fd);
  dmt_buf_free(&r->in);
  r->ssl = NULL;
  r->fd = -1;
  ERR_clear_error();
}

bool raw_write(struct raw *r, const void *p, size_t n) {
  return n == 0 || SSL_write(r->ssl, p, (int)n) == (int)n;
}

/* Writes the buffer (in pieces of `piece` bytes with a pause, so each lands in its own read) and frees it. */
bool raw_send(struct raw *r, struct dmt_buf *b, size_t piece) {
  bool ok = true;
  if (!piece) piece = dmt_buf_size(b);
  for (size_t off = 0; ok && off < dmt_buf_size(b); off += piece) {
    size_t n = dmt_buf_size(b) - off < piece ? dmt_buf_size(b) - off : piece;
    ok = raw_write(r, dmt_buf_ptr(b) + off, n);
    if (piece < dmt_buf_size(b)) usleep(2000);
  }
  dmt_buf_free(b);
  dmt_buf_init(b, 0);
  return ok;
}

/* The next APF message from the terminator: 1, 0 on timeout, -1 once the connection is closed. */
int raw_next(struct raw *r, struct dmt_apf_msg *m, int timeout_ms) {
  dmt_buf_consume(&r->in, r->used);
  r->used = 0;
  uint64_t deadline = dmt_test_now_ms() + (uint64_t)timeout_ms;
  for (;;) {
    if (dmt_buf_size(&r->in)) {
      int rc = dmt_apf_decode(dmt_buf_ptr(&r->in), dmt_buf_size(&r->in), DMT_APF_DECODE_REQUEST_SUCCESS_PORT, m,
                              &r->used);
      if (rc == DMT_APF_OK) {
        if (m->type == DMT_APF_DISCONNECT) {
          r->got_disconnect = true;
          r->disconnect_reason = m->u.disconnect.reason;
        }
        return 1;
      }
      if (rc < 0) return -1;
    }
    if (r->eof) return -1;
    if (dmt_test_now_ms() > deadline) return 0;
    uint8_t buf[4096];
    int n = SSL_read(r->ssl, buf, sizeof buf);
    if (n > 0) {
      dmt_buf_append(&r->in, buf, (size_t)n);
      continue;
    }
    int e = SSL_get_error(r->ssl, n);
    if (e == SSL_ERROR_WANT_READ || (e == SSL_ERROR_SYSCALL && (errno == EAGAIN || errno == EWOULDBLOCK))) {
      ERR_clear_error();
      continue;
    }
    r->eof = true;
    ERR_clear_error();
  }
}

bool raw_expect(struct raw *r, uint8_t type, struct dmt_apf_msg *m, int timeout_ms) {
  struct dmt_apf_msg tmp;
  if (!m) m = &tmp;
  for (;;) {
    int rc = raw_next(r, m, timeout_ms);
    if (rc <= 0) {
      fprintf(stderr, "raw: waiting for type %u: %s\n", type, rc < 0 ? "closed" : "timeout");
      return false;
    }
    if (m->type == type) return true;
    if (m->type != DMT_APF_KEEPALIVE_OPTIONS_REQUEST && m->type != DMT_APF_CHANNEL_OPEN) {
      fprintf(stderr, "raw: wanted type %u, got %u\n", type, m->type);
      return false;
    }
  }
}

/* True once the terminator has closed the connection (within timeout_ms). */
bool raw_closed(struct raw *r, int timeout_ms) {
  struct dmt_apf_msg m;
  uint64_t deadline = dmt_test_now_ms() + (uint64_t)timeout_ms;
  while (dmt_test_now_ms() < deadline) {
    int rc = raw_next(r, &m, 100);
    if (rc < 0) return true;
  }
  return false;
}

void put_login(struct dmt_buf *b, const char *guid, const char *user, const char *pass) {
  uint8_t uuid[16];
  dmt_amt_guid_to_uuid(guid, uuid);
  dmt_apf_put_protocol_version(b, 1, 0, DMT_APF_TRIGGER_PERIODIC, uuid);
  dmt_apf_put_service_request(b, DMT_APF_SERVICE_AUTH);
  dmt_apf_put_userauth_password(b, user, DMT_APF_SERVICE_PFWD, pass);
}

void put_forwards(struct dmt_buf *b, int nports) {
  static const uint32_t ports[] = {16993, 16992, 664, 623, 16995, 16994, 5900};
  dmt_apf_put_service_request(b, DMT_APF_SERVICE_PFWD);
  for (int i = 0; i < nports; i++) dmt_apf_put_tcpip_forward(b, false, "raw-host", ports[i]);
}

/* Logs a raw device in; true on USERAUTH_SUCCESS. */
bool raw_login_as(struct raw *r, SSL_CTX *ctx, int port, const char *source, const char *guid, const char *user,
                  const char *pass) {
  if (!raw_connect_from(r, ctx, port, source)) return false;
  struct dmt_buf b;
  dmt_buf_init(&b, 0);
  put_login(&b, guid, user, pass);
  if (!raw_send(r, &b, 0) || !raw_expect(r, DMT_APF_SERVICE_ACCEPT, NULL, 5000)) return false;
  struct dmt_apf_msg m;
  if (raw_next(r, &m, 5000) != 1) return false;
  return m.type == DMT_APF_USERAUTH_SUCCESS;
}

bool raw_keepalive_ok(struct raw *r, uint32_t cookie) {
  struct dmt_buf b;
  dmt_buf_init(&b, 0);
  dmt_apf_put_keepalive_request(&b, cookie);
  struct dmt_apf_msg m;
  return raw_send(r, &b, 0) && raw_expect(r, DMT_APF_KEEPALIVE_REPLY, &m, 5000) && m.u.keepalive.cookie == cookie;
}

