/*
 * Device commands over MQTT v5 request/response (schemas/topics.md): the
 * REST side of every /api/v1/amt/... route and of the device disconnect and
 * refresh routes.
 *
 * "Not connected" rule (DMT's ciraMiddleware 404): a device is addressed only
 * if dmt.devices has it in the caller's tenant with connection_status true
 * (the terminator holding it keeps that column, as MPS does); otherwise DMT's
 * 404 body comes back at once. A connected device gets the command on
 * dmt/v1/<tenant>/devices/<guid>/cmd/<verb> with a Response Topic in our own
 * inbox, random Correlation Data and a Message Expiry equal to the deadline.
 * The holder answers with a command_reply ("offline"/"unknown_device" also
 * become DMT's 404). If no reply arrives by the deadline plus a grace period,
 * no terminator holds the device (a stale row after a crash): DMT's 404 again,
 * never a hang.
 */
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bridge.h"
#include "dmt/evloop.h"
#include "dmt/mptree.h"
#include "dmt/payloads.h"
#include "dmt/pg.h"

struct br_cmd {
  struct br_txn *t;
  char corr[40];
  char guid[40];
  char verb[48];
  char tenant_topic[BR_TENANT_MAX + 1];
  uint8_t *args;
  size_t args_len;
  br_reply_fn on_reply;
  bool published;
  lws_sorted_usec_list_t sul;
};

void br_amt_init(struct br_server *s) {
  struct br_amt *a = &s->amt;
  snprintf(a->client_id, sizeof a->client_id, "%s", s->instance);
  for (char *p = a->client_id; *p; p++) /* the id is a topic level: keep it plain */
    if (*p == '/' || *p == '+' || *p == '#') *p = '_';
  snprintf(a->reply_filter, sizeof a->reply_filter, "dmt/v1/+/replies/%s/#", a->client_id);
  dmt_strmap_init(&a->pending);
  RAND_bytes(a->salt, sizeof a->salt);
  a->timeout_ms = (int)dmt_config_int(s->cfg, "bridge.command_timeout_ms", 60000);
  a->grace_ms = (int)dmt_config_int(s->cfg, "bridge.command_grace_ms", 2000);
}

static void cmd_free(struct br_cmd *c) {
  free(c->args);
  free(c);
}

/* Detaches the command from its transaction and drops its reference. */
static void cmd_finish(struct br_server *s, struct br_cmd *c) {
  if (c->published) {
    dmt_strmap_del(&s->amt.pending, c->corr);
    lws_sul_cancel(&c->sul);
  }
  struct br_txn *t = c->t;
  t->cmd = NULL;
  bool held = c->published;
  cmd_free(c);
  if (held) br_txn_unref(t);
}

void br_amt_cancel(struct br_txn *t) {
  if (t->cmd) cmd_finish(t->srv, t->cmd);
}

static void free_pending(const char *key, void *value, void *ud) {
  struct br_cmd *c = value;
  struct br_server *s = ud;
  lws_sul_cancel(&c->sul);
  c->t->cmd = NULL;
  struct br_txn *t = c->t;
  cmd_free(c);
  if (!t->responded) {
    br_out_amt_error(&t->out, 503, "the bridge is shutting down");
    br_send(t);
  }
  br_txn_unref(t);
  (void)s;
}

void br_amt_free(struct br_server *s) {
  dmt_strmap_foreach(&s->amt.pending, free_pending, s);
  dmt_strmap_free(&s->amt.pending);
}

void br_amt_default_reply(struct br_txn *t, int code, const char *error, const char *message,
                          const json_t *result) {
  struct br_cmd *c = t->cmd;
  const char *guid = c ? c->guid : br_param(t, 0);
  if (!error) {
    br_out_json(&t->out, 200, result ? json_deep_copy(result) : json_object());
  } else if (!strcmp(error, "offline") || !strcmp(error, "unknown_device")) {
    br_out_not_connected(&t->out, guid);
  } else {
    int status = code >= 400 && code <= 599 ? code : 500;
    br_out_amt_error(&t->out, status, message && *message ? message : error);
  }
  br_send(t);
}

