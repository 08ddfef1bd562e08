/*
 * The HTTP front end on libwebsockets 4.1: one context, one vhost per
 * listener (DMT's MPS port 3000 and RPS port 8081; both serve every route),
 * HTTP/1.1 and, on TLS listeners, h2 by ALPN. A request becomes a br_txn:
 * headers we need are copied at LWS_CALLBACK_HTTP, the body is collected
 * (bounded: 413 beyond bridge.max_body_bytes) until BODY_COMPLETION, then the
 * router takes over. Responses are always deferred: br_send() asks for
 * LWS_CALLBACK_HTTP_WRITEABLE and the body goes out in 16 KiB slices, the
 * last one flagged LWS_WRITE_HTTP_FINAL.
 *
 * Cross-thread work (MQTT callbacks, DB completions) arrives on s->q, whose
 * wake function is lws_cancel_service(); it is drained in
 * LWS_CALLBACK_EVENT_WAIT_CANCELLED. Every transaction has a deadline (a
 * lws_sorted_usec_list timer): past it the client gets a 503 and pending work
 * is abandoned, so a request never hangs.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bridge.h"

#define SLICE 16384

struct pss {
  struct br_txn *t;
  bool close_after;
};

static struct br_server *server_of(struct lws *wsi) { return lws_context_user(lws_get_context(wsi)); }

static char *hdr_dup(struct lws *wsi, enum lws_token_indexes h) {
  int n = lws_hdr_total_length(wsi, h);
  if (n <= 0) return NULL;
  char *b = malloc((size_t)n + 1);
  if (b && lws_hdr_copy(wsi, b, n + 1, h) < 0) {
    free(b);
    return NULL;
  }
  return b;
}

static char *custom_dup(struct lws *wsi, const char *name) {
  int nl = (int)strlen(name);
  int n = lws_hdr_custom_length(wsi, name, nl);
  if (n < 0) return NULL;
  char *b = malloc((size_t)n + 1);
  if (b && lws_hdr_custom_copy(wsi, b, n + 1, name, nl) < 0) {
    free(b);
    return NULL;
  }
  return b;
}

static unsigned method_of(int m) {
  switch (m) {
    case LWSHUMETH_GET: return BR_M_GET;
    case LWSHUMETH_POST: return BR_M_POST;
    case LWSHUMETH_OPTIONS: return BR_M_OPTIONS;
    case LWSHUMETH_PUT: return BR_M_PUT;
    case LWSHUMETH_PATCH: return BR_M_PATCH;
    case LWSHUMETH_DELETE: return BR_M_DELETE;
    case LWSHUMETH_HEAD: return BR_M_HEAD;
    default: return BR_M_OTHER;
  }
}

static void detach(struct pss *pss) {
  struct br_txn *t = pss->t;
  if (!t) return;
  pss->t = NULL;
  t->wsi = NULL;
  atomic_store(&t->abandoned, true);
  if (!t->responded) br_amt_cancel(t);
  br_txn_unref(t);
}

void br_http_kick(struct br_txn *t) {
  if (t->wsi) lws_callback_on_writable(t->wsi);
}

static void txn_timeout(lws_sorted_usec_list_t *sul) {
  struct br_txn *t = lws_container_of(sul, struct br_txn, timeout_sul);
  t->timer_armed = false;
  if (t->responded) return;
  t->srv->stats.timeouts++;
  br_amt_cancel(t);
  if (t->on_timeout) t->on_timeout(t);
  else br_out_message(&t->out, 503, "the request could not be completed in time");
  br_send(t);
}

void br_txn_arm_timeout(struct br_txn *t, int ms) {
  if (!t->srv->lws || ms <= 0) return;
  t->timer_armed = true;
  lws_sul_schedule(t->srv->lws, 0, &t->timeout_sul, txn_timeout, (lws_usec_t)ms * 1000);
}

static int begin_request(struct lws *wsi, struct pss *pss, const char *path) {
  struct br_server *s = server_of(wsi);
  detach(pss); /* a keep-alive connection's previous transaction */
  struct br_txn *t = br_txn_new(s);
  if (!t) return -1;
  pss->t = t;
  pss->close_after = false;
  t->wsi = wsi;
  char *uri = NULL;
  int ulen = 0;
  t->req.method = method_of(lws_http_get_uri_and_method(wsi, &uri, &ulen));
  t->req.path = strdup(path && *path ? path : "/");
  t->req.authorization = hdr_dup(wsi, WSI_TOKEN_HTTP_AUTHORIZATION);
  t->req.content_type = hdr_dup(wsi, WSI_TOKEN_HTTP_CONTENT_TYPE);
  t->req.if_match = hdr_dup(wsi, WSI_TOKEN_HTTP_IF_MATCH);
  t->req.if_none_match = hdr_dup(wsi, WSI_TOKEN_HTTP_IF_NONE_MATCH);
  t->req.cache_control = hdr_dup(wsi, WSI_TOKEN_HTTP_CACHE_CONTROL);
  t->req.project_id = custom_dup(wsi, "activeprojectid:");
  if (s->auth.tenant_header) {
    /* standalone deployments may carry the tenant in a header of their choice: keep it with project_id */
    if (!t->req.project_id) {
      char name[80];
      snprintf(name, sizeof name, "%s:", s->auth.tenant_header);
      for (char *p = name; *p; p++)
        if (*p >= 'A' && *p <= 'Z') *p = (char)(*p - 'A' + 'a');
      t->req.project_id = custom_dup(wsi, name);
    }
  }
  bool bad_query = false;
  char frag[2048];
  for (int i = 0; i < BR_MAX_QUERY + 1; i++) {
    int n = lws_hdr_copy_fragment(wsi, frag, sizeof frag, WSI_TOKEN_HTTP_URI_ARGS, i);
    if (n < 0) break;
    if (br_query_add_fragment(&t->req, frag) != 0) bad_query = true;
  }
  if (bad_query) {
    br_out_error(&t->out, 400, "Incorrect URI or Bad Request", NULL);
    br_send(t);
    return 0;
  }
  char cl[32] = "";
  long long clen = 0;
  if (lws_hdr_copy(wsi, cl, sizeof cl, WSI_TOKEN_HTTP_CONTENT_LENGTH) > 0) clen = atoll(cl);
  if (clen > 0 && (size_t)clen > s->max_body) {
    t->req.body_too_large = true;
    pss->close_after = true; /* the unread body must not be taken for the next request */
    br_dispatch(t);
    return 0;
  }
  if (clen > 0) {
    lws_set_timeout(wsi, PENDING_TIMEOUT_HTTP_CONTENT, s->client_timeout_s); /* re-armed by every body chunk */
    return 0; /* LWS_CALLBACK_HTTP_BODY* follow */
  }
  br_dispatch(t);
  return 0;
}

