/*
 * dmtctl's MQTT side, on the common/ MQTT client and event loop:
 *
 *  - a session: connect with the token as the MQTT password, fail fast with
 *    a distinct outcome when the broker refuses us (auth) or cannot be
 *    reached; subscribe to our own reply inbox;
 *  - subscriptions with a barrier: after subscribing we publish a probe to our
 *    own inbox; the broker sends a client's messages in order, so once the
 *    probe is back every retained message under the new filters has arrived
 *    (that is how `devices list` knows the retained snapshot is complete).
 *    Where the broker's ACL refuses that publish (north clients may publish
 *    commands only), the marker is a re-subscription instead: once the first
 *    retained message arrived, subscribing again to its exact topic makes the
 *    broker resend it after every other retained message; with no retained
 *    message at all, a quiet period ends the wait;
 *  - requests: command_request with Response Topic, Correlation Data and
 *    Message Expiry (schemas/topics.md), one timer per request, replies
 *    matched by correlation id;
 *  - bulk fan-out: many devices, a bounded number in flight, progress bar,
 *    devices the retained state shows as unknown or offline answered locally.
 */
#include <openssl/rand.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dmt/mptree.h"
#include "dmt/payloads.h"
#include "dmtctl.h"

#define CONNECT_TIMEOUT_MS 10000u
#define REPLY_GRACE_MS 1500u
#define PER_DEVICE_FILTERS_MAX 16

struct pending {
  struct ctl_session *s;
  char corr[48];
  struct dmt_timer timer;
  ctl_reply_fn done;
  void *ud;
  bool resolved;
};

struct ctl_session {
  struct ctl *c;
  struct dmt_loop *loop;
  struct dmt_mqtt *mq;
  char client_id[64], inbox[192], reply_topic[192];
  int conn;         /* 0 connecting, 1 up, -1 refused/unreachable */
  int fail_reason;  /* CONNACK reason code, -1 unreachable */
  bool lost;
  ctl_msg_fn on_msg;
  void *on_msg_ud;
  struct dmt_strmap pending; /* corr -> struct pending* (unresolved only) */
  struct pending **all;      /* every request made; freed at close (Paho may still ack them) */
  size_t nall, capall;
  uint64_t seq;
  char nonce[13];
  /* waiting */
  bool (*cond)(struct ctl_session *s);
  void *cond_arg;
  bool stopping, interrupted, waited_out;
  struct dmt_timer wait;
  char barrier[48];
  bool barrier_seen, probe_refused;
  uint64_t subscribed_ms, last_retained_ms;
  char first_retained[256]; /* a topic that had a retained message, for the re-subscribe marker */
  char resub[256];          /* the marker subscription, once made */
  bool resub_seen;
  struct dmt_timer tick;
};

/* ---- loop control ---- */

static void request_stop(struct ctl_session *s) {
  if (s->stopping) return;
  s->stopping = true;
  dmt_loop_stop(s->loop);
}

static void check(struct ctl_session *s) {
  if (s->cond && s->cond(s)) request_stop(s);
}

static void on_wait_timer(struct dmt_loop *loop, struct dmt_timer *t) {
  struct ctl_session *s = t->ud;
  s->waited_out = true;
  request_stop(s);
}

static void on_signal(struct dmt_loop *loop, int signo, void *ud) {
  struct ctl_session *s = ud;
  s->interrupted = true;
  request_stop(s);
}

/* Runs until cond holds, timeout_ms passes (0 = no limit), Ctrl-C or ctl_session_stop(). Returns cond's verdict. */
static bool run_until(struct ctl_session *s, bool (*cond)(struct ctl_session *), uint64_t timeout_ms) {
  if (s->interrupted) return false;
  if (cond && cond(s)) return true;
  s->cond = cond;
  s->stopping = false;
  s->waited_out = false;
  if (timeout_ms) dmt_timer_start(s->loop, &s->wait, timeout_ms);
  dmt_loop_run(s->loop);
  dmt_timer_stop(s->loop, &s->wait);
  s->cond = NULL;
  return cond ? cond(s) : false;
}

bool ctl_session_run(struct ctl_session *s) {
  run_until(s, NULL, 0);
  return s->interrupted;
}

