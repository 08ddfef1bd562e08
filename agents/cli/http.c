/*
 * A minimal blocking HTTP/1.1 client for the REST bridge (RPS objects and
 * the persisted event log), over a plain socket or OpenSSL.
 *
 * Why not libwebsockets' client: dmtctl makes one request at a time and waits
 * for it; lws would need a context, a vhost, a protocol callback and a service
 * loop for that, and its own TLS setup. A blocking connect/write/read with
 * the deadline enforced by poll() and socket timeouts is a few dozen lines,
 * and the response is framed by common/'s audited HTTP parser (Content-Length
 * and chunked, with size caps), so no HTTP parsing is written here.
 * One request per connection (Connection: close).
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "dmt/http.h"
#include "dmt/tls.h"
#include "dmtctl.h"

#define MAX_BODY (64u * 1024u * 1024u)

struct url {
  bool tls;
  char host[256];
  char port[8];
  char prefix[512]; /* path prefix without trailing slash */
};

static int parse_url(const char *u, struct url *out, char *err, size_t errlen) {
  memset(out, 0, sizeof *out);
  const char *p;
  if (!strncmp(u, "http://", 7)) {
    p = u + 7;
  } else if (!strncmp(u, "https://", 8)) {
    p = u + 8;
    out->tls = true;
  } else {
    snprintf(err, errlen, "bridge URL `%s` must start with http:// or https://", u);
    return -1;
  }
  const char *slash = strchr(p, '/');
  const char *hostend = slash ? slash : p + strlen(p);
  const char *colon = NULL;
  if (*p == '[') { /* [v6]:port */
    const char *rb = memchr(p, ']', (size_t)(hostend - p));
    if (!rb) goto bad;
    snprintf(out->host, sizeof out->host, "%.*s", (int)(rb - p - 1), p + 1);
    if (rb[1] == ':') colon = rb + 1;
  } else {
    colon = memchr(p, ':', (size_t)(hostend - p));
    size_t hl = (size_t)((colon ? colon : hostend) - p);
    if (hl == 0 || hl >= sizeof out->host) goto bad;
    snprintf(out->host, sizeof out->host, "%.*s", (int)hl, p);
  }
  if (colon) {
    size_t pl = (size_t)(hostend - colon - 1);
    if (pl == 0 || pl >= sizeof out->port) goto bad;
    snprintf(out->port, sizeof out->port, "%.*s", (int)pl, colon + 1);
  } else {
    snprintf(out->port, sizeof out->port, "%s", out->tls ? "443" : "80");
  }
  if (slash) {
    snprintf(out->prefix, sizeof out->prefix, "%s", slash);
    size_t l = strlen(out->prefix);
    while (l > 0 && out->prefix[l - 1] == '/') out->prefix[--l] = '\0';
  }
  return 0;
bad:
  snprintf(err, errlen, "malformed bridge URL `%s`", u);
  return -1;
}

static uint64_t left_ms(uint64_t deadline) {
  uint64_t now = dmt_wall_ms();
  return now >= deadline ? 0 : deadline - now;
}

static int connect_to(const struct url *u, uint64_t deadline, char *err, size_t errlen, int *timed_out) {
  struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *res = NULL;
  int gai = getaddrinfo(u->host, u->port, &hints, &res);
  if (gai != 0) {
    snprintf(err, errlen, "cannot resolve %s: %s", u->host, gai_strerror(gai));
    return -1;
  }
  int fd = -1;
  for (struct addrinfo *a = res; a && fd < 0; a = a->ai_next) {
    fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, a->ai_protocol);
    if (fd < 0) continue;
    if (connect(fd, a->ai_addr, a->ai_addrlen) != 0) {
      if (errno != EINPROGRESS) {
        snprintf(err, errlen, "cannot connect to %s:%s: %s", u->host, u->port, strerror(errno));
        close(fd);
        fd = -1;
        continue;
      }
      struct pollfd pf = {.fd = fd, .events = POLLOUT};
      int pr = poll(&pf, 1, (int)left_ms(deadline));
      int soerr = 0;
      socklen_t sl = sizeof soerr;
      if (pr <= 0) {
        snprintf(err, errlen, "timed out connecting to %s:%s", u->host, u->port);
        *timed_out = 1;
        close(fd);
        fd = -1;
        continue;
      }
      getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl);
      if (soerr) {
        snprintf(err, errlen, "cannot connect to %s:%s: %s", u->host, u->port, strerror(soerr));
        close(fd);
        fd = -1;
        continue;
      }
    }
  }
  freeaddrinfo(res);
  if (fd >= 0) {
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
    uint64_t ms = left_ms(deadline);
    struct timeval tv = {.tv_sec = (time_t)(ms / 1000), .tv_usec = (suseconds_t)(ms % 1000) * 1000};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  }
  return fd;
}

