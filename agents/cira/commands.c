/*
 * Commands from MQTT (schemas/topics.md). While we hold a device we are
 * subscribed to dmt/v1/<tenant>/devices/<guid>/cmd/#, so a request reaches
 * whichever instance holds it with no router. A request must carry a
 * Response Topic and Correlation Data (MQTT v5 request/response); it is
 * decoded, refused when its deadline has passed (a command is never executed
 * late), de-duplicated by correlation id (a QoS 1 redelivery is executed at
 * most once and gets the cached reply), refused as busy beyond
 * cira.max_commands per device, then executed through its verb's chain of
 * WS-Man calls and answered on the Response Topic. Every request, accepted
 * or not, is an audit event with the requester (the broker-stamped
 * dmt-requester user property), tenant, verb and result. A request for a
 * device we do not hold gets no answer from us: whichever instance holds it
 * answers, and the bridge answers "offline" when nobody does.
 */
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cira.h"
#include "dmt/mptree.h"
#include "dmt/payloads.h"
#include "dmt/pg.h"

#define REPLY_CACHE_MS (10u * 60u * 1000u)
#define REPLY_CACHE_MAX 100000u

struct verb {
  const char *name;
  void (*start)(struct cmd *c);
};

static void verb_disconnect(struct cmd *c);
static void verb_refresh(struct cmd *c);

static const struct verb verbs[] = {
    {"power_state", verb_power_state},
    {"power_action", verb_power_action},
    {"boot_options", verb_boot_options},
    {"power_capabilities", verb_power_capabilities},
    {"general_settings", verb_general_settings},
    {"version", verb_version},
    {"hardware_info", verb_hardware_info},
    {"features", verb_features},
    {"audit_log", verb_audit_log},
    {"event_log", verb_event_log},
    {"deactivate", verb_deactivate},
    {"disconnect", verb_disconnect},
    {"refresh", verb_refresh},
};

static void cmd_free(struct cmd *c) {
  msgpack_unpacked_destroy(&c->args_up);
  free(c->args_buf);
  msgpack_sbuffer_destroy(&c->acc);
  for (unsigned i = 0; i < CMD_SAVED; i++) {
    msgpack_unpacked_destroy(&c->saved_up[i]);
    msgpack_sbuffer_destroy(&c->saved[i]);
  }
  if (c->conn) {
    if (c->conn->commands) c->conn->commands--;
    conn_unref(c->conn);
  }
  free(c);
}

static void publish_reply(struct cira_server *s, const char *topic, const uint8_t *corr, size_t corr_len,
                          const void *payload, size_t len) {
  if (!topic || !topic[0]) return;
  struct dmt_mqtt_publish p = {.topic = topic, .payload = payload, .len = len, .qos = 1,
                               .correlation = corr_len ? corr : NULL, .correlation_len = corr_len};
  dmt_mqtt_publish(s->mqtt, &p);
}

static int encode_reply(struct cira_server *s, int code, const char *error, const char *message, const void *result,
                        size_t len, msgpack_sbuffer *sb) {
  struct dmt_command_reply r = {.status = error ? "error" : "ok", .code = code, .error = (char *)error,
                                .message = (char *)message, .instance = s->instance,
                                .present = DMT_COMMAND_REPLY_CODE};
  if (result && len) {
    r.result = (uint8_t *)result;
    r.result_len = len;
  }
  char err[256];
  if (dmt_command_reply_encode(&r, sb, err, sizeof err) == 0) return 0;
  DMT_ERROR(&s->log, "reply_encode_failed", "error=\"%s\"", err);
  msgpack_sbuffer_clear(sb);
  struct dmt_command_reply fallback = {.status = "error", .code = 500, .error = "internal",
                                       .message = "the result could not be encoded", .instance = s->instance,
                                       .present = DMT_COMMAND_REPLY_CODE};
  return dmt_command_reply_encode(&fallback, sb, err, sizeof err);
}

