/*
 * The RPC WebSocket server on libwebsockets (rps-activation.md §1.1): any
 * path, no subprotocol, no authentication (as DMT; TLS when a certificate is
 * configured), one JSON object per text frame. A binary frame or a text
 * message over 100 KiB closes the socket without a reply, as DMT does.
 * Every connection and every job lives on lws's one service thread; output
 * is a per-connection queue written from LWS_CALLBACK_SERVER_WRITEABLE.
 * The same port answers GET /healthz and /readyz for probes; any other plain
 * HTTP request gets 400.
 *
 * Wake-ups from other threads (database, signing pool, MQTT) arrive through
 * the dmt_workq whose wake function is lws_cancel_service; the queue is
 * drained in LWS_CALLBACK_EVENT_WAIT_CANCELLED. Timers are lws "sul"s.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dmt/events.h"
#include "rps.h"

struct out_msg {
  struct out_msg *next;
  size_t len;
  unsigned char buf[]; /* LWS_PRE bytes of headroom, then the text */
};

struct rps_conn {
  struct rps *srv;
  struct lws *wsi;
  char client_id[37];
  char peer[64];
  struct dmt_buf rx;
  struct out_msg *head, *tail;
  struct rps_job *job;
  lws_sorted_usec_list_t idle;
  struct rps_conn *prev, *next; /* every open connection (shutdown) */
};

static struct rps_conn *open_conns;

static const struct dmt_log *lws_logger;

static void lws_log_emit(int level, const char *line) {
  char q[512];
  size_t n = strlen(line);
  char copy[512];
  snprintf(copy, sizeof copy, "%.*s", (int)(n && line[n - 1] == '\n' ? n - 1 : n), line);
  if (lws_logger) dmt_log_write(lws_logger, level == LLL_ERR ? DMT_LOG_ERROR : DMT_LOG_WARN, "lws", "msg=%s",
                                dmt_log_kv_quote(copy, q, sizeof q));
}

uint64_t rps_now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

void rps_timer_start(struct rps *s, lws_sorted_usec_list_t *sul, rps_timer_fn fn, uint64_t ms) {
  lws_sul_schedule(s->lws, 0, sul, fn, (lws_usec_t)ms * LWS_US_PER_MS);
}

void rps_timer_stop(lws_sorted_usec_list_t *sul) { lws_sul_cancel(sul); }

const char *conn_client_id(const struct rps_conn *c) { return c->client_id; }

struct rps *conn_server(const struct rps_conn *c) { return c->srv; }

