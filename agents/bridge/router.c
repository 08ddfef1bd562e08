/*
 * Routing and the request pipeline, in Express's order: body parsing, route
 * match (case-insensitive, trailing slash ignored, ":name" parameters),
 * authentication and permission, the route's validation chain, then the
 * handler. Also the transaction object every handler answers through. No
 * libwebsockets here: the HTTP layer, the tests and the fuzzer all feed
 * br_dispatch() the same way.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "bridge.h"

static const struct br_route_table *const tables[] = {
    &br_routes_health,   &br_routes_auth,    &br_routes_devices, &br_routes_amt,      &br_routes_events,
    &br_routes_domains,  &br_routes_profiles, &br_routes_ciraconfigs, &br_routes_wireless,
    &br_routes_ieee8021x, &br_routes_proxy,
};

void br_routes_foreach(void (*fn)(const struct br_route *r, void *ud), void *ud) {
  for (size_t i = 0; i < sizeof tables / sizeof tables[0]; i++)
    for (size_t j = 0; j < tables[i]->n; j++) fn(&tables[i]->routes[j], ud);
}

/* Splits path into segments in scratch; returns the count or -1. */
static int split(const char *path, char *scratch, size_t scratchlen, char *segs[], int max) {
  size_t len = strlen(path);
  if (len + 1 > scratchlen) return -1;
  memcpy(scratch, path, len + 1);
  while (len > 1 && scratch[len - 1] == '/') scratch[--len] = '\0'; /* Express: non-strict routing */
  int n = 0;
  char *p = scratch;
  if (*p == '/') p++;
  while (*p) {
    if (n == max) return -1;
    segs[n++] = p;
    char *slash = strchr(p, '/');
    if (!slash) break;
    *slash = '\0';
    p = slash + 1;
    if (!*p) return -1; /* empty segment ("a//b") */
  }
  return n;
}

static bool match(const char *pattern, char *segs[], int nsegs, char *params[BR_MAX_PARAMS], size_t *nparams) {
  int i = 0;
  size_t np = 0;
  const char *p = pattern + 1;
  while (*p) {
    const char *slash = strchr(p, '/');
    size_t pl = slash ? (size_t)(slash - p) : strlen(p);
    if (i >= nsegs) return false;
    if (*p == ':') {
      if (np == BR_MAX_PARAMS || !segs[i][0]) return false;
      params[np++] = segs[i];
    } else if (strlen(segs[i]) != pl || strncasecmp(p, segs[i], pl) != 0) {
      return false;
    }
    i++;
    if (!slash) break;
    p = slash + 1;
  }
  if (i != nsegs) return false;
  *nparams = np;
  return true;
}

const struct br_route *br_route_match(unsigned method, const char *path, char *scratch, size_t scratchlen,
                                      char *params[BR_MAX_PARAMS], size_t *nparams, bool *path_known) {
  char *segs[16];
  int n = split(path, scratch, scratchlen, segs, 16);
  *path_known = false;
  *nparams = 0;
  if (n < 0) return NULL;
  for (size_t i = 0; i < sizeof tables / sizeof tables[0]; i++)
    for (size_t j = 0; j < tables[i]->n; j++) {
      const struct br_route *r = &tables[i]->routes[j];
      char *pp[BR_MAX_PARAMS];
      size_t np;
      if (!match(r->pattern, segs, n, pp, &np)) continue;
      *path_known = true;
      unsigned m = method == BR_M_HEAD ? BR_M_GET : method;
      if (!(r->methods & m)) continue;
      memcpy(params, pp, sizeof pp);
      *nparams = np;
      return r;
    }
  return NULL;
}

/* ------------------------------------------------------------ transactions */

struct br_txn *br_txn_new(struct br_server *s) {
  struct br_txn *t = calloc(1, sizeof *t);
  if (!t) return NULL;
  t->srv = s;
  t->refs = 1;
  atomic_init(&t->abandoned, false);
  return t;
}

