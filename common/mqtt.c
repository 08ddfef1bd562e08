/*
 * MQTT v5 client over Paho MQTTAsync (see dmt/mqtt.h).
 *
 * Threads: Paho runs its own; we add one "connector" thread that owns every
 * (re)connect attempt with exponential back-off, because Paho's automatic
 * reconnect does not cover a first connect that fails (a broker that starts
 * after the agent). Callbacks reach the agent only as tasks on its dmt_workq,
 * and those tasks carry copies of what they need, never a pointer to the
 * client, so tasks still queued when the client is freed stay harmless.
 */
#include "dmt/mqtt.h"

#include <MQTTAsync.h>
#include <dirent.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dmt/log.h"
#include "dmt/strmap.h"
#include "dmt/workq.h"

#define SUBSCRIBE_BATCH 256
#define BACKOFF_MIN_MS 250u
#define BACKOFF_MAX_MS 8000u

struct dmt_mqtt {
  MQTTAsync client;
  struct dmt_mqtt_opts o; /* string fields point at the owned copies below */
  char *url, *client_id, *username, *password, *ca_file, *cert_file, *key_file, *will_topic;
  void *will_payload;

  pthread_mutex_t mu;
  struct dmt_strmap subs; /* filter -> qos + 1 (as intptr_t) */
  atomic_bool connected;

  pthread_t connector;
  pthread_cond_t cv;
  bool want_connect, stopping, started;
  unsigned backoff_ms;
};

static char *dup_or_null(const char *s) { return s ? strdup(s) : NULL; }

const char *dmt_mqtt_msg_user_prop(const struct dmt_mqtt_msg *m, const char *key) {
  for (size_t i = 0; i < m->nuser; i++)
    if (strcmp(m->user[i].key, key) == 0) return m->user[i].value;
  return NULL;
}

/* ---- tasks marshalled to the owner thread ---- */

struct msg_task {
  void (*fn)(void *ud, const struct dmt_mqtt_msg *m);
  void *ud;
  struct dmt_mqtt_msg msg;
  char data[]; /* topic, payload, response topic, correlation, user props */
};

static void run_msg_task(void *arg) {
  struct msg_task *t = arg;
  t->fn(t->ud, &t->msg);
  free(t);
}

struct conn_task {
  void (*fn)(void *ud, bool up);
  void *ud;
  bool up;
};

static void run_conn_task(void *arg) {
  struct conn_task *t = arg;
  t->fn(t->ud, t->up);
  free(t);
}

struct done_task {
  void (*fn)(void *arg, bool ok);
  void *arg;
  bool ok;
  struct dmt_workq *owner;
};

static void run_done_task(void *arg) {
  struct done_task *t = arg;
  t->fn(t->arg, t->ok);
  free(t);
}

struct fail_task {
  void (*fn)(void *ud, int reason);
  void *ud;
  int reason;
};

static void run_fail_task(void *arg) {
  struct fail_task *t = arg;
  t->fn(t->ud, t->reason);
  free(t);
}

static void post_connect_failed(struct dmt_mqtt *m, int reason) {
  if (!m->o.on_connect_failed || !m->o.owner) return;
  struct fail_task *t = malloc(sizeof *t);
  if (!t) return;
  *t = (struct fail_task){m->o.on_connect_failed, m->o.ud, reason};
  if (dmt_workq_post_owned(m->o.owner, run_fail_task, t) != 0) free(t);
}

static void post_connection(struct dmt_mqtt *m, bool up) {
  if (!m->o.on_connection || !m->o.owner) return;
  struct conn_task *t = malloc(sizeof *t);
  if (!t) return;
  *t = (struct conn_task){m->o.on_connection, m->o.ud, up};
  if (dmt_workq_post_owned(m->o.owner, run_conn_task, t) != 0) free(t);
}

/* ---- subscriptions ---- */

struct filter_list {
  char **filters;
  int *qos;
  size_t n;
};

static void collect_filter(const char *key, void *value, void *ud) {
  struct filter_list *l = ud;
  l->filters[l->n] = strdup(key);
  l->qos[l->n] = (int)((intptr_t)value - 1);
  if (l->filters[l->n]) l->n++;
}

