/*
 * The simulator's control socket: a UNIX stream socket with a line protocol,
 * so tests and operators can inject faults and read state while the fleet
 * runs. One command per line, one reply line ("ok ..." or "error ...").
 *
 *   stats                          counters, one "name value" per line, then "ok"
 *   connected                      ok <devices with an established CIRA session>
 *   state <guid>                   ok <idle|connecting|handshake|auth|forwarding|ready> <power state>
 *   fault <guid|all> <fault> [arg] drop | stall | unstall | slow <ms> | fast | wrongpass | rightpass |
 *                                  badframe | refuse | accept | reboot
 */
#include <errno.h>
#include <stdarg.h>
#include <strings.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "dmt/apf.h"
#include "sim.h"

struct control_client {
  struct sim *sim;
  int fd;
  char line[512];
  size_t len;
};

static const char *state_name(enum sim_conn_state s) {
  static const char *names[] = {"idle", "connecting", "handshake", "auth", "forwarding", "ready"};
  return names[s];
}

void sim_counters_print(const struct sim *s, FILE *out) {
  const struct sim_counters *c = &s->count;
  fprintf(out,
          "devices %zu\nconnects %lu\nconnected %lu\ndisconnects %lu\nauth_failures %lu\nreconnects %lu\n"
          "tls_failures %lu\nchannels_opened %lu\nchannels_refused %lu\nwsman_requests %lu\nwsman_401 %lu\n"
          "wsman_faults %lu\nkeepalives_sent %lu\npower_changes %lu\nfaults_injected %lu\n",
          s->ndevices, c->connects, c->connected, c->disconnects, c->auth_failures, c->reconnects, c->tls_failures,
          c->channels_opened, c->channels_refused, c->wsman_requests, c->wsman_401, c->wsman_faults,
          c->keepalives_sent, c->power_changes, c->faults_injected);
}

static int apply_fault(struct sim_device *d, const char *fault, const char *arg) {
  if (!strcmp(fault, "drop")) {
    if (d->fd >= 0) sim_cira_drop(d, "fault: drop");
  } else if (!strcmp(fault, "stall")) {
    d->faults |= SIM_FAULT_STALL;
    if (d->fd >= 0) dmt_loop_watch(d->sim->loop, d->fd, 0, NULL, NULL);
  } else if (!strcmp(fault, "unstall")) {
    d->faults &= ~(unsigned)SIM_FAULT_STALL;
    if (d->fd >= 0) sim_cira_drop(d, "fault: unstall reconnects");
  } else if (!strcmp(fault, "slow")) {
    d->faults |= SIM_FAULT_SLOW;
    d->slow_ms = arg ? (unsigned)strtoul(arg, NULL, 10) : 2000;
  } else if (!strcmp(fault, "fast")) {
    d->faults &= ~(unsigned)SIM_FAULT_SLOW;
  } else if (!strcmp(fault, "wrongpass")) {
    d->faults |= SIM_FAULT_WRONG_PASSWORD;
  } else if (!strcmp(fault, "rightpass")) {
    d->faults &= ~(unsigned)SIM_FAULT_WRONG_PASSWORD;
  } else if (!strcmp(fault, "refuse")) {
    d->faults |= SIM_FAULT_REFUSE_CHANNEL;
  } else if (!strcmp(fault, "accept")) {
    d->faults &= ~(unsigned)SIM_FAULT_REFUSE_CHANNEL;
  } else if (!strcmp(fault, "badframe")) {
    if (d->state >= SIM_AUTH) {
      static const uint8_t junk[] = {0x07, 0xde, 0xad, 0xbe, 0xef}; /* no APF message has type 7 */
      dmt_buf_append(&d->out, junk, sizeof junk);
      sim_cira_send(d);
    }
  } else if (!strcmp(fault, "reboot")) {
    d->power_state = 2;
    d->os_power_saving = 2;
    if (d->fd >= 0) sim_cira_drop(d, "fault: reboot");
  } else {
    return -1;
  }
  d->sim->count.faults_injected++;
  return 0;
}

