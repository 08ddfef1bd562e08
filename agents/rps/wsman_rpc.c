/*
 * WS-Management through the RPC client (rps-activation.md §1.6, §2.7). The
 * server is the WS-Man client: it builds the SOAP envelope (dmt/wsman.h), the
 * HTTP request exactly as DMT frames it (one upper-case-hex chunk,
 * Connection: close, Host <uuid>:16992; dmt/http.h) with a Digest
 * Authorization once AMT has challenged (dmt/digest.h: one nonce for the
 * job, an 8-hex nc counter, a fresh cnonce per request), base64s it into a
 * `wsman` message and waits for the client's `response`.
 *
 * One request is in flight per job. Rules:
 *  - 401: store the challenge and re-send the same request with credentials;
 *    a third consecutive 401 fails the step ("Unable to authenticate with
 *    AMT"). DMT restarts at GET_GENERAL_SETTINGS instead; re-sending is
 *    equivalent for AMT and keeps every step resumable.
 *  - no answer within wsman_timeout_ms, or an unparsable answer: re-send,
 *    up to wsman_attempts in all, unless the step is one-shot (AdminSetup,
 *    UpgradeClientToAdmin); then FE_TIMEOUT / FE_FAIL.
 *  - a 200 whose RelatesTo names an earlier request is a late answer to a
 *    request we already re-sent: ignored (our MessageIDs are unique per job).
 *  - any other status goes to the step's reply handler with the parsed
 *    fault, so a step can accept an expected 400 (deleting an absent rule).
 * Unlike DMT, a 200 with Content-Length instead of chunking is accepted.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dmt/http.h"
#include "dmt/mptree.h"
#include "rps.h"

#define MAX_HTTP_BODY (1u << 20)
#define MAX_UNAUTH 3

void wsman_session_reset(struct wsman_session *w) {
  memset(w->password, 0, sizeof w->password);
  dmt_buf_free(&w->body);
  memset(w, 0, sizeof *w);
  dmt_buf_init(&w->body, 0);
}

void wsman_set_credentials(struct rps_job *j, const char *user, const char *password) {
  snprintf(j->ws.user, sizeof j->ws.user, "%s", user);
  snprintf(j->ws.password, sizeof j->ws.password, "%s", password ? password : "");
}

static void on_timeout(lws_sorted_usec_list_t *sul);

static int send_current(struct rps_job *j) {
  struct wsman_session *w = &j->ws;
  if (!j->conn) return -1;
  char auth[1024];
  const char *a = NULL;
  if (w->have_challenge) {
    char cnonce[17];
    dmt_digest_random_hex(cnonce, 8);
    if (dmt_digest_authorization(w->user, w->password, &w->challenge, "POST", "/wsman", ++w->nc, cnonce, auth,
                                 sizeof auth) < 0)
      return -1;
    a = auth;
  }
  struct dmt_buf http;
  dmt_buf_init(&http, 0);
  int rc = dmt_http_build_wsman_request_chunked(&http, a, j->guid, RPS_AMT_PORT, (const char *)dmt_buf_ptr(&w->body),
                                                dmt_buf_size(&w->body));
  char *b64 = rc == 0 ? rps_b64_encode(dmt_buf_ptr(&http), dmt_buf_size(&http)) : NULL;
  dmt_buf_free(&http);
  if (a) memset(auth, 0, sizeof auth);
  if (!b64) return -1;
  char *msg = rpc_msg_encode("wsman", "ok", "", b64);
  free(b64);
  if (!msg) return -1;
  w->attempts++;
  w->pending = true;
  w->sent_us = rps_now_us();
  j->srv->count.wsman_sent++;
  conn_send_text(j->conn, msg);
  rps_timer_start(j->srv, &j->t_wsman, on_timeout, j->srv->set.wsman_timeout_ms);
  job_mark_wait(j);
  DMT_DEBUG(&j->srv->log, "wsman_sent", "job=%s guid=%s call=\"%s\" id=%s attempt=%u", j->id, j->guid, w->label,
            w->pending_id, w->attempts);
  return 0;
}

static bool may_retry(const struct rps_job *j) {
  return !j->ws.one_shot && j->ws.attempts < j->srv->set.wsman_attempts;
}

static void fail_now(struct rps_job *j, int ev) {
  j->ws.pending = false;
  rps_timer_stop(&j->t_wsman);
  flow_post(j, ev);
}

static void on_timeout(lws_sorted_usec_list_t *sul) {
  struct rps_job *j = lws_container_of(sul, struct rps_job, t_wsman);
  if (!j->ws.pending || j->ended) return;
  job_mark_work(j);
  DMT_WARN(&j->srv->log, "wsman_timeout", "job=%s guid=%s call=\"%s\" attempt=%u", j->id, j->guid, j->ws.label,
           j->ws.attempts);
  if (may_retry(j)) {
    j->srv->count.wsman_retries++;
    if (send_current(j) == 0) return;
  }
  snprintf(j->ws.last_error, sizeof j->ws.last_error, "no answer to %s", j->ws.label);
  fail_now(j, FE_TIMEOUT);
}

/* Builds the next request into the session (new MessageID) and sends it. */
static int start(struct rps_job *j, const char *label, int build_rc) {
  if (build_rc != 0) {
    flow_fail_text(j, "Unknown error has occured");
    return -1;
  }
  snprintf(j->ws.label, sizeof j->ws.label, "%s", label);
  j->ws.attempts = 0;
  if (send_current(j) != 0) return -1;
  return 0;
}

