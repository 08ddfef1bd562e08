/*
 * A device command in flight: the MQTT request it answers, its deadline, and
 * a continuation-passing chain of WS-Man calls. Each verb is a small state
 * machine written as functions that issue a call and name the function to
 * run on its answer; cmd_done() publishes the reply and the audit event.
 */
#ifndef DMT_CIRA_COMMAND_H
#define DMT_CIRA_COMMAND_H

#include <msgpack.h>

#include "wsman_client.h"

struct cmd;
typedef void (*cmd_next_fn)(struct cmd *c, struct wsman_call *call);

struct cmd {
  struct cira_server *srv;
  struct cira_conn *conn;
  char verb[32], tenant[65], guid[37], requester[256], response_topic[256], corr_key[200];
  uint8_t corr[64];
  size_t corr_len;
  uint64_t deadline_ms;
  uint64_t started_ms;        /* monotonic, for the log */
  msgpack_unpacked args_up;
  char *args_buf;
  const msgpack_object *args; /* the request's args map, or NULL */
  cmd_next_fn next;
  char enum_cls[64];          /* cmd_enum: the class being enumerated */
  cmd_next_fn enum_next;      /* cmd_enum: runs on the Pull */
  int64_t n[4];               /* verb scratch */
  char text[128];
  msgpack_sbuffer acc;        /* verb scratch: a result being assembled */
  msgpack_packer pk;
  unsigned parts;
};

/* Issue WS-Man calls; `next` runs with the finished call (check call->error first). */
void cmd_get(struct cmd *c, const char *cls, cmd_next_fn next);
/* Enumerate then Pull: `next` receives the Pull call. */
void cmd_enum(struct cmd *c, const char *cls, cmd_next_fn next);
void cmd_invoke(struct cmd *c, const char *cls, const char *method, const struct dmt_wsman_param *params, size_t n,
                cmd_next_fn next);
void cmd_put(struct cmd *c, const char *cls, const struct dmt_wsman_selector *sel, size_t nsel,
             const struct dmt_wsman_param *props, size_t nprops, cmd_next_fn next);

/* Finishes with a result tree (msgpack bytes, may be NULL) and HTTP-like code. */
void cmd_done(struct cmd *c, int code, const void *result, size_t len);
/* Finishes with an error from topics.md (offline, timeout, bad_request, device_error, unsupported...). */
void cmd_fail(struct cmd *c, int code, const char *error, const char *message);
/* Maps a failed call to cmd_fail; returns true if it did (the command is over). */
bool cmd_check(struct cmd *c, struct wsman_call *call);

/* Argument helpers. */
bool cmd_arg_int(const struct cmd *c, const char *key, int64_t *out);
bool cmd_arg_bool(const struct cmd *c, const char *key, bool def);

/* AMT return codes as DMT names them (AMTStatusCodes). */
const char *amt_status_name(int64_t code);

/* Verb entry points (wsman_power.c, wsman_info.c, wsman_logs.c, wsman_setup.c). */
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

#endif