void ctl_session_run_for(struct ctl_session *s, uint64_t ms) { run_until(s, NULL, ms); }

void ctl_session_stop(struct ctl_session *s) { request_stop(s); }
bool ctl_session_interrupted(const struct ctl_session *s) { return s->interrupted; }

void ctl_session_on_message(struct ctl_session *s, ctl_msg_fn fn, void *ud) {
  s->on_msg = fn;
  s->on_msg_ud = ud;
}

/* ---- replies ---- */

static void resolve(struct pending *p, const struct ctl_reply *r) {
  if (p->resolved) return;
  p->resolved = true;
  dmt_timer_stop(p->s->loop, &p->timer);
  dmt_strmap_del(&p->s->pending, p->corr);
  p->done(p->ud, r);
}

static void on_reply(struct ctl_session *s, const struct dmt_mqtt_msg *m) {
  char corr[49];
  if (!m->correlation || m->correlation_len >= sizeof corr) return;
  memcpy(corr, m->correlation, m->correlation_len);
  corr[m->correlation_len] = '\0';
  if (!strcmp(corr, s->barrier)) {
    s->barrier_seen = true;
    return;
  }
  struct pending *p = dmt_strmap_get(&s->pending, corr);
  if (!p) return; /* late or duplicate */
  struct dmt_command_reply rep;
  char err[256];
  struct ctl_reply r = {0};
  if (dmt_command_reply_decode(m->payload, m->len, &rep, err, sizeof err) != 0) {
    r.status = CTL_FAILED;
    r.error = "bad_reply";
    r.message = err;
    resolve(p, &r);
    return;
  }
  r.code = (int)rep.code;
  r.error = rep.error;
  r.message = rep.message;
  r.status = rep.status && !strcmp(rep.status, "ok") ? CTL_OK : ctl_exit_from_error(rep.error ? rep.error : "internal");
  if (r.status != CTL_OK && !r.error) r.error = "internal";
  r.result = rep.result ? dmt_mp_buf_to_json(rep.result, rep.result_len) : NULL;
  resolve(p, &r);
  json_decref(r.result);
  dmt_command_reply_free(&rep);
}

static void on_message(void *ud, const struct dmt_mqtt_msg *m) {
  struct ctl_session *s = ud;
  if (!strcmp(m->topic, s->reply_topic)) {
    on_reply(s, m);
  } else {
    if (m->retained) {
      if (s->resub[0] && !strcmp(m->topic, s->resub)) s->resub_seen = true;
      if (!s->first_retained[0]) snprintf(s->first_retained, sizeof s->first_retained, "%s", m->topic);
      s->last_retained_ms = dmt_wall_ms();
    }
    if (s->on_msg) s->on_msg(s->on_msg_ud, m);
  }
  check(s);
}

static void on_connection(void *ud, bool up) {
  struct ctl_session *s = ud;
  if (up) {
    if (s->conn == 1 && s->lost)
      fprintf(s->c->err, "dmtctl: reconnected to the broker; messages published meanwhile were missed (for events, "
                         "replay them with --since)\n");
    s->conn = 1;
  } else if (s->conn == 1) {
    s->lost = true;
    fprintf(s->c->err, "dmtctl: connection to the broker lost; reconnecting\n");
  }
  check(s);
}

static void on_connect_failed(void *ud, int reason) {
  struct ctl_session *s = ud;
  if (s->conn == 0) {
    s->conn = -1;
    s->fail_reason = reason;
  }
  check(s);
}

static void on_request_timeout(struct dmt_loop *loop, struct dmt_timer *t) {
  struct pending *p = t->ud;
  struct ctl_reply r = {.status = CTL_TIMEOUT, .error = "timeout", .message = "no answer before the deadline"};
  resolve(p, &r);
  check(p->s);
}

static void on_probe_published(void *arg, bool ok) {
  struct ctl_session *s = arg;
  if (!ok) s->probe_refused = true;
  check(s);
}

static void on_published(void *arg, bool ok) {
  struct pending *p = arg;
  if (ok || p->resolved) return;
  struct ctl_reply r = {.status = CTL_AUTH, .error = "publish_refused",
                        .message = "the broker refused the command (not authorised for this tenant?)"};
  resolve(p, &r);
  check(p->s);
}

