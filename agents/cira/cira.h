/*
 * dmt-cira internals: the CIRA terminator (DMT MPS replacement). One thread
 * runs an epoll loop holding every device's TLS connection; PostgreSQL work
 * (credential lookups, connection-state writes, events) runs on the dmt_db
 * workers and MQTT callbacks arrive through the loop's task queue, so the
 * loop never blocks. See docs/cira.md for the design and settings.
 *
 * Lifetimes: a connection is reference-counted because database and WS-Man
 * completions can arrive after it closed; every asynchronous completion
 * holds a reference and checks `state` before acting.
 *
 * Files: cira_main.c (settings, start, stop), listener.c (accept), conn.c
 * (TLS and buffers), apf_session.c (APF messages), apf_auth.c + limiter.c
 * (login), device_registry.c (GUID -> connection, takeover), state_publish.c
 * (retained state, connection rows), lastseen.c, events.c, instances.c (will,
 * dead peers), apf_channel.c + wsman_client.c (WS-Man over APF),
 * commands.c + cmd_cache.c (MQTT requests), wsman_{power,info,logs,setup}.c
 * (verbs), power_map.c + shape.c (pure tables and DMT response shapes),
 * certs.c (TLS identity).
 */
#ifndef DMT_CIRA_H
#define DMT_CIRA_H

#include <arpa/inet.h>
#include <msgpack.h>
#include <openssl/ssl.h>
#include <stdbool.h>
#include <stdint.h>

#include "dmt/events.h"
#include "dmt/apf.h"
#include "dmt/buf.h"
#include "dmt/db.h"
#include "dmt/digest.h"
#include "dmt/evloop.h"
#include "dmt/http.h"
#include "dmt/log.h"
#include "dmt/mqtt.h"
#include "dmt/secrets.h"
#include "dmt/strmap.h"
#include "dmt/wsman.h"

struct cira_server;
struct cira_conn;
struct wsman_call;
struct conn_batch;
struct event_batch;

/* ------------------------------------------------------------------ limiter.c (pure) */

struct limiter_policy {
  unsigned free_failures;  /* failures inside the window before blocking starts */
  uint64_t window_ms;      /* a quiet window resets the count */
  uint64_t base_block_ms;  /* first block; doubles with each further failure */
  uint64_t max_block_ms;
  size_t max_entries;      /* table cap (beyond it new keys are not tracked) */
};

struct cira_limiter {
  struct limiter_policy policy;
  struct dmt_strmap map; /* key -> struct limiter_entry* */
  uint64_t untracked;
};

#define LIMITER_KEY_LEN 80
void limiter_init(struct cira_limiter *l, const struct limiter_policy *p);
void limiter_free(struct cira_limiter *l);
/* Milliseconds the key stays blocked, 0 if it is not. */
uint64_t limiter_blocked_for(const struct cira_limiter *l, const char *key, uint64_t now);
/* Records a failure; returns the block it caused (0 = none yet). */
uint64_t limiter_fail(struct cira_limiter *l, const char *key, uint64_t now);
void limiter_reset(struct cira_limiter *l, const char *key);
/* Drops entries neither blocked nor inside their window; returns how many. */
size_t limiter_expire(struct cira_limiter *l, uint64_t now);
void limiter_source_key(const char *peer, char out[LIMITER_KEY_LEN]);
void limiter_guid_key(const char *guid, char out[LIMITER_KEY_LEN]);

/* ------------------------------------------------------------------ cmd_cache.c (pure) */

struct cmd_cache_entry;
struct cmd_cache {
  struct dmt_strmap map;           /* key -> entry */
  struct cmd_cache_entry **ring;   /* FIFO in insertion (= expiry) order */
  size_t head, count, cap, max;
  uint64_t ttl_ms;
};

enum cmd_cache_state { CMD_CACHE_NEW, CMD_CACHE_PENDING, CMD_CACHE_DONE };

void cmd_cache_init(struct cmd_cache *c, size_t max_entries, uint64_t ttl_ms);
void cmd_cache_free(struct cmd_cache *c);
/* NEW: remembered as pending, execute it. PENDING: drop (running). DONE: *reply is the cached answer. */
enum cmd_cache_state cmd_cache_begin(struct cmd_cache *c, const char *key, uint64_t now, const uint8_t **reply,
                                     size_t *reply_len);
void cmd_cache_finish(struct cmd_cache *c, const char *key, const void *reply, size_t len);
void cmd_cache_expire(struct cmd_cache *c, uint64_t now);
size_t cmd_cache_size(const struct cmd_cache *c);

/* ------------------------------------------------------------------ power_map.c (pure) */