static void on_subscribe_failed(void *ctx, MQTTAsync_failureData5 *resp) {
  struct dmt_mqtt *m = ctx;
  DMT_WARN(m->o.log, "mqtt_subscribe_failed", "reason=%d code=%d", (int)resp->reasonCode, resp->code);
}

static void subscribe_many(struct dmt_mqtt *m, char **filters, int *qos, size_t n) {
  for (size_t off = 0; off < n; off += SUBSCRIBE_BATCH) {
    size_t cnt = n - off < SUBSCRIBE_BATCH ? n - off : SUBSCRIBE_BATCH;
    MQTTAsync_responseOptions ro = MQTTAsync_responseOptions_initializer;
    ro.onFailure5 = on_subscribe_failed;
    ro.context = m;
    int rc = MQTTAsync_subscribeMany(m->client, (int)cnt, filters + off, qos + off, &ro);
    if (rc != MQTTASYNC_SUCCESS)
      DMT_WARN(m->o.log, "mqtt_resubscribe_failed", "rc=%d count=%zu", rc, cnt);
  }
}

static void resubscribe_all(struct dmt_mqtt *m) {
  pthread_mutex_lock(&m->mu);
  size_t n = m->subs.len;
  struct filter_list l = {calloc(n ? n : 1, sizeof(char *)), calloc(n ? n : 1, sizeof(int)), 0};
  if (l.filters && l.qos) dmt_strmap_foreach(&m->subs, collect_filter, &l);
  pthread_mutex_unlock(&m->mu);
  subscribe_many(m, l.filters, l.qos, l.n);
  if (l.n) DMT_INFO(m->o.log, "mqtt_resubscribed", "filters=%zu", l.n);
  for (size_t i = 0; i < l.n; i++) free(l.filters[i]);
  free(l.filters);
  free(l.qos);
}

/* ---- connection management ---- */

static void request_connect(struct dmt_mqtt *m) {
  pthread_mutex_lock(&m->mu);
  m->want_connect = true;
  pthread_cond_signal(&m->cv);
  pthread_mutex_unlock(&m->mu);
}

/* Port of the broker URL (scheme://host:port), or 0. */
static int url_port(const char *url) {
  const char *colon = strrchr(url, ':');
  return colon && colon > strchr(url, '/') ? atoi(colon + 1) : 0;
}

/*
 * Paho leaves Nagle's algorithm on. A QoS 1 exchange then stalls: the PUBACK
 * Paho writes is followed by our next small PUBLISH, which Nagle holds until
 * the broker's delayed ACK (40 ms per hop, measured). Paho exposes no socket
 * option, so we set TCP_NODELAY on this process's TCP sockets to the broker
 * port after each connect (harmless on any other client of the same broker).
 */
static void disable_nagle(const char *url) {
  int port = url_port(url);
  DIR *dir = port ? opendir("/proc/self/fd") : NULL;
  if (!dir) return;
  struct dirent *e;
  while ((e = readdir(dir))) {
    int fd = atoi(e->d_name);
    struct sockaddr_storage peer;
    socklen_t len = sizeof peer;
    int type = 0;
    socklen_t tl = sizeof type;
    if (fd <= 2 || getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tl) != 0 || type != SOCK_STREAM ||
        getpeername(fd, (struct sockaddr *)&peer, &len) != 0)
      continue;
    int peer_port = peer.ss_family == AF_INET    ? ntohs(((struct sockaddr_in *)&peer)->sin_port)
                    : peer.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&peer)->sin6_port)
                                                 : 0;
    int one = 1;
    if (peer_port == port) setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  }
  closedir(dir);
}

static void on_connect_ok(void *ctx, MQTTAsync_successData5 *resp) {
  struct dmt_mqtt *m = ctx;
  disable_nagle(m->url);
  atomic_store(&m->connected, true);
  pthread_mutex_lock(&m->mu);
  m->backoff_ms = 0;
  pthread_mutex_unlock(&m->mu);
  DMT_INFO(m->o.log, "mqtt_connected", "url=%s client_id=%s session_present=%d", m->url, m->client_id,
           resp ? resp->alt.connect.sessionPresent : 0);
  resubscribe_all(m);
  post_connection(m, true);
}