static const char *next_id(struct rps_job *j) {
  snprintf(j->ws.pending_id, sizeof j->ws.pending_id, "%u", j->ws.msg_id++);
  dmt_buf_reset(&j->ws.body);
  return j->ws.pending_id;
}

static int send_or_fail(struct rps_job *j, const char *label, int rc) {
  if (start(j, label, rc) != 0) {
    flow_post(j, FE_FAIL);
    return -1;
  }
  return 0;
}

int ws_get(struct rps_job *j, const char *cls, const struct dmt_wsman_selector *sel, size_t nsel) {
  char label[96];
  snprintf(label, sizeof label, "Get %s", cls);
  return send_or_fail(j, label, dmt_wsman_get(&j->ws.body, cls, next_id(j), sel, nsel));
}

int ws_enumerate(struct rps_job *j, const char *cls) {
  char label[96];
  snprintf(label, sizeof label, "Enumerate %s", cls);
  return send_or_fail(j, label, dmt_wsman_enumerate(&j->ws.body, cls, next_id(j)));
}

int ws_pull(struct rps_job *j, const char *cls, const char *context) {
  char label[96];
  snprintf(label, sizeof label, "Pull %s", cls);
  return send_or_fail(j, label, dmt_wsman_pull(&j->ws.body, cls, next_id(j), context ? context : "", 0));
}

int ws_put(struct rps_job *j, const char *cls, const struct dmt_wsman_selector *sel, size_t nsel,
           const struct dmt_wsman_param *props, size_t nprops) {
  char label[96];
  snprintf(label, sizeof label, "Put %s", cls);
  return send_or_fail(j, label, dmt_wsman_put(&j->ws.body, cls, next_id(j), sel, nsel, props, nprops));
}

int ws_put_xml_selectors(struct rps_job *j, const char *cls, const char *selectors_xml,
                         const struct dmt_wsman_param *props, size_t nprops) {
  char label[96];
  snprintf(label, sizeof label, "Put %s", cls);
  return send_or_fail(j, label,
                      dmt_wsman_put_xml_selectors(&j->ws.body, cls, next_id(j), selectors_xml, props, nprops));
}

int ws_delete(struct rps_job *j, const char *cls, const struct dmt_wsman_selector *sel, size_t nsel) {
  char label[96];
  snprintf(label, sizeof label, "Delete %s", cls);
  return send_or_fail(j, label, dmt_wsman_delete(&j->ws.body, cls, next_id(j), sel, nsel));
}

int ws_invoke(struct rps_job *j, const char *cls, const char *method, const struct dmt_wsman_selector *sel,
              size_t nsel, const struct dmt_wsman_param *params, size_t nparams) {
  char label[96];
  snprintf(label, sizeof label, "%s.%s", cls, method);
  return send_or_fail(j, label,
                      dmt_wsman_invoke(&j->ws.body, cls, method, next_id(j), sel, nsel, params, nparams));
}

static bool dropped(const char *key, const char *const *drop) {
  for (size_t i = 0; drop && drop[i]; i++)
    if (!strcmp(drop[i], key)) return true;
  return false;
}

static const struct dmt_wsman_param *override(const char *key, const struct dmt_wsman_param *set, size_t nset) {
  for (size_t i = 0; i < nset; i++)
    if (!strcmp(set[i].name, key)) return &set[i];
  return NULL;
}

/* A scalar's AMT text: strings as is, booleans true/false, numbers in plain decimal. */
static bool scalar_text(const json_t *v, char *out, size_t outlen) {
  if (json_is_string(v)) snprintf(out, outlen, "%s", json_string_value(v));
  else if (json_is_true(v)) snprintf(out, outlen, "true");
  else if (json_is_false(v)) snprintf(out, outlen, "false");
  else if (json_is_integer(v)) snprintf(out, outlen, "%lld", (long long)json_integer_value(v));
  else if (json_is_real(v)) rps_js_number_string(json_real_value(v), out, outlen);
  else return false;
  return true;
}