enum power_path { POWER_PATH_CIM = 1, POWER_PATH_OS, POWER_PATH_BOOT };
enum ocr_kind { OCR_NONE = 0, OCR_HTTPS, OCR_PBA, OCR_WINRE };

struct power_plan {
  int64_t action;
  enum power_path path;
  int cim_state;           /* RequestPowerStateChange argument (CIM and boot paths) */
  int os_target;           /* OS path: 2 full power, 3 power saving */
  bool wake_os_first;      /* power up: bring an OS in power saving to full power first (DMT) */
  int expected_power;      /* CIM PowerState after success, 0 if not known */
  /* boot path, as DMT's bootOptions sets AMT_BootSettingData and the boot order */
  bool bios_setup, use_ider;
  int ider_boot_device;
  const char *boot_source; /* CIM_BootSourceSetting InstanceID, or NULL */
  enum ocr_kind ocr;
};

/* DMT's validator set (DMTFCombinedPowerStates). */
bool power_action_valid(int64_t action);
/* 0 and the plan, or -1 for a code DMT's validator refuses. */
int power_plan_for(int64_t action, struct power_plan *p);
const char *amt_status_name(int64_t code);
const char *os_power_status_name(int64_t code);
/* OCR TLV parameter blocks (raw; base64 them for UefiBootParametersArray). -1 with *why on bad input. */
int ocr_https_params(const char *url, const char *user, const char *password, struct dmt_buf *out, int *count,
                     const char **why);
int ocr_file_params(const char *path, struct dmt_buf *out, int *count, const char **why);

/* ------------------------------------------------------------------ shape.c (pure) */

void shape_str(msgpack_packer *pk, const char *s);
const msgpack_object *shape_body(const msgpack_object *tree);
/* {"Header", "Body": {<output fields>, "ReturnValueStr"}} as DMT's power action / boot options answer. */
void shape_return(msgpack_packer *pk, const msgpack_object *tree, const char *output);
int64_t shape_return_value(const msgpack_object *tree, const char *output);
/* {"Body": {"ReturnValue", "ReturnValueStr"}}: the OS power-saving path's answer. */
void shape_os_result(msgpack_packer *pk, int64_t rv, const char *name);
int64_t shape_os_state(const msgpack_object *ips_tree);
bool shape_power_state_of(const msgpack_object *pull_tree, int64_t *power);
void shape_power_state(msgpack_packer *pk, int64_t power, int64_t os);
int64_t shape_amt_major(const msgpack_object *software_pull_tree);
void shape_capabilities(msgpack_packer *pk, int64_t amt_major, const msgpack_object *caps_tree);
void shape_get_entry(msgpack_packer *pk, const msgpack_object *tree, const char *cls);
void shape_pull_entry(msgpack_packer *pk, const msgpack_object *pull_tree, const char *cls);
struct features_in {
  const msgpack_object *redirection, *optin, *kvm, *boot_service, *capabilities, *boot_data, *sources; /* trees */
};
void shape_features(msgpack_packer *pk, const struct features_in *in);
size_t shape_audit_log(msgpack_packer *pk, const msgpack_object *tree);
size_t shape_event_log(msgpack_packer *pk, const msgpack_object *tree);

/* ------------------------------------------------------------------ connections */

enum conn_state {
  CONN_TLS,            /* TLS handshake */
  CONN_APF,            /* APF before authentication */
  CONN_AUTHENTICATING, /* credentials being checked off-loop: input is held */
  CONN_ACTIVE,         /* authenticated and registered */
  CONN_CLOSED,
};

/* What we know about an authenticated device (dmt.devices row + secret), allocated at login. */
struct cira_device {
  char tenant[65];
  char amt_version[32], mode[8];
  char amt_password[64];                  /* WS-Man digest, user admin; wiped on free */
  char *hostname, *friendly_name, *tags;  /* tags: 0x1f-joined */
  struct dmt_digest_challenge *challenge; /* cached once AMT sent one */
  uint32_t nc;                            /* digest nonce count */
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
  uint64_t serial;        /* distinguishes a replaced connection of the same GUID */
  struct dmt_buf in, out;
  struct dmt_timer timer; /* handshake deadline, keepalive-options delay, then idle check */
  uint64_t last_rx_ms;
  uint64_t partial_since_ms; /* an incomplete APF message has been waiting since (slowloris) */
  uint64_t connected_ms;     /* wall clock */
  uint64_t power_due_ms;     /* next background power-state read (loop clock; 0 = none) */
  char guid[37];
  char peer[INET6_ADDRSTRLEN];
  uint16_t power_state;      /* CIM PowerState, 0 = unknown */
  uint8_t os_power_state;
  uint8_t power_failures;
  bool have_version, auth_requested, pfwd_accepted, keepalive_options_sent, any_message;
  bool registered;           /* holds the GUID in the registry */
  bool replaced;             /* a newer connection of the GUID took over (here or on another instance) */
  bool deactivated;          /* unprovisioned: its state was deleted, publish nothing more */
  bool seen;                 /* traffic since the last last-seen flush */
  bool power_reading, power_queued;
  uint8_t forwards;
  struct cira_device *dev;   /* set once authenticated */
  /* WS-Man client */
  struct cira_channel *channels;
  uint32_t next_channel_id;
  uint32_t msg_seq;          /* WS-Man MessageID counter */
  uint16_t inflight;         /* HTTP exchanges in flight */
  uint16_t commands;         /* commands executing */
  struct wsman_call *queue_head, *queue_tail;
};