struct conn {
  int fd;
  SSL_CTX *ctx;
  SSL *ssl;
};

static int conn_write(struct conn *c, const char *p, size_t n) {
  while (n > 0) {
    ssize_t w = c->ssl ? SSL_write(c->ssl, p, (int)n) : send(c->fd, p, n, MSG_NOSIGNAL);
    if (w <= 0) return -1;
    p += w;
    n -= (size_t)w;
  }
  return 0;
}

static ssize_t conn_read(struct conn *c, void *buf, size_t n) {
  if (c->ssl) {
    int r = SSL_read(c->ssl, buf, (int)n);
    if (r > 0) return r;
    return SSL_get_error(c->ssl, r) == SSL_ERROR_ZERO_RETURN ? 0 : -1;
  }
  return recv(c->fd, buf, n, 0);
}

static void conn_close(struct conn *c) {
  if (c->ssl) {
    SSL_shutdown(c->ssl);
    SSL_free(c->ssl);
  }
  if (c->ctx) SSL_CTX_free(c->ctx);
  if (c->fd >= 0) close(c->fd);
}

static int tls_start(struct ctl *ctl, struct conn *c, const struct url *u, char *err, size_t errlen) {
  c->ctx = dmt_tls_client_ctx(dmt_config_str(&ctl->cfg, "ca_file"), true, err, errlen);
  if (!c->ctx) return -1;
  if (!dmt_config_str(&ctl->cfg, "ca_file")) SSL_CTX_set_default_verify_paths(c->ctx);
  c->ssl = SSL_new(c->ctx);
  SSL_set_fd(c->ssl, c->fd);
  SSL_set_tlsext_host_name(c->ssl, u->host);
  SSL_set1_host(c->ssl, u->host);
  if (SSL_connect(c->ssl) != 1) {
    char e[256];
    snprintf(err, errlen, "TLS handshake with %s failed: %s", u->host, dmt_tls_error(e, sizeof e));
    return -1;
  }
  return 0;
}

int ctl_http(struct ctl *c, const char *method, const char *base_url, const char *path, const char *body,
             struct ctl_http_resp *r, char *err, size_t errlen) {
  memset(r, 0, sizeof *r);
  struct url u;
  if (parse_url(base_url, &u, err, errlen) != 0) return CTL_USAGE;
  uint64_t deadline = dmt_wall_ms() + (uint64_t)c->timeout_ms;
  int timed_out = 0;
  struct conn cn = {.fd = connect_to(&u, deadline, err, errlen, &timed_out)};
  if (cn.fd < 0) return timed_out ? CTL_TIMEOUT : CTL_UNREACHABLE;
  if (u.tls && tls_start(c, &cn, &u, err, errlen) != 0) {
    conn_close(&cn);
    return CTL_UNREACHABLE;
  }
  struct dmt_buf req;
  dmt_buf_init(&req, 0);
  dmt_buf_printf(&req, "%s %s%s HTTP/1.1\r\nHost: %s%s%s\r\nUser-Agent: dmtctl/0.1\r\nAccept: application/json\r\n"
                       "Connection: close\r\n",
                 method, u.prefix, path, u.host, strcmp(u.port, u.tls ? "443" : "80") ? ":" : "",
                 strcmp(u.port, u.tls ? "443" : "80") ? u.port : "");
  if (c->token) dmt_buf_printf(&req, "Authorization: Bearer %s\r\n", c->token);
  if (c->tenant[0]) dmt_buf_printf(&req, "ActiveProjectID: %s\r\n", c->tenant);
  if (body) dmt_buf_printf(&req, "Content-Type: application/json\r\nContent-Length: %zu\r\n", strlen(body));
  dmt_buf_printf(&req, "\r\n");
  if (body) dmt_buf_append(&req, body, strlen(body));
  int wrc = conn_write(&cn, (const char *)dmt_buf_ptr(&req), dmt_buf_size(&req));
  if (req.data) memset(req.data, 0, req.cap); /* it held the token */
  dmt_buf_free(&req);
  if (wrc != 0) {
    snprintf(err, errlen, "cannot send the request to %s:%s: %s", u.host, u.port, strerror(errno));
    conn_close(&cn);
    return errno == EAGAIN || errno == EWOULDBLOCK ? CTL_TIMEOUT : CTL_UNREACHABLE;
  }
  struct dmt_http_parser hp;
  dmt_http_parser_init(&hp, false, MAX_BODY);
  int st = DMT_HTTP_MORE, rc = CTL_OK;
  uint8_t buf[16384];
  while (st == DMT_HTTP_MORE) {
    ssize_t n = conn_read(&cn, buf, sizeof buf);
    if (n < 0) {
      bool to = errno == EAGAIN || errno == EWOULDBLOCK;
      snprintf(err, errlen, "%s reading the answer from %s:%s", to ? "timed out" : "error", u.host, u.port);
      rc = to ? CTL_TIMEOUT : CTL_UNREACHABLE;
      break;
    }
    if (n == 0) {
      st = dmt_http_parse_eof(&hp);
      if (st != DMT_HTTP_DONE) {
        snprintf(err, errlen, "the connection to %s:%s closed before a complete answer", u.host, u.port);
        rc = CTL_UNREACHABLE;
      }
      break;
    }
    size_t used;
    st = dmt_http_parse(&hp, buf, (size_t)n, &used);
    if (st < 0) {
      snprintf(err, errlen, "malformed HTTP answer from %s:%s: %s", u.host, u.port, dmt_http_strerror(st));
      rc = CTL_FAILED;
    }
  }
  if (rc == CTL_OK) {
    r->status = hp.status;
    r->len = dmt_buf_size(&hp.body);
    r->body = malloc(r->len + 1);
    if (r->body) {
      if (r->len) memcpy(r->body, dmt_buf_ptr(&hp.body), r->len); /* a 204 has no body at all */
      r->body[r->len] = '\0';
      if (r->len) r->json = json_loadb(r->body, r->len, JSON_DECODE_ANY, NULL);
    }
  }
  dmt_http_parser_free(&hp);
  conn_close(&cn);
  return rc;
}