/* ---- session ---- */

static bool connected_or_failed(struct ctl_session *s) { return s->conn != 0; }

static void random_hex(char *out, size_t nbytes) {
  unsigned char b[32];
  if (nbytes > sizeof b) nbytes = sizeof b;
  if (RAND_bytes(b, (int)nbytes) != 1)
    for (size_t i = 0; i < nbytes; i++) b[i] = (unsigned char)(rand() & 0xff);
  for (size_t i = 0; i < nbytes; i++) snprintf(out + 2 * i, 3, "%02x", b[i]);
}

int ctl_session_open(struct ctl *c, struct ctl_session **out) {
  *out = NULL;
  struct ctl_session *s = calloc(1, sizeof *s);
  if (!s) return ctl_fail(c, CTL_FAILED, "out of memory");
  s->c = c;
  s->loop = dmt_loop_new();
  dmt_strmap_init(&s->pending);
  dmt_timer_init(&s->wait, on_wait_timer, s);
  random_hex(s->nonce, 6);
  char host[32] = "host";
  gethostname(host, sizeof host);
  host[sizeof host - 1] = '\0';
  for (char *p = host; *p; p++)
    if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '-')) *p = '-';
  snprintf(s->client_id, sizeof s->client_id, "dmtctl-%.20s-%d-%s", host, (int)getpid(), s->nonce);
  snprintf(s->inbox, sizeof s->inbox, "dmt/v1/%s/replies/%s/#", c->tenant_topic, s->client_id);
  snprintf(s->reply_topic, sizeof s->reply_topic, "dmt/v1/%s/replies/%s/r", c->tenant_topic, s->client_id);
  int signals[] = {SIGINT, SIGTERM};
  dmt_loop_on_signals(s->loop, signals, 2, on_signal, s);

  const char *url = dmt_config_str(&c->cfg, "broker");
  struct dmt_mqtt_opts o = {
      .url = url, .client_id = s->client_id, .username = c->token ? dmt_config_str(&c->cfg, "username") : NULL,
      .password = c->token, .ca_file = dmt_config_str(&c->cfg, "ca_file"), .keepalive_s = 30, .log = &c->log,
      .owner = dmt_loop_workq(s->loop), .on_message = on_message, .on_connection = on_connection,
      .on_connect_failed = on_connect_failed, .ud = s};
  char err[256];
  s->mq = dmt_mqtt_new(&o, err, sizeof err);
  if (!s->mq) {
    ctl_session_close(s);
    return ctl_fail(c, CTL_USAGE, "%s", err);
  }
  dmt_mqtt_subscribe(s->mq, s->inbox, 1);
  dmt_mqtt_start(s->mq);
  uint64_t limit = (uint64_t)c->timeout_ms < CONNECT_TIMEOUT_MS ? (uint64_t)c->timeout_ms : CONNECT_TIMEOUT_MS;
  run_until(s, connected_or_failed, limit);
  int rc = CTL_OK;
  if (s->interrupted) {
    rc = 130;
  } else if (s->conn == 0) {
    rc = ctl_fail(c, CTL_UNREACHABLE, "no answer from the broker at %s within %llu ms", url,
                  (unsigned long long)limit);
  } else if (s->conn < 0) {
    int r = s->fail_reason;
    if (r == 0x86 || r == 0x87 || r == 0x8c || r == 0x8a)
      rc = ctl_fail(c, CTL_AUTH, "the broker at %s refused our credentials (reason 0x%02x: %s)", url, r,
                    r == 0x86 ? "bad user name or password" : r == 0x87 ? "not authorised"
                                                            : r == 0x8a ? "banned" : "bad authentication method");
    else if (r > 0)
      rc = ctl_fail(c, CTL_UNREACHABLE, "the broker at %s refused the connection (reason 0x%02x)", url, r);
    else rc = ctl_fail(c, CTL_UNREACHABLE, "cannot reach the broker at %s", url);
  }
  if (rc != CTL_OK) {
    ctl_session_close(s);
    return rc;
  }
  *out = s;
  return CTL_OK;
}

