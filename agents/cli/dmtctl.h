/*
 * dmtctl internals: the one header shared by the command files.
 *
 * dmtctl is a one-shot command-line client. It talks MQTT v5 to the broker
 * (commands as requests with Response Topic + Correlation Data + Message
 * Expiry, device state from the retained `state` topics, events live) and
 * HTTP to the REST bridge only where MQTT cannot serve (RPS objects, the
 * persisted event log). See docs/dmtctl.md.
 *
 * Layout: args.c (flags), output.c (table/json/yaml/name), progress.c,
 * request.c (MQTT session, request/response, snapshot, bulk fan-out),
 * http.c (blocking HTTP/1.1 client for the bridge), timefmt.c, one
 * cmd_*.c per command group, completion.c, dmtctl_main.c (registry,
 * configuration, dispatch, help).
 */
#ifndef DMTCTL_H
#define DMTCTL_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "dmt/config.h"
#include "dmt/evloop.h"
#include "dmt/log.h"
#include "dmt/mqtt.h"
#include "dmt/strmap.h"

/* ---- exit codes (documented in --help and docs/dmtctl.md) ---- */
enum ctl_exit {
  CTL_OK = 0,          /* everything succeeded */
  CTL_USAGE = 1,       /* bad command line, configuration or local file */
  CTL_PARTIAL = 2,     /* bulk: some targets succeeded or failed differently */
  CTL_AUTH = 3,        /* the broker or bridge refused our token */
  CTL_NOT_FOUND = 4,   /* no such device / object */
  CTL_OFFLINE = 5,     /* the device is not connected */
  CTL_TIMEOUT = 6,     /* no answer before the deadline */
  CTL_UNREACHABLE = 7, /* broker or bridge could not be reached */
  CTL_FAILED = 8,      /* the device or server answered with an error */
};

/* Short lowercase name of an outcome as printed in result tables ("ok", "offline", ...). */
const char *ctl_exit_name(enum ctl_exit e);
/* Maps a command_reply `error` (schemas/topics.md) to an outcome. */
enum ctl_exit ctl_exit_from_error(const char *error);
/* Aggregate over several outcomes: all ok -> ok; all the same failure -> it; else partial. */
enum ctl_exit ctl_exit_merge(const enum ctl_exit *v, size_t n);

enum ctl_format { CTL_FMT_TABLE, CTL_FMT_WIDE, CTL_FMT_JSON, CTL_FMT_YAML, CTL_FMT_NAME };

/* ---- the program's state ---- */
struct ctl {
  struct dmt_config cfg;
  enum ctl_format fmt;
  char tenant[65];        /* "" = DMT's default tenant */
  char tenant_topic[65];  /* the topic level: tenant or "_default" */
  int timeout_ms;         /* per command */
  int parallel;           /* bulk: requests in flight */
  int progress;           /* -1 auto (stderr is a terminal), 0 off, 1 on */
  bool verbose;
  char *token;            /* from the token file; never printed, wiped at exit */
  struct dmt_log log;
  FILE *out, *err;
};