static void deliver(struct br_txn *t, int code, const char *error, const char *message, const json_t *result) {
  struct br_cmd *c = t->cmd;
  br_reply_fn fn = c && c->on_reply ? c->on_reply : br_amt_default_reply;
  if (!t->responded) fn(t, code, error, message, result);
}

static void no_reply(lws_sorted_usec_list_t *sul) {
  struct br_cmd *c = lws_container_of(sul, struct br_cmd, sul);
  struct br_txn *t = c->t;
  struct br_server *s = t->srv;
  s->stats.command_timeouts++;
  DMT_WARN(&s->log, "command_unanswered", "guid=%s verb=%s effect=\"answered as not connected\"", c->guid, c->verb);
  if (!t->responded) {
    br_out_not_connected(&t->out, c->guid);
    br_send(t);
  }
  dmt_strmap_del(&s->amt.pending, c->corr);
  c->published = false; /* the timer already fired: nothing to cancel */
  t->cmd = NULL;
  cmd_free(c);
  br_txn_unref(t);
}

static void publish(struct br_txn *t) {
  struct br_server *s = t->srv;
  struct br_cmd *c = t->cmd;
  if (!c) return;
  struct br_amt *a = &s->amt;
  a->seq++;
  snprintf(c->corr, sizeof c->corr, "%02x%02x%02x%02x%02x%02x%02x%02x%016llx", a->salt[0], a->salt[1], a->salt[2],
           a->salt[3], a->salt[4], a->salt[5], a->salt[6], a->salt[7], (unsigned long long)a->seq);
  char topic[256], reply_to[256];
  snprintf(topic, sizeof topic, "dmt/v1/%s/devices/%s/cmd/%s", c->tenant_topic, c->guid, c->verb);
  snprintf(reply_to, sizeof reply_to, "dmt/v1/%s/replies/%s", c->tenant_topic, a->client_id);
  struct dmt_command_request req = {.verb = c->verb, .deadline_ms = (int64_t)(dmt_wall_ms() + (uint64_t)a->timeout_ms),
                                    .present = DMT_COMMAND_REQUEST_DEADLINE_MS};
  if (c->args && c->args_len) {
    req.args = c->args;
    req.args_len = c->args_len;
  }
  msgpack_sbuffer sb;
  msgpack_sbuffer_init(&sb);
  char err[256];
  struct dmt_mqtt_user_prop who = {"dmt-on-behalf-of", t->who.subject};
  struct dmt_mqtt_publish p = {.topic = topic, .qos = 1, .response_topic = reply_to, .correlation = c->corr,
                               .correlation_len = strlen(c->corr),
                               .expiry_s = (uint32_t)((a->timeout_ms + 999) / 1000), .user = &who, .nuser = 1};
  if (dmt_command_request_encode(&req, &sb, err, sizeof err) != 0) {
    msgpack_sbuffer_destroy(&sb);
    br_out_amt_error(&t->out, 500, err);
    t->cmd = NULL;
    cmd_free(c);
    br_send(t);
    return;
  }
  p.payload = sb.data;
  p.len = sb.size;
  int rc = dmt_mqtt_publish(s->mqtt, &p);
  msgpack_sbuffer_destroy(&sb);
  if (rc != 0) {
    br_out_amt_error(&t->out, 503, "the message broker is unavailable");
    t->cmd = NULL;
    cmd_free(c);
    br_send(t);
    return;
  }
  s->stats.commands++;
  c->published = true;
  br_txn_ref(t);
  dmt_strmap_put(&a->pending, c->corr, c, NULL);
  int wait = a->timeout_ms + a->grace_ms;
  lws_sul_schedule(s->lws, 0, &c->sul, no_reply, (lws_usec_t)wait * 1000);
  br_txn_arm_timeout(t, wait + 1000);
}

