/*
 * Commands from MQTT (schemas/topics.md): each held device's
 * dmt/v1/<tenant>/devices/<guid>/cmd/# is subscribed while we hold it. A
 * request is decoded, refused when expired (it is never executed late),
 * de-duplicated by correlation id (a QoS 1 redelivery gets the cached reply
 * instead of a second execution), executed through its verb's WS-Man chain
 * and answered on its Response Topic; every outcome is an audit event.
 */
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "command.h"
#include "dmt/apf.h"
#include "dmt/pg.h"
#include "dmt/mptree.h"
#include "dmt/payloads.h"

#define REPLY_CACHE_MS (10u * 60u * 1000u)
#define DEFAULT_CALL_MS 10000u

struct cmd_cache {
  uint64_t expires_ms;
  bool done;
  uint8_t *reply;
  size_t reply_len;
  char response_topic[256];
};

struct verb {
  const char *name;
  void (*start)(struct cmd *c);
};

static void verb_disconnect(struct cmd *c);
static void verb_refresh(struct cmd *c);

static const struct verb verbs[] = {
    {"power_state", verb_power_state},       {"power_action", verb_power_action},
    {"boot_options", verb_boot_options},     {"power_capabilities", verb_power_capabilities},
    {"general_settings", verb_general_settings}, {"version", verb_version},
    {"hardware_info", verb_hardware_info},   {"features", verb_features},
    {"audit_log", verb_audit_log},           {"event_log", verb_event_log},
    {"deactivate", verb_deactivate},         {"disconnect", verb_disconnect},
    {"refresh", verb_refresh},
};

const char *amt_status_name(int64_t code) {
  switch (code) {
    case 0: return "SUCCESS";
    case 1: return "INTERNAL_ERROR";
    case 2: return "NOT_READY";
    case 3: return "INVALID_PT_MODE";
    case 4: return "INVALID_MESSAGE_LENGTH";
    case 5: return "TABLE_FINGERPRINT_NOT_AVAILABLE";
    case 6: return "INTEGRITY_CHECK_FAILED";
    case 7: return "UNSUPPORTED_ISVS_VERSION";
    case 8: return "APPLICATION_NOT_REGISTERED";
    case 9: return "INVALID_REGISTRATION_DATA";
    case 10: return "APPLICATION_DOES_NOT_EXIST";
    case 11: return "NOT_ENOUGH_STORAGE";
    case 12: return "INVALID_NAME";
    case 13: return "BLOCK_DOES_NOT_EXIST";
    case 14: return "INVALID_BYTE_OFFSET";
    case 15: return "INVALID_BYTE_COUNT";
    case 16: return "NOT_PERMITTED";
    case 17: return "NOT_OWNER";
    case 18: return "BLOCKED_BY_OWNER";
    case 19: return "BLOCK_ALREADY_EXISTS";
    case 20: return "INVALID_PROVISIONING_STATE"; /* AMT_STATUS 0x14 */
    case 36: return "INVALID_PARAMETER";
    case 38: return "INVALID_PT_MODE";
    case 2053: return "UNSUPPORTED_OID";
    case 2075: return "AUDIT_FAIL";
    default: return "UNKNOWN";
  }
}

static void cmd_free(struct cmd *c) {
  msgpack_unpacked_destroy(&c->args_up);
  free(c->args_buf);
  msgpack_sbuffer_destroy(&c->acc);
  if (c->conn) conn_unref(c->conn);
  free(c);
}

static void publish_reply(struct cira_server *s, const char *topic, const uint8_t *corr, size_t corr_len,
                          const void *payload, size_t len) {
  if (!topic[0]) return;
  struct dmt_mqtt_publish p = {.topic = topic, .payload = payload, .len = len, .qos = 1,
                               .correlation = corr_len ? corr : NULL, .correlation_len = corr_len};
  dmt_mqtt_publish(s->mqtt, &p);
}

