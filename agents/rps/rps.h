/*
 * dmt-rps internals: the RPS agent (DMT RPS replacement on the RPC WebSocket
 * protocol). One thread runs libwebsockets' service loop and owns all state:
 * connections, jobs and their state machines. Work that could stall it runs
 * elsewhere and comes back through the loop's task queue (lws_cancel_service
 * wakes the loop, LWS_CALLBACK_EVENT_WAIT_CANCELLED drains the queue):
 *  - PostgreSQL and the secret store: dmt_db worker threads (lookup.c,
 *    device_register.c);
 *  - PKCS#12 decryption and RSA signing: a small pool of signing threads of
 *    our own (acm_sign.c), sized to the CPUs, so a burst of ACM activations
 *    uses every core and never delays another device's round trip;
 *  - MQTT: Paho's threads, marshalled by dmt_mqtt.
 *
 * A job is one activation, deactivation, maintenance task or remote command.
 * It runs a stack of flows (flow.c): each flow is a table of states, each
 * state an entry action plus transitions on events (WS-Man reply, fault,
 * timeout, disconnect). A job is reference-counted: every asynchronous
 * operation holds a reference and checks `ended` when it completes.
 *
 * References: ../shared/reference/rps-activation.md (§ numbers below).
 */
#ifndef DMT_RPS_H
#define DMT_RPS_H

#include <jansson.h>
#include <libwebsockets.h>
#include <msgpack.h>
#include <openssl/evp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

#include "dmt/buf.h"
#include "dmt/config.h"
#include "dmt/db.h"
#include "dmt/digest.h"
#include "dmt/log.h"
#include "dmt/mqtt.h"
#include "dmt/secrets.h"
#include "dmt/strmap.h"
#include "dmt/workq.h"
#include "dmt/wsman.h"

#define RPS_PROTOCOL_VERSION "4.0.0"
#ifndef RPS_APP_VERSION
#define RPS_APP_VERSION "0.1.0"
#endif
#define RPS_MAX_MESSAGE 102400u /* DMT closes the socket on larger text messages (1024*10*10) */
#define RPS_AMT_PORT 16992
#define RPS_ADMIN_USER "admin"

struct rps;
struct rps_conn;
struct rps_job;
struct flow;

/* ------------------------------------------------------------------ */
/* rpc_message.c: the JSON envelope (§1.2) and the device payload (§1.5) */
/* ------------------------------------------------------------------ */

/* One decoded client message. Strings are owned; NULL when absent. */
struct rpc_msg {
  char *method, *api_key, *app_version, *protocol_version, *status, *message, *payload, *tenant_id, *fqdn;
};

/*
 * Strict decode: a JSON object of at most RPS_MAX_MESSAGE bytes whose known
 * keys are strings (payload may also be null). Returns 0, or -1 with err.
 */
int rpc_msg_decode(const char *text, size_t len, struct rpc_msg *m, char *err, size_t errlen);
void rpc_msg_free(struct rpc_msg *m);
/* The server's message: {"method","apiKey","appVersion","protocolVersion","status","message","payload","tenantId"}.
 * payload NULL encodes null. Returns malloc'd JSON text. */
char *rpc_msg_encode(const char *method, const char *status, const char *message, const char *payload);

/* Standard base64 (OpenSSL EVP): decode accepts padding and rejects anything else. */
int rps_b64_decode(const char *in, size_t inlen, uint8_t **out, size_t *outlen);
char *rps_b64_encode(const uint8_t *in, size_t len);

struct rpc_ip_config {
  bool present, dhcp, is_static, ipsync;
  char ip[64], netmask[64], gateway[64], dns1[64], dns2[64];
};

/* The activation/deactivation/maintenance payload (§1.5). password is a secret: rpc_device_free wipes it. */
struct rpc_device {
  char ver[32], build[16], sku[16], features[64];
  char uuid[37];          /* lowercase GUID */
  char username[64], password[64];
  int current_mode;       /* 0/1/2; -1 when absent or not an integer */
  char hostname[256], fqdn[256], friendly_name[256];
  char **cert_hashes;     /* lowercase hex */
  size_t ncert_hashes;
  bool has_cert_hashes;
  struct rpc_ip_config ip;
  bool has_hostname_info;
  char os_hostname[256], os_dns_suffix[256];
  bool tls_enforced, tls_tunnel;
};