static int check_connected(PGconn *conn, struct br_txn *t, struct br_out *o) {
  struct br_cmd *c = t->cmd;
  const char *p[] = {c->guid, t->who.tenant};
  PGresult *r = br_sql(conn, o, "SELECT connection_status FROM dmt.devices WHERE guid = $1::uuid AND tenant_id = $2",
                       2, p);
  if (!r) {
    br_out_amt_error(o, 500, "database error");
    return DMT_PG_OK;
  }
  bool connected = PQntuples(r) > 0 && PQgetvalue(r, 0, 0)[0] == 't';
  PQclear(r);
  if (!connected) br_out_not_connected(o, c->guid);
  return DMT_PG_OK; /* status 0: connected, publish() continues on the loop */
}

void br_amt_command(struct br_txn *t, const char *guid, const char *verb, const void *args, size_t args_len,
                    br_reply_fn on_reply) {
  struct br_server *s = t->srv;
  if (!br_fmt_uuid(guid)) { /* DMT answers these as "not connected" too (the suites use guid "1") */
    br_out_not_connected(&t->out, guid);
    br_send(t);
    return;
  }
  if (!s->mqtt || !s->mqtt_up) {
    br_out_amt_error(&t->out, 503, "the message broker is unavailable");
    br_send(t);
    return;
  }
  struct br_cmd *c = calloc(1, sizeof *c);
  if (!c) {
    br_out_empty(&t->out, 500);
    br_send(t);
    return;
  }
  c->t = t;
  snprintf(c->guid, sizeof c->guid, "%s", guid);
  for (char *p = c->guid; *p; p++)
    if (*p >= 'A' && *p <= 'F') *p = (char)(*p - 'A' + 'a');
  snprintf(c->verb, sizeof c->verb, "%s", verb);
  snprintf(c->tenant_topic, sizeof c->tenant_topic, "%s", dmt_topic_tenant(t->who.tenant));
  c->on_reply = on_reply;
  if (args && args_len) {
    c->args = malloc(args_len);
    if (c->args) memcpy(c->args, args, args_len);
    c->args_len = c->args ? args_len : 0;
  }
  t->cmd = c;
  t->then = publish;
  br_db_run(t, check_connected);
}

void br_amt_on_message(struct br_server *s, const struct dmt_mqtt_msg *m) {
  if (!m->correlation || m->correlation_len == 0 || m->correlation_len >= 40) return;
  char corr[40];
  memcpy(corr, m->correlation, m->correlation_len);
  corr[m->correlation_len] = '\0';
  struct br_cmd *c = dmt_strmap_get(&s->amt.pending, corr);
  if (!c) return; /* late (already answered as not connected) or not ours */
  char expect[300];
  snprintf(expect, sizeof expect, "dmt/v1/%s/replies/%s", c->tenant_topic, s->amt.client_id);
  size_t el = strlen(expect);
  if (strncmp(m->topic, expect, el) != 0 || (m->topic[el] != '\0' && m->topic[el] != '/')) {
    DMT_WARN(&s->log, "reply_wrong_tenant", "topic=%s", m->topic); /* a reply must stay in the tenant's namespace */
    return;
  }
  struct dmt_command_reply r;
  char err[256];
  struct br_txn *t = c->t;
  if (dmt_command_reply_decode(m->payload, m->len, &r, err, sizeof err) != 0) {
    DMT_WARN(&s->log, "reply_undecodable", "error=\"%s\"", err);
    deliver(t, 500, "internal", "undecodable reply from the terminator", NULL);
    cmd_finish(s, c);
    return;
  }
  json_t *result = r.result && r.result_len ? dmt_mp_buf_to_json(r.result, r.result_len) : NULL;
  bool ok = r.status && !strcmp(r.status, "ok");
  const char *error = ok ? NULL : (r.error && *r.error ? r.error : "internal");
  deliver(t, (int)r.code, error, r.message, result);
  json_decref(result);
  dmt_command_reply_free(&r);
  cmd_finish(s, c);
}