/* The audit event of a command, accepted or refused. */
static void audit(struct cira_server *s, const char *tenant, const char *guid, const char *verb, const char *requester,
                  int code, const char *error, const char *message, uint64_t took_ms) {
  msgpack_sbuffer sb;
  msgpack_sbuffer_init(&sb);
  msgpack_packer pk;
  msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
  msgpack_pack_map(&pk, error ? 4 : 3);
  shape_str(&pk, "verb");
  shape_str(&pk, verb);
  shape_str(&pk, "code");
  msgpack_pack_int(&pk, code);
  shape_str(&pk, "duration_ms");
  msgpack_pack_uint64(&pk, took_ms);
  if (error) {
    shape_str(&pk, "error");
    shape_str(&pk, error);
  }
  char msg[600];
  snprintf(msg, sizeof msg, "%s: %s%s%.500s", verb, error ? error : "ok", message ? ": " : "", message ? message : "");
  event_emit(s, tenant, guid, "command", verb, error == NULL, requester, msg, sb.data, sb.size);
  msgpack_sbuffer_destroy(&sb);
  char q[300];
  DMT_INFO(&s->log, "command_done", "guid=%s verb=%s code=%d error=%s requester=%s ms=%llu", guid, verb, code,
           error ? error : "-", requester && *requester ? dmt_log_kv_quote(requester, q, sizeof q) : "-",
           (unsigned long long)took_ms);
}

static void finish(struct cmd *c, int code, const char *error, const char *message) {
  struct cira_server *s = c->srv;
  if (c->internal) {
    if (c->on_end) c->on_end(c, error);
    cmd_free(c);
    return;
  }
  msgpack_sbuffer sb;
  msgpack_sbuffer_init(&sb);
  if (encode_reply(s, code, error, message, error ? NULL : c->acc.data, error ? 0 : c->acc.size, &sb) == 0) {
    publish_reply(s, c->response_topic, c->corr, c->corr_len, sb.data, sb.size);
    cmd_cache_finish(&s->cmds, c->corr_key, sb.data, sb.size);
  }
  msgpack_sbuffer_destroy(&sb);
  if (error) s->count.commands_failed++;
  audit(s, c->tenant, c->guid, c->verb, c->requester, code, error, message, dmt_wall_ms() - c->started_ms);
  cmd_free(c);
}

void cmd_done(struct cmd *c, int code) { finish(c, code, NULL, NULL); }

void cmd_fail(struct cmd *c, int code, const char *error, const char *message) { finish(c, code, error, message); }

bool cmd_check(struct cmd *c, struct wsman_call *call) {
  char msg[600];
  switch (call->error) {
    case WSMAN_OK: return false;
    case WSMAN_TIMEOUT: cmd_fail(c, 408, "timeout", "the device did not answer before the deadline"); return true;
    case WSMAN_CLOSED: cmd_fail(c, 404, "offline", "the device's CIRA connection closed"); return true;
    case WSMAN_AUTH: cmd_fail(c, 500, "device_error", "Unable to authenticate with AMT. Exceeded Retry Attempts"); return true;
    case WSMAN_REFUSED: cmd_fail(c, 500, "device_error", "the device refused the channel"); return true;
    case WSMAN_FAULT:
      snprintf(msg, sizeof msg, "WS-Man fault %.100s: %.400s", call->resp.fault_subcode, call->resp.fault_reason);
      cmd_fail(c, 500, "device_error", msg);
      return true;
    default: cmd_fail(c, 500, "device_error", "malformed answer from the device"); return true;
  }
}

static void call_done(struct wsman_call *call, void *ud) {
  struct cmd *c = ud;
  cmd_next_fn next = c->next;
  c->next = NULL;
  next(c, call);
  wsman_free(call);
}

static uint64_t call_deadline(const struct cmd *c) {
  uint64_t cap = dmt_wall_ms() + c->srv->set.wsman_timeout_ms;
  return c->deadline_ms && c->deadline_ms < cap ? c->deadline_ms : cap;
}

static void start(struct cmd *c, struct dmt_buf *env, int built, const char *id, cmd_next_fn next) {
  if (built != 0) {
    dmt_buf_free(env);
    cmd_fail(c, 500, "internal", "the WS-Man request could not be built");
    return;
  }
  c->next = next;
  if (!wsman_start(c->conn, env, id, call_deadline(c), call_done, c)) {
    dmt_buf_free(env);
    cmd_fail(c, 500, "internal", "out of memory");
  }
}

void cmd_get_sel(struct cmd *c, const char *cls, const struct dmt_wsman_selector *sel, size_t nsel, cmd_next_fn next) {
  struct dmt_buf env;
  char id[24];
  dmt_buf_init(&env, 0);
  int rc = dmt_wsman_get(&env, cls, wsman_next_id(c->conn, id), sel, nsel);
  start(c, &env, rc, id, next);
}

void cmd_get(struct cmd *c, const char *cls, cmd_next_fn next) { cmd_get_sel(c, cls, NULL, 0, next); }

static void enum_then_pull(struct cmd *c, struct wsman_call *call) {
  if (cmd_check(c, call)) return;
  struct dmt_buf env;
  char id[24];
  dmt_buf_init(&env, 0);
  int rc = dmt_wsman_pull(&env, c->enum_cls, wsman_next_id(c->conn, id), call->resp.enumeration_context, 999);
  start(c, &env, rc, id, c->enum_next);
}