static void finish(struct cmd *c, int code, const char *error, const char *message, const void *result, size_t len) {
  struct cira_server *s = c->srv;
  struct dmt_command_reply r = {.status = error ? "error" : "ok", .code = code, .error = (char *)error,
                                .message = (char *)message, .instance = s->instance,
                                .present = DMT_COMMAND_REPLY_CODE};
  if (result && len) {
    r.result = (uint8_t *)result;
    r.result_len = len;
  }
  msgpack_sbuffer sb;
  msgpack_sbuffer_init(&sb);
  char err[256];
  if (dmt_command_reply_encode(&r, &sb, err, sizeof err) != 0) {
    DMT_ERROR(&s->log, "reply_encode_failed", "verb=%s error=\"%s\"", c->verb, err);
    msgpack_sbuffer_clear(&sb);
    struct dmt_command_reply fallback = {.status = "error", .code = 500, .error = "internal",
                                         .message = "result could not be encoded", .present = DMT_COMMAND_REPLY_CODE};
    dmt_command_reply_encode(&fallback, &sb, err, sizeof err);
  }
  publish_reply(s, c->response_topic, c->corr, c->corr_len, sb.data, sb.size);
  struct cmd_cache *cache = dmt_strmap_get(&s->recent_cmds, c->corr_key);
  if (cache) {
    cache->done = true;
    cache->reply = malloc(sb.size);
    if (cache->reply) memcpy(cache->reply, sb.data, sb.size);
    cache->reply_len = sb.size;
  }
  msgpack_sbuffer_destroy(&sb);
  char msg[512];
  snprintf(msg, sizeof msg, "%s: %s%s%s", c->verb, error ? error : "ok", message ? ": " : "", message ? message : "");
  event_emit(s, c->tenant, c->guid, "command", c->verb, error == NULL, c->requester, msg, NULL, 0);
  if (error) s->count.commands_failed++;
  DMT_INFO(&s->log, "command_done", "guid=%s verb=%s code=%d error=%s requester=%s ms=%lu", c->guid, c->verb, code,
           error ? error : "-", c->requester[0] ? c->requester : "-",
           (unsigned long)(dmt_loop_now(s->loop) - c->started_ms));
  cmd_free(c);
}

void cmd_done(struct cmd *c, int code, const void *result, size_t len) { finish(c, code, NULL, NULL, result, len); }

void cmd_fail(struct cmd *c, int code, const char *error, const char *message) {
  finish(c, code, error, message, NULL, 0);
}