void ctl_session_close(struct ctl_session *s) {
  if (!s) return;
  dmt_mqtt_free(s->mq); /* no Paho thread posts after this */
  dmt_loop_free(s->loop); /* drops queued tasks */
  for (size_t i = 0; i < s->nall; i++) free(s->all[i]);
  free(s->all);
  dmt_strmap_free(&s->pending);
  free(s);
}

#define PROBE_WAIT_MS 1500u /* a probe neither back nor refused by then: assume the broker dropped it */
#define QUIET_MS 1500u      /* no retained message for this long: there is none */
#define TICK_MS 100u

/* The barrier of ctl_session_subscribe(), evaluated on every message, acknowledgement and tick. */
static bool barrier_back(struct ctl_session *s) {
  if (s->barrier_seen) return true;
  uint64_t now = dmt_wall_ms();
  if (!s->probe_refused && now - s->subscribed_ms < PROBE_WAIT_MS) return false;
  if (s->resub[0]) return s->resub_seen;
  if (s->first_retained[0]) { /* the re-subscribe marker */
    snprintf(s->resub, sizeof s->resub, "%s", s->first_retained);
    s->resub_seen = false;
    dmt_mqtt_subscribe(s->mq, s->resub, 1);
    return false;
  }
  return now - s->last_retained_ms >= QUIET_MS;
}

static void on_tick(struct dmt_loop *loop, struct dmt_timer *t) {
  struct ctl_session *s = t->ud;
  check(s);
  if (!s->stopping) dmt_timer_start(loop, t, TICK_MS);
}

int ctl_session_subscribe(struct ctl_session *s, const char *const *filters, size_t n) {
  for (size_t i = 0; i < n; i++) dmt_mqtt_subscribe(s->mq, filters[i], 1);
  snprintf(s->barrier, sizeof s->barrier, "barrier-%s-%llu", s->nonce, (unsigned long long)++s->seq);
  s->barrier_seen = s->probe_refused = s->resub_seen = false;
  s->first_retained[0] = s->resub[0] = '\0';
  s->subscribed_ms = s->last_retained_ms = dmt_wall_ms();
  struct dmt_mqtt_publish p = {.topic = s->reply_topic, .payload = "", .len = 0, .qos = 1, .correlation = s->barrier,
                               .correlation_len = strlen(s->barrier), .expiry_s = 60, .done = on_probe_published,
                               .done_arg = s};
  if (dmt_mqtt_publish(s->mq, &p) != 0) s->probe_refused = true;
  dmt_timer_init(&s->tick, on_tick, s);
  dmt_timer_start(s->loop, &s->tick, TICK_MS);
  bool ok = run_until(s, barrier_back, (uint64_t)s->c->timeout_ms);
  dmt_timer_stop(s->loop, &s->tick);
  if (s->resub[0]) { /* drop the marker unless it is one of the filters asked for */
    bool asked = false;
    for (size_t i = 0; i < n; i++) asked = asked || !strcmp(filters[i], s->resub);
    if (!asked) dmt_mqtt_unsubscribe(s->mq, s->resub);
  }
  if (!ok) {
    if (s->interrupted) return 130;
    return ctl_fail(s->c, CTL_TIMEOUT, "the broker did not confirm the subscription within %d ms", s->c->timeout_ms);
  }
  return CTL_OK;
}

