/*
 * The simulator's control socket: a UNIX stream socket with a line protocol,
 * so tests and operators can drive the fleet while it runs. One command per
 * line; the reply ends with a line starting "ok" or "error".
 *
 *   stats                               counters, one "name value" per line
 *   connected                           ok <devices with an established CIRA session>
 *   state <guid>                        ok <conn state> <power state> <control mode>
 *   info <guid>                         ok <one-line JSON: identity, mode, power, MPS, roots, RPC status>
 *   fault <guid|all> <fault> [arg]      see faults.c
 *   power <guid|all> <on|off|reset|sleep|hibernate|<CIM state>>   a local power event
 *   activate <guid|all> <url> <profile> [tenant]                   start RPC activations
 *   deactivate <guid|all> <url> <password|-> [force]               start RPC deactivations
 *   rpc <guid>                          ok <last RPC job status>
 *   optin <guid>                        ok <the user consent code on the "screen">
 */
#include <errno.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "sim.h"

#define MAX_ARGS 6

struct control_client {
  struct sim *sim;
  struct control_client *next;
  int fd;
  char line[1024];
  size_t len;
};

void sim_counters_print(const struct sim *s, FILE *out) {
  const struct sim_counters *c = &s->count;
  fprintf(out, "devices %zu\nconnected_now %zu\nhandshaking %zu\nfleet_half_ready_ms %lu\nfleet_ready_ms %lu\n",
          s->ndevices, s->ready_now, s->handshaking, (unsigned long)s->half_ready_ms, (unsigned long)s->all_ready_ms);
  fprintf(out,
          "connects %lu\nconnected %lu\ndisconnects %lu\nreconnects %lu\n"
          "auth_failures %lu\ntls_failures %lu\nprotocol_errors %lu\nchannels_opened %lu\nchannels_refused %lu\n"
          "keepalives_sent %lu\nwsman_requests %lu\nwsman_401 %lu\nwsman_faults %lu\npower_changes %lu\n"
          "faults_injected %lu\nstate_writes %lu\nrpc_started %lu\nrpc_succeeded %lu\nrpc_failed %lu\n"
          "activations_ccm %lu\nactivations_acm %lu\ndeactivations %lu\n",
          c->connects, c->connected, c->disconnects, c->reconnects, c->auth_failures,
          c->tls_failures, c->protocol_errors, c->channels_opened, c->channels_refused, c->keepalives_sent,
          c->wsman_requests, c->wsman_401, c->wsman_faults, c->power_changes, c->faults_injected, c->state_writes,
          c->rpc_started, c->rpc_succeeded, c->rpc_failed, c->activations_ccm, c->activations_acm, c->deactivations);
  size_t n = amt_class_count();
  for (size_t i = 0; i <= n && i <= SIM_MAX_CLASSES; i++) {
    uint64_t v = c->wsman_by_class[i == n ? SIM_MAX_CLASSES : i];
    if (v) fprintf(out, "wsman.%s %lu\n", i == n ? "unknown_class" : amt_class_name(i), v);
  }
}

