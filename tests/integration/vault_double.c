/*
 * Vault KV v2 double (see vault_double.h). One thread, one request per
 * connection (Connection: close), requests framed by the team's HTTP parser.
 * State - tokens with their expiry, the KV store, counters - sits under one
 * mutex the test thread also takes.
 */
#include "vault_double.h"

#include <arpa/inet.h>
#include <jansson.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "dmt/buf.h"
#include "dmt/http.h"

#define MAX_TOKENS 64

struct token {
  char id[64];
  long ttl;                   /* lease granted at issue/renewal */
  int64_t expires_ms, max_ms; /* 0 = never */
  bool renewable;
};

struct vault_double {
  struct vault_double_config cfg;
  int fd, port, stop_pipe[2];
  pthread_t thread;
  pthread_mutex_t mu;
  struct token tokens[MAX_TOKENS];
  size_t ntokens;
  unsigned issued;
  json_t *kv; /* path -> {"data": {...}, "version": n} */
  struct vault_double_stats stats;
};

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static struct token *issue(struct vault_double *d, const char *id, long ttl, long max_ttl, bool renewable) {
  if (d->ntokens == MAX_TOKENS) return NULL;
  struct token *t = &d->tokens[d->ntokens++];
  if (id) snprintf(t->id, sizeof t->id, "%s", id);
  else snprintf(t->id, sizeof t->id, "hvs.double-%u-%08lx", ++d->issued, (unsigned long)random());
  int64_t now = now_ms();
  t->ttl = ttl;
  t->expires_ms = ttl ? now + ttl * 1000 : 0;
  t->max_ms = max_ttl ? now + max_ttl * 1000 : 0;
  t->renewable = renewable;
  return t;
}

/* The live token named by X-Vault-Token, or NULL. */
static struct token *authorised(struct vault_double *d, const struct dmt_http_parser *p) {
  const char *id = dmt_http_header(p, "X-Vault-Token");
  int64_t now = now_ms();
  for (size_t i = 0; id && i < d->ntokens; i++)
    if (!strcmp(d->tokens[i].id, id) && (!d->tokens[i].expires_ms || now < d->tokens[i].expires_ms)) return &d->tokens[i];
  return NULL;
}

static long remaining_s(const struct token *t) {
  return t->expires_ms ? (long)((t->expires_ms - now_ms()) / 1000) : 0;
}

static void respond(int fd, int status, json_t *body) {
  char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
  json_decref(body);
  struct dmt_buf out;
  dmt_buf_init(&out, 0);
  dmt_buf_printf(&out, "HTTP/1.1 %d X\r\nContent-Type: application/json\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n%s",
                 status, text ? strlen(text) : 0, text ? text : "");
  size_t off = 0;
  while (off < dmt_buf_size(&out)) {
    ssize_t n = write(fd, dmt_buf_ptr(&out) + off, dmt_buf_size(&out) - off);
    if (n <= 0) break;
    off += (size_t)n;
  }
  dmt_buf_free(&out);
  free(text);
}

static json_t *errors(const char *msg) { return json_pack("{s:[s]}", "errors", msg); }

static json_t *auth_body(const struct token *t, long lease) {
  return json_pack("{s:{s:s, s:i, s:b, s:[s]}}", "auth", "client_token", t->id, "lease_duration", (json_int_t)lease,
                   "renewable", t->renewable, "policies", "default");
}

/* Returns the status; *resp the body. Called with d->mu held. */
static int route(struct vault_double *d, const struct dmt_http_parser *p, json_t **resp) {
  const char *m = p->method, *u = p->target;
  json_t *body = dmt_buf_size(&p->body) ? json_loadb((const char *)dmt_buf_ptr(&p->body), dmt_buf_size(&p->body), 0, NULL)
                                        : NULL;
  int status = 404;
  *resp = errors("unsupported path");
  if (!strcmp(m, "GET") && !strncmp(u, "/v1/sys/health", 14)) {
    json_decref(*resp);
    *resp = json_pack("{s:b, s:b, s:b}", "initialized", 1, "sealed", 0, "standby", 0);
    status = 200;
  } else if (!strcmp(m, "POST") && !strcmp(u, "/v1/auth/kubernetes/login")) {
    const char *role = json_string_value(json_object_get(body, "role")), *jwt = json_string_value(json_object_get(body, "jwt"));
    struct token *t = NULL;
    if (role && jwt && d->cfg.k8s_role && !strcmp(role, d->cfg.k8s_role) && !strcmp(jwt, d->cfg.k8s_jwt))
      t = issue(d, NULL, d->cfg.login_ttl, d->cfg.login_max_ttl, true);
    json_decref(*resp);
    if (t) {
      d->stats.logins++;
      *resp = auth_body(t, t->ttl);
      status = 200;
    } else {
      d->stats.failed_logins++;
      *resp = errors("permission denied");
      status = 403;
    }
  } else if (!strncmp(u, "/v1/auth/token/", 15) || !strncmp(u, "/v1/secret/", 11)) {
    struct token *t = authorised(d, p);
    json_decref(*resp);
    *resp = errors("permission denied");
    status = 403;
    if (!t) {
      d->stats.denied++;
    } else if (!strcmp(m, "GET") && !strcmp(u, "/v1/auth/token/lookup-self")) {
      d->stats.lookups++;
      json_decref(*resp);
      *resp = json_pack("{s:{s:s, s:i, s:i, s:b}}", "data", "id", t->id, "ttl", (json_int_t)remaining_s(t), "creation_ttl",
                        (json_int_t)t->ttl, "renewable", t->renewable);
      status = 200;
    } else if (!strcmp(m, "POST") && !strcmp(u, "/v1/auth/token/renew-self")) {
      json_decref(*resp);
      if (!t->renewable || !t->expires_ms) {
        *resp = errors("lease is not renewable");
        status = 400;
      } else {
        int64_t until = now_ms() + t->ttl * 1000;
        if (t->max_ms && until > t->max_ms) until = t->max_ms;
        t->expires_ms = until;
        d->stats.renewals++;
        *resp = auth_body(t, remaining_s(t));
        status = 200;
      }
    } else if (!strncmp(u, "/v1/secret/data/", 16) && !strcmp(m, "GET")) {
      json_t *entry = json_object_get(d->kv, u + 4);
      d->stats.reads++;
      json_decref(*resp);
      *resp = entry ? json_pack("{s:{s:O, s:{s:O}}}", "data", "data", json_object_get(entry, "data"), "metadata", "version",
                                json_object_get(entry, "version"))
                    : json_pack("{s:[]}", "errors");
      status = entry ? 200 : 404;
    } else if (!strncmp(u, "/v1/secret/data/", 16) && !strcmp(m, "POST") && json_is_object(json_object_get(body, "data"))) {
      json_t *old = json_object_get(d->kv, u + 4);
      json_int_t version = old ? json_integer_value(json_object_get(old, "version")) + 1 : 1;
      json_object_set_new(d->kv, u + 4, json_pack("{s:O, s:I}", "data", json_object_get(body, "data"), "version", version));
      d->stats.writes++;
      json_decref(*resp);
      *resp = json_pack("{s:{s:I}}", "data", "version", version);
      status = 200;
    } else if (!strncmp(u, "/v1/secret/metadata/", 20) && !strcmp(m, "DELETE")) {
      char data_path[600];
      snprintf(data_path, sizeof data_path, "secret/data/%s", u + 20);
      json_object_del(d->kv, data_path);
      d->stats.deletes++;
      json_decref(*resp);
      *resp = NULL;
      status = 204;
    }
  }
  json_decref(body);
  return status;
}