static int write_response(struct lws *wsi, struct pss *pss) {
  struct br_txn *t = pss->t;
  if (!t || !t->responded || t->finished) return 0;
  struct br_out *o = &t->out;
  size_t blen = t->is_head ? 0 : o->len;
  if (!t->sent_headers) {
    uint8_t buf[LWS_PRE + 1024], *start = buf + LWS_PRE, *p = start, *end = buf + sizeof buf - 1;
    const char *ctype = o->ctype ? o->ctype : "application/json; charset=utf-8";
    if (lws_add_http_common_headers(wsi, (unsigned)o->status, ctype, o->len, &p, end)) return -1;
    if (t->etag_hdr[0] &&
        lws_add_http_header_by_name(wsi, (const uint8_t *)"etag:", (const uint8_t *)t->etag_hdr,
                                    (int)strlen(t->etag_hdr), &p, end))
      return -1;
    static const char cors[] = "*";
    if (lws_add_http_header_by_name(wsi, (const uint8_t *)"access-control-allow-origin:", (const uint8_t *)cors,
                                    1, &p, end))
      return -1;
    if (t->req.method == BR_M_OPTIONS) {
      static const char methods[] = "GET,HEAD,PUT,PATCH,POST,DELETE";
      static const char hdrs[] = "Authorization,Content-Type,ActiveProjectID,If-Match,If-None-Match";
      if (lws_add_http_header_by_name(wsi, (const uint8_t *)"access-control-allow-methods:",
                                      (const uint8_t *)methods, (int)strlen(methods), &p, end) ||
          lws_add_http_header_by_name(wsi, (const uint8_t *)"access-control-allow-headers:",
                                      (const uint8_t *)hdrs, (int)strlen(hdrs), &p, end))
        return -1;
    }
    if (pss->close_after) {
      static const char close[] = "close";
      if (lws_add_http_header_by_name(wsi, (const uint8_t *)"connection:", (const uint8_t *)close, 5, &p, end))
        return -1;
    }
    if (lws_finalize_write_http_header(wsi, start, &p, end)) return -1;
    t->sent_headers = true;
    lws_callback_on_writable(wsi);
    return 0;
  }
  static uint8_t slice[LWS_PRE + SLICE];
  size_t left = blen - t->sent, n = left > SLICE ? SLICE : left;
  bool final = t->sent + n >= blen;
  if (n) memcpy(slice + LWS_PRE, o->body + t->sent, n);
  if (lws_write(wsi, slice + LWS_PRE, n, final ? LWS_WRITE_HTTP_FINAL : LWS_WRITE_HTTP) < (int)n) return -1;
  t->sent += n;
  if (!final) {
    lws_callback_on_writable(wsi);
    return 0;
  }
  t->finished = true;
  bool close_now = pss->close_after;
  detach(pss);
  if (close_now) return -1;
  return lws_http_transaction_completed(wsi) ? -1 : 0;
}

