/* Liveness/readiness HTTP responder on the event loop (see dmt/health.h). */
#include "dmt/health.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "dmt/evloop.h"

#define MAX_STATIC 8

struct static_route {
  char *path, *content_type, *body;
};

struct dmt_health {
  struct dmt_loop *loop;
  int fd;
  bool (*ready)(void *ud, char *detail, unsigned detail_len);
  void *ud;
  struct static_route routes[MAX_STATIC];
  size_t nroutes;
};

struct probe {
  struct dmt_health *h;
  char req[512];
  size_t len;
};

static void respond_typed(int fd, int status, const char *type, const char *body) {
  char head[256];
  size_t blen = strlen(body);
  int n = snprintf(head, sizeof head,
                   "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n", status,
                   status == 200 ? "OK" : status == 503 ? "Service Unavailable" : "Not Found", type, blen);
  struct iovec iov[2] = {{head, n > 0 ? (size_t)n : 0}, {(void *)body, blen}};
  if (writev(fd, iov, 2) < 0) { /* the prober went away */
  }
}

static void respond(int fd, int status, const char *body) { respond_typed(fd, status, "application/json", body); }

static const struct static_route *find_static(const struct dmt_health *h, const char *req) {
  for (size_t i = 0; i < h->nroutes; i++) {
    size_t n = strlen(h->routes[i].path);
    if (!strncmp(req, "GET ", 4) && !strncmp(req + 4, h->routes[i].path, n) && req[4 + n] == ' ') return &h->routes[i];
  }
  return NULL;
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
      const struct static_route *route = find_static(p->h, p->req);
      if (route) respond_typed(fd, 200, route->content_type, route->body);
      else respond(fd, 404, "{}");
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
  if (!h) {
    close(fd);
    return NULL;
  }
  h->loop = loop;
  h->fd = fd;
  h->ready = ready;
  h->ud = ud;
  dmt_loop_watch(loop, fd, DMT_EV_READ, on_accept, h);
  return h;
}

int dmt_health_add_static(struct dmt_health *h, const char *path, const char *content_type, const char *body) {
  if (!h || h->nroutes == MAX_STATIC) return -1;
  struct static_route *r = &h->routes[h->nroutes];
  r->path = strdup(path);
  r->content_type = strdup(content_type);
  r->body = strdup(body);
  if (!r->path || !r->content_type || !r->body) {
    free(r->path), free(r->content_type), free(r->body);
    return -1;
  }
  h->nroutes++;
  return 0;
}

void dmt_health_stop(struct dmt_health *h) {
  if (!h) return;
  dmt_loop_unwatch(h->loop, h->fd);
  close(h->fd);
  for (size_t i = 0; i < h->nroutes; i++) free(h->routes[i].path), free(h->routes[i].content_type), free(h->routes[i].body);
  free(h);
}