struct cira_settings {
  unsigned keepalive_s, keepalive_options_delay_ms, window, max_inflight, max_commands, wsman_timeout_ms;
  unsigned handshake_ms, max_conns, lastseen_flush_ms, batch_ms;
  unsigned power_refresh_s, power_jitter_s, power_max_concurrent;
  size_t max_output;
  bool lastseen;
};

struct cira_server {
  struct dmt_loop *loop;
  struct dmt_log log;
  struct dmt_config *cfg;
  char instance[128];
  struct cira_settings set;
  SSL_CTX *tls;
  int listen_fd;
  char root_pem_path[512];
  char *root_pem;               /* served as /api/v1/ciracert on the health port */
  struct dmt_mqtt *mqtt;
  unsigned mqtt_ups;            /* connections to the broker so far */
  struct dmt_db *db;
  struct dmt_secrets *secrets;
  struct dmt_strmap devices;    /* guid -> struct cira_conn* (authenticated) */
  struct cira_limiter by_source; /* failed logins per source address (IPv6: per /64) */
  struct cira_limiter by_guid;   /* failed logins per claimed GUID */
  struct cmd_cache cmds;        /* correlation ids seen recently */
  struct conn_batch *batch;     /* connection-state writes waiting for the next flush */
  bool batch_running;           /* one batch at a time keeps writes of a device in order */
  struct event_batch *events;   /* event rows waiting for the next insert */
  struct dmt_timer events_timer;
  struct dmt_timer housekeeping, batch_timer, reassert_timer;
  uint64_t next_serial;
  unsigned power_reads;         /* background power-state reads in flight */
  struct cira_conn **power_wait; /* devices due for a read, waiting for a free slot (FIFO ring) */
  size_t power_wait_head, power_wait_len, power_wait_cap;
  size_t nconns;
  bool shutting_down;           /* devices are released in bulk, not one update each */
  bool shutdown_claimed;
  struct {
    uint64_t accepted, authenticated, auth_failures, throttled, protocol_errors, commands, commands_failed;
    uint64_t takeovers, http_probes;
  } count;
};

/* listener.c */
int listener_open(struct cira_server *s, const char *address, int port);
void listener_close(struct cira_server *s);

/* conn.c */
void conn_accept(struct cira_server *s, int fd, const char *peer);
void conn_ref(struct cira_conn *c);
void conn_unref(struct cira_conn *c);
/* Sends DISCONNECT(reason) if reason != 0, flushes what it can and closes. */
void conn_close(struct cira_conn *c, uint32_t reason, const char *why);
void conn_flush(struct cira_conn *c);
/* Re-arms the connection's one timer for its next deadline. */
void conn_arm_timer(struct cira_conn *c);
/* The login succeeded: larger input allowed, keepalive-options and idle timers start. */
void conn_authenticated(struct cira_conn *c);
void device_free(struct cira_device *d);

/* apf_session.c */
void apf_process(struct cira_conn *c);

/* apf_auth.c */
void auth_begin(struct cira_conn *c, const struct dmt_apf_str *user, const struct dmt_apf_str *password);

/* device_registry.c */
void registry_register(struct cira_conn *c);
void registry_unregister(struct cira_conn *c, const char *reason);
struct cira_conn *registry_find(struct cira_server *s, const char *guid);
void registry_on_takeover(struct cira_server *s, const struct dmt_mqtt_msg *m);
/* Calls fn for every registered connection (fn may close connections). */
void registry_each(struct cira_server *s, void (*fn)(struct cira_conn *c, void *ud), void *ud);
#define TAKEOVER_FILTER "dmt/_sys/cira/takeover/+"

