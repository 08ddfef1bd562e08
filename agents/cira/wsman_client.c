/*
 * WS-Man client over APF channels (mps-cira.md §2): one channel to port 16992
 * per HTTP exchange (open, request, response, close, as Console/gwm do), the
 * request written within the device's channel credits, the response framed
 * by Content-Length or chunked encoding (never by DMT's "</html>" guess),
 * Digest with qop=auth, a challenge cached per device and an nc counter that
 * carries across requests; a 401 (AMT says Connection: close) stores the new
 * challenge and retries on a fresh channel, three times at most. Responses
 * must relate to the request's MessageID. At most cira.max_inflight
 * exchanges per device run at once, the rest queue, and every call has a
 * deadline (DMT has none: a dead device hangs its API for 90 s; here the
 * caller gets a timeout error when the deadline passes).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cira.h"

#define MAX_401_RETRIES 3

const char *wsman_next_id(struct cira_conn *c, char out[24]) {
  snprintf(out, 24, "%u", ++c->msg_seq);
  return out;
}

static void finish(struct wsman_call *call, enum wsman_error error);

static void start_exchange(struct wsman_call *call) {
  struct cira_channel *ch = channel_open(call->conn);
  if (!ch) {
    finish(call, WSMAN_CLOSED);
    return;
  }
  ch->call = call;
  call->ch = ch;
}

/* Called once the channel is confirmed: writes the HTTP request into it. */
void wsman_on_channel_open(struct wsman_call *call) {
  struct cira_conn *c = call->conn;
  struct cira_device *d = c->dev;
  char auth[768];
  const char *authorization = NULL;
  if (d->challenge) {
    char cnonce[17];
    dmt_digest_random_hex(cnonce, 8);
    if (dmt_digest_authorization("admin", d->amt_password, d->challenge, "POST", "/wsman", ++d->nc, cnonce, auth,
                                 sizeof auth) > 0)
      authorization = auth;
  }
  struct dmt_buf http;
  dmt_buf_init(&http, 0);
  dmt_http_build_wsman_request(&http, authorization, c->guid, DMT_APF_WSMAN_PORT,
                               (const char *)dmt_buf_ptr(&call->request), dmt_buf_size(&call->request));
  channel_send(c, call->ch, dmt_buf_ptr(&http), dmt_buf_size(&http));
  dmt_buf_free(&http);
}

static void start_next_queued(struct cira_conn *c) {
  while (c->queue_head && c->inflight < c->srv->set.max_inflight && c->state == CONN_ACTIVE) {
    struct wsman_call *call = c->queue_head;
    c->queue_head = call->next;
    if (!c->queue_head) c->queue_tail = NULL;
    call->next = NULL;
    call->queued = false;
    c->inflight++;
    start_exchange(call);
  }
}

static void unqueue(struct cira_conn *c, struct wsman_call *call) {
  struct wsman_call *prev = NULL;
  for (struct wsman_call *q = c->queue_head; q; prev = q, q = q->next) {
    if (q != call) continue;
    if (prev) prev->next = q->next;
    else c->queue_head = q->next;
    if (c->queue_tail == q) c->queue_tail = prev;
    break;
  }
  call->next = NULL;
  call->queued = false;
}

static void finish(struct wsman_call *call, enum wsman_error error) {
  if (call->finished) return;
  struct cira_conn *c = call->conn;
  call->finished = true;
  call->error = error;
  dmt_timer_stop(c->srv->loop, &call->timer);
  if (call->queued) {
    unqueue(c, call); /* never started: it holds no exchange slot */
  } else {
    if (call->ch) {
      call->ch->call = NULL;
      channel_close(c, call->ch);
      call->ch = NULL;
    }
    if (c->inflight) c->inflight--;
  }
  start_next_queued(c);
  call->done(call, call->ud);
}

static void on_deadline(struct dmt_loop *loop, struct dmt_timer *t) { finish(t->ud, WSMAN_TIMEOUT); }