void cmd_enum(struct cmd *c, const char *cls, cmd_next_fn next) {
  struct dmt_buf env;
  char id[24];
  snprintf(c->enum_cls, sizeof c->enum_cls, "%s", cls);
  c->enum_next = next;
  dmt_buf_init(&env, 0);
  int rc = dmt_wsman_enumerate(&env, cls, wsman_next_id(c->conn, id));
  start(c, &env, rc, id, enum_then_pull);
}

void cmd_invoke(struct cmd *c, const char *cls, const char *method, const struct dmt_wsman_selector *sel, size_t nsel,
                const struct dmt_wsman_param *params, size_t n, cmd_next_fn next) {
  struct dmt_buf env;
  char id[24];
  dmt_buf_init(&env, 0);
  int rc = dmt_wsman_invoke(&env, cls, method, wsman_next_id(c->conn, id), sel, nsel, params, n);
  start(c, &env, rc, id, next);
}

void cmd_put(struct cmd *c, const char *cls, const struct dmt_wsman_selector *sel, size_t nsel,
             const struct dmt_wsman_param *props, size_t nprops, cmd_next_fn next) {
  struct dmt_buf env;
  char id[24];
  dmt_buf_init(&env, 0);
  int rc = dmt_wsman_put(&env, cls, wsman_next_id(c->conn, id), sel, nsel, props, nprops);
  start(c, &env, rc, id, next);
}

void cmd_keep(struct cmd *c, unsigned slot, struct wsman_call *call) {
  const msgpack_object *t = wsman_tree(call);
  if (slot >= CMD_SAVED) return;
  msgpack_sbuffer_clear(&c->saved[slot]);
  msgpack_unpacked_destroy(&c->saved_up[slot]);
  msgpack_unpacked_init(&c->saved_up[slot]);
  if (!t) return;
  msgpack_packer pk;
  msgpack_packer_init(&pk, &c->saved[slot], msgpack_sbuffer_write);
  msgpack_pack_object(&pk, *t);
  size_t off = 0;
  msgpack_unpack_next(&c->saved_up[slot], c->saved[slot].data, c->saved[slot].size, &off);
}

const msgpack_object *cmd_saved(struct cmd *c, unsigned slot) {
  if (slot >= CMD_SAVED || !c->saved[slot].size) return NULL;
  return &c->saved_up[slot].data;
}

const msgpack_object *cmd_arg(const struct cmd *c, const char *key) { return dmt_mp_get(c->args, key); }

bool cmd_arg_int(const struct cmd *c, const char *key, int64_t *out) { return dmt_mp_int(cmd_arg(c, key), out); }

bool cmd_arg_bool(const struct cmd *c, const char *key, bool def) {
  const msgpack_object *o = cmd_arg(c, key);
  return o && o->type == MSGPACK_OBJECT_BOOLEAN ? o->via.boolean : def;
}

/* ---- terminator-local verbs ---- */

static void verb_disconnect(struct cmd *c) {
  struct cira_conn *conn = c->conn;
  conn_ref(conn);
  cmd_done(c, 200);
  conn_close(conn, DMT_APF_DISC_BY_APPLICATION, "disconnected on request");
  conn_unref(conn);
}

struct refresh {
  struct cmd *c;
  char password[64];
  int rc;
};

static int reload_credentials(PGconn *db, void *arg) {
  struct refresh *r = arg;
  char path[64], err[256];
  snprintf(path, sizeof path, "devices/%s", r->c->guid);
  json_t *secret = NULL;
  r->rc = r->c->srv->secrets ? dmt_secrets_get(r->c->srv->secrets, db, r->c->tenant, path, &secret, err, sizeof err)
                             : DMT_SECRETS_ERROR;
  const char *amt = json_string_value(json_object_get(secret, "AMT_PASSWORD"));
  if (amt) snprintf(r->password, sizeof r->password, "%s", amt);
  dmt_secrets_wipe(secret);
  return r->rc == DMT_SECRETS_ERROR && PQstatus(db) != CONNECTION_OK ? DMT_PG_CONN_LOST : DMT_PG_OK;
}