int ws_put_instance(struct rps_job *j, const char *cls, const json_t *inst, const struct dmt_wsman_selector *sel,
                    size_t nsel, const char *const *drop, const struct dmt_wsman_param *set, size_t nset) {
  size_t cap = json_object_size(inst) * 4 + nset + 8, n = 0;
  struct dmt_wsman_param *props = calloc(cap, sizeof *props);
  char **texts = calloc(cap, sizeof *texts);
  bool *used = calloc(nset + 1, sizeof *used);
  int rc = -1;
  if (!props || !texts || !used) goto out;
  const char *key;
  json_t *v;
  json_object_foreach((json_t *)inst, key, v) {
    if (dropped(key, drop)) continue;
    const struct dmt_wsman_param *o = override(key, set, nset);
    if (o) {
      used[o - set] = true;
      if (n < cap) props[n++] = *o;
      continue;
    }
    size_t count = json_is_array(v) ? json_array_size(v) : 1;
    for (size_t k = 0; k < count && n < cap; k++) {
      char buf[512];
      const json_t *x = json_is_array(v) ? json_array_get(v, k) : v;
      if (!scalar_text(x, buf, sizeof buf)) continue;
      texts[n] = strdup(buf);
      if (!texts[n]) goto out;
      props[n] = (struct dmt_wsman_param){key, texts[n], false};
      n++;
    }
  }
  for (size_t i = 0; i < nset && n < cap; i++)
    if (!used[i]) props[n++] = set[i];
  rc = 0;
out:
  if (rc == 0) rc = ws_put(j, cls, sel, nsel, props, n);
  else flow_post(j, FE_FAIL);
  for (size_t i = 0; texts && i < cap; i++) free(texts[i]);
  free(texts);
  free(props);
  free(used);
  return rc;
}

json_t *wsman_instance_json(const struct wsman_reply *r, const char *cls) {
  const msgpack_object *o = wsman_get_obj(r, cls);
  return o && o->type == MSGPACK_OBJECT_MAP ? dmt_mp_to_json(o) : NULL;
}

/* ---- answers ---- */

static void reply_free(struct wsman_reply *r) {
  if (r->parsed) {
    msgpack_unpacked_destroy(&r->tree);
    dmt_wsman_response_free(&r->resp);
  }
}

/* 0 parsed (r filled), -1 not a SOAP envelope. */
static int parse_soap(struct rps_job *j, const struct dmt_buf *body, struct wsman_reply *r) {
  char err[256];
  if (dmt_buf_size(body) == 0 ||
      dmt_wsman_parse_response((const char *)dmt_buf_ptr(body), dmt_buf_size(body), &r->resp, err, sizeof err) != 0) {
    snprintf(j->ws.last_error, sizeof j->ws.last_error, "unparsable answer to %s", j->ws.label);
    return -1;
  }
  r->parsed = true;
  msgpack_unpacked_init(&r->tree);
  if (msgpack_unpack_next(&r->tree, r->resp.tree.data, r->resp.tree.size, NULL) == MSGPACK_UNPACK_SUCCESS)
    r->body = dmt_mp_get(&r->tree.data, "Body");
  if (r->resp.is_fault)
    snprintf(j->ws.last_error, sizeof j->ws.last_error, "%.60s: fault %.60s %.120s", j->ws.label, r->resp.fault_subcode,
             r->resp.fault_reason);
  return 0;
}

static void retry_or_fail(struct rps_job *j) {
  rps_timer_stop(&j->t_wsman);
  if (may_retry(j)) {
    j->srv->count.wsman_retries++;
    if (send_current(j) == 0) return;
  }
  fail_now(j, FE_FAIL);
}