struct wsman_call *wsman_start(struct cira_conn *c, struct dmt_buf *envelope, const char *message_id,
                               uint64_t deadline_ms, wsman_done_fn done, void *ud) {
  struct wsman_call *call = calloc(1, sizeof *call);
  if (!call) return NULL;
  conn_ref(c);
  call->conn = c;
  call->request = *envelope; /* takes ownership */
  dmt_buf_init(envelope, 0);
  snprintf(call->message_id, sizeof call->message_id, "%s", message_id);
  call->deadline_ms = deadline_ms;
  call->done = done;
  call->ud = ud;
  msgpack_unpacked_init(&call->tree);
  dmt_timer_init(&call->timer, on_deadline, call);
  uint64_t now = dmt_wall_ms();
  dmt_timer_start(c->srv->loop, &call->timer, deadline_ms > now ? deadline_ms - now : 0);
  call->queued = true;
  if (c->queue_tail) c->queue_tail->next = call;
  else c->queue_head = call;
  c->queue_tail = call;
  if (c->state != CONN_ACTIVE) finish(call, WSMAN_CLOSED);
  else start_next_queued(c);
  return call;
}

void wsman_on_response(struct wsman_call *call, struct dmt_http_parser *http) {
  struct cira_conn *c = call->conn;
  call->http_status = http->status;
  if (http->status == 401) {
    const char *www = dmt_http_header(http, "WWW-Authenticate");
    struct dmt_digest_challenge ch;
    if (!www || dmt_digest_parse_challenge(www, &ch) != 0 || ++call->attempts > MAX_401_RETRIES) {
      finish(call, WSMAN_AUTH);
      return;
    }
    if (!c->dev->challenge && !(c->dev->challenge = malloc(sizeof ch))) {
      finish(call, WSMAN_AUTH);
      return;
    }
    *c->dev->challenge = ch;
    c->dev->nc = 0;
    /* AMT closes the exchange after a 401: retry on a fresh channel. */
    call->ch->call = NULL;
    channel_close(c, call->ch);
    call->ch = NULL;
    start_exchange(call);
    return;
  }
  char err[256];
  if (dmt_wsman_parse_response((const char *)dmt_buf_ptr(&http->body), dmt_buf_size(&http->body), &call->resp, err,
                               sizeof err) != 0) {
    DMT_WARN(&c->srv->log, "wsman_bad_response", "guid=%s status=%d error=\"%s\"", c->guid, http->status, err);
    finish(call, WSMAN_BAD_RESPONSE);
    return;
  }
  if (call->resp.relates_to[0] && strcmp(call->resp.relates_to, call->message_id) != 0) {
    char q[160];
    DMT_WARN(&c->srv->log, "wsman_relates_to_mismatch", "guid=%s want=%s got=%s", c->guid, call->message_id,
             dmt_log_kv_quote(call->resp.relates_to, q, sizeof q));
    finish(call, WSMAN_BAD_RESPONSE);
    return;
  }
  size_t off = 0;
  call->have_tree = msgpack_unpack_next(&call->tree, call->resp.tree.data, call->resp.tree.size, &off) ==
                    MSGPACK_UNPACK_SUCCESS;
  finish(call, call->resp.is_fault ? WSMAN_FAULT : WSMAN_OK);
}

void wsman_on_channel_gone(struct wsman_call *call, enum wsman_error why) {
  call->ch = NULL;
  finish(call, why);
}

void wsman_abort_all(struct cira_conn *c) {
  while (c->queue_head) finish(c->queue_head, WSMAN_CLOSED);
}

const msgpack_object *wsman_tree(const struct wsman_call *call) { return call->have_tree ? &call->tree.data : NULL; }

void wsman_free(struct wsman_call *call) {
  if (!call) return;
  struct cira_conn *c = call->conn;
  dmt_timer_stop(c->srv->loop, &call->timer);
  dmt_buf_free(&call->request);
  dmt_wsman_response_free(&call->resp);
  msgpack_unpacked_destroy(&call->tree);
  free(call);
  conn_unref(c);
}