static int callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in, size_t len) {
  struct pss *pss = user;
  switch (reason) {
    case LWS_CALLBACK_EVENT_WAIT_CANCELLED: {
      struct br_server *s = server_of(wsi);
      if (s) dmt_workq_run(&s->q);
      return 0;
    }
    case LWS_CALLBACK_HTTP:
      return begin_request(wsi, pss, (const char *)in);
    case LWS_CALLBACK_HTTP_BODY: {
      struct br_txn *t = pss->t;
      if (!t || t->responded) return 0;
      struct br_server *s = t->srv;
      lws_set_timeout(wsi, PENDING_TIMEOUT_HTTP_CONTENT, s->client_timeout_s); /* idle, not total */
      if (t->req.body_too_large || t->req.body_len + len > s->max_body) {
        t->req.body_too_large = true;
        return 0;
      }
      char *nb = realloc(t->req.body, t->req.body_len + len + 1);
      if (!nb) return -1;
      memcpy(nb + t->req.body_len, in, len);
      t->req.body = nb;
      t->req.body_len += len;
      nb[t->req.body_len] = '\0';
      return 0;
    }
    case LWS_CALLBACK_HTTP_BODY_COMPLETION: {
      struct br_txn *t = pss->t;
      lws_set_timeout(wsi, NO_PENDING_TIMEOUT, 0);
      if (t && !t->responded) br_dispatch(t);
      return 0;
    }
    case LWS_CALLBACK_HTTP_WRITEABLE:
      return write_response(wsi, pss);
    case LWS_CALLBACK_CLOSED_HTTP:
    case LWS_CALLBACK_HTTP_DROP_PROTOCOL:
      if (pss) detach(pss);
      return 0;
    default:
      return lws_callback_http_dummy(wsi, reason, user, in, len);
  }
}

