/*
 * Provisioning commands over MQTT (schemas/topics.md): requests on
 * dmt/v1/<tenant>/provisioning/cmd/<verb>, consumed with the shared
 * subscription $share/dmt-rps/dmt/v1/+/provisioning/cmd/# so exactly one
 * replica executes each. A request past its deadline is refused (expired),
 * a redelivered correlation id gets the cached reply (at most once), every
 * outcome is a command_reply on the request's Response Topic.
 *
 *   deactivate {guid}        remote deactivation (flow_deactivate_remote): the
 *                            device's verb devices/<guid>/cmd/deactivate goes to
 *                            the terminator holding it; we await its reply on our
 *                            inbox dmt/v1/<tenant>/replies/<instance>/<job>; no
 *                            reply before the deadline = offline (404)
 *   cira_reconfigure {guid}  501 unsupported: re-running CIRA configuration on a
 *                            connected device needs WS-Man through the terminator,
 *                            whose contract has no generic WS-Man verb yet
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dmt/amt_guid.h"
#include "dmt/events.h"
#include "dmt/mptree.h"
#include "dmt/payloads.h"
#include "rps.h"

#define CACHE_MS (10u * 60u * 1000u)

struct cmd_ctx {
  char key[200];
  char tenant[65], verb[33], requester[256];
  char response_topic[256];
  uint8_t corr[64];
  size_t corr_len;
  int64_t deadline_ms;
  bool done;
  uint8_t *reply;
  size_t reply_len;
  uint64_t expires_ms;
};

static uint64_t wall_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void publish_reply(struct rps *s, struct cmd_ctx *c, int code, const char *error, const char *message,
                          const void *result, size_t result_len) {
  struct dmt_command_reply r = {.status = error ? "error" : "ok", .code = code, .error = (char *)error,
                                .message = (char *)message, .instance = s->instance,
                                .present = DMT_COMMAND_REPLY_CODE};
  if (result && result_len) {
    r.result = (uint8_t *)result;
    r.result_len = result_len;
  }
  msgpack_sbuffer sb;
  msgpack_sbuffer_init(&sb);
  char err[256];
  if (dmt_command_reply_encode(&r, &sb, err, sizeof err) == 0) {
    if (c->response_topic[0]) {
      struct dmt_mqtt_publish p = {.topic = c->response_topic, .payload = sb.data, .len = sb.size, .qos = 1,
                                   .correlation = c->corr_len ? c->corr : NULL, .correlation_len = c->corr_len};
      dmt_mqtt_publish(s->mqtt, &p);
    }
    free(c->reply);
    c->reply = malloc(sb.size);
    if (c->reply) memcpy(c->reply, sb.data, sb.size);
    c->reply_len = c->reply ? sb.size : 0;
  } else {
    DMT_ERROR(&s->log, "reply_encode_failed", "verb=%s error=\"%s\"", c->verb, err);
  }
  msgpack_sbuffer_destroy(&sb);
  c->done = true;
  c->expires_ms = wall_ms() + CACHE_MS;
  DMT_INFO(&s->log, "command_done", "tenant=%s verb=%s code=%d error=%s requester=%s", dmt_topic_tenant(c->tenant),
           c->verb, code, error ? error : "-", c->requester[0] ? c->requester : "-");
}

void provisioning_job_done(struct rps_job *j, bool ok, int code, const char *error, const char *message) {
  struct cmd_ctx *c = j->cmd;
  if (!c) return;
  j->cmd = NULL;
  if (ok) {
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 2);
    msgpack_pack_str_with_body(&pk, "status", 6);
    msgpack_pack_str_with_body(&pk, j->st.status, strlen(j->st.status));
    msgpack_pack_str_with_body(&pk, "guid", 4);
    msgpack_pack_str_with_body(&pk, j->guid, strlen(j->guid));
    publish_reply(j->srv, c, 200, NULL, NULL, sb.data, sb.size);
    msgpack_sbuffer_destroy(&sb);
  } else {
    publish_reply(j->srv, c, j->reply_code ? j->reply_code : code, j->reply_error[0] ? j->reply_error : "internal",
                  j->fail_text[0] ? j->fail_text : message, NULL, 0);
  }
}

static void cache_free(const char *k, void *v, void *ud) {
  struct cmd_ctx *c = v;
  free(c->reply);
  free(c);
}

struct expire_scan {
  uint64_t now;
  char **keys;
  size_t n, cap;
};

static void scan(const char *k, void *v, void *ud) {
  struct expire_scan *e = ud;
  struct cmd_ctx *c = v;
  if (!c->done || c->expires_ms > e->now || e->n == e->cap) return;
  e->keys[e->n++] = strdup(k);
}

void provisioning_expire(struct rps *s) {
  struct expire_scan e = {.now = wall_ms(), .cap = 1024};
  e.keys = calloc(e.cap, sizeof *e.keys);
  if (!e.keys) return;
  dmt_strmap_foreach(&s->commands, scan, &e);
  for (size_t i = 0; i < e.n; i++) {
    struct cmd_ctx *c = e.keys[i] ? dmt_strmap_del(&s->commands, e.keys[i]) : NULL;
    if (c) cache_free(NULL, c, NULL);
    free(e.keys[i]);
  }
  free(e.keys);
}

/* ---- relay to the terminator ---- */

