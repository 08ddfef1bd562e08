/* Liveness/readiness HTTP responder on the event loop (see dmt/health.h). */
#include "dmt/health.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "dmt/evloop.h"

struct dmt_health {
  struct dmt_loop *loop;
  int fd;
  bool (*ready)(void *ud, char *detail, unsigned detail_len);
  void *ud;
};

struct probe {
  struct dmt_health *h;
  char req[512];
  size_t len;
};

static void respond(int fd, int status, const char *body) {
  char out[768];
  int n = snprintf(out, sizeof out,
                   "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n%s",
                   status, status == 200 ? "OK" : status == 503 ? "Service Unavailable" : "Not Found", strlen(body), body);
  if (n > 0 && write(fd, out, (size_t)n) < 0) { /* the prober went away */
  }
}

static void on_probe(struct dmt_loop *loop, int fd, unsigned ev, void *ud) {
  struct probe *p = ud;
  ssize_t r = read(fd, p->req + p->len, sizeof p->req - 1 - p->len);
  if (r < 0 && errno == EAGAIN) return;
  if (r > 0) {
    p->len += (size_t)r;
    p->req[p->len] = '\0';
    if (!strstr(p->req, "\r\n\r\n") && p->len < sizeof p->req - 1) return;
    if (!strncmp(p->req, "GET /healthz ", 13)) {
      respond(fd, 200, "{\"status\":\"ok\"}");
    } else if (!strncmp(p->req, "GET /readyz ", 12)) {
      char detail[256] = "", body[320];
      bool ok = p->h->ready(p->h->ud, detail, sizeof detail);
      snprintf(body, sizeof body, "{\"status\":\"%s\",\"detail\":\"%s\"}", ok ? "ok" : "unavailable", detail);
      respond(fd, ok ? 200 : 503, body);
    } else {
      respond(fd, 404, "{}");
    }
  }
  dmt_loop_unwatch(loop, fd);
  close(fd);
  free(p);
}

static void on_accept(struct dmt_loop *loop, int fd, unsigned ev, void *ud) {
  int c = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
  if (c < 0) return;
  struct probe *p = calloc(1, sizeof *p);
  if (!p) {
    close(c);
    return;
  }
  p->h = ud;
  dmt_loop_watch(loop, c, DMT_EV_READ, on_probe, p);
}

struct dmt_health *dmt_health_start(struct dmt_loop *loop, const char *address, int port,
                                    bool (*ready)(void *ud, char *detail, unsigned detail_len), void *ud) {
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  if (inet_pton(AF_INET, address ? address : "0.0.0.0", &a.sin_addr) != 1) return NULL;
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0), one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) != 0 || listen(fd, 16) != 0) {
    if (fd >= 0) close(fd);
    return NULL;
  }
  struct dmt_health *h = calloc(1, sizeof *h);
  *h = (struct dmt_health){loop, fd, ready, ud};
  dmt_loop_watch(loop, fd, DMT_EV_READ, on_accept, h);
  return h;
}

void dmt_health_stop(struct dmt_health *h) {
  if (!h) return;
  dmt_loop_unwatch(h->loop, h->fd);
  close(h->fd);
  free(h);
}