/*
 * Parses the decoded payload JSON as DMT's ClientMsgJsonParser + Validator do:
 * "Failed to parse client message payload. ..." / "Invalid payload from client"
 * / "<client> - Missing uuid from payload" / "<client> - uuid not valid length".
 * A 16-byte uuid array is converted (§1.5 rule 1). 0 or -1 with err.
 */
int rpc_device_decode(const uint8_t *json, size_t len, const char *client_id, struct rpc_device *d, char *err,
                      size_t errlen);
void rpc_device_free(struct rpc_device *d);

/* ------------------------------------------------------------------ */
/* rpc_command.c: the method string is a command line (§1.4)           */
/* ------------------------------------------------------------------ */

/* What DMT's CommandParser extracts; values are JavaScript String() renderings. */
struct rpc_command {
  char *method;        /* the real method ("activate", ...); the raw string if no text was assumed */
  char *profile;       /* NULL when absent or falsy */
  char *password;      /* NULL when absent or falsy (e.g. rpc-go's "-password x" quirk) */
  bool force;
  char *task;          /* maintenance: synctime, syncip, changepassword, synchostname, syncdeviceinfo */
  char *task_arg;      /* changepassword: the next bare word */
};

/* Parses like minimist with CommandParser's options. Never fails on odd input. */
void rpc_command_parse(const char *method, struct rpc_command *c);
void rpc_command_free(struct rpc_command *c);
/* JavaScript Number -> String (minimist turns numeric-looking values into numbers). */
void rps_js_number_string(double v, char *out, size_t outlen);

/*
 * Protocol version check (§1.2): 1 compatible, 0 not, -1 unparsable (err gets
 * DMT's text: "version must be defined", "invalid version string length",
 * "failed to parse major/minor/revision").
 */
int rpc_version_check(const char *client, const char *server, char *err, size_t errlen);

/* ------------------------------------------------------------------ */
/* amt_password.c                                                      */
/* ------------------------------------------------------------------ */

/* NetworkAdminPassword of Setup/AdminSetup: lowercase hex MD5("admin:<realm>:<password>") (§2.4). */
void amt_network_admin_password(const char *realm, const char *password, char out[DMT_DIGEST_HEX]);
/* SetAdminAclEntryEx DigestPassword: the same 16 bytes, base64. out >= 25 bytes. */
void amt_acl_digest_password(const char *realm, const char *password, char out[32]);
/* DMT's random password (§8): 16 characters, upper + lower + digit + one of $@!%*#. out >= 17. */
int amt_random_password(char *out, size_t outlen);
/* AMT digest realm: "Digest:" + 32 hex digits. */
bool amt_realm_valid(const char *realm);

/* ------------------------------------------------------------------ */
/* acm_sign.c: provisioning certificate, root hashes, signature, pool  */
/* ------------------------------------------------------------------ */

/* A decoded provisioning certificate (PKCS#12), shared by the jobs that use it. */
struct acm_chain {
  int refs;
  EVP_PKEY *key;          /* leaf private key: never written anywhere */
  char **certs_b64;       /* leaf -> root, DER base64 without armour (AddNextCertInChain) */
  size_t ncerts;
  uint8_t root_sha1[20], root_sha256[32], root_sha384[48];
  char leaf_cn[256];
  int64_t not_before_max, not_after_min; /* unix seconds: the chain is valid within [max nb, min na] */
};

/* Loads OpenSSL's default and legacy providers (legacy RC2/3DES PKCS#12 files). Idempotent. */
int acm_init_providers(void);
/* At exit (after every use of OpenSSL): drops the providers loaded above. */
void acm_release_providers(void);
/*
 * Decrypts a PKCS#12, finds the leaf (the certificate matching the private
 * key), orders the chain leaf -> intermediates -> root by issuer, and
 * fingerprints the root. Errors: "Failed to extract domain certificate" class.
 */
int acm_chain_load(const uint8_t *p12, size_t len, const char *password, struct acm_chain **out, char *err,
                   size_t errlen);