static const struct lws_protocols protocols[] = {
    {"dmt-bridge-http", callback, sizeof(struct pss), 0, 0, NULL, 0},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

static const struct dmt_log *lws_logger;

static void lws_emit(int level, const char *line) {
  char q[512];
  size_t n = strlen(line);
  char tmp[512];
  snprintf(tmp, sizeof tmp, "%.*s", (int)(n && line[n - 1] == '\n' ? n - 1 : n), line);
  DMT_WARN(lws_logger, "lws", "level=%d line=%s", level, dmt_log_kv_quote(tmp, q, sizeof q));
}

static void wake(void *arg) {
  struct br_server *s = arg;
  if (s->lws) lws_cancel_service(s->lws);
}

static int add_vhost(struct br_server *s, const char *name, const char *iface, int port, char *err, size_t errlen) {
  struct lws_context_creation_info v = {0};
  v.vhost_name = name;
  v.port = port;
  v.iface = iface && *iface && strcmp(iface, "0.0.0.0") ? iface : NULL;
  v.protocols = protocols;
  v.options = LWS_SERVER_OPTION_H2_JUST_FIX_WINDOW_UPDATE_OVERFLOW | LWS_SERVER_OPTION_DISABLE_IPV6;
  v.keepalive_timeout = (int)dmt_config_int(s->cfg, "bridge.keepalive_s", 30);
  /* a client that connects and dawdles over its headers (or TLS handshake) is dropped after this */
  v.timeout_secs = (unsigned)dmt_config_int(s->cfg, "bridge.client_timeout_s", 10);
  v.timeout_secs_ah_idle = v.timeout_secs;
  const char *cert = dmt_config_str(s->cfg, "bridge.tls_cert_file"), *key = dmt_config_str(s->cfg, "bridge.tls_key_file");
  if (cert && key) {
    v.ssl_cert_filepath = cert;
    v.ssl_private_key_filepath = key;
    v.alpn = "h2,http/1.1";
    v.options |= LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
  }
  if (!lws_create_vhost(s->lws, &v)) {
    snprintf(err, errlen, "cannot listen on %s:%d", iface ? iface : "*", port);
    return -1;
  }
  return 0;
}

int br_http_start(struct br_server *s, char *err, size_t errlen) {
  lws_logger = &s->log;
  lws_set_log_level(LLL_ERR, lws_emit);
  dmt_workq_init(&s->q, wake, s);
  struct lws_context_creation_info info = {0};
  info.options = LWS_SERVER_OPTION_EXPLICIT_VHOSTS | LWS_SERVER_OPTION_H2_JUST_FIX_WINDOW_UPDATE_OVERFLOW;
  if (dmt_config_str(s->cfg, "bridge.tls_cert_file")) info.options |= LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
  info.user = s;
  info.max_http_header_data = (unsigned short)dmt_config_int(s->cfg, "bridge.max_header_bytes", 8192);
  info.max_http_header_pool = 256;
  info.timeout_secs = (unsigned)dmt_config_int(s->cfg, "bridge.client_timeout_s", 10);
  s->client_timeout_s = (int)info.timeout_secs;
  info.pt_serv_buf_size = 32768;
  s->lws = lws_create_context(&info);
  if (!s->lws) {
    snprintf(err, errlen, "lws_create_context failed");
    return -1;
  }
  const char *addr = dmt_config_str(s->cfg, "bridge.listen_address");
  int mps = (int)dmt_config_int(s->cfg, "bridge.mps_port", 3000);
  int rps = (int)dmt_config_int(s->cfg, "bridge.rps_port", 8081);
  if (add_vhost(s, "mps", addr, mps, err, errlen) != 0) return -1;
  if (rps > 0 && rps != mps && add_vhost(s, "rps", addr, rps, err, errlen) != 0) return -1;
  return 0;
}

void br_http_stop(struct br_server *s) {
  if (s->lws) lws_context_destroy(s->lws);
  s->lws = NULL;
}