static void reloaded(void *arg, int rc) {
  struct refresh *r = arg;
  struct cmd *c = r->c;
  if (rc == DMT_PG_OK && r->rc == DMT_SECRETS_OK && r->password[0] && c->conn->state == CONN_ACTIVE) {
    snprintf(c->conn->dev->amt_password, sizeof c->conn->dev->amt_password, "%s", r->password);
    free(c->conn->dev->challenge); /* a fresh digest exchange with the new password */
    c->conn->dev->challenge = NULL;
    msgpack_pack_map(&c->pk, 0);
    cmd_done(c, 200);
  } else {
    cmd_fail(c, 500, "internal", "could not re-read the device's credentials");
  }
  OPENSSL_cleanse(r, sizeof *r);
  free(r);
}

static void verb_refresh(struct cmd *c) {
  struct refresh *r = calloc(1, sizeof *r);
  if (!r) {
    cmd_fail(c, 500, "internal", "out of memory");
    return;
  }
  r->c = c;
  if (dmt_db_submit(c->srv->db, reload_credentials, reloaded, r) != 0) {
    free(r);
    cmd_fail(c, 503, "internal", "database queue full");
  }
}

/* ---- MQTT entry ---- */

void commands_subscribe(struct cira_conn *c, bool on) {
  char filter[192];
  snprintf(filter, sizeof filter, "dmt/v1/%s/devices/%s/cmd/#", dmt_topic_tenant(c->dev->tenant), c->guid);
  if (on) dmt_mqtt_subscribe(c->srv->mqtt, filter, 1);
  else dmt_mqtt_unsubscribe(c->srv->mqtt, filter);
}

/* Parses dmt/v1/<tenant>/devices/<guid>/cmd/<verb>; false if the topic is not a device command. */
static bool parse_topic(const char *topic, char tenant[65], char guid[37], char verb[32]) {
  char t[65], g[37], v[32];
  int n = 0;
  if (sscanf(topic, "dmt/v1/%64[^/]/devices/%36[^/]/cmd/%31[^/]%n", t, g, v, &n) != 3 || topic[n]) return false;
  snprintf(tenant, 65, "%s", strcmp(t, "_default") ? t : "");
  memcpy(guid, g, sizeof g);
  memcpy(verb, v, sizeof v);
  return true;
}

static void corr_key(char out[200], const char *tenant, const char *guid, const void *corr, size_t len) {
  int n = snprintf(out, 200, "%s/%s/", tenant, guid);
  for (size_t i = 0; i < len && n + 3 < 200; i++)
    n += snprintf(out + n, 200 - (size_t)n, "%02x", ((const uint8_t *)corr)[i]);
}

/* Refuses a request before execution: answer, cache the answer for redeliveries, audit. */
static void refuse(struct cira_server *s, const struct dmt_mqtt_msg *m, const char *key, const char *tenant,
                   const char *guid, const char *verb, int code, const char *error, const char *message) {
  msgpack_sbuffer sb;
  msgpack_sbuffer_init(&sb);
  if (encode_reply(s, code, error, message, NULL, 0, &sb) == 0) {
    publish_reply(s, m->response_topic, m->correlation, m->correlation_len, sb.data, sb.size);
    if (key) cmd_cache_finish(&s->cmds, key, sb.data, sb.size);
  }
  msgpack_sbuffer_destroy(&sb);
  s->count.commands_failed++;
  audit(s, tenant, guid, verb, dmt_mqtt_msg_user_prop(m, "dmt-requester"), code, error, message, 0);
}

static const struct verb *find_verb(const char *name) {
  for (size_t i = 0; i < sizeof verbs / sizeof verbs[0]; i++)
    if (!strcmp(verbs[i].name, name)) return &verbs[i];
  return NULL;
}

static struct cmd *cmd_new(struct cira_server *s, struct cira_conn *conn, const char *verb) {
  struct cmd *c = calloc(1, sizeof *c);
  if (!c) return NULL;
  c->srv = s;
  c->conn = conn;
  conn_ref(conn);
  conn->commands++;
  c->started_ms = dmt_wall_ms();
  snprintf(c->verb, sizeof c->verb, "%s", verb);
  snprintf(c->tenant, sizeof c->tenant, "%s", conn->dev->tenant);
  snprintf(c->guid, sizeof c->guid, "%s", conn->guid);
  msgpack_unpacked_init(&c->args_up);
  msgpack_sbuffer_init(&c->acc);
  msgpack_packer_init(&c->pk, &c->acc, msgpack_sbuffer_write);
  for (unsigned i = 0; i < CMD_SAVED; i++) {
    msgpack_sbuffer_init(&c->saved[i]);
    msgpack_unpacked_init(&c->saved_up[i]);
  }
  return c;
}