int ctl_request(struct ctl_session *s, const char *topic, const char *verb, const json_t *args, ctl_reply_fn done,
                void *ud) {
  struct ctl *c = s->c;
  if (s->nall == s->capall) {
    size_t cap = s->capall ? s->capall * 2 : 64;
    struct pending **n = realloc(s->all, cap * sizeof *n);
    if (!n) return -1;
    s->all = n;
    s->capall = cap;
  }
  struct pending *p = calloc(1, sizeof *p);
  if (!p) return -1;
  s->all[s->nall++] = p;
  p->s = s;
  p->done = done;
  p->ud = ud;
  snprintf(p->corr, sizeof p->corr, "%s-%llu", s->nonce, (unsigned long long)++s->seq);
  dmt_timer_init(&p->timer, on_request_timeout, p);

  msgpack_sbuffer ab, sb;
  msgpack_sbuffer_init(&ab);
  msgpack_sbuffer_init(&sb);
  struct dmt_command_request req = {.verb = (char *)verb, .deadline_ms = (int64_t)(dmt_wall_ms() + (uint64_t)c->timeout_ms),
                                    .present = DMT_COMMAND_REQUEST_DEADLINE_MS};
  if (args) {
    msgpack_packer pk;
    msgpack_packer_init(&pk, &ab, msgpack_sbuffer_write);
    dmt_json_to_mp(args, &pk);
    req.args = (uint8_t *)ab.data;
    req.args_len = ab.size;
  }
  char err[256];
  int rc = dmt_command_request_encode(&req, &sb, err, sizeof err);
  if (rc == 0) {
    struct dmt_mqtt_publish pub = {.topic = topic, .payload = sb.data, .len = sb.size, .qos = 1,
                                   .response_topic = s->reply_topic, .correlation = p->corr,
                                   .correlation_len = strlen(p->corr),
                                   .expiry_s = (uint32_t)((c->timeout_ms + 999) / 1000), .done = on_published,
                                   .done_arg = p};
    dmt_strmap_put(&s->pending, p->corr, p, NULL);
    dmt_timer_start(s->loop, &p->timer, (uint64_t)c->timeout_ms + REPLY_GRACE_MS);
    rc = dmt_mqtt_publish(s->mq, &pub);
    if (rc != 0) {
      struct ctl_reply r = {.status = CTL_FAILED, .error = "publish_failed", .message = "the publish buffer is full"};
      resolve(p, &r);
    }
  } else {
    struct ctl_reply r = {.status = CTL_USAGE, .error = "bad_request", .message = err};
    resolve(p, &r);
  }
  msgpack_sbuffer_destroy(&ab);
  msgpack_sbuffer_destroy(&sb);
  return 0;
}

void ctl_device_topic(const struct ctl *c, char *buf, size_t len, const char *guid, const char *suffix) {
  snprintf(buf, len, "dmt/v1/%s/devices/%s/%s", c->tenant_topic, guid, suffix);
}

/* ---- retained snapshot ---- */

json_t *ctl_state_to_json(const void *payload, size_t len) {
  struct dmt_device_state st;
  char err[256];
  if (dmt_device_state_decode(payload, len, &st, err, sizeof err) != 0) return NULL;
  dmt_device_state_free(&st);
  return dmt_mp_buf_to_json(payload, len); /* validated above; unknown keys kept */
}

static void collect_state(void *ud, const struct dmt_mqtt_msg *m) {
  struct ctl_snapshot *snap = ud;
  const char *st = strrchr(m->topic, '/');
  if (!st || strcmp(st, "/state") != 0) return;
  /* dmt/v1/<tenant>/devices/<guid>/state */
  char guid[37], tmp[37];
  const char *g = st - 36;
  if (g <= m->topic || g[-1] != '/') return;
  memcpy(tmp, g, 36);
  tmp[36] = '\0';
  if (!ctl_guid_norm(tmp, guid)) return;
  json_t *old = NULL;
  if (m->len == 0) { /* deleted */
    old = dmt_strmap_del(&snap->states, guid);
    json_decref(old);
    return;
  }
  json_t *j = ctl_state_to_json(m->payload, m->len);
  if (!j) return;
  if (dmt_strmap_put(&snap->states, guid, j, (void **)&old) != 0) json_decref(j);
  json_decref(old);
}

int ctl_snapshot_load(struct ctl_session *s, struct ctl_snapshot *snap, const char *const *guids, size_t n) {
  dmt_strmap_init(&snap->states);
  size_t nf = guids && n <= PER_DEVICE_FILTERS_MAX ? n : 1;
  char **filters = calloc(nf, sizeof *filters);
  if (!filters) return CTL_FAILED;
  for (size_t i = 0; i < nf; i++) {
    filters[i] = malloc(192);
    if (guids && n <= PER_DEVICE_FILTERS_MAX) ctl_device_topic(s->c, filters[i], 192, guids[i], "state");
    else ctl_device_topic(s->c, filters[i], 192, "+", "state");
  }
  ctl_msg_fn prev = s->on_msg;
  void *prev_ud = s->on_msg_ud;
  ctl_session_on_message(s, collect_state, snap);
  int rc = ctl_session_subscribe(s, (const char *const *)filters, nf);
  ctl_session_on_message(s, prev, prev_ud);
  for (size_t i = 0; i < nf; i++) {
    dmt_mqtt_unsubscribe(s->mq, filters[i]);
    free(filters[i]);
  }
  free(filters);
  return rc;
}