static void relay_timeout(lws_sorted_usec_list_t *sul) {
  struct rps_job *j = lws_container_of(sul, struct rps_job, t_delay);
  char corr[64];
  snprintf(corr, sizeof corr, "rps-%s", j->id);
  if (!dmt_strmap_del(&j->srv->relays, corr)) return;
  job_mark_work(j);
  j->reply_code = 404;
  snprintf(j->reply_error, sizeof j->reply_error, "offline");
  flow_fail_text(j, "Device %s is not connected to any terminator", j->guid);
  flow_post(j, FE_FAIL);
  job_unref(j);
}

int provisioning_relay(struct rps_job *j, const char *verb, unsigned timeout_ms) {
  struct rps *s = j->srv;
  char topic[192], reply[256], corr[64];
  snprintf(topic, sizeof topic, "dmt/v1/%s/devices/%s/cmd/%s", dmt_topic_tenant(j->tenant), j->guid, verb);
  snprintf(reply, sizeof reply, "dmt/v1/%s/replies/%s/%s", dmt_topic_tenant(j->tenant), s->instance, j->id);
  snprintf(corr, sizeof corr, "rps-%s", j->id);
  struct dmt_command_request req = {.verb = (char *)verb, .deadline_ms = (int64_t)(wall_ms() + timeout_ms),
                                    .present = DMT_COMMAND_REQUEST_DEADLINE_MS};
  msgpack_sbuffer sb;
  msgpack_sbuffer_init(&sb);
  char err[128];
  if (dmt_command_request_encode(&req, &sb, err, sizeof err) != 0) {
    msgpack_sbuffer_destroy(&sb);
    return -1;
  }
  struct dmt_mqtt_user_prop up[] = {{"dmt-requester", j->requester[0] ? j->requester : s->instance}};
  struct dmt_mqtt_publish p = {.topic = topic, .payload = sb.data, .len = sb.size, .qos = 1, .response_topic = reply,
                               .correlation = corr, .correlation_len = strlen(corr),
                               .expiry_s = timeout_ms / 1000 + 1, .user = up, .nuser = 1};
  dmt_strmap_put(&s->relays, corr, job_ref(j), NULL);
  rps_timer_start(s, &j->t_delay, relay_timeout, timeout_ms);
  job_mark_wait(j);
  int rc = dmt_mqtt_publish(s->mqtt, &p);
  msgpack_sbuffer_destroy(&sb);
  if (rc != 0) {
    dmt_strmap_del(&s->relays, corr);
    rps_timer_stop(&j->t_delay);
    job_unref(j);
    return -1;
  }
  return 0;
}

static void relay_reply(struct rps *s, const struct dmt_mqtt_msg *m) {
  char corr[65];
  if (!m->correlation || m->correlation_len >= sizeof corr) return;
  memcpy(corr, m->correlation, m->correlation_len);
  corr[m->correlation_len] = '\0';
  struct rps_job *j = dmt_strmap_del(&s->relays, corr);
  if (!j) return; /* late or foreign */
  rps_timer_stop(&j->t_delay);
  job_mark_work(j);
  struct dmt_command_reply r;
  char err[256];
  int ev = FE_FAIL;
  if (dmt_command_reply_decode(m->payload, m->len, &r, err, sizeof err) != 0) {
    flow_fail_text(j, "the terminator's reply was malformed: %s", err);
  } else {
    if (r.status && !strcmp(r.status, "ok")) {
      ev = FE_OK;
    } else {
      j->reply_code = (int)r.code;
      snprintf(j->reply_error, sizeof j->reply_error, "%s", r.error ? r.error : "device_error");
      flow_fail_text(j, "%s", r.message ? r.message : (r.error ? r.error : "the terminator refused"));
    }
    dmt_command_reply_free(&r);
  }
  flow_post(j, ev);
  job_unref(j);
}