/* Reads the token file named in the configuration (if any) into c->token. */
int ctl_load_token(struct ctl *c);
/* Prints "dmtctl: <msg>" on stderr; returns code. */
int ctl_fail(struct ctl *c, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* ---- command-line flags (args.c) ---- */
struct ctl_flag {
  const char *name;  /* long name without "--"; global flags that are settings use the setting's name */
  char short_name;   /* or 0 */
  const char *arg;   /* value placeholder ("GUID"), or NULL for a switch */
  const char *help;
  const char *complete; /* completion hint: NULL, "guid", "file", "kind", or "a|b|c" */
};

#define CTL_MAX_POS 4096
#define CTL_MAX_SET 32

struct ctl_args {
  const char *pos[CTL_MAX_POS];
  size_t npos;
  struct {
    const struct ctl_flag *flag;
    const char *value; /* "" for switches */
  } set[CTL_MAX_SET];
  size_t nset;
  bool help;
};

/* Last value given for a flag, or NULL. */
const char *ctl_arg(const struct ctl_args *a, const char *name);
bool ctl_has(const struct ctl_args *a, const char *name);

struct ctl_cmd {
  const char *name;        /* "devices list", "power off", "info" */
  const char *args;        /* positional synopsis, e.g. "<guid>..." */
  const char *summary;     /* one line */
  const char *description; /* paragraphs and examples for --help */
  const struct ctl_flag *flags; /* command flags, terminated by a NULL name; may be NULL */
  int min_pos, max_pos;    /* positional arguments (max -1 = any) */
  int (*run)(struct ctl *c, const struct ctl_cmd *cmd, struct ctl_args *a);
  int code;                /* per-command datum (e.g. the DMT power action code) */
  const char *complete_pos; /* completion hint for positionals: NULL, "guid", "a|b" */
};

/*
 * Parses argv[0..argc) (program name excluded). Words are matched against
 * cmds to find the command; flags are the global ones and, once the command
 * is known, that command's. Sets *cmd (NULL if no command word matched; *group
 * then names a group word if one was given). Returns 0 or -1 with err set.
 */
int ctl_parse(int argc, char **argv, const struct ctl_flag *globals, const struct ctl_cmd *const *cmds, size_t ncmds,
              const struct ctl_cmd **cmd, const char **group, struct ctl_args *a, char *err, size_t errlen);
/* Finds a flag by long name (or short name if name is one character). */
const struct ctl_flag *ctl_flag_find(const struct ctl_flag *flags, const char *name, char short_name);

/* ---- output (output.c) ---- */
int ctl_parse_format(const char *s, enum ctl_format *out);
/* JSON (indented) or YAML of any value. */
void ctl_print_json(FILE *out, const json_t *v);
void ctl_print_yaml(FILE *out, const json_t *v);
/* Prints v as the configured structured format (json or yaml). */
void ctl_print_value(struct ctl *c, const json_t *v);
/* Quotes a scalar for YAML if it needs it (into buf); returns buf or s itself. */
const char *ctl_yaml_scalar(const char *s, char *buf, size_t buflen);

struct ctl_table {
  size_t ncols, nrows, cap;
  const char *const *headers;
  char **cells; /* nrows * ncols, owned */
};
void ctl_table_init(struct ctl_table *t, const char *const *headers, size_t ncols);
/* Adds a row of ncols strings (NULL prints as "-"); copies them. */
void ctl_table_row(struct ctl_table *t, const char *const *cells);
void ctl_table_print(FILE *out, const struct ctl_table *t);
void ctl_table_free(struct ctl_table *t);
/* "Key:  value" lines with aligned values. */
void ctl_print_kv(FILE *out, const char *const *keys, const char *const *values, size_t n);

/* Text of a JSON scalar (string, number, boolean) into buf; "" for null/absent. */
const char *ctl_json_text(const json_t *v, char *buf, size_t buflen);

/* ---- time (timefmt.c) ---- */
/* "2025-01-31T12:00:00.123Z" (UTC). */
const char *ctl_time_fmt(uint64_t ms, char *buf, size_t buflen);
/* Durations "500ms", "30s", "10m", "2h", "7d", or a bare number of seconds. */
int ctl_parse_duration_ms(const char *s, uint64_t *out);
/* A point in time: a duration ago ("10m"), RFC 3339 ("2025-01-31T12:00:00Z", zone optional = UTC,
 * date alone allowed), or unix epoch milliseconds (13+ digits). */
int ctl_parse_time(const char *s, uint64_t now_ms, uint64_t *out_ms);

/* ---- device helpers ---- */
/* Lowercases and validates an 8-4-4-4-12 GUID into out[37]; false if malformed. */
bool ctl_guid_norm(const char *in, char out[37]);
bool ctl_tenant_valid(const char *t);
/* CIM PowerState and OSPowerSavingState names. */
const char *ctl_power_name(int64_t ps);
const char *ctl_os_power_name(int64_t s);

/* ---- progress (progress.c) ---- */
struct ctl_progress {
  FILE *out;
  bool on;
  const char *label;
  size_t total, done, ok, failed;
  uint64_t start_ms, drawn_ms;
};
void ctl_progress_start(struct ctl_progress *p, struct ctl *c, const char *label, size_t total);
void ctl_progress_step(struct ctl_progress *p, bool ok);
void ctl_progress_finish(struct ctl_progress *p);
/* The bar text for given counts (for tests): "[#####.....]  50/100 ok 48 failed 2". */
void ctl_progress_render(char *buf, size_t len, size_t done, size_t total, size_t ok, size_t failed, int width);

/* ---- MQTT session (request.c) ---- */
struct ctl_session;
typedef void (*ctl_msg_fn)(void *ud, const struct dmt_mqtt_msg *m);

/* What came back for one request. */
struct ctl_reply {
  enum ctl_exit status;
  int code;             /* command_reply code, 0 when none arrived */
  const char *error;    /* command_reply error, or our own ("timeout", "offline", ...) */
  const char *message;
  json_t *result;       /* the result tree as JSON, or NULL (borrowed during the callback) */
};

/* Connects (bounded by the command timeout); returns CTL_OK, CTL_AUTH, CTL_UNREACHABLE or CTL_TIMEOUT. */
int ctl_session_open(struct ctl *c, struct ctl_session **out);
void ctl_session_close(struct ctl_session *s);
/* Messages that are not replies to our requests go here (state, events). */
void ctl_session_on_message(struct ctl_session *s, ctl_msg_fn fn, void *ud);
/*
 * Subscribes to filters and returns once the broker has delivered everything
 * retained under them: a probe published to our own inbox after the
 * subscription comes back after the retained messages (one connection, in
 * order). CTL_OK or CTL_TIMEOUT.
 */
int ctl_session_subscribe(struct ctl_session *s, const char *const *filters, size_t n);
/* Runs the loop until ctl_session_stop() or Ctrl-C (returns true if interrupted). */
bool ctl_session_run(struct ctl_session *s);
void ctl_session_stop(struct ctl_session *s);
bool ctl_session_interrupted(const struct ctl_session *s);
/* Runs the loop for ms milliseconds (or until Ctrl-C). */
void ctl_session_run_for(struct ctl_session *s, uint64_t ms);

/*
 * Publishes a command_request for verb on topic with args (may be NULL) and
 * a deadline of c->timeout_ms; done runs exactly once with the reply, or with
 * status CTL_TIMEOUT when nothing came back in time.
 */
typedef void (*ctl_reply_fn)(void *ud, const struct ctl_reply *r);
int ctl_request(struct ctl_session *s, const char *topic, const char *verb, const json_t *args, ctl_reply_fn done,
                void *ud);

/* Retained device states of the tenant: guid -> json_t* (decoded device_state). */
struct ctl_snapshot {
  struct dmt_strmap states;
};
/* All states of the tenant (guids == NULL) or of the given devices. */
int ctl_snapshot_load(struct ctl_session *s, struct ctl_snapshot *snap, const char *const *guids, size_t n);
json_t *ctl_snapshot_get(const struct ctl_snapshot *snap, const char *guid);
/* Sorted GUIDs of devices carrying any of the comma-separated tags (malloc'd array of borrowed keys). */
const char **ctl_snapshot_by_tag(const struct ctl_snapshot *snap, const char *tags, size_t *n);
/* Sorted GUIDs of every device. */
const char **ctl_snapshot_all(const struct ctl_snapshot *snap, size_t *n);
void ctl_snapshot_free(struct ctl_snapshot *snap);
/* device_state msgpack -> JSON object (NULL if it does not decode). */
json_t *ctl_state_to_json(const void *payload, size_t len);

/* ---- bulk requests (request.c) ---- */
struct ctl_item {
  char guid[37];
  const char *verb;
  json_t *args;           /* borrowed */
  enum ctl_exit status;
  int code;
  char *error, *message;  /* owned */
  json_t *result;         /* owned */
  bool check_return;      /* an ok reply with a non-zero ReturnValue is a failure (ctl_item_check_return) */
  const char *return_key; /* where ReturnValue sits: "Body" or NULL for the top level */
  bool skipped;           /* decided without sending (offline / not found from the retained state) */
  bool done;              /* an outcome was recorded */
};

/*
 * Sends every item (at most c->parallel in flight), with a progress bar on
 * stderr when enabled. Items whose device the snapshot says is unknown or
 * disconnected are answered locally (not found / offline) without sending.
 */
void ctl_bulk_run(struct ctl_session *s, struct ctl_item *items, size_t n, const struct ctl_snapshot *snap,
                  const char *label);
void ctl_items_free(struct ctl_item *items, size_t n);
/*
 * A reply can be "ok" at the protocol level while the firmware refused the
 * action (DMT answers 200 with a non-zero ReturnValue): turns such items into
 * failures named by ReturnValueStr. key is the object holding ReturnValue
 * ("Body" for power actions, NULL for the top level).
 */
void ctl_item_check_return(struct ctl_item *it, const char *key);

/* A result column for ctl_report(): the cell text of one item. */
struct ctl_column {
  const char *header;
  const char *(*cell)(const struct ctl_item *it, char *buf, size_t len);
};
/*
 * Prints a per-device result table (GUID, extra columns, RESULT, DETAIL) and
 * a summary line, or the same as JSON/YAML ({operation, total, counts,
 * results}), or with -o name the GUIDs that succeeded. Returns the merged
 * exit code (ctl_exit_merge).
 */
int ctl_report(struct ctl *c, const char *operation, const struct ctl_item *items, size_t n,
               const struct ctl_column *cols, size_t ncols);

/* Builds dmt/v1/<tenant>/devices/<guid>/<suffix>. */
void ctl_device_topic(const struct ctl *c, char *buf, size_t len, const char *guid, const char *suffix);

/*
 * Resolves positional GUIDs or --tag into items (one per device, same verb
 * and args) and loads the snapshot they are checked against. Returns CTL_OK or
 * an exit code (usage error, not found when a tag matches nothing, ...).
 */
int ctl_targets(struct ctl *c, struct ctl_session *s, struct ctl_args *a, const char *verb, json_t *args,
                struct ctl_snapshot *snap, struct ctl_item **items, size_t *n);

/* ---- HTTP to the bridge (http.c) ---- */
struct ctl_http_resp {
  int status;
  char *body;
  size_t len;
  json_t *json; /* parsed body when it is JSON */
};
/*
 * One blocking request to base_url + path (path includes any query). The
 * token goes in `Authorization: Bearer`. Returns CTL_OK when a response was
 * received (whatever its status), else CTL_UNREACHABLE / CTL_TIMEOUT / CTL_USAGE
 * with err set.
 */
int ctl_http(struct ctl *c, const char *method, const char *base_url, const char *path, const char *body,
             struct ctl_http_resp *r, char *err, size_t errlen);
void ctl_http_resp_free(struct ctl_http_resp *r);
/* Exit code for an HTTP status; and the error text of a DMT-style error body. */
enum ctl_exit ctl_http_exit(int status);
const char *ctl_http_error_text(const struct ctl_http_resp *r, char *buf, size_t len);
/* Appends "&key=value" (or "?key=value") percent-encoded to url (size len). */
void ctl_url_param(char *url, size_t len, const char *key, const char *value);
/* The bridge base URL for MPS-side routes and for RPS-side routes. */
const char *ctl_bridge_url(const struct ctl *c);
const char *ctl_rps_url(const struct ctl *c, char *buf, size_t len);

/* ---- events (cmd_events.c): de-duplication across the history/live boundary ---- */
struct ctl_evdedup {
  struct dmt_strmap ids; /* id -> (uintptr_t) ts_ms */
  uint64_t horizon_ms;   /* ids older than this need not be remembered */
};
void ctl_evdedup_init(struct ctl_evdedup *d, uint64_t horizon_ms);
/* True the first time an id is offered; ids with ts below the horizon are admitted without being remembered. */
bool ctl_evdedup_admit(struct ctl_evdedup *d, const char *id, uint64_t ts_ms);
void ctl_evdedup_free(struct ctl_evdedup *d);
/* Normalises an event from MQTT (msgpack) or from the bridge (JSON, several spellings) to one JSON shape. */
json_t *ctl_event_from_msgpack(const void *payload, size_t len);
json_t *ctl_event_normalize(const json_t *in);
/* One event as a text line (no newline). */
void ctl_event_line(const json_t *ev, bool wide, char *buf, size_t len);

/* ---- completion (completion.c) ---- */
int ctl_completion_print(FILE *out, const char *shell, const struct ctl_flag *globals,
                         const struct ctl_cmd *const *cmds, size_t ncmds);

/* ---- command groups ---- */
extern const struct ctl_cmd ctl_cmds_devices[];
extern const struct ctl_cmd ctl_cmds_power[];
extern const struct ctl_cmd ctl_cmds_info[];
extern const struct ctl_cmd ctl_cmds_events[];
extern const struct ctl_cmd ctl_cmds_rps[];
/* Each array ends with an entry whose name is NULL. */

#endif
