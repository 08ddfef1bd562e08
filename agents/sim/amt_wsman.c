/*
 * The device's WS-Man responder: HTTP Digest exactly as AMT does it (the
 * first request without credentials gets a 401 with Connection: close; the
 * nonce stays valid for the connection), SOAP parsing, and dispatch to the
 * class handlers in amt_classes.c through a table, answered in AMT's chunked
 * 200 responses or its SOAP faults.
 */
#include <stdio.h>
#include <string.h>

#include "amt_classes.h"
#include "dmt/digest.h"
#include "sim.h"

static void http_simple(struct dmt_buf *resp, int status, const char *reason) {
  dmt_buf_printf(resp, "HTTP/1.1 %d %s\r\nContent-Length: 0\r\nConnection: close\r\n\r\n", status, reason);
}

static bool authorized(struct sim_device *d, const struct dmt_http_parser *req) {
  const char *auth = dmt_http_header(req, "Authorization");
  struct dmt_digest_credentials cr;
  if (!auth || !d->nonce[0] || dmt_digest_parse_authorization(auth, &cr) != 0) return false;
  return dmt_digest_verify(&cr, req->method, "admin", d->realm, d->nonce, d->amt_ha1);
}

void sim_wsman_handle(struct sim_device *d, const struct dmt_http_parser *req, struct dmt_buf *resp, bool *close_after) {
  struct sim *s = d->sim;
  s->count.wsman_requests++;
  if (strcmp(req->method, "POST") || !req->target || strcmp(req->target, "/wsman")) {
    http_simple(resp, 404, "Not Found");
    *close_after = true;
    return;
  }
  if (!authorized(d, req)) {
    if (!d->nonce[0]) dmt_digest_random_hex(d->nonce, 16);
    dmt_http_build_amt_401(resp, d->realm, d->nonce, d->amt_version);
    s->count.wsman_401++;
    *close_after = true;
    return;
  }
  struct dmt_wsman_request w;
  char err[256];
  if (dmt_wsman_parse_request((const char *)dmt_buf_ptr(&req->body), dmt_buf_size(&req->body), &w, err, sizeof err)) {
    DMT_WARN(&s->log, "wsman_bad_request", "guid=%s error=\"%s\"", d->guid, err);
    http_simple(resp, 400, "Bad Request");
    *close_after = true;
    return;
  }
  struct dmt_buf body, env;
  dmt_buf_init(&body, 0);
  dmt_buf_init(&env, 0);
  struct amt_fault fault = {0};
  amt_dispatch(d, &w, &body, &fault);
  dmt_buf_append_u8(&body, 0);
  if (fault.subcode) {
    s->count.wsman_faults++;
    dmt_wsman_build_fault(&env, &w, ++d->wsman_seq, fault.code ? fault.code : "a:Sender", fault.subcode, fault.reason);
  } else {
    dmt_wsman_build_response(&env, &w, ++d->wsman_seq, (const char *)dmt_buf_ptr(&body));
  }
  dmt_http_build_amt_soap(resp, fault.subcode ? 400 : 200, d->amt_version, (const char *)dmt_buf_ptr(&env),
                          dmt_buf_size(&env), 0x0FFF);
  dmt_buf_free(&body);
  dmt_buf_free(&env);
  dmt_wsman_request_free(&w);
}