/* state_publish.c */
struct state_snapshot {
  char guid[37], tenant[65], amt_version[32], mode[8], reason[128];
  char *hostname, *friendly_name, *tags;
  uint16_t power_state;
  bool connected;
  uint64_t connected_ms, seen_ms;
};
void snapshot_take(const struct cira_conn *c, struct state_snapshot *n);
void snapshot_release(struct state_snapshot *n);
void state_publish(struct cira_server *s, const struct state_snapshot *n);
void state_publish_conn(struct cira_conn *c);
/* An empty retained payload: the device's state is deleted (deactivation). */
void state_delete(struct cira_server *s, const char *tenant, const char *guid);
/* Queues the devices-table write; connected/disconnected are published once the row says so. */
void state_connection_changed(struct cira_conn *c, bool connected, const char *reason);
/* Writes the row and republishes the state of a device we hold again (after our will fired). */
void state_reassert(struct cira_conn *c);
void state_flush_batch(struct cira_server *s);
void state_batch_free(struct cira_server *s);
/* Records a power state learnt from the device: republishes state and emits a power event on change. */
void state_power_observed(struct cira_conn *c, int64_t power, int64_t os, const char *how, const char *requester);
/* Appends v, quoted, to a PostgreSQL array literal being built ("{" first, "}" added by the caller). */
void pg_array_append(struct dmt_buf *a, const char *v);

/* lastseen.c */
void lastseen_touch(struct cira_conn *c);
void lastseen_flush(struct cira_server *s);

/* events.c: publish on MQTT and persist to dmt.events (batched) */
void events_init(struct cira_server *s);
void events_flush(struct cira_server *s);
void event_emit(struct cira_server *s, const char *tenant, const char *guid, const char *kind, const char *action,
                bool success, const char *requester, const char *message, const void *data, size_t data_len);

/* instances.c */
void instances_init(struct cira_server *s);
int instances_start(struct cira_server *s);
void instances_on_message(struct cira_server *s, const struct dmt_mqtt_msg *m);
void instances_on_connection(struct cira_server *s, bool up);
void instances_mark_shutdown(struct cira_server *s);
/* Releases every device row still naming us (one UPDATE) and publishes them disconnected. */
void instances_release_own(struct cira_server *s);

/* certs.c */
int certs_prepare(struct cira_server *s, char *cert, size_t certlen, char *key, size_t keylen, char *err,
                  size_t errlen);

/* ------------------------------------------------------------------ WS-Man over APF */

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

/* wsman_client.c: one channel per HTTP exchange, Digest with a cached challenge and per-device nc, the
 * 401 + Connection: close retry on a fresh channel, a per-device limit on exchanges in flight, a deadline
 * on every call. */
enum wsman_error {
  WSMAN_OK = 0,
  WSMAN_TIMEOUT,      /* no answer before the deadline */
  WSMAN_CLOSED,       /* the device's connection went away */
  WSMAN_AUTH,         /* AMT refused our credentials 4 times */
  WSMAN_REFUSED,      /* the device refused the channel */
  WSMAN_BAD_RESPONSE, /* unparseable HTTP or SOAP, or RelatesTo mismatch */
  WSMAN_FAULT,        /* a SOAP fault (details in resp) */
};

typedef void (*wsman_done_fn)(struct wsman_call *call, void *ud);

struct wsman_call {
  struct cira_conn *conn;
  struct dmt_buf request;   /* SOAP envelope */
  char message_id[24];
  uint64_t deadline_ms;     /* wall clock */
  unsigned attempts;
  struct dmt_timer timer;
  struct cira_channel *ch;
  wsman_done_fn done;
  void *ud;
  bool finished, queued;
  /* result */
  enum wsman_error error;
  int http_status;
  struct dmt_wsman_response resp;
  msgpack_unpacked tree;
  bool have_tree;
  struct wsman_call *next;  /* device queue */
};

const char *wsman_next_id(struct cira_conn *c, char out[24]);
/* Takes ownership of *envelope and a reference on c; done runs exactly once (possibly after c closed). */
struct wsman_call *wsman_start(struct cira_conn *c, struct dmt_buf *envelope, const char *message_id,
                               uint64_t deadline_ms, wsman_done_fn done, void *ud);
void wsman_free(struct wsman_call *call);
/* The parsed {"Header","Body"} tree of a successful call, or NULL. */
const msgpack_object *wsman_tree(const struct wsman_call *call);
void wsman_on_channel_open(struct wsman_call *call);
void wsman_on_response(struct wsman_call *call, struct dmt_http_parser *http);
void wsman_on_channel_gone(struct wsman_call *call, enum wsman_error why);
/* Fails every queued call of a closing connection (in-flight ones fail through channels_abort). */
void wsman_abort_all(struct cira_conn *c);

