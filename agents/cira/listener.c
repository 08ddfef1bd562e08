/*
 * The CIRA listener: a non-blocking TCP socket on the loop (IPv4 or IPv6,
 * by the address given), accepting in bursts. Connections beyond
 * cira.max_connections are refused at once, so a flood cannot take the file
 * descriptors the held devices need. TLS starts in conn.c.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cira.h"

#define ACCEPT_BURST 128

static void peer_text(const struct sockaddr_storage *ss, char out[INET6_ADDRSTRLEN]) {
  snprintf(out, INET6_ADDRSTRLEN, "?");
  if (ss->ss_family == AF_INET) {
    inet_ntop(AF_INET, &((const struct sockaddr_in *)ss)->sin_addr, out, INET6_ADDRSTRLEN);
  } else if (ss->ss_family == AF_INET6) {
    const struct in6_addr *a = &((const struct sockaddr_in6 *)ss)->sin6_addr;
    if (IN6_IS_ADDR_V4MAPPED(a)) inet_ntop(AF_INET, a->s6_addr + 12, out, INET6_ADDRSTRLEN);
    else inet_ntop(AF_INET6, a, out, INET6_ADDRSTRLEN);
  }
}

static void on_accept(struct dmt_loop *loop, int fd, unsigned ev, void *ud) {
  struct cira_server *s = ud;
  for (int i = 0; i < ACCEPT_BURST; i++) {
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    int c = accept4(fd, (struct sockaddr *)&ss, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (c < 0) {
      if (errno == EMFILE || errno == ENFILE)
        DMT_WARN(&s->log, "accept_failed", "error=\"%s\" connections=%zu", strerror(errno), s->nconns);
      return;
    }
    if (s->nconns >= s->set.max_conns || s->shutting_down) {
      close(c);
      continue;
    }
    int one = 1;
    setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    char peer[INET6_ADDRSTRLEN];
    peer_text(&ss, peer);
    conn_accept(s, c, peer);
  }
}

int listener_open(struct cira_server *s, const char *address, int port) {
  struct sockaddr_storage ss = {0};
  socklen_t len;
  struct sockaddr_in *a4 = (struct sockaddr_in *)&ss;
  struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&ss;
  if (inet_pton(AF_INET, address, &a4->sin_addr) == 1) {
    a4->sin_family = AF_INET;
    a4->sin_port = htons((uint16_t)port);
    len = sizeof *a4;
  } else if (inet_pton(AF_INET6, address, &a6->sin6_addr) == 1) {
    a6->sin6_family = AF_INET6;
    a6->sin6_port = htons((uint16_t)port);
    len = sizeof *a6;
  } else {
    errno = EINVAL;
    return -1;
  }
  int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0), one = 1;
  if (fd < 0) return -1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (bind(fd, (struct sockaddr *)&ss, len) != 0 || listen(fd, 4096) != 0) {
    int e = errno;
    close(fd);
    errno = e;
    return -1;
  }
  s->listen_fd = fd;
  dmt_loop_watch(s->loop, fd, DMT_EV_READ, on_accept, s);
  return 0;
}

void listener_close(struct cira_server *s) {
  if (s->listen_fd < 0) return;
  dmt_loop_unwatch(s->loop, s->listen_fd);
  close(s->listen_fd);
  s->listen_fd = -1;
}