static void on_connect_failed(void *ctx, MQTTAsync_failureData5 *resp) {
  struct dmt_mqtt *m = ctx;
  atomic_store(&m->connected, false);
  DMT_WARN(m->o.log, "mqtt_connect_failed", "url=%s reason=%d code=%d", m->url,
           resp ? (int)resp->reasonCode : -1, resp ? resp->code : -1);
  /* Paho reports a CONNACK refusal in reasonCode or, depending on the path, in code (a positive reason code);
     negative codes are its own (TCP, TLS, timeout). */
  int reason = -1;
  if (resp && (int)resp->reasonCode >= 0x80) reason = (int)resp->reasonCode;
  else if (resp && resp->code > 0) reason = resp->code;
  post_connect_failed(m, reason);
  request_connect(m);
}

static void on_connection_lost(void *ctx, char *cause) {
  struct dmt_mqtt *m = ctx;
  atomic_store(&m->connected, false);
  DMT_WARN(m->o.log, "mqtt_connection_lost", "url=%s", m->url);
  post_connection(m, false);
  request_connect(m);
}

static int on_message_arrived(void *ctx, char *topic, int topic_len, MQTTAsync_message *pm) {
  struct dmt_mqtt *m = ctx;
  size_t tlen = topic_len > 0 ? (size_t)topic_len : strlen(topic);
  MQTTProperties *props = &pm->properties;
  MQTTProperty *rt = MQTTProperties_getProperty(props, MQTTPROPERTY_CODE_RESPONSE_TOPIC);
  MQTTProperty *cd = MQTTProperties_getProperty(props, MQTTPROPERTY_CODE_CORRELATION_DATA);
  MQTTProperty *ex = MQTTProperties_getProperty(props, MQTTPROPERTY_CODE_MESSAGE_EXPIRY_INTERVAL);
  size_t need = tlen + 1 + (size_t)pm->payloadlen + 1;
  if (rt) need += (size_t)rt->value.data.len + 1;
  if (cd) need += (size_t)cd->value.data.len;
  for (int i = 0; i < props->count; i++)
    if (props->array[i].identifier == MQTTPROPERTY_CODE_USER_PROPERTY)
      need += (size_t)props->array[i].value.data.len + (size_t)props->array[i].value.value.len + 2;

  struct msg_task *t = m->o.on_message && m->o.owner ? malloc(sizeof *t + need) : NULL;
  if (t) {
    char *p = t->data;
    memset(&t->msg, 0, sizeof t->msg);
    t->fn = m->o.on_message;
    t->ud = m->o.ud;
    memcpy(p, topic, tlen);
    p[tlen] = '\0';
    t->msg.topic = p;
    p += tlen + 1;
    if (pm->payloadlen > 0) memcpy(p, pm->payload, (size_t)pm->payloadlen);
    p[pm->payloadlen] = '\0'; /* convenience for text payloads; len excludes it */
    t->msg.payload = p;
    t->msg.len = (size_t)pm->payloadlen;
    p += pm->payloadlen + 1;
    t->msg.qos = pm->qos;
    t->msg.retained = pm->retained != 0;
    if (rt) {
      memcpy(p, rt->value.data.data, (size_t)rt->value.data.len);
      p[rt->value.data.len] = '\0';
      t->msg.response_topic = p;
      p += rt->value.data.len + 1;
    }
    if (cd) {
      memcpy(p, cd->value.data.data, (size_t)cd->value.data.len);
      t->msg.correlation = p;
      t->msg.correlation_len = (size_t)cd->value.data.len;
      p += cd->value.data.len;
    }
    if (ex) {
      t->msg.has_expiry = true;
      t->msg.expiry_s = ex->value.integer4;
    }
    for (int i = 0; i < props->count && t->msg.nuser < DMT_MQTT_MAX_USER_PROPS; i++) {
      MQTTProperty *u = &props->array[i];
      if (u->identifier != MQTTPROPERTY_CODE_USER_PROPERTY) continue;
      struct dmt_mqtt_user_prop *up = &t->msg.user[t->msg.nuser++];
      memcpy(p, u->value.data.data, (size_t)u->value.data.len);
      p[u->value.data.len] = '\0';
      up->key = p;
      p += u->value.data.len + 1;
      memcpy(p, u->value.value.data, (size_t)u->value.value.len);
      p[u->value.value.len] = '\0';
      up->value = p;
      p += u->value.value.len + 1;
    }
    if (dmt_workq_post_owned(m->o.owner, run_msg_task, t) != 0) free(t);
  }
  MQTTAsync_freeMessage(&pm);
  MQTTAsync_free(topic);
  return 1;
}