void ctl_http_resp_free(struct ctl_http_resp *r) {
  free(r->body);
  json_decref(r->json);
  memset(r, 0, sizeof *r);
}

enum ctl_exit ctl_http_exit(int status) {
  if (status >= 200 && status < 300) return CTL_OK;
  if (status == 401 || status == 403) return CTL_AUTH;
  if (status == 404 || status == 410) return CTL_NOT_FOUND;
  if (status == 408 || status == 504) return CTL_TIMEOUT;
  return CTL_FAILED;
}

const char *ctl_http_error_text(const struct ctl_http_resp *r, char *buf, size_t len) {
  const json_t *j = r->json;
  const json_t *errors = json_object_get(j, "errors"); /* express-validator */
  const char *msg = NULL, *field = NULL;
  if (json_is_array(errors) && json_array_size(errors) > 0) {
    msg = json_string_value(json_object_get(json_array_get(errors, 0), "msg"));
    field = json_string_value(json_object_get(json_array_get(errors, 0), "path"));
  }
  if (!msg) msg = json_string_value(json_object_get(j, "message"));
  if (!msg) msg = json_string_value(json_object_get(j, "errorDescription"));
  if (!msg) msg = json_string_value(json_object_get(j, "error"));
  if (msg && field) snprintf(buf, len, "%s: %s", field, msg);
  else if (msg) snprintf(buf, len, "%s", msg);
  else if (r->len && r->len < 200 && !r->json) snprintf(buf, len, "%s", r->body);
  else snprintf(buf, len, "HTTP %d", r->status);
  return buf;
}

void ctl_url_param(char *url, size_t len, const char *key, const char *value) {
  size_t o = strlen(url);
  if (o + 2 >= len) return;
  url[o++] = strchr(url, '?') ? '&' : '?';
  for (const char *p = key; *p && o + 1 < len; p++) url[o++] = *p;
  if (o + 1 < len) url[o++] = '=';
  static const char hex[] = "0123456789ABCDEF";
  for (const unsigned char *p = (const unsigned char *)value; *p && o + 3 < len; p++) {
    if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || strchr("-._~", *p)) {
      url[o++] = (char)*p;
    } else {
      url[o++] = '%';
      url[o++] = hex[*p >> 4];
      url[o++] = hex[*p & 15];
    }
  }
  url[o] = '\0';
}

const char *ctl_bridge_url(const struct ctl *c) { return dmt_config_str(&c->cfg, "bridge"); }

const char *ctl_rps_url(const struct ctl *c, char *buf, size_t len) {
  const char *explicit_url = dmt_config_str(&c->cfg, "rps_bridge");
  if (explicit_url) return explicit_url;
  /* DMT serves MPS routes on 3000 and RPS routes on 8081; the bridge keeps both ports. */
  const char *b = ctl_bridge_url(c);
  const char *p = b ? strstr(b, ":3000") : NULL;
  if (p && (p[5] == '\0' || p[5] == '/')) {
    snprintf(buf, len, "%.*s:8081%s", (int)(p - b), b, p + 5);
    return buf;
  }
  return b;
}