void commands_on_message(struct cira_server *s, const struct dmt_mqtt_msg *m) {
  char tenant[65], guid[37], verb_name[32];
  if (!parse_topic(m->topic, tenant, guid, verb_name)) return;
  struct cira_conn *conn = registry_find(s, guid);
  if (!conn || strcmp(conn->dev->tenant, tenant) != 0) {
    /* Not ours (an unsubscribe in flight, or another tenant's topic): the holder or the bridge answers. */
    DMT_DEBUG(&s->log, "command_not_held", "guid=%s verb=%s", guid, verb_name);
    return;
  }
  s->count.commands++;
  if (!m->response_topic || !m->correlation || m->correlation_len == 0 || m->correlation_len > 64) {
    /* Nobody to answer (MQTT v5 request/response is mandatory): audited, not executed. */
    audit(s, tenant, guid, verb_name, dmt_mqtt_msg_user_prop(m, "dmt-requester"), 400, "bad_request",
          "no Response Topic or Correlation Data (at most 64 bytes)", 0);
    return;
  }
  char key[200];
  corr_key(key, tenant, guid, m->correlation, m->correlation_len);
  const uint8_t *cached;
  size_t cached_len;
  switch (cmd_cache_begin(&s->cmds, key, dmt_wall_ms(), &cached, &cached_len)) {
    case CMD_CACHE_PENDING: return; /* a redelivery of a request still running: its reply is coming */
    case CMD_CACHE_DONE: /* a redelivery of a finished request: the same answer, not a second execution */
      publish_reply(s, m->response_topic, m->correlation, m->correlation_len, cached, cached_len);
      return;
    case CMD_CACHE_NEW: break;
  }
  struct dmt_command_request req;
  char err[256];
  if (dmt_command_request_decode(m->payload, m->len, &req, err, sizeof err) != 0) {
    refuse(s, m, key, tenant, guid, verb_name, 400, "bad_request", err);
    return;
  }
  uint64_t now = dmt_wall_ms();
  const struct verb *v = find_verb(verb_name);
  if ((uint64_t)req.deadline_ms <= now) {
    refuse(s, m, key, tenant, guid, verb_name, 408, "expired", "the command arrived after its deadline and was not executed");
  } else if (!v) {
    refuse(s, m, key, tenant, guid, verb_name, 501, "unsupported", "unknown command verb");
  } else if (conn->commands >= s->set.max_commands) {
    refuse(s, m, key, tenant, guid, verb_name, 409, "busy", "the device's concurrent-command limit is reached");
  } else {
    struct cmd *c = cmd_new(s, conn, v->name);
    if (!c) {
      refuse(s, m, key, tenant, guid, verb_name, 500, "internal", "out of memory");
    } else {
      snprintf(c->response_topic, sizeof c->response_topic, "%s", m->response_topic);
      memcpy(c->corr, m->correlation, m->correlation_len);
      c->corr_len = m->correlation_len;
      snprintf(c->corr_key, sizeof c->corr_key, "%s", key);
      const char *who = dmt_mqtt_msg_user_prop(m, "dmt-requester");
      snprintf(c->requester, sizeof c->requester, "%s", who ? who : "");
      c->deadline_ms = (uint64_t)req.deadline_ms;
      if (req.args && req.args_len && (c->args_buf = malloc(req.args_len))) {
        /* Keep the unpacked args alive for the command's lifetime (req is freed now). */
        memcpy(c->args_buf, req.args, req.args_len);
        size_t off = 0;
        if (msgpack_unpack_next(&c->args_up, c->args_buf, req.args_len, &off) == MSGPACK_UNPACK_SUCCESS)
          c->args = &c->args_up.data;
      }
      dmt_command_request_free(&req);
      v->start(c);
      return;
    }
  }
  dmt_command_request_free(&req);
}

bool commands_internal(struct cira_conn *conn, const char *verb, void (*start_fn)(struct cmd *c),
                       void (*on_end)(struct cmd *c, const char *error)) {
  struct cmd *c = conn->state == CONN_ACTIVE ? cmd_new(conn->srv, conn, verb) : NULL;
  if (!c) return false;
  c->internal = true;
  c->on_end = on_end;
  c->deadline_ms = dmt_wall_ms() + conn->srv->set.wsman_timeout_ms;
  start_fn(c);
  return true;
}

void commands_init(struct cira_server *s) { cmd_cache_init(&s->cmds, REPLY_CACHE_MAX, REPLY_CACHE_MS); }

void commands_free(struct cira_server *s) { cmd_cache_free(&s->cmds); }

void commands_housekeeping(struct cira_server *s) { cmd_cache_expire(&s->cmds, dmt_wall_ms()); }