/* ------------------------------------------------------------------ commands */

struct cmd;
typedef void (*cmd_next_fn)(struct cmd *c, struct wsman_call *call);
#define CMD_SAVED 8

/* A command in flight: the MQTT request it answers, its deadline and a chain of WS-Man calls. */
struct cmd {
  struct cira_server *srv;
  struct cira_conn *conn;
  char verb[32], tenant[65], guid[37], requester[256], response_topic[256], corr_key[200];
  uint8_t corr[64];
  size_t corr_len;
  uint64_t deadline_ms, started_ms;
  bool internal;              /* a background read of ours: no reply, no audit event */
  void (*on_end)(struct cmd *c, const char *error); /* internal commands: told how it ended (NULL: ok) */
  msgpack_unpacked args_up;
  char *args_buf;
  const msgpack_object *args; /* the request's args map, or NULL */
  cmd_next_fn next;
  char enum_cls[64];          /* cmd_enum: the class being enumerated */
  cmd_next_fn enum_next;
  struct power_plan plan;
  int64_t n[4];               /* verb scratch */
  char text[320];
  msgpack_sbuffer saved[CMD_SAVED]; /* trees of earlier calls a verb still needs */
  msgpack_unpacked saved_up[CMD_SAVED];
  msgpack_sbuffer acc;        /* the result being assembled */
  msgpack_packer pk;
};

void commands_init(struct cira_server *s);
void commands_free(struct cira_server *s);
void commands_on_message(struct cira_server *s, const struct dmt_mqtt_msg *m);
void commands_subscribe(struct cira_conn *c, bool on);
void commands_housekeeping(struct cira_server *s);
/* Starts an internal command (no requester, no reply) on a held device; false if it could not start. */
bool commands_internal(struct cira_conn *conn, const char *verb, void (*start)(struct cmd *c),
                       void (*on_end)(struct cmd *c, const char *error));

/* WS-Man calls of a verb; `next` runs with the finished call (check it with cmd_check first). */
void cmd_get(struct cmd *c, const char *cls, cmd_next_fn next);
void cmd_get_sel(struct cmd *c, const char *cls, const struct dmt_wsman_selector *sel, size_t nsel, cmd_next_fn next);
void cmd_enum(struct cmd *c, const char *cls, cmd_next_fn next); /* Enumerate then Pull: next gets the Pull */
void cmd_invoke(struct cmd *c, const char *cls, const char *method, const struct dmt_wsman_selector *sel, size_t nsel,
                const struct dmt_wsman_param *params, size_t n, cmd_next_fn next);
void cmd_put(struct cmd *c, const char *cls, const struct dmt_wsman_selector *sel, size_t nsel,
             const struct dmt_wsman_param *props, size_t nprops, cmd_next_fn next);
/* Keeps a call's tree for later (slot < CMD_SAVED); cmd_saved() returns it or NULL. */
void cmd_keep(struct cmd *c, unsigned slot, struct wsman_call *call);
const msgpack_object *cmd_saved(struct cmd *c, unsigned slot);
/* Finishes with the result assembled in c->acc (or none) and an HTTP-like code. */
void cmd_done(struct cmd *c, int code);
/* Finishes with an error of topics.md (offline, timeout, bad_request, device_error, unsupported, ...). */
void cmd_fail(struct cmd *c, int code, const char *error, const char *message);
/* Maps a failed call to cmd_fail; true if it did (the command is over). */
bool cmd_check(struct cmd *c, struct wsman_call *call);
bool cmd_arg_int(const struct cmd *c, const char *key, int64_t *out);
bool cmd_arg_bool(const struct cmd *c, const char *key, bool def);
const msgpack_object *cmd_arg(const struct cmd *c, const char *key);

/* verbs (wsman_power.c, wsman_info.c, wsman_logs.c, wsman_setup.c) */
void verb_power_state(struct cmd *c);
void verb_power_action(struct cmd *c);
void verb_boot_options(struct cmd *c);
void verb_power_capabilities(struct cmd *c);
void verb_general_settings(struct cmd *c);
void verb_version(struct cmd *c);
void verb_hardware_info(struct cmd *c);
void verb_features(struct cmd *c);
void verb_audit_log(struct cmd *c);
void verb_event_log(struct cmd *c);
void verb_deactivate(struct cmd *c);
/* The background power-state read (power_refresh_s), started from keepalives when due. */
void verb_power_refresh(struct cmd *c);
void power_on_keepalive(struct cira_conn *c);
void power_schedule_first(struct cira_conn *c);
void power_wait_free(struct cira_server *s);

#endif
