/* Shared fixture for the simulator's unit tests (see sim_fixture.h). */
#include "sim_fixture.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dmt/digest.h"
#include "dmt/mptree.h"
#include "dmt/tls.h"

struct sim *fixture_sim(size_t n, const char *mode, const char *state_dir) {
  struct sim *s = calloc(1, sizeof *s);
  s->loop = dmt_loop_new();
  sim_cira_fleet_init(s);
  s->log = (struct dmt_log){.out = stderr, .min = DMT_LOG_ERROR, .component = "sim-test"};
  s->control_fd = s->wsman_fd = -1;
  s->state_dir = state_dir ? strdup(state_dir) : NULL;
  s->reconnect_min_ms = 1000;
  s->keepalive_default_ms = 60000;
  s->policy_interval_s = 25;
  s->boot_ms = 100;
  s->verify_server = true;
  char err[256];
  s->tls = dmt_tls_client_ctx(NULL, false, err, sizeof err);
  dmt_wsman_init();
  struct sim_template t = {.count = n, .guid_prefix = FIXTURE_GUID_PREFIX, .mps_hosts = "127.0.0.1",
                           .mps_ports = "4433", .mps_user = "simuser", .mps_password = NULL,
                           .amt_password = FIXTURE_AMT_PASSWORD, .versions = "16.1.27", .builds = "2225",
                           .skus = "16392", .dns_suffix = "vprodemo.com", .mode = mode};
  if (sim_fleet_template(s, &t, err, sizeof err) != 0) {
    fprintf(stderr, "fixture: %s\n", err);
    abort();
  }
  return s;
}

void fixture_sim_free(struct sim *s) {
  dmt_workq_run(dmt_loop_workq(s->loop));
  for (size_t i = 0; i < s->ndevices; i++) {
    sim_cira_stop(&s->devices[i], false);
    dmt_timer_stop(s->loop, &s->devices[i].timer);
    free(s->devices[i].rpc);
  }
  sim_cira_fleet_free(s);
  sim_fleet_free(s);
  free(s->state_dir);
  SSL_CTX_free(s->tls);
  dmt_loop_free(s->loop);
  free(s);
}

void fixture_response_free(struct fixture_response *r) { dmt_http_parser_free(&r->http); }

void fixture_http(struct sim_device *d, enum sim_transport tr, const char *authorization, const char *body,
                  struct fixture_response *out) {
  struct dmt_buf req, resp;
  dmt_buf_init(&req, 0);
  dmt_buf_init(&resp, 0);
  dmt_http_build_wsman_request(&req, authorization, d->guid, 16992, body, strlen(body));
  struct dmt_http_parser in;
  dmt_http_parser_init(&in, true, 1u << 20);
  size_t used = 0;
  if (dmt_http_parse(&in, dmt_buf_ptr(&req), dmt_buf_size(&req), &used) != DMT_HTTP_DONE) abort();
  out->close_after = !in.keep_alive;
  sim_wsman_handle(d, tr, &in, &resp, &out->close_after);
  dmt_http_parser_init(&out->http, false, 4u << 20);
  int rc = dmt_http_parse(&out->http, dmt_buf_ptr(&resp), dmt_buf_size(&resp), &used);
  if (rc != DMT_HTTP_DONE || used != dmt_buf_size(&resp)) {
    fprintf(stderr, "fixture: device answered an incomplete or malformed HTTP response (%d)\n", rc);
    abort();
  }
  dmt_http_parser_free(&in);
  dmt_buf_free(&req);
  dmt_buf_free(&resp);
}

int fixture_wsman(struct sim_device *d, enum sim_transport tr, const char *user, const char *password,
                  const char *envelope, struct dmt_wsman_response *resp) {
  struct fixture_response first, second;
  fixture_http(d, tr, NULL, envelope, &first);
  const char *challenge = dmt_http_header(&first.http, "WWW-Authenticate");
  struct dmt_digest_challenge c;
  if (first.http.status != 401 || !challenge || dmt_digest_parse_challenge(challenge, &c) != 0) abort();
  fixture_response_free(&first);
  static uint32_t nc;
  char auth[1024];
  dmt_digest_authorization(user, password, &c, "POST", "/wsman", ++nc, "0a4f113b", auth, sizeof auth);
  fixture_http(d, tr, auth, envelope, &second);
  int status = second.http.status;
  memset(resp, 0, sizeof *resp);
  char err[256];
  const char *type = dmt_http_header(&second.http, "Content-Type");
  if (dmt_buf_size(&second.http.body) > 0 && type && strstr(type, "soap") &&
      dmt_wsman_parse_response((const char *)dmt_buf_ptr(&second.http.body), dmt_buf_size(&second.http.body), resp,
                               err, sizeof err) != 0) {
    fprintf(stderr, "fixture: unparsable envelope: %s\n", err);
    abort();
  }
  fixture_response_free(&second);
  return status;
}

static char *finish(struct dmt_buf *b) {
  dmt_buf_append_u8(b, 0);
  return (char *)b->data;
}

char *fixture_get(const char *cls) {
  struct dmt_buf b;
  dmt_buf_init(&b, 0);
  dmt_wsman_get(&b, cls, "11", NULL, 0);
  return finish(&b);
}

char *fixture_enumerate(const char *cls) {
  struct dmt_buf b;
  dmt_buf_init(&b, 0);
  dmt_wsman_enumerate(&b, cls, "12");
  return finish(&b);
}

char *fixture_pull(const char *cls, const char *context, unsigned max) {
  struct dmt_buf b;
  dmt_buf_init(&b, 0);
  dmt_wsman_pull(&b, cls, "13", context, max);
  return finish(&b);
}

char *fixture_invoke(const char *cls, const char *method, const struct dmt_wsman_param *p, size_t n) {
  struct dmt_buf b;
  dmt_buf_init(&b, 0);
  dmt_wsman_invoke(&b, cls, method, "14", NULL, 0, p, n);
  return finish(&b);
}

char *fixture_delete(const char *cls, const char *selector, const char *value) {
  struct dmt_buf b;
  dmt_buf_init(&b, 0);
  struct dmt_wsman_selector sel = {selector, value};
  dmt_wsman_delete(&b, cls, "15", &sel, 1);
  return finish(&b);
}

char *fixture_put(const char *cls, const struct dmt_wsman_param *p, size_t n) {
  struct dmt_buf b;
  dmt_buf_init(&b, 0);
  dmt_wsman_put(&b, cls, "16", NULL, 0, p, n);
  return finish(&b);
}

json_t *fixture_json(const struct dmt_wsman_response *r) { return dmt_mp_buf_to_json(r->tree.data, r->tree.size); }

json_t *fixture_path(json_t *root, const char *path) {
  char copy[256], *save = NULL;
  snprintf(copy, sizeof copy, "%s", path);
  json_t *cur = root;
  for (char *k = strtok_r(copy, ".", &save); k && cur; k = strtok_r(NULL, ".", &save)) cur = json_object_get(cur, k);
  return cur;
}

long fixture_return_value(const struct dmt_wsman_response *r, const char *method) {
  json_t *j = fixture_json(r);
  char path[128];
  snprintf(path, sizeof path, "Body.%s_OUTPUT.ReturnValue", method);
  json_t *v = fixture_path(j, path);
  long rv = json_is_integer(v) ? (long)json_integer_value(v) : -1;
  json_decref(j);
  return rv;
}