/* ---- requests ---- */

static bool parse_topic(const char *topic, char tenant[65], char verb[33]) {
  /* dmt/v1/<tenant>/provisioning/cmd/<verb> */
  if (strncmp(topic, "dmt/v1/", 7)) return false;
  const char *t = topic + 7, *slash = strchr(t, '/');
  if (!slash || slash == t || (size_t)(slash - t) > 64 || strncmp(slash, "/provisioning/cmd/", 18)) return false;
  const char *v = slash + 18;
  if (!*v || strchr(v, '/') || strlen(v) > 32) return false;
  snprintf(tenant, 65, "%.*s", (int)(slash - t), t);
  if (!strcmp(tenant, "_default")) tenant[0] = '\0';
  snprintf(verb, 33, "%s", v);
  return true;
}

static void deadline_expired(lws_sorted_usec_list_t *sul) {
  struct rps_job *j = lws_container_of(sul, struct rps_job, t_deadline);
  if (j->ended) return;
  j->reply_code = 408;
  snprintf(j->reply_error, sizeof j->reply_error, "timeout");
  snprintf(j->fail_text, sizeof j->fail_text, "the command did not finish before its deadline (step %s)", j->step);
  job_finish(j, false);
}

static void remote_lookup_done(struct rps_job *j) {
  if (!j->ended) {
    if (j->lk.rc != 0) {
      snprintf(j->fail_text, sizeof j->fail_text, "the database or secret store is unavailable");
      job_finish(j, false);
    } else {
      flow_start(j, &flow_deactivate_remote);
    }
  }
  job_unref(j);
}

static void start_remote_deactivate(struct rps *s, struct cmd_ctx *c, const char *guid) {
  struct rps_job *j = job_new(s, JOB_REMOTE_DEACTIVATE);
  if (!j) {
    publish_reply(s, c, 500, "internal", "out of memory", NULL, 0);
    return;
  }
  j->cmd = c;
  snprintf(j->tenant, sizeof j->tenant, "%s", c->tenant);
  snprintf(j->guid, sizeof j->guid, "%s", guid);
  snprintf(j->requester, sizeof j->requester, "%s", c->requester);
  if (!job_claim_device(j)) {
    j->cmd = NULL;
    j->guid[0] = '\0';
    job_unref(j);
    publish_reply(s, c, 409, "busy", "another job is working on this device", NULL, 0);
    return;
  }
  snprintf(j->lk.tenant, sizeof j->lk.tenant, "%s", j->tenant);
  snprintf(j->lk.guid, sizeof j->lk.guid, "%s", j->guid);
  j->lk.want_record = true;
  /* the whole job ends by the request's deadline; the terminator gets what is left of it */
  int64_t left = c->deadline_ms - (int64_t)wall_ms();
  if (left < 1000) left = 1000;
  j->relay_ms = (unsigned)(left - 500) < s->set.relay_timeout_ms ? (unsigned)(left - 500) : s->set.relay_timeout_ms;
  rps_timer_start(s, &j->t_deadline, deadline_expired, (uint64_t)left);
  DMT_INFO(&s->log, "job_started", "job=%s kind=remote_deactivate guid=%s tenant=%s requester=%s", j->id, j->guid,
           dmt_topic_tenant(j->tenant), c->requester[0] ? c->requester : "-");
  job_ref(j);
  if (lookup_start(j, remote_lookup_done) != 0) {
    job_unref(j);
    j->reply_code = 503;
    snprintf(j->fail_text, sizeof j->fail_text, "the database is overloaded");
    job_finish(j, false);
  }
}