void br_txn_ref(struct br_txn *t) { t->refs++; }

void br_txn_unref(struct br_txn *t) {
  if (--t->refs > 0) return;
  if (t->cmd) br_amt_cancel(t); /* a command that never got published (a published one holds a reference) */
  if (t->timer_armed) lws_sul_cancel(&t->timeout_sul);
  br_request_clear(&t->req);
  json_decref(t->body);
  json_decref(t->jparams);
  json_decref(t->jquery);
  br_out_reset(&t->out);
  br_out_reset(&t->job_out);
  if (t->ctx_free) t->ctx_free(t->ctx);
  free(t);
}

/* Implemented by the HTTP layer (http_server.c); a no-op for detached transactions. */
void br_http_kick(struct br_txn *t);

void br_send(struct br_txn *t) {
  if (t->responded) return;
  t->responded = true;
  atomic_store(&t->abandoned, true); /* nothing still running may act on this request any more */
  if (t->timer_armed) {
    lws_sul_cancel(&t->timeout_sul);
    t->timer_armed = false;
  }
  struct br_out *o = &t->out;
  if (!o->status) br_out_unexpected(o, br_method_name(t->req.method), t->req.path);
  if (o->status >= 500) t->srv->stats.responses_5xx++;
  if (o->etag[0]) {
    snprintf(t->etag_hdr, sizeof t->etag_hdr, "%s", o->etag);
  } else if ((t->req.method == BR_M_GET || t->req.method == BR_M_HEAD) && o->status == 200) {
    br_etag(o->body, o->len, t->etag_hdr);
    /* Express's fresh(): If-None-Match equal to the ETag (or "*") and no "Cache-Control: no-cache" */
    const char *inm = t->req.if_none_match, *cc = t->req.cache_control;
    if (inm && (!cc || !strstr(cc, "no-cache"))) {
      bool fresh = !strcmp(inm, "*");
      char buf[512];
      snprintf(buf, sizeof buf, "%s", inm);
      for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok && !fresh; tok = strtok_r(NULL, ",", &save)) {
        while (*tok == ' ') tok++;
        char *e = tok + strlen(tok);
        while (e > tok && e[-1] == ' ') *--e = '\0';
        const char *a = tok, *b = t->etag_hdr;
        if (!strncmp(a, "W/", 2)) a += 2;
        if (!strncmp(b, "W/", 2)) b += 2;
        fresh = !strcmp(a, b);
      }
      if (fresh) br_out_raw(o, 304, NULL, NULL, 0);
    }
  }
  if (o->event_topic) br_event_publish(t->srv, o);
  br_http_kick(t);
}

void br_respond_out(struct br_txn *t, struct br_out *o) {
  if (t->responded) {
    br_out_reset(o);
    return;
  }
  br_out_reset(&t->out);
  t->out = *o;
  memset(o, 0, sizeof *o);
  br_send(t);
}

void br_respond_json(struct br_txn *t, int status, json_t *j) {
  br_out_json(&t->out, status, j);
  br_send(t);
}

/* ------------------------------------------------------------ pipeline */

static void not_found_html(struct br_txn *t) {
  char html[600];
  int n = snprintf(html, sizeof html,
                   "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>Error</title>\n"
                   "</head>\n<body>\n<pre>Cannot %s %.200s</pre>\n</body>\n</html>\n",
                   br_method_name(t->req.method), t->req.path);
  br_out_raw(&t->out, 404, "text/html; charset=utf-8", html, (size_t)n);
  br_send(t);
}

static bool body_is_json(const struct br_request *r) {
  const char *ct = r->content_type;
  return !ct || strcasestr(ct, "json") != NULL;
}

static bool body_is_form(const struct br_request *r) {
  return r->content_type && strcasestr(r->content_type, "application/x-www-form-urlencoded") != NULL;
}