json_t *ctl_snapshot_get(const struct ctl_snapshot *snap, const char *guid) { return dmt_strmap_get(&snap->states, guid); }

struct key_list {
  const char **keys;
  size_t n;
  const char *tags; /* NULL = all */
};

static bool has_any_tag(const json_t *state, const char *tags) {
  const json_t *arr = json_object_get(state, "tags");
  char want[1024];
  snprintf(want, sizeof want, "%s", tags);
  for (char *save = NULL, *t = strtok_r(want, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
    size_t i;
    json_t *x;
    json_array_foreach(arr, i, x)
      if (json_is_string(x) && !strcmp(json_string_value(x), t)) return true;
  }
  return false;
}

static void collect_key(const char *key, void *value, void *ud) {
  struct key_list *l = ud;
  if (!l->tags || has_any_tag(value, l->tags)) l->keys[l->n++] = key;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(const char *const *)a, *(const char *const *)b); }

static const char **snapshot_keys(const struct ctl_snapshot *snap, const char *tags, size_t *n) {
  struct key_list l = {calloc(snap->states.len + 1, sizeof(char *)), 0, tags};
  if (!l.keys) {
    *n = 0;
    return NULL;
  }
  dmt_strmap_foreach(&snap->states, collect_key, &l);
  qsort(l.keys, l.n, sizeof *l.keys, cmp_str);
  *n = l.n;
  return l.keys;
}

const char **ctl_snapshot_by_tag(const struct ctl_snapshot *snap, const char *tags, size_t *n) {
  return snapshot_keys(snap, tags, n);
}

const char **ctl_snapshot_all(const struct ctl_snapshot *snap, size_t *n) { return snapshot_keys(snap, NULL, n); }

static void free_state(const char *key, void *value, void *ud) { json_decref(value); }

void ctl_snapshot_free(struct ctl_snapshot *snap) {
  dmt_strmap_foreach(&snap->states, free_state, NULL);
  dmt_strmap_free(&snap->states);
}

/* ---- targets and bulk ---- */

int ctl_targets(struct ctl *c, struct ctl_session *s, struct ctl_args *a, const char *verb, json_t *args,
                struct ctl_snapshot *snap, struct ctl_item **items, size_t *n) {
  *items = NULL;
  *n = 0;
  const char *tag = ctl_arg(a, "tag");
  if (tag && a->npos) return ctl_fail(c, CTL_USAGE, "give device GUIDs or --tag, not both");
  if (!tag && !a->npos) return ctl_fail(c, CTL_USAGE, "no device: give one or more GUIDs, or --tag TAG");
  if (tag && !*tag) return ctl_fail(c, CTL_USAGE, "--tag needs a tag name");
  char **guids = NULL;
  size_t ng = 0;
  if (!tag) {
    guids = calloc(a->npos, sizeof *guids);
    if (!guids) return CTL_FAILED;
    for (size_t i = 0; i < a->npos; i++) {
      char g[37];
      if (!ctl_guid_norm(a->pos[i], g)) {
        for (size_t j = 0; j < ng; j++) free(guids[j]);
        free(guids);
        return ctl_fail(c, CTL_USAGE, "`%s` is not a device GUID (8-4-4-4-12 hex digits)", a->pos[i]);
      }
      bool dup = false;
      for (size_t j = 0; j < ng; j++) dup = dup || !strcmp(guids[j], g);
      if (!dup) guids[ng++] = strdup(g);
    }
  }
  int rc = ctl_snapshot_load(s, snap, (const char *const *)guids, tag ? 0 : ng);
  if (rc == CTL_OK && tag) {
    const char **keys = ctl_snapshot_by_tag(snap, tag, &ng);
    guids = calloc(ng ? ng : 1, sizeof *guids);
    for (size_t i = 0; guids && i < ng; i++) guids[i] = strdup(keys[i]);
    free(keys);
    if (ng == 0) rc = ctl_fail(c, CTL_NOT_FOUND, "no device in tenant %s carries tag %s", c->tenant_topic, tag);
  }
  if (rc == CTL_OK) {
    *items = calloc(ng, sizeof **items);
    for (size_t i = 0; *items && i < ng; i++) {
      snprintf((*items)[i].guid, sizeof (*items)[i].guid, "%s", guids[i]);
      (*items)[i].verb = verb;
      (*items)[i].args = args;
    }
    *n = ng;
  }
  for (size_t j = 0; guids && j < ng; j++) free(guids[j]);
  free(guids);
  return rc;
}