static int connect_once(struct dmt_mqtt *m) {
  MQTTAsync_connectOptions co = MQTTAsync_connectOptions_initializer5;
  MQTTAsync_willOptions wo = MQTTAsync_willOptions_initializer;
  MQTTAsync_SSLOptions so = MQTTAsync_SSLOptions_initializer;
  MQTTProperties cprops = MQTTProperties_initializer;
  MQTTProperties wprops = MQTTProperties_initializer;
  co.keepAliveInterval = m->o.keepalive_s > 0 ? m->o.keepalive_s : 30;
  co.cleanstart = !m->o.persistent_session;
  co.username = m->username;
  co.password = m->password;
  co.connectTimeout = 10;
  co.onSuccess5 = on_connect_ok;
  co.onFailure5 = on_connect_failed;
  co.context = m;
  if (m->o.persistent_session) {
    MQTTProperty p = {.identifier = MQTTPROPERTY_CODE_SESSION_EXPIRY_INTERVAL};
    p.value.integer4 = m->o.session_expiry_s ? m->o.session_expiry_s : 3600;
    MQTTProperties_add(&cprops, &p);
    co.connectProperties = &cprops;
  }
  if (m->will_topic) {
    wo.topicName = m->will_topic;
    wo.payload.data = m->will_payload;
    wo.payload.len = (int)m->o.will_len;
    wo.retained = m->o.will_retain;
    wo.qos = 1;
    co.will = &wo;
    co.willProperties = &wprops;
  }
  if (strncmp(m->url, "ssl://", 6) == 0 || strncmp(m->url, "mqtts://", 8) == 0) {
    so.trustStore = m->ca_file;
    so.keyStore = m->cert_file;
    so.privateKey = m->key_file;
    so.enableServerCertAuth = 1;
    so.verify = 1;
    co.ssl = &so;
  }
  int rc = MQTTAsync_connect(m->client, &co);
  MQTTProperties_free(&cprops);
  MQTTProperties_free(&wprops);
  return rc;
}

static void *connector_main(void *arg) {
  struct dmt_mqtt *m = arg;
  pthread_mutex_lock(&m->mu);
  while (!m->stopping) {
    while (!m->want_connect && !m->stopping) pthread_cond_wait(&m->cv, &m->mu);
    if (m->stopping) break;
    if (m->backoff_ms) {
      struct timespec ts;
      clock_gettime(CLOCK_REALTIME, &ts);
      ts.tv_sec += m->backoff_ms / 1000;
      ts.tv_nsec += (long)(m->backoff_ms % 1000) * 1000000L;
      if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
      }
      while (!m->stopping && pthread_cond_timedwait(&m->cv, &m->mu, &ts) != ETIMEDOUT) {
      }
      if (m->stopping) break;
    }
    m->want_connect = false;
    m->backoff_ms = m->backoff_ms ? (m->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : m->backoff_ms * 2)
                                  : BACKOFF_MIN_MS;
    pthread_mutex_unlock(&m->mu);
    int rc = connect_once(m);
    pthread_mutex_lock(&m->mu);
    if (rc != MQTTASYNC_SUCCESS) {
      DMT_WARN(m->o.log, "mqtt_connect_error", "url=%s rc=%d", m->url, rc);
      post_connect_failed(m, -1);
      m->want_connect = true;
    }
  }
  pthread_mutex_unlock(&m->mu);
  return NULL;
}