/* express.json() (strict: objects and arrays only) and express.urlencoded(); other types leave {}. */
static bool parse_body(struct br_txn *t) {
  struct br_request *r = &t->req;
  if (!r->body || r->body_len == 0) return true;
  if (body_is_form(r)) {
    struct br_request tmp = {0};
    if (br_query_parse(&tmp, r->body, r->body_len) != 0) {
      br_request_clear(&tmp);
      return false;
    }
    t->body = json_object();
    for (size_t i = 0; i < tmp.nquery; i++)
      json_object_set_new(t->body, tmp.query[i].key, json_string(tmp.query[i].value));
    br_request_clear(&tmp);
    return true;
  }
  if (!body_is_json(r)) return true;
  size_t i = 0;
  while (i < r->body_len && strchr(" \t\r\n", r->body[i])) i++;
  if (i == r->body_len) return true; /* whitespace only: body-parser treats it as empty */
  json_error_t err;
  json_t *j = json_loadb(r->body, r->body_len, 0, &err); /* rejects bad UTF-8, NUL, scalars */
  if (!j) return false;
  t->body = j;
  return true;
}

static json_t *query_json(const struct br_request *r) {
  json_t *q = json_object();
  for (size_t i = 0; i < r->nquery; i++)
    if (!json_object_get(q, r->query[i].key)) json_object_set_new(q, r->query[i].key, json_string(r->query[i].value));
  return q;
}

void br_dispatch(struct br_txn *t) {
  struct br_server *s = t->srv;
  struct br_request *r = &t->req;
  s->stats.requests++;
  t->is_head = r->method == BR_M_HEAD;
  if (r->body_too_large) {
    br_out_error(&t->out, 413, "Payload Too Large", "request entity too large");
    br_send(t);
    return;
  }
  if (!r->path || r->path[0] != '/' || !br_utf8_valid(r->path, strlen(r->path)) || strstr(r->path, "/../") ||
      (strlen(r->path) >= 3 && !strcmp(r->path + strlen(r->path) - 3, "/.."))) {
    br_out_error(&t->out, 400, "Incorrect URI or Bad Request", NULL);
    br_send(t);
    return;
  }
  if (r->method == BR_M_OPTIONS) { /* cors() preflight */
    br_out_empty(&t->out, 204);
    br_send(t);
    return;
  }
  if (!parse_body(t)) {
    br_out_error(&t->out, 400, "Incorrect URI or Bad Request", NULL);
    br_send(t);
    return;
  }
  bool known;
  t->route = br_route_match(r->method, r->path, t->params_buf, sizeof t->params_buf, t->params, &t->nparams, &known);
  if (!t->route) {
    not_found_html(t);
    return;
  }
  if (!(t->route->flags & BR_RF_PUBLIC)) {
    if (!br_authenticate(t)) {
      br_send(t);
      return;
    }
    if ((t->route->flags & BR_RF_WRITE) && !(t->who.perms & BR_PERM_WRITE)) {
      br_out_error(&t->out, 403, "Forbidden", "the token's roles do not allow changes in this project");
      br_send(t);
      return;
    }
  }
  t->jquery = query_json(r);
  t->jparams = json_object();
  {
    /* parameter names from the pattern */
    const char *p = t->route->pattern;
    size_t i = 0;
    while ((p = strchr(p, ':')) != NULL && i < t->nparams) {
      const char *e = strchr(p, '/');
      size_t n = e ? (size_t)(e - p - 1) : strlen(p + 1);
      char name[64];
      snprintf(name, sizeof name, "%.*s", (int)n, p + 1);
      json_object_set_new(t->jparams, name, json_string(t->params[i++]));
      p += n + 1;
    }
  }
  br_txn_arm_timeout(t, s->request_timeout_ms);
  if (t->route->chain) {
    struct br_vctx v;
    br_vctx_init(&v, t, NULL);
    json_t *errors = json_array();
    if (br_validate(t->route->chain, &v, errors) > 0) {
      br_out_validation(&t->out, errors);
      br_send(t);
      return;
    }
    json_decref(errors);
  }
  t->route->handler(t);
}