static void idle_expired(lws_sorted_usec_list_t *sul) {
  struct rps_conn *c = lws_container_of(sul, struct rps_conn, idle);
  if (c->wsi && !c->job) {
    DMT_INFO(&c->srv->log, "rpc_idle_close", "client=%s peer=%s", c->client_id, c->peer);
    lws_set_timeout(c->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
  }
}

void conn_send_text(struct rps_conn *c, char *json) {
  if (!json) return;
  if (!c || !c->wsi) {
    free(json);
    return;
  }
  size_t len = strlen(json);
  struct out_msg *m = malloc(sizeof *m + LWS_PRE + len);
  if (!m) {
    free(json);
    return;
  }
  m->next = NULL;
  m->len = len;
  memcpy(m->buf + LWS_PRE, json, len);
  free(json);
  if (c->tail) c->tail->next = m;
  else c->head = m;
  c->tail = m;
  lws_callback_on_writable(c->wsi);
}

void conn_job_ended(struct rps_conn *c, struct rps_job *j) {
  if (!c || c->job != j) return;
  c->job = NULL;
  if (c->wsi) rps_timer_start(c->srv, &c->idle, idle_expired, c->srv->set.idle_timeout_ms);
}

static void conn_free(struct rps_conn *c) {
  rps_timer_stop(&c->idle);
  while (c->head) {
    struct out_msg *m = c->head;
    c->head = m->next;
    free(m);
  }
  dmt_buf_free(&c->rx);
  free(c);
}

static int http_request(struct lws *wsi, struct rps *s, const char *uri) {
  unsigned code = 400;
  const char *body = "this port speaks the RPC WebSocket protocol";
  char detail[128];
  if (uri && !strcmp(uri, "/healthz")) {
    code = 200;
    body = "ok";
  } else if (uri && !strcmp(uri, "/readyz")) {
    bool mqtt = dmt_mqtt_is_connected(s->mqtt), db = dmt_db_connected(s->db);
    snprintf(detail, sizeof detail, "mqtt=%s db=%s jobs=%zu", mqtt ? "up" : "down", db ? "up" : "down", s->njobs);
    code = mqtt && db ? 200 : 503;
    body = detail;
  }
  if (lws_return_http_status(wsi, code, body)) return -1;
  return lws_http_transaction_completed(wsi) ? -1 : 0;
}

static int callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in, size_t len) {
  struct rps *s = lws_context_user(lws_get_context(wsi));
  struct rps_conn **pc = user, *c = pc ? *pc : NULL;
  switch (reason) {
    case LWS_CALLBACK_EVENT_WAIT_CANCELLED:
      if (s) dmt_workq_run(&s->q);
      return 0;
    case LWS_CALLBACK_HTTP:
      return http_request(wsi, s, in);
    case LWS_CALLBACK_ESTABLISHED: {
      if (s->stopping || s->nconns >= s->set.max_connections) return -1;
      c = calloc(1, sizeof *c);
      if (!c) return -1;
      c->srv = s;
      c->wsi = wsi;
      dmt_uuid4(c->client_id);
      lws_get_peer_simple(wsi, c->peer, sizeof c->peer);
      dmt_buf_init(&c->rx, RPS_MAX_MESSAGE + 1);
      *pc = c;
      c->next = open_conns;
      if (open_conns) open_conns->prev = c;
      open_conns = c;
      s->nconns++;
      s->count.connections++;
      rps_timer_start(s, &c->idle, idle_expired, s->set.idle_timeout_ms);
      DMT_DEBUG(&s->log, "rpc_connected", "client=%s peer=%s", c->client_id, c->peer);
      return 0;
    }
    case LWS_CALLBACK_RECEIVE: {
      if (!c) return -1;
      if (lws_frame_is_binary(wsi)) {
        DMT_WARN(&s->log, "rpc_binary_frame", "client=%s peer=%s effect=closed", c->client_id, c->peer);
        s->count.rejected_messages++;
        return -1;
      }
      if (dmt_buf_size(&c->rx) + len > RPS_MAX_MESSAGE || dmt_buf_append(&c->rx, in, len) != 0) {
        DMT_WARN(&s->log, "rpc_message_too_large", "client=%s peer=%s limit=%u effect=closed", c->client_id, c->peer,
                 RPS_MAX_MESSAGE);
        s->count.rejected_messages++;
        return -1;
      }
      if (!lws_is_final_fragment(wsi) || lws_remaining_packet_payload(wsi) > 0) return 0;
      size_t n = dmt_buf_size(&c->rx);
      char *text = malloc(n + 1);
      if (!text) return -1;
      memcpy(text, dmt_buf_ptr(&c->rx), n);
      text[n] = '\0';
      dmt_buf_reset(&c->rx);
      rps_timer_stop(&c->idle);
      job_on_message(c, &c->job, text, n);
      memset(text, 0, n); /* it may hold a password */
      free(text);
      if (!c->job && c->wsi) rps_timer_start(s, &c->idle, idle_expired, s->set.idle_timeout_ms);
      return 0;
    }
    case LWS_CALLBACK_SERVER_WRITEABLE: {
      if (!c || !c->head) return 0;
      struct out_msg *m = c->head;
      int w = lws_write(wsi, m->buf + LWS_PRE, m->len, LWS_WRITE_TEXT);
      c->head = m->next;
      if (!c->head) c->tail = NULL;
      free(m);
      if (w < 0) return -1;
      if (c->head) lws_callback_on_writable(wsi);
      return 0;
    }
    case LWS_CALLBACK_CLOSED: {
      if (!c) return 0;
      *pc = NULL;
      c->wsi = NULL;
      if (c->prev) c->prev->next = c->next;
      else open_conns = c->next;
      if (c->next) c->next->prev = c->prev;
      s->nconns--;
      DMT_DEBUG(&s->log, "rpc_closed", "client=%s peer=%s job=%d", c->client_id, c->peer, c->job != NULL);
      struct rps_job *j = c->job;
      c->job = NULL;
      if (j) job_on_disconnect(j);
      conn_free(c);
      return 0;
    }
    default:
      return 0;
  }
}

static const struct lws_protocols protocols[] = {
    {"rpc", callback, sizeof(struct rps_conn *), 16384, 0, NULL, 0},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

int ws_server_start(struct rps *s, char *err, size_t errlen) {
  lws_logger = &s->log;
  lws_set_log_level(LLL_ERR | LLL_WARN, lws_log_emit);
  struct lws_context_creation_info info;
  memset(&info, 0, sizeof info);
  info.port = (int)dmt_config_int(s->cfg, "rps.port", 8080);
  const char *iface = dmt_config_str(s->cfg, "rps.listen_address");
  info.iface = iface && *iface && strcmp(iface, "0.0.0.0") ? iface : NULL;
  info.protocols = protocols;
  info.user = s;
  info.count_threads = 1;
  info.timeout_secs = 30;
  info.options = LWS_SERVER_OPTION_DISABLE_IPV6;
  const char *cert = dmt_config_str(s->cfg, "rps.tls_cert_file"), *key = dmt_config_str(s->cfg, "rps.tls_key_file");
  if (cert && *cert) {
    info.options |= LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
    info.ssl_cert_filepath = cert;
    info.ssl_private_key_filepath = key;
  }
  s->lws = lws_create_context(&info);
  if (!s->lws) {
    snprintf(err, errlen, "could not listen on port %d (in use, or bad TLS files)", info.port);
    return -1;
  }
  return 0;
}

void ws_server_close_all(struct rps *s) {
  for (struct rps_conn *c = open_conns; c; c = c->next)
    if (c->wsi) lws_set_timeout(c->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
}

void ws_server_stop(struct rps *s) {
  if (s->lws) lws_context_destroy(s->lws);
  s->lws = NULL;
}