struct dmt_mqtt *dmt_mqtt_new(const struct dmt_mqtt_opts *opts, char *err, size_t errlen) {
  if (!opts->url || !opts->client_id) {
    snprintf(err, errlen, "mqtt: url and client_id are required");
    return NULL;
  }
  struct dmt_mqtt *m = calloc(1, sizeof *m);
  if (!m) return NULL;
  m->o = *opts;
  m->url = dup_or_null(opts->url);
  m->client_id = dup_or_null(opts->client_id);
  m->username = dup_or_null(opts->username);
  m->password = dup_or_null(opts->password);
  m->ca_file = dup_or_null(opts->ca_file);
  m->cert_file = dup_or_null(opts->cert_file);
  m->key_file = dup_or_null(opts->key_file);
  m->will_topic = dup_or_null(opts->will_topic);
  if (opts->will_len) {
    m->will_payload = malloc(opts->will_len);
    if (m->will_payload) memcpy(m->will_payload, opts->will_payload, opts->will_len);
  }
  pthread_mutex_init(&m->mu, NULL);
  pthread_cond_init(&m->cv, NULL);
  dmt_strmap_init(&m->subs);

  MQTTAsync_createOptions cr = MQTTAsync_createOptions_initializer5;
  cr.sendWhileDisconnected = 1;
  cr.allowDisconnectedSendAtAnyTime = 1;
  cr.maxBufferedMessages = opts->max_buffered > 0 ? opts->max_buffered : 100000;
  int rc = MQTTAsync_createWithOptions(&m->client, m->url, m->client_id, MQTTCLIENT_PERSISTENCE_NONE,
                                       NULL, &cr);
  if (rc != MQTTASYNC_SUCCESS) {
    snprintf(err, errlen, "mqtt: cannot create client for %s (rc=%d)", m->url, rc);
    m->client = NULL;
    dmt_mqtt_free(m);
    return NULL;
  }
  MQTTAsync_setCallbacks(m->client, m, on_connection_lost, on_message_arrived, NULL);
  return m;
}

int dmt_mqtt_start(struct dmt_mqtt *m) {
  pthread_mutex_lock(&m->mu);
  if (m->started) {
    pthread_mutex_unlock(&m->mu);
    return 0;
  }
  m->want_connect = true;
  int rc = pthread_create(&m->connector, NULL, connector_main, m);
  m->started = rc == 0;
  pthread_mutex_unlock(&m->mu);
  return rc == 0 ? 0 : -1;
}

void dmt_mqtt_free(struct dmt_mqtt *m) {
  if (!m) return;
  pthread_mutex_lock(&m->mu);
  m->stopping = true;
  pthread_cond_signal(&m->cv);
  bool started = m->started;
  pthread_mutex_unlock(&m->mu);
  if (started) pthread_join(m->connector, NULL);
  if (m->client) {
    if (MQTTAsync_isConnected(m->client)) {
      MQTTAsync_disconnectOptions d = MQTTAsync_disconnectOptions_initializer5;
      d.timeout = 1000;
      MQTTAsync_disconnect(m->client, &d);
      for (int i = 0; i < 100 && MQTTAsync_isConnected(m->client); i++) {
        struct timespec ts = {0, 10000000};
        nanosleep(&ts, NULL);
      }
    }
    MQTTAsync_destroy(&m->client);
  }
  dmt_strmap_free(&m->subs);
  pthread_cond_destroy(&m->cv);
  pthread_mutex_destroy(&m->mu);
  if (m->password) memset(m->password, 0, strlen(m->password));
  free(m->url);
  free(m->client_id);
  free(m->username);
  free(m->password);
  free(m->ca_file);
  free(m->cert_file);
  free(m->key_file);
  free(m->will_topic);
  free(m->will_payload);
  free(m);
}

bool dmt_mqtt_is_connected(struct dmt_mqtt *m) { return atomic_load(&m->connected); }

size_t dmt_mqtt_pending(struct dmt_mqtt *m) {
  MQTTAsync_token *tokens = NULL;
  if (MQTTAsync_getPendingTokens(m->client, &tokens) != MQTTASYNC_SUCCESS || !tokens) return 0;
  size_t n = 0;
  while (tokens[n] != -1) n++;
  MQTTAsync_free(tokens);
  return n;
}

size_t dmt_mqtt_drain(struct dmt_mqtt *m, int timeout_ms) {
  size_t left = dmt_mqtt_pending(m);
  for (int waited = 0; left > 0 && waited < timeout_ms; waited += 10) {
    struct timespec ts = {0, 10000000};
    nanosleep(&ts, NULL);
    left = dmt_mqtt_pending(m);
  }
  return left;
}