struct acm_chain *acm_chain_ref(struct acm_chain *c);
void acm_chain_unref(struct acm_chain *c);
/* §2.2: one device hash (40/64/96 hex, any case) equals the root's fingerprint of that length. */
bool acm_root_trusted(const struct acm_chain *c, char *const *hashes, size_t n);
/* The last two DNS labels of a and b match (DMT's certificate/suffix rule), case-insensitively. */
bool acm_domain_matches(const char *cn, const char *fqdn);
/* RSASSA-PKCS1-v1_5 / SHA-256 over config_nonce || mc_nonce, base64 (§1.9). 0 or -1. */
int acm_sign(EVP_PKEY *key, const uint8_t *config_nonce, size_t cn_len, const uint8_t *mc_nonce, size_t mc_len,
             char **sig_b64);

/* Worker threads for CPU-heavy work; done() runs on the owner loop. */
struct work_pool;
struct work_pool *work_pool_new(unsigned threads, struct dmt_workq *owner);
void work_pool_free(struct work_pool *p);
int work_pool_submit(struct work_pool *p, void (*work)(void *arg), void (*done)(void *arg), void *arg);

/* ------------------------------------------------------------------ */
/* lookup.c: profile, CIRA config, domain, device record (DB worker)    */
/* ------------------------------------------------------------------ */

struct rps_proxy {
  char address[256], dns_suffix[192];
  int info_format, port;
};

struct rps_profile {
  bool found;
  char name[128], activation[24];
  bool random_amt, random_mebx;
  char *amt_password, *mebx_password; /* from profiles/<name>; "" when random */
  char cira_name[128];
  char **tags;
  size_t ntags;
  int dhcp, ip_sync;                  /* -1 = NULL */
  char user_consent[8];
  int ider, kvm, sol;                 /* -1 = NULL */
  int tls_mode;                       /* -1 = NULL */
  size_t nwifi;
  char ieee8021x[128];
  struct rps_proxy *proxies;
  size_t nproxies;
};

struct rps_cira {
  bool found;
  char name[128], address[256], username[64], common_name[256];
  int port, format, auth_method;
  char *mps_password;   /* CIRAConfigs/<name>.MPS_PASSWORD, NULL = random per device */
  char *root_der_b64;   /* MPSCerts.ROOT_CERTIFICATE (else the config's mps_root_certificate), DER base64 */
};

struct rps_record {
  bool exists;          /* a dmt.devices row */
  char tenant[65];      /* the row's tenant */
  char mps_username[64];
  bool has_secret;
  char *amt_password, *mebx_password, *mps_password;
};

struct rps_domain {
  bool found;
  char name[128], suffix[256];
  uint8_t *p12;
  size_t p12_len;
  char *p12_password;
};

struct rps_lookup {
  /* input */
  char tenant[65], guid[37], profile_name[128], fqdn[256];
  bool want_profile, want_domain, want_record;
  /* output */
  int rc;                 /* 0, or -1 (database/secret store unavailable: err) */
  char err[256];
  struct rps_profile profile;
  struct rps_cira cira;
  struct rps_domain domain;
  struct rps_record record;
};

/* DNS suffix candidates of fqdn, longest first, never the bare TLD (§2.2). Returns the count. */
size_t rps_suffix_candidates(const char *fqdn, char out[][256], size_t max);
/* Runs the lookup on a DB worker; done(j) on the loop with j->lk filled. */
int lookup_start(struct rps_job *j, void (*done)(struct rps_job *j));
void lookup_free(struct rps_lookup *lk);

/* ------------------------------------------------------------------ */
/* device_register.c: the device record (row + devices/<guid> secret)   */
/* ------------------------------------------------------------------ */

/* Writes the record as the job knows it (one transaction); done(j, ok) on the loop. */
int device_register_save(struct rps_job *j, void (*done)(struct rps_job *j, bool ok));
/* Maintenance: the secret's AMT_PASSWORD (other fields kept); the device_info facts. -1 without a record. */
int device_register_update_password(struct rps_job *j, void (*done)(struct rps_job *j, bool ok));
int device_register_update_info(struct rps_job *j, void (*done)(struct rps_job *j, bool ok));
/* Removes row + secret of guid in tenant (one transaction). */
int device_register_delete(struct rps_job *j, void (*done)(struct rps_job *j, bool ok));

/* ------------------------------------------------------------------ */
/* ws_server.c: the WebSocket server                                   */
/* ------------------------------------------------------------------ */