bool cmd_check(struct cmd *c, struct wsman_call *call) {
  char msg[600];
  switch (call->error) {
    case WSMAN_OK: return false;
    case WSMAN_TIMEOUT: cmd_fail(c, 408, "timeout", "the device did not answer before the deadline"); return true;
    case WSMAN_CLOSED: cmd_fail(c, 404, "offline", "the device's connection closed"); return true;
    case WSMAN_AUTH: cmd_fail(c, 500, "device_error", "Unable to authenticate with AMT"); return true;
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
  uint64_t now = dmt_wall_ms(), cap = now + c->srv->wsman_timeout_ms;
  return c->deadline_ms && c->deadline_ms < cap ? c->deadline_ms : cap;
}

static void start(struct cmd *c, struct dmt_buf *env, const char *id, cmd_next_fn next) {
  c->next = next;
  if (!wsman_start(c->conn, env, id, call_deadline(c), call_done, c)) {
    dmt_buf_free(env);
    cmd_fail(c, 500, "internal", "out of memory");
  }
}

void cmd_get(struct cmd *c, const char *cls, cmd_next_fn next) {
  struct dmt_buf env;
  char id[24];
  dmt_buf_init(&env, 0);
  dmt_wsman_get(&env, cls, wsman_next_id(c->conn, id), NULL, 0);
  start(c, &env, id, next);
}

static void enum_then_pull(struct cmd *c, struct wsman_call *call) {
  if (cmd_check(c, call)) return;
  struct dmt_buf env;
  char id[24];
  dmt_buf_init(&env, 0);
  dmt_wsman_pull(&env, c->enum_cls, wsman_next_id(c->conn, id), call->resp.enumeration_context, 999);
  start(c, &env, id, c->enum_next);
}

void cmd_enum(struct cmd *c, const char *cls, cmd_next_fn next) {
  struct dmt_buf env;
  char id[24];
  snprintf(c->enum_cls, sizeof c->enum_cls, "%s", cls);
  c->enum_next = next;
  dmt_buf_init(&env, 0);
  dmt_wsman_enumerate(&env, cls, wsman_next_id(c->conn, id));
  start(c, &env, id, enum_then_pull);
}

void cmd_invoke(struct cmd *c, const char *cls, const char *method, const struct dmt_wsman_param *params, size_t n,
                cmd_next_fn next) {
  struct dmt_buf env;
  char id[24];
  dmt_buf_init(&env, 0);
  dmt_wsman_invoke(&env, cls, method, wsman_next_id(c->conn, id), NULL, 0, params, n);
  start(c, &env, id, next);
}

void cmd_put(struct cmd *c, const char *cls, const struct dmt_wsman_selector *sel, size_t nsel,
             const struct dmt_wsman_param *props, size_t nprops, cmd_next_fn next) {
  struct dmt_buf env;
  char id[24];
  dmt_buf_init(&env, 0);
  dmt_wsman_put(&env, cls, wsman_next_id(c->conn, id), sel, nsel, props, nprops);
  start(c, &env, id, next);
}

bool cmd_arg_int(const struct cmd *c, const char *key, int64_t *out) {
  return dmt_mp_int(dmt_mp_get(c->args, key), out);
}

bool cmd_arg_bool(const struct cmd *c, const char *key, bool def) {
  const msgpack_object *o = dmt_mp_get(c->args, key);
  return o && o->type == MSGPACK_OBJECT_BOOLEAN ? o->via.boolean : def;
}

static void verb_disconnect(struct cmd *c) {
  struct cira_conn *conn = c->conn;
  cmd_done(c, 200, NULL, 0);
  conn_close(conn, DMT_APF_DISC_BY_APPLICATION, "disconnected on request");
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
  r->rc = dmt_secrets_get(r->c->srv->secrets, db, r->c->tenant, path, &secret, err, sizeof err);
  const char *amt = json_string_value(json_object_get(secret, "AMT_PASSWORD"));
  if (amt) snprintf(r->password, sizeof r->password, "%s", amt);
  dmt_secrets_wipe(secret);
  return r->rc == DMT_SECRETS_ERROR && PQstatus(db) != CONNECTION_OK ? DMT_PG_CONN_LOST : DMT_PG_OK;
}

static void reloaded(void *arg, int rc) {
  struct refresh *r = arg;
  struct cmd *c = r->c;
  if (r->rc == DMT_SECRETS_OK && r->password[0] && c->conn->state == CONN_ACTIVE) {
    snprintf(c->conn->amt_password, sizeof c->conn->amt_password, "%s", r->password);
    c->conn->have_challenge = false; /* start a fresh digest exchange with the new password */
    cmd_done(c, 200, NULL, 0);
  } else {
    cmd_fail(c, 500, "internal", "could not reload the device's credentials");
  }
  OPENSSL_cleanse(r, sizeof *r);
  free(r);
}

static void verb_refresh(struct cmd *c) {
  struct refresh *r = calloc(1, sizeof *r);
  r->c = c;
  if (dmt_db_submit(c->srv->db, reload_credentials, reloaded, r) != 0) {
    free(r);
    cmd_fail(c, 503, "internal", "database queue full");
  }
}

/* ---- MQTT entry ---- */

void commands_subscribe(struct cira_conn *c, bool on) {
  char filter[192];
  snprintf(filter, sizeof filter, "dmt/v1/%s/devices/%s/cmd/#", tenant_topic(c->tenant), c->guid);
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
  for (size_t i = 0; i < len && n + 3 < 200; i++) n += snprintf(out + n, 200 - (size_t)n, "%02x", ((const uint8_t *)corr)[i]);
}

static void reply_error_now(struct cira_server *s, const struct dmt_mqtt_msg *m, int code, const char *error,
                            const char *message) {
  struct dmt_command_reply r = {.status = "error", .code = code, .error = (char *)error, .message = (char *)message,
                                .instance = s->instance, .present = DMT_COMMAND_REPLY_CODE};
  msgpack_sbuffer sb;
  msgpack_sbuffer_init(&sb);
  char err[128];
  if (m->response_topic && dmt_command_reply_encode(&r, &sb, err, sizeof err) == 0)
    publish_reply(s, m->response_topic, m->correlation, m->correlation_len > 64 ? 0 : m->correlation_len, sb.data,
                  sb.size);
  msgpack_sbuffer_destroy(&sb);
}

void commands_on_message(struct cira_server *s, const struct dmt_mqtt_msg *m) {
  char tenant[65], guid[37], verb_name[32];
  if (!parse_topic(m->topic, tenant, guid, verb_name)) return;
  s->count.commands++;
  if (!m->response_topic || !m->correlation || m->correlation_len == 0 || m->correlation_len > 64) {
    DMT_WARN(&s->log, "command_without_reply_path", "topic=%s", m->topic);
    return; /* nobody to answer: MQTT v5 request/response is mandatory */
  }
  char key[200];
  corr_key(key, tenant, guid, m->correlation, m->correlation_len);
  struct cmd_cache *cache = dmt_strmap_get(&s->recent_cmds, key);
  if (cache) { /* a redelivery: never execute twice */
    if (cache->done && cache->reply) publish_reply(s, m->response_topic, m->correlation, m->correlation_len,
                                                   cache->reply, cache->reply_len);
    return;
  }
  struct dmt_command_request req;
  char err[256];
  if (dmt_command_request_decode(m->payload, m->len, &req, err, sizeof err) != 0) {
    reply_error_now(s, m, 400, "bad_request", err);
    return;
  }
  uint64_t now = dmt_wall_ms();
  if (req.deadline_ms > 0 && (uint64_t)req.deadline_ms <= now) {
    reply_error_now(s, m, 408, "expired", "the command arrived after its deadline and was not executed");
    dmt_command_request_free(&req);
    return;
  }
  struct cira_conn *conn = registry_find(s, guid);
  if (!conn || strcmp(conn->tenant, tenant) != 0) {
    reply_error_now(s, m, 404, "offline", "the device is not connected");
    dmt_command_request_free(&req);
    return;
  }
  const struct verb *v = NULL;
  for (size_t i = 0; i < sizeof verbs / sizeof verbs[0]; i++)
    if (!strcmp(verbs[i].name, verb_name)) v = &verbs[i];
  if (!v) {
    reply_error_now(s, m, 501, "unsupported", "unknown command verb");
    dmt_command_request_free(&req);
    return;
  }
  struct cmd *c = calloc(1, sizeof *c);
  cache = calloc(1, sizeof *cache);
  if (!c || !cache) {
    free(c);
    free(cache);
    reply_error_now(s, m, 500, "internal", "out of memory");
    dmt_command_request_free(&req);
    return;
  }
  cache->expires_ms = now + REPLY_CACHE_MS;
  dmt_strmap_put(&s->recent_cmds, key, cache, NULL);
  c->srv = s;
  c->conn = conn;
  conn_ref(conn);
  snprintf(c->verb, sizeof c->verb, "%s", v->name);
  snprintf(c->tenant, sizeof c->tenant, "%s", tenant);
  snprintf(c->guid, sizeof c->guid, "%s", guid);
  snprintf(c->response_topic, sizeof c->response_topic, "%s", m->response_topic);
  memcpy(c->corr, m->correlation, m->correlation_len);
  c->corr_len = m->correlation_len;
  snprintf(c->corr_key, sizeof c->corr_key, "%s", key);
  const char *who = dmt_mqtt_msg_user_prop(m, "dmt-requester");
  snprintf(c->requester, sizeof c->requester, "%s", who ? who : "");
  c->deadline_ms = (uint64_t)req.deadline_ms;
  c->started_ms = dmt_loop_now(s->loop);
  msgpack_unpacked_init(&c->args_up);
  msgpack_sbuffer_init(&c->acc);
  msgpack_packer_init(&c->pk, &c->acc, msgpack_sbuffer_write);
  if (req.args) {
    size_t off = 0;
    /* Keep the unpacked args alive for the command's lifetime (req is freed now). */
    c->args_buf = malloc(req.args_len);
    memcpy(c->args_buf, req.args, req.args_len); /* unpacked strings point into it */
    if (msgpack_unpack_next(&c->args_up, c->args_buf, req.args_len, &off) == MSGPACK_UNPACK_SUCCESS)
      c->args = &c->args_up.data;
  }
  dmt_command_request_free(&req);
  v->start(c);
}

static void expire_one(const char *key, void *value, void *ud) {
  struct cmd_cache *cc = value;
  struct { uint64_t now; char **dead; size_t n, cap; } *x = ud;
  if (cc->done && cc->expires_ms < x->now && x->n < x->cap) x->dead[x->n++] = strdup(key);
}

void commands_expire_cache(struct cira_server *s) {
  char *dead[1024];
  struct { uint64_t now; char **dead; size_t n, cap; } x = {dmt_wall_ms(), dead, 0, 1024};
  dmt_strmap_foreach(&s->recent_cmds, expire_one, &x);
  for (size_t i = 0; i < x.n; i++) {
    struct cmd_cache *cc = dmt_strmap_del(&s->recent_cmds, dead[i]);
    if (cc) free(cc->reply);
    free(cc);
    free(dead[i]);
  }
}

static void free_cached(const char *key, void *value, void *ud) {
  struct cmd_cache *cc = value;
  free(cc->reply);
  free(cc);
}

void commands_free_cache(struct cira_server *s) {
  dmt_strmap_foreach(&s->recent_cmds, free_cached, NULL);
  dmt_strmap_free(&s->recent_cmds);
}
