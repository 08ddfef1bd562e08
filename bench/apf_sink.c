/*
 * apf-sink: the smallest CIRA server that keeps simulated devices connected,
 * for benchmarks of the simulator itself (bench/sim_scale.sh). TLS on the
 * shared event loop, APF through the common codec: accepts every service
 * request and every login, answers each tcpip-forward, sends
 * KEEPALIVE_OPTIONS_REQUEST after port 5900 (as DMT's MPS does) and answers
 * keepalives. It checks nothing: tests/integration/test_sim_apf.c is the
 * strict server. Prints "authenticated <n>" once a second.
 *
 *   apf-sink <port> <cert.pem> <key.pem> [keepalive_seconds]
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "dmt/apf.h"
#include "dmt/evloop.h"
#include "dmt/tls.h"

struct sink_conn {
  int fd;
  SSL *ssl;
  bool tls_done, authenticated;
  struct dmt_buf in, out;
};

static struct {
  struct dmt_loop *loop;
  SSL_CTX *ctx;
  uint32_t keepalive_s;
  size_t authenticated, open;
  struct dmt_timer report;
} S;

static void on_conn(struct dmt_loop *loop, int fd, unsigned ev, void *ud);

static void conn_close(struct sink_conn *c) {
  if (c->authenticated) S.authenticated--;
  S.open--;
  dmt_loop_unwatch(S.loop, c->fd);
  SSL_free(c->ssl);
  close(c->fd);
  dmt_buf_free(&c->in);
  dmt_buf_free(&c->out);
  free(c);
  ERR_clear_error();
}

static int flush(struct sink_conn *c) {
  while (dmt_buf_size(&c->out) > 0) {
    int w = SSL_write(c->ssl, dmt_buf_ptr(&c->out), (int)dmt_buf_size(&c->out));
    if (w > 0) {
      dmt_buf_consume(&c->out, (size_t)w);
      continue;
    }
    int e = SSL_get_error(c->ssl, w);
    if (e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ) {
      dmt_loop_watch(S.loop, c->fd, DMT_EV_READ | DMT_EV_WRITE, on_conn, c);
      return 0;
    }
    return -1;
  }
  dmt_buf_free(&c->out);
  dmt_loop_watch(S.loop, c->fd, DMT_EV_READ, on_conn, c);
  return 0;
}

static void handle(struct sink_conn *c, const struct dmt_apf_msg *m) {
  switch (m->type) {
    case DMT_APF_SERVICE_REQUEST: {
      char name[64];
      snprintf(name, sizeof name, "%.*s", (int)m->u.service.name.len, (const char *)m->u.service.name.p);
      dmt_apf_put_service_accept(&c->out, name);
      break;
    }
    case DMT_APF_USERAUTH_REQUEST:
      dmt_apf_put_userauth_success(&c->out);
      if (!c->authenticated) S.authenticated++;
      c->authenticated = true;
      break;
    case DMT_APF_GLOBAL_REQUEST:
      if (m->u.global.kind == DMT_APF_GLOBAL_TCPIP_FORWARD) {
        dmt_apf_put_request_success(&c->out, true, m->u.global.port);
        if (m->u.global.port == 5900) dmt_apf_put_keepalive_options_request(&c->out, S.keepalive_s, 0);
      } else if (m->u.global.kind == DMT_APF_GLOBAL_CANCEL_TCPIP_FORWARD) {
        dmt_apf_put_request_success(&c->out, false, 0);
      }
      break;
    case DMT_APF_KEEPALIVE_REQUEST:
      dmt_apf_put_keepalive_reply(&c->out, m->u.keepalive.cookie);
      break;
    case DMT_APF_CHANNEL_OPEN:
      dmt_apf_put_channel_open_failure(&c->out, m->u.channel_open.sender, DMT_APF_OPEN_UNKNOWN_CHANNEL_TYPE);
      break;
    default:
      break;
  }
}

static void on_conn(struct dmt_loop *loop, int fd, unsigned ev, void *ud) {
  struct sink_conn *c = ud;
  if (!c->tls_done) {
    int r = SSL_do_handshake(c->ssl);
    if (r != 1) {
      int e = SSL_get_error(c->ssl, r);
      if (e == SSL_ERROR_WANT_READ) dmt_loop_watch(loop, fd, DMT_EV_READ, on_conn, c);
      else if (e == SSL_ERROR_WANT_WRITE) dmt_loop_watch(loop, fd, DMT_EV_READ | DMT_EV_WRITE, on_conn, c);
      else conn_close(c);
      return;
    }
    c->tls_done = true;
  }
  if ((ev & DMT_EV_WRITE) && flush(c) != 0) {
    conn_close(c);
    return;
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
  for (;;) {
    struct dmt_apf_msg m;
    size_t used;
    int rc = dmt_apf_decode(dmt_buf_ptr(&c->in), dmt_buf_size(&c->in), 0, &m, &used);
    if (rc == DMT_APF_NEED_MORE) break;
    if (rc < 0) {
      conn_close(c);
      return;
    }
    handle(c, &m);
    dmt_buf_consume(&c->in, used);
  }
  if (dmt_buf_size(&c->in) == 0) dmt_buf_free(&c->in);
  if (eof || flush(c) != 0) conn_close(c);
}

static void on_accept(struct dmt_loop *loop, int lfd, unsigned ev, void *ud) {
  for (;;) {
    int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) return;
    struct sink_conn *c = calloc(1, sizeof *c);
    c->fd = fd;
    c->ssl = SSL_new(S.ctx);
    SSL_set_fd(c->ssl, fd);
    SSL_set_accept_state(c->ssl);
    dmt_buf_init(&c->in, 4u << 20);
    dmt_buf_init(&c->out, 4u << 20);
    S.open++;
    dmt_loop_watch(loop, fd, DMT_EV_READ, on_conn, c);
  }
}

static void report(struct dmt_loop *loop, struct dmt_timer *t) {
  printf("authenticated %zu open %zu\n", S.authenticated, S.open);
  fflush(stdout);
  dmt_timer_start(loop, t, 1000);
}

static void on_signal(struct dmt_loop *loop, int signo, void *ud) { dmt_loop_stop(loop); }

int main(int argc, char **argv) {
  if (argc < 4) {
    fprintf(stderr, "usage: %s <port> <cert.pem> <key.pem> [keepalive_seconds]\n", argv[0]);
    return 2;
  }
  signal(SIGPIPE, SIG_IGN);
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
  char err[512];
  struct dmt_tls_server_opts o = {.cert_file = argv[2], .key_file = argv[3]};
  S.ctx = dmt_tls_server_ctx(&o, err, sizeof err);
  if (!S.ctx) {
    fprintf(stderr, "apf-sink: %s\n", err);
    return 1;
  }
  SSL_CTX_set_num_tickets(S.ctx, 0);
  S.keepalive_s = argc > 4 ? (uint32_t)atoi(argv[4]) : 30;
  S.loop = dmt_loop_new();
  int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  int one = 1;
  setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(argv[1]))};
  if (bind(lfd, (struct sockaddr *)&a, sizeof a) != 0 || listen(lfd, 4096) != 0) {
    fprintf(stderr, "apf-sink: port %s: %s\n", argv[1], strerror(errno));
    return 1;
  }
  dmt_loop_watch(S.loop, lfd, DMT_EV_READ, on_accept, NULL);
  int sigs[] = {SIGINT, SIGTERM};
  dmt_loop_on_signals(S.loop, sigs, 2, on_signal, NULL);
  dmt_timer_init(&S.report, report, NULL);
  dmt_timer_start(S.loop, &S.report, 1000);
  dmt_loop_run(S.loop);
  return 0;
}
