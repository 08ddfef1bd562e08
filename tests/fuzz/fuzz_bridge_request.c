/*
 * Fuzz target: the bridge's request path without sockets. The input is
 *   <flags byte><path>\n<query>\n<authorization>\n<project/tenant>\n<if-none-match>\n<body>
 * and goes through what the HTTP layer does (path decoding, query parsing)
 * and then br_dispatch(): path checks, body parsing, routing, authentication
 * (standalone, optionally verifying HS256 tokens or taking a tenant header),
 * route validators, handlers up to the point where they would need the
 * database or the broker (absent here: those answer 503), and response
 * rendering with ETags. The route's database-side validators run as well,
 * on the parsed body, with no database (references assumed to exist).
 * Properties: every request gets exactly one answer with a valid status;
 * every JSON answer and every validation error list is valid JSON; nothing
 * leaks or reads out of bounds (ASan/UBSan).
 */
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bridge.h"
#include "dmt/config.h"

static struct br_server srv;
static struct dmt_config cfg;

static const struct dmt_config_key keys[] = {
    {"secrets.backend", NULL, NULL, "embedded", "", 0},
    {"bridge.command_timeout_ms", NULL, NULL, "1000", "", 0},
    {"bridge.command_grace_ms", NULL, NULL, "100", "", 0},
};

static void init_once(void) {
  static bool done;
  if (done) return;
  done = true;
  dmt_config_init(&cfg, keys, sizeof keys / sizeof keys[0]);
  srv.cfg = &cfg;
  srv.log = (struct dmt_log){.out = NULL, .min = DMT_LOG_ERROR, .component = "fuzz"};
  snprintf(srv.instance, sizeof srv.instance, "fuzz");
  srv.max_body = 64 * 1024;
  srv.request_timeout_ms = 1000;
  srv.health_timeout_ms = 1000;
  srv.auth.mode = BR_AUTH_STANDALONE;
  srv.auth.web_auth_enabled = true;
  srv.auth.admin_user = "standalone";
  srv.auth.admin_password = "G@ppm0ym";
  srv.auth.jwt_secret = "mpssecret";
  srv.auth.jwt_issuer = "9EmRJTbIiIb4bIeSsmgcWIjrR6HyETqc";
  srv.auth.jwt_expiration_min = 1440;
  srv.auth.redirection_expiration_min = 5;
  br_pfx_init();
  br_amt_init(&srv);
}

/* Next '\n'-terminated field as a malloc'd string (NULL when empty). */
static char *field(const uint8_t **p, const uint8_t *end) {
  const uint8_t *nl = memchr(*p, '\n', (size_t)(end - *p));
  const uint8_t *stop = nl ? nl : end;
  size_t n = (size_t)(stop - *p);
  char *s = NULL;
  if (n) {
    s = malloc(n + 1);
    memcpy(s, *p, n);
    s[n] = '\0';
  }
  *p = nl ? nl + 1 : end;
  return s;
}

static void check_answer(const struct br_txn *t) {
  if (!t->responded) abort(); /* without a database or broker everything is answered at once */
  const struct br_out *o = &t->out;
  if (o->status < 200 || o->status > 599) abort();
  if (o->len && (!o->ctype || strstr(o->ctype, "json"))) {
    json_error_t e;
    json_t *j = json_loadb(o->body, o->len, JSON_DECODE_ANY, &e);
    if (!j) {
      fprintf(stderr, "invalid JSON answer (%d): %.*s\n", o->status, (int)o->len, o->body);
      abort();
    }
    json_decref(j);
  }
}

static void job_validators(struct br_txn *t) {
  if (!t->route || !t->route->job_chain || !t->body || !t->jparams || !t->jquery) return;
  struct br_vctx v;
  br_vctx_init(&v, t, NULL);
  json_t *errors = json_array();
  br_validate(t->route->job_chain, &v, errors);
  char *s = json_dumps(errors, JSON_COMPACT);
  if (!s) abort();
  free(s);
  json_decref(errors);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  init_once();
  if (size < 1) return 0;
  static const unsigned methods[] = {BR_M_GET, BR_M_POST, BR_M_PUT, BR_M_PATCH, BR_M_DELETE, BR_M_OPTIONS, BR_M_HEAD,
                                     BR_M_OTHER};
  uint8_t flags = data[0];
  const uint8_t *p = data + 1, *end = data + size;
  srv.auth.verify_tokens = flags & 0x08;
  srv.auth.tenant_header = flags & 0x10 ? "x-tenant-id" : NULL;
  srv.auth.web_auth_enabled = !(flags & 0x20);

  struct br_txn *t = br_txn_new(&srv);
  t->req.method = methods[flags & 7];
  char *path = field(&p, end);
  char *query = field(&p, end);
  t->req.authorization = field(&p, end);
  t->req.project_id = field(&p, end);
  t->req.if_none_match = field(&p, end);
  if (flags & 0x40) t->req.if_match = t->req.if_none_match ? strdup(t->req.if_none_match) : NULL;
  if (end > p) {
    t->req.body_len = (size_t)(end - p);
    t->req.body = malloc(t->req.body_len + 1);
    memcpy(t->req.body, p, t->req.body_len);
    t->req.body[t->req.body_len] = '\0';
    t->req.body_too_large = t->req.body_len > srv.max_body;
    t->req.content_type = strdup(flags & 0x80 ? "text/plain" : "application/json");
  }
  /* the HTTP layer hands over a decoded path and decoded query pairs */
  bool bad = false;
  if (path && br_url_decode(path) != 0) bad = true;
  t->req.path = path ? path : strdup("/");
  if (query && br_query_parse(&t->req, query, strlen(query)) != 0) bad = true;
  free(query);
  if (bad) {
    br_out_error(&t->out, 400, "Incorrect URI or Bad Request", NULL);
    br_send(t);
  } else {
    br_dispatch(t);
  }
  check_answer(t);
  if (getenv("DMT_FUZZ_VERBOSE"))
    fprintf(stderr, "%s %s -> %d %.120s\n", br_method_name(t->req.method), t->req.path, t->out.status,
            t->out.body ? t->out.body : "");
  job_validators(t);
  br_txn_unref(t);
  return 0;
}