static void serve(struct vault_double *d, int fd) {
  struct dmt_http_parser p;
  dmt_http_parser_init(&p, true, 1024 * 1024);
  uint8_t buf[4096];
  int rc = DMT_HTTP_MORE;
  struct pollfd pfd = {.fd = fd, .events = POLLIN};
  while (rc == DMT_HTTP_MORE && poll(&pfd, 1, 2000) > 0) {
    ssize_t n = read(fd, buf, sizeof buf);
    if (n <= 0) break;
    size_t used;
    rc = dmt_http_parse(&p, buf, (size_t)n, &used);
  }
  if (rc == DMT_HTTP_DONE) {
    json_t *resp;
    pthread_mutex_lock(&d->mu);
    int status = route(d, &p, &resp);
    pthread_mutex_unlock(&d->mu);
    respond(fd, status, resp);
  }
  dmt_http_parser_free(&p);
}

static void *loop(void *arg) {
  struct vault_double *d = arg;
  struct pollfd fds[2] = {{.fd = d->fd, .events = POLLIN}, {.fd = d->stop_pipe[0], .events = POLLIN}};
  while (poll(fds, 2, -1) > 0 && !(fds[1].revents & POLLIN)) {
    int c = accept(d->fd, NULL, NULL);
    if (c < 0) continue;
    serve(d, c);
    close(c);
  }
  return NULL;
}

struct vault_double *vault_double_start(const struct vault_double_config *cfg) {
  struct vault_double *d = calloc(1, sizeof *d);
  d->cfg = *cfg;
  d->kv = json_object();
  pthread_mutex_init(&d->mu, NULL);
  if (cfg->root_token) issue(d, cfg->root_token, cfg->root_ttl, cfg->root_max_ttl, cfg->root_renewable);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t len = sizeof a;
  d->fd = socket(AF_INET, SOCK_STREAM, 0);
  if (d->fd < 0 || bind(d->fd, (struct sockaddr *)&a, sizeof a) != 0 || listen(d->fd, 16) != 0 ||
      getsockname(d->fd, (struct sockaddr *)&a, &len) != 0 || pipe(d->stop_pipe) != 0 ||
      pthread_create(&d->thread, NULL, loop, d) != 0) {
    if (d->fd >= 0) close(d->fd);
    json_decref(d->kv);
    free(d);
    return NULL;
  }
  d->port = ntohs(a.sin_port);
  return d;
}

int vault_double_port(const struct vault_double *d) { return d->port; }

void vault_double_stop(struct vault_double *d) {
  if (!d) return;
  if (write(d->stop_pipe[1], "x", 1) != 1) perror("vault double stop");
  pthread_join(d->thread, NULL);
  close(d->fd);
  close(d->stop_pipe[0]);
  close(d->stop_pipe[1]);
  json_decref(d->kv);
  pthread_mutex_destroy(&d->mu);
  free(d);
}

void vault_double_stats(struct vault_double *d, struct vault_double_stats *out) {
  pthread_mutex_lock(&d->mu);
  *out = d->stats;
  pthread_mutex_unlock(&d->mu);
}

char *vault_double_get(struct vault_double *d, const char *kv_path) {
  pthread_mutex_lock(&d->mu);
  json_t *data = json_object_get(json_object_get(d->kv, kv_path), "data");
  char *text = data ? json_dumps(data, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
  pthread_mutex_unlock(&d->mu);
  return text;
}

void vault_double_put(struct vault_double *d, const char *kv_path, const char *json_object) {
  pthread_mutex_lock(&d->mu);
  json_object_set_new(d->kv, kv_path, json_pack("{s:o, s:i}", "data", json_loads(json_object, 0, NULL), "version", 1));
  pthread_mutex_unlock(&d->mu);
}