int ws_server_start(struct rps *s, char *err, size_t errlen);
/* Shutdown: every connection is closed (their jobs end as disconnected); then stop destroys the context. */
void ws_server_close_all(struct rps *s);
void ws_server_stop(struct rps *s);
/* Queues a text message on the job's connection (no-op when it is gone). */
void conn_send_text(struct rps_conn *c, char *json /* takes ownership */);
/* Called by the job layer when the job ends or the connection must close. */
void conn_job_ended(struct rps_conn *c, struct rps_job *j);
const char *conn_client_id(const struct rps_conn *c);
struct rps *conn_server(const struct rps_conn *c);

/* Timers on the lws loop. */
typedef void (*rps_timer_fn)(lws_sorted_usec_list_t *sul);
void rps_timer_start(struct rps *s, lws_sorted_usec_list_t *sul, rps_timer_fn fn, uint64_t ms);
void rps_timer_stop(lws_sorted_usec_list_t *sul);
uint64_t rps_now_us(void);

/* ------------------------------------------------------------------ */
/* wsman_rpc.c: WS-Man through the RPC client (§1.6, §2.7)             */
/* ------------------------------------------------------------------ */

struct wsman_session {
  char user[64], password[64];        /* digest credentials in use (secret) */
  struct dmt_digest_challenge challenge;
  bool have_challenge;
  uint32_t nc;
  unsigned msg_id;
  unsigned unauth;                    /* consecutive 401s */
  unsigned attempts;                  /* sends of the current request */
  bool pending, one_shot;
  char pending_id[16];
  struct dmt_buf body;                /* the SOAP envelope in flight (kept for retries) */
  char label[96];                     /* "Get AMT_GeneralSettings" for logs */
  char last_error[256];               /* the last transport/fault detail (events, logs; never secret) */
  uint64_t sent_us;
};

/* What a state's reply handler sees. */
struct wsman_reply {
  int http_status;                    /* 200, 400, 500 ... */
  bool parsed;                        /* a SOAP envelope was parsed */
  struct dmt_wsman_response resp;     /* when parsed (faults too) */
  msgpack_unpacked tree;              /* resp.tree unpacked */
  const msgpack_object *body;         /* the Body map, or NULL */
};

/* Request builders: each sends one request and arms the timeout. 0 or -1 (job failed). */
int ws_get(struct rps_job *j, const char *cls, const struct dmt_wsman_selector *sel, size_t nsel);
int ws_enumerate(struct rps_job *j, const char *cls);
int ws_pull(struct rps_job *j, const char *cls, const char *context);
int ws_put(struct rps_job *j, const char *cls, const struct dmt_wsman_selector *sel, size_t nsel,
           const struct dmt_wsman_param *props, size_t nprops);
int ws_put_xml_selectors(struct rps_job *j, const char *cls, const char *selectors_xml,
                         const struct dmt_wsman_param *props, size_t nprops);
int ws_delete(struct rps_job *j, const char *cls, const struct dmt_wsman_selector *sel, size_t nsel);
int ws_invoke(struct rps_job *j, const char *cls, const char *method, const struct dmt_wsman_selector *sel,
              size_t nsel, const struct dmt_wsman_param *params, size_t nparams);
/* The RPC client's "response" message (payload base64 of the raw HTTP response). */
void wsman_on_response(struct rps_job *j, const char *payload_b64);
void wsman_session_reset(struct wsman_session *w);
void wsman_set_credentials(struct rps_job *j, const char *user, const char *password);
/* Helpers for reply handlers. */
bool wsman_ok(const struct wsman_reply *r);
const msgpack_object *wsman_get_obj(const struct wsman_reply *r, const char *path);
bool wsman_text(const struct wsman_reply *r, const char *path, char *out, size_t outlen);
long long wsman_int(const struct wsman_reply *r, const char *path, long long def);
/*
 * Put of an instance read earlier (AMT wants every property, in its order):
 * the JSON object's scalar and list members become properties, `drop` names
 * are left out, `set` values replace (or are appended). 0 or -1 (job failed).
 */
int ws_put_instance(struct rps_job *j, const char *cls, const json_t *inst, const struct dmt_wsman_selector *sel,
                    size_t nsel, const char *const *drop, const struct dmt_wsman_param *set, size_t nset);
/* The instance at Body.<cls> (Get) as JSON, or NULL. */
json_t *wsman_instance_json(const struct wsman_reply *r, const char *cls);
/* ReturnValue of <Method>_OUTPUT, or -1. */
long long wsman_return_value(const struct wsman_reply *r, const char *method);
/* Items of a PullResponse for cls (NULL when none; "" items count as none). */
const msgpack_object *wsman_pull_items(const struct wsman_reply *r, const char *cls);

