/*
 * dmt-cira internals: the CIRA terminator. One thread runs an epoll loop
 * holding every device's TLS connection; PostgreSQL work runs on the
 * dmt_db workers and MQTT callbacks arrive through the loop's task queue.
 *
 * Lifetimes: a connection is reference-counted because database and
 * WS-Man completions can arrive after it closed; every asynchronous
 * completion holds a reference and checks `closed` before acting.
 */
#ifndef DMT_CIRA_H
#define DMT_CIRA_H

#include <openssl/ssl.h>
#include <stdbool.h>
#include <stdint.h>

#include "dmt/buf.h"
#include "dmt/db.h"
#include "dmt/digest.h"
#include "dmt/evloop.h"
#include "dmt/http.h"
#include "dmt/log.h"
#include "dmt/mqtt.h"
#include "dmt/secrets.h"
#include "dmt/strmap.h"

struct cira_server;
struct cira_conn;
struct wsman_call;

enum conn_state {
  CONN_TLS,          /* TLS handshake */
  CONN_APF,          /* APF before authentication */
  CONN_AUTHENTICATING, /* credentials being checked off-loop: input is held */
  CONN_ACTIVE,       /* authenticated and registered */
  CONN_CLOSED,
};

/* A server-initiated APF channel carrying one HTTP exchange. */
struct cira_channel {
  uint32_t id;        /* ours */
  uint32_t peer_id;   /* the device's, from OPEN_CONFIRMATION */
  uint32_t send_window;
  uint32_t unacked;
  bool open, close_sent, closing;
  struct dmt_buf pending; /* request bytes waiting for window */
  struct dmt_http_parser http;
  struct wsman_call *call;
  struct cira_channel *next;
};

struct cira_conn {
  struct cira_server *srv;
  int refs;
  int fd;
  SSL *ssl;
  enum conn_state state;
  uint64_t serial;    /* distinguishes a replaced connection of the same GUID */
  char peer[64];      /* source address */
  struct dmt_buf in, out;
  struct dmt_timer timer; /* handshake deadline, then idle check */
  uint64_t last_rx_ms;
  bool have_version, auth_requested, pfwd_accepted, keepalive_options_sent;
  unsigned forwards;
  char guid[37];
  uint8_t uuid[16];
  char username[64];
  char password[64];      /* held only while authentication is pending */
  /* after authentication */
  char tenant[65];
  char amt_password[64];  /* for WS-Man digest (user admin) */
  char amt_version[32], mode[8];
  char hostname[64], friendly_name[64];
  char tags[512];         /* unit-separator (0x1f) joined, as read from dmt.devices */
  uint64_t connected_ms;
  uint16_t power_state;
  bool registered;        /* holds the GUID in the registry */
  bool replaced;          /* a newer connection for the GUID took over */
  /* WS-Man client */
  struct cira_channel *channels;
  uint32_t next_channel_id;
  struct dmt_digest_challenge challenge;
  bool have_challenge;
  uint32_t nc;            /* digest nonce count */
  uint32_t msg_seq;       /* WS-Man MessageID counter */
  unsigned inflight;
  struct wsman_call *queue_head, *queue_tail;
};

/* Failed-login bookkeeping for throttling (per source address and per GUID). */
struct auth_throttle {
  unsigned failures;
  uint64_t blocked_until_ms;
  uint64_t last_failure_ms;
};

struct cira_server {
  struct dmt_loop *loop;
  struct dmt_log log;
  struct dmt_config *cfg;
  char instance[128];
  SSL_CTX *tls;
  int listen_fd;
  char root_pem_path[512];
  struct dmt_mqtt *mqtt;
  struct dmt_db *db;
  struct dmt_secrets *secrets;
  struct dmt_strmap devices;    /* guid -> struct cira_conn* (authenticated) */
  struct dmt_strmap throttle;   /* "ip:<addr>" / "guid:<guid>" -> struct auth_throttle* */
  struct dmt_strmap lastseen;   /* guid -> tenant (strdup), flushed in one UPDATE per period */
  struct dmt_strmap recent_cmds;/* correlation key -> struct cmd_cache* */
  struct dmt_timer housekeeping;
  uint64_t next_serial;
  /* settings */
  unsigned keepalive_s, window, max_inflight, wsman_timeout_ms, handshake_ms, max_conns;
  unsigned lastseen_flush_ms;
  size_t nconns;
  bool shutting_down;      /* devices are released in bulk, not one update each */
  bool shutdown_claimed;
  struct {
    uint64_t accepted, authenticated, auth_failures, throttled, protocol_errors, commands, commands_failed;
  } count;
};

/* conn.c */
void conn_accept(struct cira_server *s, int fd, const char *peer);
void conn_ref(struct cira_conn *c);
void conn_unref(struct cira_conn *c);
/* Sends DISCONNECT(reason) if reason != 0, flushes what it can and closes. */
void conn_close(struct cira_conn *c, uint32_t reason, const char *why);
void conn_flush(struct cira_conn *c);

/* apf_session.c */
void apf_process(struct cira_conn *c);

/* apf_auth.c */
void auth_begin(struct cira_conn *c);
bool auth_throttled(struct cira_server *s, const char *peer, const char *guid);

/* device_registry.c */
void registry_register(struct cira_conn *c);
void registry_unregister(struct cira_conn *c, const char *reason);
struct cira_conn *registry_find(struct cira_server *s, const char *guid);
void registry_touch(struct cira_conn *c);
void registry_flush_lastseen(struct cira_server *s);
void registry_publish_state(struct cira_conn *c, bool connected, const char *reason);
/* tenant id <-> topic level ("" <-> "_default") */
const char *tenant_topic(const char *tenant);

/* events.c: publish on MQTT and persist to dmt.events */
void event_emit(struct cira_server *s, const char *tenant, const char *guid, const char *kind, const char *action,
                bool success, const char *requester, const char *message, const void *data, size_t data_len);

/* apf_channel.c */
struct cira_channel *channel_open(struct cira_conn *c);
void channel_send(struct cira_conn *c, struct cira_channel *ch, const void *data, size_t len);
void channel_close(struct cira_conn *c, struct cira_channel *ch);
void channel_on_confirm(struct cira_conn *c, uint32_t id, uint32_t peer_id, uint32_t window);
void channel_on_failure(struct cira_conn *c, uint32_t id);
void channel_on_data(struct cira_conn *c, uint32_t id, const uint8_t *data, uint32_t len);
void channel_on_window(struct cira_conn *c, uint32_t id, uint32_t bytes);
void channel_on_close(struct cira_conn *c, uint32_t id);
void channels_abort(struct cira_conn *c);

/* instances.c */
int instances_start(struct cira_server *s);
void instances_on_message(struct cira_server *s, const struct dmt_mqtt_msg *m);
void instances_mark_shutdown(struct cira_server *s);
/* Releases every device row still naming us (one UPDATE) and publishes them disconnected. */
void instances_release_own(struct cira_server *s);

/* commands.c */
void commands_on_message(struct cira_server *s, const struct dmt_mqtt_msg *m);
void commands_subscribe(struct cira_conn *c, bool on);
void commands_expire_cache(struct cira_server *s);
void commands_free_cache(struct cira_server *s);

/* certs.c */
int certs_prepare(struct cira_server *s, char *cert, size_t certlen, char *key, size_t keylen, char *err,
                  size_t errlen);

#endif