static struct sim_device *find_device(struct sim *s, const char *guid) {
  for (size_t i = 0; i < s->ndevices; i++)
    if (!strcasecmp(s->devices[i].guid, guid)) return &s->devices[i];
  return NULL;
}

static void reply(struct control_client *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void reply(struct control_client *c, const char *fmt, ...) {
  char buf[4096];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  if (n > 0 && write(c->fd, buf, (size_t)n < sizeof buf ? (size_t)n : sizeof buf - 1) < 0) { /* client gone */
  }
}

static void command(struct control_client *c, char *line) {
  struct sim *s = c->sim;
  char *argv[4] = {0};
  int argc = 0;
  for (char *tok = strtok(line, " \t\r"); tok && argc < 4; tok = strtok(NULL, " \t\r")) argv[argc++] = tok;
  if (argc == 0) return;
  if (!strcmp(argv[0], "stats")) {
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    sim_counters_print(s, f);
    fclose(f);
    reply(c, "%sok\n", buf);
    free(buf);
  } else if (!strcmp(argv[0], "connected")) {
    size_t n = 0;
    for (size_t i = 0; i < s->ndevices; i++) n += s->devices[i].state == SIM_READY;
    reply(c, "ok %zu\n", n);
  } else if (!strcmp(argv[0], "state") && argc >= 2) {
    struct sim_device *d = find_device(s, argv[1]);
    if (d) reply(c, "ok %s %u %d\n", state_name(d->state), d->power_state, (int)d->mode);
    else reply(c, "error unknown device\n");
  } else if (!strcmp(argv[0], "fault") && argc >= 3) {
    size_t n = 0;
    int bad = 0;
    for (size_t i = 0; i < s->ndevices && !bad; i++) {
      struct sim_device *d = &s->devices[i];
      if (strcmp(argv[1], "all") && strcasecmp(d->guid, argv[1])) continue;
      if (apply_fault(d, argv[2], argv[3]) != 0) bad = 1;
      else n++;
    }
    if (bad) reply(c, "error unknown fault %s\n", argv[2]);
    else if (!n) reply(c, "error unknown device\n");
    else reply(c, "ok %zu\n", n);
  } else {
    reply(c, "error unknown command\n");
  }
}

static void on_client(struct dmt_loop *loop, int fd, unsigned ev, void *ud) {
  struct control_client *c = ud;
  ssize_t r = read(fd, c->line + c->len, sizeof c->line - 1 - c->len);
  if (r <= 0) {
    if (r < 0 && errno == EAGAIN) return;
    dmt_loop_unwatch(loop, fd);
    close(fd);
    free(c);
    return;
  }
  c->len += (size_t)r;
  char *nl;
  while ((nl = memchr(c->line, '\n', c->len))) {
    *nl = '\0';
    command(c, c->line);
    size_t rest = c->len - (size_t)(nl + 1 - c->line);
    memmove(c->line, nl + 1, rest);
    c->len = rest;
  }
  if (c->len == sizeof c->line - 1) c->len = 0; /* overlong line: drop it */
}

static void on_accept(struct dmt_loop *loop, int fd, unsigned ev, void *ud) {
  int cfd = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
  if (cfd < 0) return;
  struct control_client *c = calloc(1, sizeof *c);
  c->sim = ud;
  c->fd = cfd;
  dmt_loop_watch(loop, cfd, DMT_EV_READ, on_client, c);
}

int sim_control_open(struct sim *s, const char *path, char *err, size_t errlen) {
  struct sockaddr_un a = {.sun_family = AF_UNIX};
  if (strlen(path) >= sizeof a.sun_path) {
    snprintf(err, errlen, "control socket path too long");
    return -1;
  }
  strcpy(a.sun_path, path);
  unlink(path);
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) != 0 || listen(fd, 8) != 0) {
    snprintf(err, errlen, "control socket %s: %s", path, strerror(errno));
    if (fd >= 0) close(fd);
    return -1;
  }
  s->control_fd = fd;
  return dmt_loop_watch(s->loop, fd, DMT_EV_READ, on_accept, s);
}