size_t dmt_mqtt_subscription_count(struct dmt_mqtt *m) {
  pthread_mutex_lock(&m->mu);
  size_t n = m->subs.len;
  pthread_mutex_unlock(&m->mu);
  return n;
}

static void publish_result(struct done_task *t, bool ok) {
  t->ok = ok;
  if (dmt_workq_post_owned(t->owner, run_done_task, t) != 0) free(t);
}

static void on_publish_ok(void *ctx, MQTTAsync_successData5 *resp) { publish_result(ctx, true); }

static void on_publish_failed(void *ctx, MQTTAsync_failureData5 *resp) { publish_result(ctx, false); }

int dmt_mqtt_publish(struct dmt_mqtt *m, const struct dmt_mqtt_publish *p) {
  MQTTAsync_message msg = MQTTAsync_message_initializer;
  MQTTAsync_responseOptions ro = MQTTAsync_responseOptions_initializer;
  msg.payload = (void *)p->payload;
  msg.payloadlen = (int)p->len;
  msg.qos = p->qos;
  msg.retained = p->retain;
  if (p->response_topic) {
    MQTTProperty pr = {.identifier = MQTTPROPERTY_CODE_RESPONSE_TOPIC};
    pr.value.data.data = (char *)p->response_topic;
    pr.value.data.len = (int)strlen(p->response_topic);
    MQTTProperties_add(&msg.properties, &pr);
  }
  if (p->correlation) {
    MQTTProperty pr = {.identifier = MQTTPROPERTY_CODE_CORRELATION_DATA};
    pr.value.data.data = (char *)p->correlation;
    pr.value.data.len = (int)p->correlation_len;
    MQTTProperties_add(&msg.properties, &pr);
  }
  if (p->expiry_s) {
    MQTTProperty pr = {.identifier = MQTTPROPERTY_CODE_MESSAGE_EXPIRY_INTERVAL};
    pr.value.integer4 = p->expiry_s;
    MQTTProperties_add(&msg.properties, &pr);
  }
  for (size_t i = 0; i < p->nuser; i++) {
    MQTTProperty pr = {.identifier = MQTTPROPERTY_CODE_USER_PROPERTY};
    pr.value.data.data = (char *)p->user[i].key;
    pr.value.data.len = (int)strlen(p->user[i].key);
    pr.value.value.data = (char *)p->user[i].value;
    pr.value.value.len = (int)strlen(p->user[i].value);
    MQTTProperties_add(&msg.properties, &pr);
  }
  struct done_task *t = NULL;
  if (p->done && m->o.owner) {
    t = malloc(sizeof *t);
    if (t) {
      *t = (struct done_task){p->done, p->done_arg, false, m->o.owner};
      ro.onSuccess5 = on_publish_ok;
      ro.onFailure5 = on_publish_failed;
      ro.context = t;
    }
  }
  int rc = MQTTAsync_sendMessage(m->client, p->topic, &msg, &ro);
  MQTTProperties_free(&msg.properties);
  if (rc != MQTTASYNC_SUCCESS) {
    free(t);
    DMT_WARN(m->o.log, "mqtt_publish_rejected", "rc=%d", rc);
    return -1;
  }
  return 0;
}

int dmt_mqtt_subscribe(struct dmt_mqtt *m, const char *filter, int qos) {
  pthread_mutex_lock(&m->mu);
  int rc = dmt_strmap_put(&m->subs, filter, (void *)(intptr_t)(qos + 1), NULL);
  pthread_mutex_unlock(&m->mu);
  if (rc != 0) return -1;
  if (atomic_load(&m->connected)) {
    char *f = (char *)filter;
    subscribe_many(m, &f, &qos, 1);
  }
  return 0;
}

int dmt_mqtt_unsubscribe(struct dmt_mqtt *m, const char *filter) {
  pthread_mutex_lock(&m->mu);
  dmt_strmap_del(&m->subs, filter);
  pthread_mutex_unlock(&m->mu);
  if (atomic_load(&m->connected)) {
    MQTTAsync_responseOptions ro = MQTTAsync_responseOptions_initializer;
    return MQTTAsync_unsubscribe(m->client, filter, &ro) == MQTTASYNC_SUCCESS ? 0 : -1;
  }
  return 0;
}