void wsman_on_response(struct rps_job *j, const char *payload_b64) {
  struct wsman_session *w = &j->ws;
  if (!w->pending || j->ended) {
    DMT_DEBUG(&j->srv->log, "wsman_unexpected_response", "job=%s guid=%s", j->id, j->guid);
    return;
  }
  job_mark_work(j);
  j->round_trips++;
  uint8_t *raw = NULL;
  size_t rawlen = 0;
  struct dmt_http_parser hp;
  dmt_http_parser_init(&hp, false, MAX_HTTP_BODY);
  size_t used = 0;
  int hrc = DMT_HTTP_ERR_SYNTAX;
  if (payload_b64 && rps_b64_decode(payload_b64, strlen(payload_b64), &raw, &rawlen) == 0) {
    hrc = dmt_http_parse(&hp, raw, rawlen, &used);
    if (hrc == DMT_HTTP_MORE) hrc = dmt_http_parse_eof(&hp);
  }
  free(raw);
  if (hrc != DMT_HTTP_DONE) {
    snprintf(w->last_error, sizeof w->last_error, "unparsable HTTP answer to %s", w->label);
    DMT_WARN(&j->srv->log, "wsman_bad_http", "job=%s guid=%s call=\"%s\" error=\"%s\"", j->id, j->guid, w->label,
             dmt_http_strerror(hrc));
    dmt_http_parser_free(&hp);
    retry_or_fail(j);
    return;
  }
  if (hp.status == 401) {
    rps_timer_stop(&j->t_wsman);
    j->srv->count.wsman_401++;
    const char *h = dmt_http_header(&hp, "WWW-Authenticate");
    struct dmt_digest_challenge c;
    bool usable = h && dmt_digest_parse_challenge(h, &c) == 0;
    dmt_http_parser_free(&hp);
    if (usable) {
      /* a new nonce restarts the count */
      if (!w->have_challenge || strcmp(c.nonce, w->challenge.nonce)) w->nc = 0;
      w->challenge = c;
      w->have_challenge = true;
    }
    if (++w->unauth >= MAX_UNAUTH || !usable) {
      snprintf(w->last_error, sizeof w->last_error, "401 on %s", w->label);
      flow_fail_text(j, "Unable to authenticate with AMT");
      fail_now(j, FE_FAIL);
      return;
    }
    w->attempts = 0; /* a challenge is not an attempt */
    if (send_current(j) != 0) fail_now(j, FE_FAIL);
    return;
  }
  struct wsman_reply r = {.http_status = hp.status};
  int prc = parse_soap(j, &hp.body, &r);
  dmt_http_parser_free(&hp);
  if (r.http_status == 200 && prc != 0) {
    DMT_WARN(&j->srv->log, "wsman_bad_soap", "job=%s guid=%s call=\"%s\"", j->id, j->guid, w->label);
    retry_or_fail(j);
    return;
  }
  if (r.parsed && r.resp.relates_to[0] && strcmp(r.resp.relates_to, w->pending_id) != 0) {
    /* a late answer to a request we re-sent: the current one is still awaited */
    DMT_DEBUG(&j->srv->log, "wsman_stale_response", "job=%s relates_to=%s pending=%s", j->id, r.resp.relates_to,
              w->pending_id);
    reply_free(&r);
    job_mark_wait(j);
    return;
  }
  rps_timer_stop(&j->t_wsman);
  w->pending = false;
  if (r.http_status == 200 && !(r.parsed && r.resp.is_fault)) w->unauth = 0;
  else if (!r.parsed || !r.resp.is_fault)
    snprintf(w->last_error, sizeof w->last_error, "HTTP %d on %s", r.http_status, w->label);
  flow_reply(j, &r);
  reply_free(&r);
}

/* ---- reading answers ---- */

bool wsman_ok(const struct wsman_reply *r) {
  return r->http_status == 200 && r->parsed && !r->resp.is_fault && r->body;
}

const msgpack_object *wsman_get_obj(const struct wsman_reply *r, const char *path) {
  return r->body ? dmt_mp_path(r->body, path) : NULL;
}

bool wsman_text(const struct wsman_reply *r, const char *path, char *out, size_t outlen) {
  out[0] = '\0';
  const msgpack_object *o = wsman_get_obj(r, path);
  return o && dmt_mp_text(o, out, outlen);
}

long long wsman_int(const struct wsman_reply *r, const char *path, long long def) {
  int64_t v;
  const msgpack_object *o = wsman_get_obj(r, path);
  return o && dmt_mp_int(o, &v) ? (long long)v : def;
}

long long wsman_return_value(const struct wsman_reply *r, const char *method) {
  if (!wsman_ok(r)) return -1;
  char path[128];
  snprintf(path, sizeof path, "%s_OUTPUT.ReturnValue", method);
  return wsman_int(r, path, -1);
}

const msgpack_object *wsman_pull_items(const struct wsman_reply *r, const char *cls) {
  char path[160];
  snprintf(path, sizeof path, "PullResponse.Items.%s", cls);
  const msgpack_object *o = wsman_get_obj(r, path);
  if (!o || o->type == MSGPACK_OBJECT_NIL || (o->type == MSGPACK_OBJECT_STR && o->via.str.size == 0)) return NULL;
  return o;
}