/* ------------------------------------------------------------------ */
/* flow.c: the state-machine engine                                    */
/* ------------------------------------------------------------------ */

enum flow_event {
  FE_OK = 1,       /* the step succeeded */
  FE_ALT,          /* the step chose its alternative branch (guard false, nothing to do, ...) */
  FE_FAIL,         /* the step failed (bad ReturnValue, fault, HTTP error, DB error) */
  FE_TIMEOUT,      /* no answer after every attempt */
  FE_DISCONNECT,   /* the RPC client went away */
};

#define FLOW_NEXT 0      /* transition target: the next row */
#define FLOW_END_OK (-1) /* the flow finished successfully */
#define FLOW_END_FAIL (-2)
#define FLOW_MAX_EDGES 4
#define FLOW_MAX_DEPTH 6

struct flow_edge {
  int8_t event;      /* enum flow_event */
  int16_t to;        /* state index + 1, FLOW_END_OK or FLOW_END_FAIL; see FLOW_TO */
};
#define FLOW_TO(idx) ((int16_t)((idx) + 1))

/* One row of a flow's table. */
struct flow_state {
  const char *name;
  /* Entry action: starts the step (sends WS-Man, submits DB or signing work,
   * arms a timer) or decides at once with flow_post(). */
  void (*enter)(struct rps_job *j);
  /* For WS-Man steps: turns the device's answer into an event. */
  int (*reply)(struct rps_job *j, const struct wsman_reply *r);
  /* Or: run a sub-flow; its outcome (FE_OK/FE_FAIL) is this state's event. */
  const struct flow *call;
  bool (*skip)(const struct rps_job *j); /* for call states: true = skip (FE_OK) */
  bool soft;                /* a failure here continues with the next row (DMT's sub-machine semantics) */
  bool one_shot;            /* the WS-Man request is never re-sent (AdminSetup, UpgradeClientToAdmin) */
  const char *fail;         /* DMT's text for a failure of this step */
  struct flow_edge on[FLOW_MAX_EDGES]; /* explicit transitions; OK defaults to the next row, failures to END_FAIL */
};

struct flow {
  const char *name;
  const struct flow_state *states;
  size_t nstates;
  /* Called when the flow ends (ok or not) before the parent continues; records status. */
  void (*done)(struct rps_job *j, bool ok);
};