static void reply(struct control_client *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void reply(struct control_client *c, const char *fmt, ...) {
  char *buf = NULL;
  va_list ap;
  va_start(ap, fmt);
  int n = vasprintf(&buf, fmt, ap);
  va_end(ap);
  for (size_t off = 0; n > 0 && off < (size_t)n;) {
    ssize_t w = write(c->fd, buf + off, (size_t)n - off);
    if (w <= 0) break; /* the client went away */
    off += (size_t)w;
  }
  free(buf);
}

static const char *mode_name(uint8_t mode) { return mode == SIM_MODE_ACM ? "acm" : mode == SIM_MODE_CCM ? "ccm" : "pre"; }

static char *info_json(const struct sim_device *d) {
  json_t *o = json_pack("{s:s, s:s, s:i, s:s, s:s, s:s, s:s, s:s, s:i}", "guid", d->guid, "state",
                        sim_conn_state_name(d->state), "power_state", d->power_state, "mode", mode_name(d->mode),
                        "version", d->model->version, "hostname", d->hostname, "dns_suffix",
                        d->dns_suffix ? d->dns_suffix : "", "rpc", sim_rpc_status(d), "trusted_roots",
                        d->trust ? (int)d->trust->n : 0);
  if (d->cira) {
    const struct sim_cira_config *c = d->cira;
    json_object_set_new(o, "mps", json_pack("{s:s, s:i, s:s, s:b, s:b, s:i, s:b}", "host", c->host ? c->host : "",
                                            "port", c->port, "username", c->user ? c->user : "", "has_mps",
                                            c->has_mps, "periodic", c->periodic, "interval", c->periodic_interval_s,
                                            "user_initiated", c->user_initiated));
  }
  json_object_set_new(o, "user_initiated_state", json_integer(d->user_initiated_state));
  json_object_set_new(o, "mebx_password_set", json_boolean(d->mebx_password_set));
  char *text = json_dumps(o, JSON_COMPACT);
  json_decref(o);
  return text;
}

static int power_event(struct sim_device *d, const char *what) {
  static const struct { const char *name; uint8_t state; } names[] = {
      {"on", 2}, {"off", 8}, {"reset", 2}, {"sleep", 4}, {"hibernate", 7}, {"off-hard", 6}};
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
    if (!strcmp(what, names[i].name)) {
      amt_power_set(d, names[i].state);
      return 0;
    }
  char *end;
  long v = strtol(what, &end, 10);
  if (*end || v < 2 || v > 16) return -1;
  amt_power_set(d, (uint8_t)v);
  return 0;
}

/* Runs fn on one device or the whole fleet; replies "ok <count>" or the first error. */
static void for_devices(struct control_client *c, const char *target, int (*fn)(struct sim_device *, char **, char *,
                                                                                size_t),
                        char **args) {
  struct sim *s = c->sim;
  char err[256] = "";
  size_t n = 0;
  if (!strcmp(target, "all")) {
    for (size_t i = 0; i < s->ndevices; i++)
      if (fn(&s->devices[i], args, err, sizeof err) == 0) n++;
  } else {
    struct sim_device *d = sim_fleet_find(s, target);
    if (!d) {
      reply(c, "error unknown device %s\n", target);
      return;
    }
    if (fn(d, args, err, sizeof err) == 0) n++;
  }
  if (n == 0) reply(c, "error %s\n", err[0] ? err : "nothing done");
  else reply(c, "ok %zu\n", n);
}

static int do_fault(struct sim_device *d, char **args, char *err, size_t errlen) {
  if (sim_fault_apply(d, args[0], args[1]) == 0) return 0;
  snprintf(err, errlen, "unknown fault %s", args[0]);
  return -1;
}

static int do_power(struct sim_device *d, char **args, char *err, size_t errlen) {
  if (power_event(d, args[0]) == 0) return 0;
  snprintf(err, errlen, "unknown power state %s", args[0]);
  return -1;
}

static int do_activate(struct sim_device *d, char **args, char *err, size_t errlen) {
  struct sim_rpc_request r = {.action = SIM_RPC_ACTIVATE, .url = args[0], .profile = args[1], .tenant = args[2]};
  return sim_rpc_start(d, &r, err, errlen);
}

static int do_deactivate(struct sim_device *d, char **args, char *err, size_t errlen) {
  struct sim_rpc_request r = {.action = SIM_RPC_DEACTIVATE, .url = args[0],
                              .password = strcmp(args[1], "-") ? args[1] : NULL,
                              .force = args[2] && !strcmp(args[2], "force")};
  return sim_rpc_start(d, &r, err, errlen);
}

static void command(struct control_client *c, char *line) {
  struct sim *s = c->sim;
  char *argv[MAX_ARGS + 1] = {0};
  int argc = 0;
  char *save = NULL;
  for (char *tok = strtok_r(line, " \t\r", &save); tok && argc < MAX_ARGS; tok = strtok_r(NULL, " \t\r", &save))
    argv[argc++] = tok;
  if (argc == 0) return;
  struct sim_device *d = argc >= 2 ? sim_fleet_find(s, argv[1]) : NULL;
  if (!strcmp(argv[0], "stats")) {
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    sim_counters_print(s, f);
    fclose(f);
    reply(c, "%sok\n", buf);
    free(buf);
  } else if (!strcmp(argv[0], "connected")) {
    reply(c, "ok %zu\n", s->ready_now);
  } else if ((!strcmp(argv[0], "state") || !strcmp(argv[0], "info") || !strcmp(argv[0], "rpc") ||
              !strcmp(argv[0], "optin")) && argc >= 2) {
    if (!d) {
      reply(c, "error unknown device\n");
    } else if (!strcmp(argv[0], "state")) {
      reply(c, "ok %s %u %d\n", sim_conn_state_name(d->state), d->power_state, (int)d->mode);
    } else if (!strcmp(argv[0], "info")) {
      char *j = info_json(d);
      reply(c, "ok %s\n", j ? j : "{}");
      free(j);
    } else if (!strcmp(argv[0], "rpc")) {
      reply(c, "ok %s\n", sim_rpc_status(d));
    } else if (d->optin_state == 2) {
      reply(c, "ok %06u\n", d->optin_code);
    } else {
      reply(c, "error no user consent code is displayed\n");
    }
  } else if (!strcmp(argv[0], "fault") && argc >= 3) {
    for_devices(c, argv[1], do_fault, argv + 2);
  } else if (!strcmp(argv[0], "power") && argc >= 3) {
    for_devices(c, argv[1], do_power, argv + 2);
  } else if (!strcmp(argv[0], "activate") && argc >= 4) {
    for_devices(c, argv[1], do_activate, argv + 2);
  } else if (!strcmp(argv[0], "deactivate") && argc >= 4) {
    for_devices(c, argv[1], do_deactivate, argv + 2);
  } else {
    reply(c, "error unknown command or missing arguments\n");
  }
}

static void client_close(struct sim *s, struct control_client *c) {
  for (struct control_client **pp = &s->control_clients; *pp; pp = &(*pp)->next)
    if (*pp == c) {
      *pp = c->next;
      break;
    }
  dmt_loop_unwatch(s->loop, c->fd);
  close(c->fd);
  free(c);
}

static void on_client(struct dmt_loop *loop, int fd, unsigned ev, void *ud) {
  struct control_client *c = ud;
  ssize_t r = read(fd, c->line + c->len, sizeof c->line - 1 - c->len);
  if (r <= 0) {
    if (r < 0 && (errno == EAGAIN || errno == EINTR)) return;
    client_close(c->sim, c);
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
  if (c->len == sizeof c->line - 1) c->len = 0; /* an overlong line is dropped */
}

static void on_accept(struct dmt_loop *loop, int fd, unsigned ev, void *ud) {
  for (;;) {
    int cfd = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (cfd < 0) return;
    struct control_client *c = calloc(1, sizeof *c);
    if (!c) {
      close(cfd);
      return;
    }
    c->sim = ud;
    c->fd = cfd;
    c->next = c->sim->control_clients;
    c->sim->control_clients = c;
    dmt_loop_watch(loop, cfd, DMT_EV_READ, on_client, c);
  }
}

int sim_control_open(struct sim *s, const char *path, char *err, size_t errlen) {
  struct sockaddr_un a = {.sun_family = AF_UNIX};
  if (strlen(path) >= sizeof a.sun_path) {
    snprintf(err, errlen, "control socket path too long");
    return -1;
  }
  memcpy(a.sun_path, path, strlen(path) + 1);
  unlink(path);
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) != 0 || listen(fd, 16) != 0) {
    snprintf(err, errlen, "control socket %s: %s", path, strerror(errno));
    if (fd >= 0) close(fd);
    return -1;
  }
  s->control_fd = fd;
  s->control_path = strdup(path);
  return dmt_loop_watch(s->loop, fd, DMT_EV_READ, on_accept, s);
}

void sim_control_close(struct sim *s) {
  while (s->control_clients) client_close(s, s->control_clients);
  if (s->control_fd >= 0) {
    dmt_loop_unwatch(s->loop, s->control_fd);
    close(s->control_fd);
    s->control_fd = -1;
  }
  if (s->control_path) unlink(s->control_path);
  free(s->control_path);
  s->control_path = NULL;
}