struct bulk {
  struct ctl_session *s;
  struct ctl_item *items;
  size_t n, next, inflight, finished;
  const struct ctl_snapshot *snap;
  struct ctl_progress prog;
};

struct bulk_ctx {
  struct bulk *b;
  size_t i;
};

static void bulk_send_more(struct bulk *b);

static void item_done(struct bulk *b, struct ctl_item *it, const struct ctl_reply *r) {
  it->status = r->status;
  it->code = r->code;
  free(it->error);
  free(it->message);
  it->error = r->error ? strdup(r->error) : NULL;
  it->message = r->message ? strdup(r->message) : NULL;
  json_decref(it->result);
  it->result = r->result ? json_incref(r->result) : NULL;
  if (it->check_return) ctl_item_check_return(it, it->return_key);
  it->done = true;
  b->finished++;
  ctl_progress_step(&b->prog, it->status == CTL_OK);
}

static void bulk_reply(void *ud, const struct ctl_reply *r) {
  struct bulk_ctx *x = ud;
  struct bulk *b = x->b;
  item_done(b, &b->items[x->i], r);
  free(x);
  b->inflight--;
  bulk_send_more(b);
}

static void bulk_send_more(struct bulk *b) {
  struct ctl *c = b->s->c;
  while (b->next < b->n && b->inflight < (size_t)c->parallel) {
    struct ctl_item *it = &b->items[b->next];
    size_t i = b->next++;
    json_t *st = b->snap ? ctl_snapshot_get(b->snap, it->guid) : NULL;
    if (b->snap && !st) {
      struct ctl_reply r = {.status = CTL_NOT_FOUND, .error = "not_found",
                            .message = "no such device in this tenant (no published state: unknown or never connected)"};
      it->skipped = true;
      item_done(b, it, &r);
      continue;
    }
    if (st && !json_is_true(json_object_get(st, "connected"))) {
      struct ctl_reply r = {.status = CTL_OFFLINE, .error = "offline", .message = "the device is not connected"};
      it->skipped = true;
      item_done(b, it, &r);
      continue;
    }
    struct bulk_ctx *x = malloc(sizeof *x);
    *x = (struct bulk_ctx){b, i};
    char topic[256], suffix[64];
    snprintf(suffix, sizeof suffix, "cmd/%s", it->verb);
    ctl_device_topic(c, topic, sizeof topic, it->guid, suffix);
    b->inflight++;
    ctl_request(b->s, topic, it->verb, it->args, bulk_reply, x);
  }
}

static bool bulk_all_done(struct ctl_session *s) {
  const struct bulk *b = s->cond_arg;
  return b->finished == b->n;
}

void ctl_bulk_run(struct ctl_session *s, struct ctl_item *items, size_t n, const struct ctl_snapshot *snap,
                  const char *label) {
  struct bulk b = {.s = s, .items = items, .n = n, .snap = snap};
  ctl_progress_start(&b.prog, s->c, label, n);
  bulk_send_more(&b);
  s->cond_arg = &b;
  run_until(s, bulk_all_done, 0);
  s->cond_arg = NULL;
  for (size_t i = 0; i < n; i++)
    if (!items[i].done) { /* interrupted */
      items[i].status = CTL_FAILED;
      items[i].error = strdup("interrupted");
    }
  ctl_progress_finish(&b.prog);
}

void ctl_items_free(struct ctl_item *items, size_t n) {
  for (size_t i = 0; i < n; i++) {
    free(items[i].error);
    free(items[i].message);
    json_decref(items[i].result);
  }
  free(items);
}