void flow_start(struct rps_job *j, const struct flow *f);
/* Feeds an event to the current state (from any completion on the loop). */
void flow_post(struct rps_job *j, int event);
/* A WS-Man reply for the current state. */
void flow_reply(struct rps_job *j, const struct wsman_reply *r);
/* Records a failure text for the step (first one wins until the flow moves on). */
void flow_fail_text(struct rps_job *j, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
const char *flow_current_state(const struct rps_job *j);
/* Writes a flow's table as text (docs, --print-flows). */
void flow_print(const struct flow *f, FILE *out);

extern const struct flow flow_ccm, flow_acm, flow_reconfigure, flow_post_activation, flow_unconfigure,
    flow_network, flow_features, flow_timesync, flow_cira, flow_deactivate_local, flow_deactivate_remote,
    flow_maintenance, flow_change_password, flow_sync_hostname, flow_sync_ip, flow_sync_device_info;

/* Steps shared by the activation flows (flow_activation.c). */
void step_general_settings(struct rps_job *j);
int step_general_settings_reply(struct rps_job *j, const struct wsman_reply *r);
void step_check_mode(struct rps_job *j);
int step_check_mode_reply(struct rps_job *j, const struct wsman_reply *r);
void step_delay(struct rps_job *j);
void step_update_credentials(struct rps_job *j);
void step_change_password(struct rps_job *j);
int step_change_password_reply(struct rps_job *j, const struct wsman_reply *r);
void step_set_mebx(struct rps_job *j);
int step_set_mebx_reply(struct rps_job *j, const struct wsman_reply *r);
void step_save_record(struct rps_job *j);
bool skip_unless_acm(const struct rps_job *j);
/* Enumerate/Pull of AMT_EthernetPortSettings (flow_unconfigure.c, reused by flow_network.c). */
int step_enum_reply(struct rps_job *j, const struct wsman_reply *r);
void step_enum_ethernet(struct rps_job *j);
void step_pull_ethernet(struct rps_job *j);
int step_pull_ethernet_reply(struct rps_job *j, const struct wsman_reply *r);

/* ------------------------------------------------------------------ */
/* job.c: jobs, validation, terminal messages, status                  */
/* ------------------------------------------------------------------ */

enum job_kind { JOB_ACTIVATE, JOB_DEACTIVATE, JOB_MAINTENANCE, JOB_REMOTE_DEACTIVATE };
enum act_mode { MODE_NONE = 0, MODE_CCM = 1, MODE_ACM = 2 };

/* DMT's Components entry (§1.7). */
struct rps_component {
  const char *result; /* "Success", "Failure", "NotApplicable" or NULL (not run) */
  char mode[24];
  char details[1024];
};

struct rps_status {
  char status[1024], network[1024], cira[1024], tls[128];
  struct rps_component activation, wired, wireless, tls_c, cira_proxy, cira_conn;
};

/* Builds DMT's status JSON string (the terminal message's `message`). */
char *rps_status_json(const struct rps_status *st);

/* A list of names collected from a Pull, worked through one request at a time. */
struct name_list {
  char **v;
  size_t n, i;
};
void name_list_clear(struct name_list *l);
int name_list_add(struct name_list *l, const char *s);

/* An MQTT requester waiting for this job's outcome (provisioning_cmd.c). */
struct cmd_ctx;

struct rps_job {
  struct rps *srv;
  int refs;
  bool ended;             /* terminal outcome sent; completions must do nothing */
  bool disconnected;      /* the RPC client went away mid-flow */
  bool bad_tenant;        /* the client's tenantId was unusable */
  enum job_kind kind;
  struct rps_conn *conn;  /* RPC transport; NULL for MQTT jobs or once gone */
  struct cmd_ctx *cmd;    /* MQTT requester */
  char id[37];            /* client id (RPC) or job id */
  char tenant[65], guid[37];
  char requester[256];
  struct rpc_device dev;
  struct rpc_command args;
  struct rps_lookup lk;
  struct acm_chain *chain;
  enum act_mode target, device_mode;
  bool upgrade;           /* CCM device, ACM profile */
  /* credentials this job sets (secret; wiped) */
  char amt_password[64], mebx_password[64], mps_password[64];
  /* facts read from the device */
  char realm[64];
  bool gs_shared_fqdn, gs_network_enabled, gs_rmcp_ping, gs_known;
  char gs_hostname[256];
  uint8_t config_nonce[64];
  size_t config_nonce_len;
  uint8_t mc_nonce[20];
  char *signature_b64;
  size_t cert_index;
  char enum_ctx[128];
  struct name_list names;  /* items to delete / policy rules to put */
  char sap_name[128];
  bool wired_present, wifi_present;
  json_t *general;         /* AMT_GeneralSettings as read (for a later Put) */
  json_t *wired;           /* the wired AMT_EthernetPortSettings instance */
  json_t *saved;           /* an instance read for a later Put (802.1x, redirection, environment detection) */
  json_t *optin;           /* IPS_OptInService as read */
  int kvm_current;
  int redir_state, kvm_state;   /* desired */
  long long optin_required;
  bool redir_changed, optin_changed;
  size_t proxy_index;
  int64_t ta0;
  /* outcome */
  struct rps_status st;
  bool activated;          /* the device confirmed activation with amt_password */
  bool record_saved;       /* device_register_save succeeded for the current credentials */
  bool cira_saved;
  char fail_text[1024];
  char step[64];
  unsigned relay_ms;       /* MQTT jobs: how long the terminator may take */
  int reply_code;          /* MQTT jobs: the command_reply code/error of a failure (0 = internal) */
  char reply_error[32];
  /* engine */
  struct { const struct flow *f; int state; } stack[FLOW_MAX_DEPTH];
  int depth;
  bool in_engine;
  int queued[8];
  int nqueued;
  struct wsman_session ws;
  lws_sorted_usec_list_t t_wsman, t_delay, t_deadline;
  /* timings (µs) */
  uint64_t t_start, t_mark, t_server, t_wait, t_db, t_sign;
  unsigned round_trips;
};

/* RPC side: a complete text message arrived on a connection. */
void job_on_message(struct rps_conn *c, struct rps_job **slot, const char *text, size_t len);
/* The connection closed. */
void job_on_disconnect(struct rps_job *j);
struct rps_job *job_new(struct rps *s, enum job_kind kind);
struct rps_job *job_ref(struct rps_job *j);
void job_unref(struct rps_job *j);
/* Ends the job: terminal message (RPC) or reply (MQTT), event, record rule. */
void job_finish(struct rps_job *j, bool ok);
/* Claims the device for this job; false when another job holds it. */
bool job_claim_device(struct rps_job *j);
/* Time accounting: the loop starts/stops working for the job. */
void job_mark_wait(struct rps_job *j);   /* a request went out: server time stops, wait starts */
void job_mark_work(struct rps_job *j);   /* an answer came in */
const char *job_mode_name(enum act_mode m);

/*
 * Pure validation of an activation against what lookup found (§1.5 4-6,
 * §2.1, §2.2): chooses target mode and path or returns DMT's error text.
 * 0 or -1 with err.
 */
int validate_activation(struct rps_job *j, char *err, size_t errlen);
int validate_deactivation(struct rps_job *j, char *err, size_t errlen);
int validate_maintenance(struct rps_job *j, char *err, size_t errlen);
/* §1.5 rule 3: the firmware version gate. action is "activation"/"deactivation". */
int validate_amt_version(const struct rpc_device *d, const char *action, char *err, size_t errlen);

/* ------------------------------------------------------------------ */
/* events.c, provisioning_cmd.c                                        */
/* ------------------------------------------------------------------ */

void events_job_done(struct rps_job *j, bool ok, const char *message);
int provisioning_cmd_start(struct rps *s);
void provisioning_on_message(struct rps *s, const struct dmt_mqtt_msg *m);
/* Publishes devices/<guid>/cmd/<verb> to the terminator and waits for its reply (flow_deactivate_remote). */
int provisioning_relay(struct rps_job *j, const char *verb, unsigned timeout_ms);
void provisioning_job_done(struct rps_job *j, bool ok, int code, const char *error, const char *message);
void provisioning_expire(struct rps *s);
void provisioning_free(struct rps *s);

/* ------------------------------------------------------------------ */
/* the server                                                          */
/* ------------------------------------------------------------------ */

struct rps_settings {
  unsigned delay_ms;           /* DMT's delay_timer after Setup/AdminSetup */
  unsigned wsman_timeout_ms;   /* one WS-Man attempt */
  unsigned wsman_attempts;
  unsigned job_timeout_ms;     /* a whole job */
  unsigned idle_timeout_ms;    /* a socket with no job */
  unsigned relay_timeout_ms;   /* remote deactivation through the terminator */
  bool time_sync;
  unsigned cira_interval_s;    /* periodic CIRA policy interval (DMT: 25) */
  const char *disable_cira_domain_name;
  size_t max_connections;
  unsigned chain_cache_ms;
};

struct rps_counters {
  uint64_t connections, jobs_started, jobs_ok, jobs_failed, disconnects_mid_job, rejected_messages;
  uint64_t wsman_sent, wsman_retries, wsman_401, signatures;
};

struct rps {
  struct dmt_config *cfg;
  struct dmt_log log;
  char instance[128];
  char app_version[32];
  struct lws_context *lws;
  struct dmt_workq q;
  struct dmt_db *db;
  struct dmt_secrets *secrets;
  struct dmt_mqtt *mqtt;
  struct work_pool *pool;
  struct rps_settings set;
  struct rps_counters count;
  size_t nconns, njobs;
  struct dmt_strmap chains;   /* tenant\x1fdomain\x1fsha256(p12) -> struct chain_cache_entry* */
  struct dmt_strmap commands; /* correlation key -> struct cmd_ctx* (at-most-once) */
  struct dmt_strmap relays;   /* relay correlation -> struct rps_job* */
  struct dmt_strmap active;   /* guid -> the job working on that device (one at a time) */
  lws_sorted_usec_list_t housekeeping;
  volatile sig_atomic_t stopping;
};

/* acm_sign.c: the cached chain of a domain (decrypted once per certificate, on the pool). */
int chain_get(struct rps_job *j, void (*done)(struct rps_job *j, const char *err));
void chain_cache_expire(struct rps *s, bool all);

#endif