void provisioning_on_message(struct rps *s, const struct dmt_mqtt_msg *m) {
  char inbox[200];
  snprintf(inbox, sizeof inbox, "/replies/%s/", s->instance);
  if (strstr(m->topic, inbox)) {
    relay_reply(s, m);
    return;
  }
  char tenant[65], verb[33];
  if (!parse_topic(m->topic, tenant, verb)) return;
  struct cmd_ctx probe = {0};
  snprintf(probe.tenant, sizeof probe.tenant, "%s", tenant);
  snprintf(probe.verb, sizeof probe.verb, "%s", verb);
  if (m->response_topic) snprintf(probe.response_topic, sizeof probe.response_topic, "%s", m->response_topic);
  if (m->correlation && m->correlation_len <= sizeof probe.corr) {
    memcpy(probe.corr, m->correlation, m->correlation_len);
    probe.corr_len = m->correlation_len;
  }
  const char *who = dmt_mqtt_msg_user_prop(m, "dmt-requester");
  if (who) snprintf(probe.requester, sizeof probe.requester, "%s", who);
  /* at most once per correlation id */
  char hex[129] = "";
  for (size_t i = 0; i < probe.corr_len; i++) snprintf(hex + 2 * i, 3, "%02x", probe.corr[i]);
  snprintf(probe.key, sizeof probe.key, "%s|%s", tenant, hex);
  struct cmd_ctx *known = probe.corr_len ? dmt_strmap_get(&s->commands, probe.key) : NULL;
  if (known) {
    if (known->done && known->reply && probe.response_topic[0]) {
      struct dmt_mqtt_publish p = {.topic = probe.response_topic, .payload = known->reply, .len = known->reply_len,
                                   .qos = 1, .correlation = probe.corr, .correlation_len = probe.corr_len};
      dmt_mqtt_publish(s->mqtt, &p);
    }
    return;
  }
  struct cmd_ctx *c = malloc(sizeof *c);
  if (!c) return;
  *c = probe;
  if (!probe.corr_len || dmt_strmap_put(&s->commands, c->key, c, NULL) != 0) {
    /* no correlation: nothing to de-duplicate on; the context is freed by the cache expiry all the same */
    snprintf(c->key, sizeof c->key, "%s|nocorr-%p", tenant, (void *)c);
    dmt_strmap_put(&s->commands, c->key, c, NULL);
  }
  struct dmt_command_request req;
  char err[256];
  if (dmt_command_request_decode(m->payload, m->len, &req, err, sizeof err) != 0) {
    publish_reply(s, c, 400, "bad_request", err, NULL, 0);
    return;
  }
  c->deadline_ms = req.deadline_ms;
  if ((uint64_t)req.deadline_ms < wall_ms()) {
    publish_reply(s, c, 408, "expired", "the request arrived after its deadline and was not executed", NULL, 0);
    dmt_command_request_free(&req);
    return;
  }
  char guid[37] = "";
  if (req.args) {
    json_t *a = dmt_mp_buf_to_json(req.args, req.args_len);
    const char *g = json_string_value(json_object_get(a, "guid"));
    if (g) dmt_guid_normalize(g, guid);
    json_decref(a);
  }
  dmt_command_request_free(&req);
  if (!strcmp(verb, "deactivate") || !strcmp(verb, "cira_reconfigure")) {
    if (!guid[0]) {
      publish_reply(s, c, 400, "bad_request", "args.guid must be a device GUID", NULL, 0);
      return;
    }
    if (!strcmp(verb, "deactivate")) {
      start_remote_deactivate(s, c, guid);
      return;
    }
  }
  publish_reply(s, c, 501, "unsupported",
                !strcmp(verb, "cira_reconfigure")
                    ? "re-running CIRA configuration needs WS-Man through the terminator, which the contract does not "
                      "offer yet"
                    : "unknown provisioning verb",
                NULL, 0);
}

int provisioning_cmd_start(struct rps *s) {
  char inbox[200];
  snprintf(inbox, sizeof inbox, "dmt/v1/+/replies/%s/#", s->instance);
  if (dmt_mqtt_subscribe(s->mqtt, "$share/dmt-rps/dmt/v1/+/provisioning/cmd/#", 1) != 0) return -1;
  return dmt_mqtt_subscribe(s->mqtt, inbox, 1);
}

void provisioning_free(struct rps *s) {
  dmt_strmap_foreach(&s->commands, cache_free, NULL);
  dmt_strmap_free(&s->commands);
}
