/*
 * dmt-bridge internals: the REST bridge (DMT's MPS + RPS north API) on
 * libwebsockets, PostgreSQL (through dmt_db workers) and MQTT v5 (commands to
 * whichever terminator holds a device). One header for the whole agent, in
 * the spirit of Mosquitto's mosquitto_broker_internal.h: every file of
 * agents/bridge includes it and nothing outside the agent does (except the
 * bridge's own tests, fuzz targets and benchmarks).
 *
 * Threads: the lws service thread owns every struct below. dmt_db workers
 * run "work" functions that may only read a transaction's request fields and
 * write its job_out; completions come back through the workq. Paho's
 * callbacks are marshalled onto the same workq by common/mqtt.c.
 */
#ifndef DMT_BRIDGE_H
#define DMT_BRIDGE_H

#include <jansson.h>
#include <libpq-fe.h>
#include <libwebsockets.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dmt/events.h"
#include "dmt/config.h"
#include "dmt/db.h"
#include "dmt/log.h"
#include "dmt/mqtt.h"
#include "dmt/secrets.h"
#include "dmt/strmap.h"
#include "dmt/workq.h"

#define BR_SERVICE_VERSION "2.34.1" /* the DMT MPS release whose API we implement (mps-cira.md §0) */
#define BR_RPS_SERVICE_VERSION "2.40.0"
#define BR_RPS_PROTOCOL_VERSION "4.0.0"

#define BR_MAX_PARAMS 4
#define BR_MAX_QUERY 32
#define BR_TENANT_MAX 64

struct br_server;
struct br_txn;

/* ------------------------------------------------------------------ request */

enum br_method {
  BR_M_GET = 1u << 0,
  BR_M_POST = 1u << 1,
  BR_M_PUT = 1u << 2,
  BR_M_PATCH = 1u << 3,
  BR_M_DELETE = 1u << 4,
  BR_M_OPTIONS = 1u << 5,
  BR_M_HEAD = 1u << 6,
  BR_M_OTHER = 1u << 7,
};
#define BR_M_WRITE (BR_M_POST | BR_M_PUT | BR_M_PATCH | BR_M_DELETE)

const char *br_method_name(unsigned m);

struct br_kv {
  char *key;
  char *value;
};

/* What the HTTP layer (or a test, or the fuzzer) hands to the router. */
struct br_request {
  unsigned method;
  char *path; /* decoded path, starts with '/' */
  struct br_kv query[BR_MAX_QUERY];
  size_t nquery;
  /* selected headers (NULL when absent) */
  char *authorization, *content_type, *if_match, *if_none_match, *cache_control, *project_id;
  char *body;
  size_t body_len;
  bool body_too_large;
};

void br_request_clear(struct br_request *r);
/* Splits "a=1&b=%20x" into decoded pairs (bad escapes or invalid UTF-8 make it fail). 0 or -1. */
int br_query_parse(struct br_request *r, const char *qs, size_t len);
/* Adds one decoded "key=value" fragment (as lws delivers them). 0 or -1. */
int br_query_add_fragment(struct br_request *r, const char *frag);
/* Percent-decodes in place ('+' kept as is); -1 on a bad escape. */
int br_url_decode(char *s);
bool br_utf8_valid(const char *s, size_t len);

/* ------------------------------------------------------------------ auth */

enum br_auth_mode { BR_AUTH_STANDALONE = 0, BR_AUTH_EMF };

enum br_perm { BR_PERM_READ = 1u, BR_PERM_WRITE = 2u };

struct br_principal {
  char tenant[BR_TENANT_MAX + 1]; /* "" = DMT's default tenant */
  char subject[257];              /* who, for audit events ("" = anonymous standalone caller) */
  unsigned perms;
};

struct br_emf; /* auth_emf.c */

struct br_auth {
  enum br_auth_mode mode;
  /* standalone (DMT) */
  bool web_auth_enabled;
  const char *admin_user, *admin_password, *jwt_secret, *jwt_issuer;
  long jwt_expiration_min, redirection_expiration_min;
  bool verify_tokens;          /* require a valid /authorize token on every route (off: DMT's behaviour) */
  const char *tenant_header;   /* header carrying the tenant in standalone mode (NULL: always "") */
  /* EMF */
  struct br_emf *emf;
};

/* ------------------------------------------------------------------ response */

/* A response under construction; written by handlers (loop) or by work functions (DB worker). */
struct br_out {
  int status;                /* 0 = nothing decided yet */
  char *body;                /* malloc'd; NULL = empty */
  size_t len;
  const char *ctype;         /* static; NULL = application/json */
  char etag[96];             /* explicit ETag header (409/412); GET 200s get a computed one */
  /* side effects to run on the loop after the response (config events) */
  char *event_topic;
  uint8_t *event_msg;
  size_t event_len;
  char sqlstate[6];          /* of the last failed statement (worker helpers) */
};

void br_out_reset(struct br_out *o);
/* Forgets a pending config event (its transaction was rolled back). */
void br_out_drop_event(struct br_out *o);
void br_out_json(struct br_out *o, int status, json_t *j); /* steals j */
void br_out_text(struct br_out *o, int status, const char *json_text);
void br_out_empty(struct br_out *o, int status);
void br_out_raw(struct br_out *o, int status, const char *ctype, const char *body, size_t len);
/* {"error": e, "message": m} (RPS errors, MPS device errors) */
void br_out_error(struct br_out *o, int status, const char *error, const char *message);
/* {"message": m} */
void br_out_message(struct br_out *o, int status, const char *message);
/* 404 {"error":"Not Found","message":"<type> profile <name> Not Found"} */
void br_out_not_found(struct br_out *o, const char *type, const char *name);
/* 500 {"message":"Operation failed: <method> <name>"} */
void br_out_unexpected(struct br_out *o, const char *method, const char *name);
/* DMT MPS AMT error body {"error": <HTTPErrorTable[status]>, "errorDescription": desc} */
void br_out_amt_error(struct br_out *o, int status, const char *desc);
/* DMT's 404 for a device that is not connected */
void br_out_not_connected(struct br_out *o, const char *guid);
/* 400 {"errors":[...]} from validation errors (steals errors) */
void br_out_validation(struct br_out *o, json_t *errors);
/* One express-validator error object. */
json_t *br_verror(const json_t *value, const char *msg, const char *path, const char *location);
/* Weak ETag of a body, Express style: W/"<len hex>-<27 chars of base64 sha1>". */
void br_etag(const char *body, size_t len, char out[64]);

/* ------------------------------------------------------------------ validation */

struct br_vctx {
  json_t *body, *params, *query; /* the three request locations (objects; body may be modified) */
  PGconn *db;                    /* NULL: checks that need the database assume the referenced object exists */
  const char *tenant;
  void *ud;                      /* route-specific state shared by its custom checks */
};

/* true = valid. On failure, may write a message into msg (else the rule's own message is used). */
typedef bool (*br_check_fn)(struct br_vctx *v, const json_t *value, char *msg, size_t msglen);
typedef bool (*br_cond_fn)(struct br_vctx *v, const json_t *value);
typedef bool (*br_str_fn)(const char *s);

enum br_rule_kind {
  BR_R_EMPTY, BR_R_MATCH, BR_R_IN, BR_R_INT, BR_R_FLOAT, BR_R_LENGTH, BR_R_BOOLEAN, BR_R_BOOLEAN_STRICT,
  BR_R_STRING, BR_R_ARRAY, BR_R_OBJECT, BR_R_UUID, BR_R_NUMERIC, BR_R_EXISTS, BR_R_CUSTOM, BR_R_IF, BR_R_DEFAULT,
  BR_R_TO_INT, BR_R_TO_BOOL, BR_R_BAIL,
};

struct br_rule {
  enum br_rule_kind kind;
  bool negate;
  const char *msg; /* NULL = "Invalid value" */
  br_str_fn match;
  const char *const *in; /* NULL-terminated */
  long long min, max;
  br_check_fn check;
  br_cond_fn cond;
  const char *deflt; /* JSON text */
};

enum br_opt { BR_REQUIRED = 0, BR_OPTIONAL, BR_NULLABLE, BR_FALSY };
enum br_loc { BR_LOC_ANY = 0, BR_LOC_BODY, BR_LOC_PARAMS, BR_LOC_QUERY };

struct br_field {
  const char *path; /* "name", "a.b", or "tags.*" (each element) */
  enum br_loc loc;  /* ANY = express-validator's check(): body, then params, then query */
  enum br_opt opt;
  const struct br_rule *rules;
  size_t nrules;
};

struct br_chain {
  const struct br_field *fields;
  size_t n;
};

#define BR_LL_MIN (-9223372036854775807LL - 1)
#define BR_LL_MAX 9223372036854775807LL

/* Rule constructors (express-validator names). */
#define V_NOT_EMPTY(m) {.kind = BR_R_EMPTY, .negate = true, .msg = (m)}
#define V_EMPTY(m) {.kind = BR_R_EMPTY, .msg = (m)}
#define V_MATCH(fn, m) {.kind = BR_R_MATCH, .match = (fn), .msg = (m)}
#define V_IN(list, m) {.kind = BR_R_IN, .in = (list), .msg = (m)}
#define V_INT(lo, hi, m) {.kind = BR_R_INT, .min = (lo), .max = (hi), .msg = (m)}
#define V_LEN(lo, hi, m) {.kind = BR_R_LENGTH, .min = (lo), .max = (hi), .msg = (m)}
#define V_BOOL(m) {.kind = BR_R_BOOLEAN, .msg = (m)}
#define V_BOOL_STRICT(m) {.kind = BR_R_BOOLEAN_STRICT, .msg = (m)}
#define V_STRING(m) {.kind = BR_R_STRING, .msg = (m)}
#define V_ARRAY(m) {.kind = BR_R_ARRAY, .msg = (m)}
#define V_OBJECT(m) {.kind = BR_R_OBJECT, .msg = (m)}
#define V_UUID(m) {.kind = BR_R_UUID, .msg = (m)}
#define V_NUMERIC(m) {.kind = BR_R_NUMERIC, .msg = (m)}
#define V_EXISTS(m) {.kind = BR_R_EXISTS, .msg = (m)}
#define V_CUSTOM(fn, m) {.kind = BR_R_CUSTOM, .check = (fn), .msg = (m)}
#define V_IF(fn) {.kind = BR_R_IF, .cond = (fn)}
#define V_DEFAULT(json) {.kind = BR_R_DEFAULT, .deflt = (json)}
#define V_TO_INT {.kind = BR_R_TO_INT}
#define V_TO_BOOL {.kind = BR_R_TO_BOOL}
#define V_BAIL {.kind = BR_R_BAIL}

#define BR_RULES(...) (const struct br_rule[]){__VA_ARGS__}
#define BR_NRULES(...) (sizeof((const struct br_rule[]){__VA_ARGS__}) / sizeof(struct br_rule))
#define V_FIELD(p, o, ...) {.path = (p), .loc = BR_LOC_ANY, .opt = (o), .rules = BR_RULES(__VA_ARGS__), \
                            .nrules = BR_NRULES(__VA_ARGS__)}
#define V_FIELD_AT(l, p, o, ...) {.path = (p), .loc = (l), .opt = (o), .rules = BR_RULES(__VA_ARGS__), \
                                  .nrules = BR_NRULES(__VA_ARGS__)}
#define BR_CHAIN(name, ...)                                                      \
  static const struct br_field name##_fields[] = {__VA_ARGS__};                 \
  static const struct br_chain name = {name##_fields, sizeof name##_fields / sizeof name##_fields[0]}

/* Runs every field of the chain in order, appending error objects to errors. Returns errors added. */
size_t br_validate(const struct br_chain *c, struct br_vctx *v, json_t *errors);
/* JavaScript's String(value) for the standard validators (arrays: first element; objects: "[object Object]"). */
void br_js_string(const json_t *v, char *out, size_t outlen);
/* JavaScript truthiness ("!value"). */
bool br_js_truthy(const json_t *v);
/* Value of a body field (NULL when absent). */
const json_t *br_body_get(const struct br_vctx *v, const char *key);

/* Formats (formats.c): each mirrors the DMT regular expression or validator.js function it names. */
bool br_fmt_uuid(const char *s);
bool br_fmt_alnum(const char *s);                  /* ^[a-zA-Z0-9]+$ */
bool br_fmt_name_ud(const char *s);                /* ^[a-zA-Z0-9_-]+$ */
bool br_fmt_profile_name(const char *s);           /* ^[a-zA-Z0-9$@$!%*#?&-_~^]+$ (note the &-_ range) */
bool br_fmt_strong_password(const char *s);        /* DMT's AMT/MEBx password rule, 8..32 */
bool br_fmt_ipv4_dmt(const char *s);               /* CIRA validator's IPv4 (leading zeros allowed) */
bool br_fmt_ipv6_dmt(const char *s);               /* CIRA validator's IPv6 (its regex quirks kept) */
bool br_fmt_fqdn_dmt(const char *s);               /* CIRA validator's lowercase FQDN */
bool br_fmt_proxy_address(const char *s);          /* proxy validator: IPv4, IPv6 or FQDN */
int br_fmt_address_format(const char *s);          /* proxy infoFormat: 3 IPv4, 4 IPv6, 201 FQDN */
bool br_fmt_fqdn_validatorjs(const char *s, bool require_tld, bool allow_underscores); /* validator.js isFQDN */
bool br_fmt_dns_suffix(const char *s);             /* MPS device dnsSuffix: "" or labels, trailing dot ok */
bool br_fmt_iso8601(const char *s);
bool br_fmt_ipv4_strict(const char *s);            /* validator.js isIP(4) */
bool br_fmt_int(const char *s, long long *out);    /* validator.js isInt (leading zeros allowed) */
bool br_fmt_tenant(const char *s);                 /* [A-Za-z0-9_-]{1,64} */

/* ------------------------------------------------------------------ OData */

struct br_page {
  long long top, skip;
  bool count;
};
/* Validates $top/$skip/$count (DMT messages) into p; appends errors. defaults: top 25, skip 0. */
size_t br_odata_parse(struct br_vctx *v, struct br_page *p, long long default_top, long long max_top,
                      json_t *errors);

/* ------------------------------------------------------------------ routing */

typedef void (*br_handler_fn)(struct br_txn *t);

enum {
  BR_RF_PUBLIC = 1u << 0,    /* no authentication (health, version, login) */
  BR_RF_WRITE = 1u << 1,     /* mutates: needs the write permission */
  BR_RF_AMT = 1u << 2,       /* device command route (tenancy tests: commands) */
};

struct br_route {
  unsigned methods;
  const char *pattern;       /* "/api/v1/devices/:guid"; matched case-insensitively, trailing '/' ignored */
  br_handler_fn handler;
  const struct br_chain *chain; /* validated on the loop before the handler; NULL = none / done by the handler */
  unsigned flags;
  const void *data;          /* handler-specific (a command spec, an RPS object kind) */
  const struct br_chain *job_chain; /* validated by the handler's DB job (needs the database); for fuzzing/docs */
};

struct br_route_table {
  const struct br_route *routes;
  size_t n;
};

extern const struct br_route_table br_routes_health, br_routes_devices, br_routes_amt, br_routes_auth,
    br_routes_profiles, br_routes_ciraconfigs, br_routes_domains, br_routes_wireless, br_routes_ieee8021x,
    br_routes_proxy, br_routes_events;

/* Finds the route for method+path; fills params (pointers into the scratch copy). */
const struct br_route *br_route_match(unsigned method, const char *path, char *scratch, size_t scratchlen,
                                      char *params[BR_MAX_PARAMS], size_t *nparams, bool *path_known);
/* Calls fn for every route (docs, tenancy tests). */
void br_routes_foreach(void (*fn)(const struct br_route *r, void *ud), void *ud);

/* ------------------------------------------------------------------ transactions */

struct br_txn {
  struct br_server *srv;
  struct lws *wsi;           /* NULL once the client went away */
  int refs;
  struct br_request req;
  const struct br_route *route;
  char params_buf[512];
  char *params[BR_MAX_PARAMS];
  size_t nparams;
  json_t *body;              /* parsed JSON body (object or array) or NULL */
  json_t *jparams, *jquery;  /* request locations as JSON objects, for validators */
  struct br_principal who;
  bool is_head;
  /* response */
  struct br_out out;
  bool responded, sent_headers, finished;
  size_t sent;
  char etag_hdr[96];
  /* job plumbing */
  struct br_out job_out;     /* written by the DB worker only */
  atomic_bool abandoned;     /* the loop gave up waiting (timeout / client gone) */
  uint64_t job_deadline_ms;  /* wall clock: a job starting after this does nothing */
  void (*then)(struct br_txn *t);
  void (*on_timeout)(struct br_txn *t); /* fills t->out when the deadline passes (default: 503) */
  lws_sorted_usec_list_t timeout_sul;
  bool timer_armed;
  uint64_t t0_ms;
  /* a pending device command (amt_command.c) */
  struct br_cmd *cmd;
  void *ctx;                 /* handler-specific, freed with ctx_free */
  void (*ctx_free)(void *);
};

struct br_txn *br_txn_new(struct br_server *s);
void br_txn_ref(struct br_txn *t);
void br_txn_unref(struct br_txn *t);
/* Runs auth, routing, validation and the handler for a fully received request. */
void br_dispatch(struct br_txn *t);
/* Sends t->out (once; later calls are ignored). */
void br_send(struct br_txn *t);
/* Convenience: fill t->out, then br_send. */
void br_respond_json(struct br_txn *t, int status, json_t *j);
void br_respond_out(struct br_txn *t, struct br_out *o); /* moves o into t->out */
const char *br_param(const struct br_txn *t, size_t i);
/* Validator shared by profiles and wireless configs (routes_ieee8021x.c). */
bool br_ieee8021x_matches(struct br_vctx *v, const json_t *value, bool wired_wanted, char *msg, size_t msglen);
const char *br_query(const struct br_txn *t, const char *key);
void br_vctx_init(struct br_vctx *v, struct br_txn *t, PGconn *db);

/* Work on a DB worker: fill o (status 0 = continue with t->then on the loop). Return DMT_PG_*. */
typedef int (*br_work_fn)(PGconn *c, struct br_txn *t, struct br_out *o);
/* Submits fn; when it completes, t->then (if set) or br_send runs on the loop. */
void br_db_run(struct br_txn *t, br_work_fn fn);

/* Where failed statements are logged (never their parameters). */
void br_sql_log(const struct dmt_log *lg);
/* SQL helpers for work functions. Return the result (caller PQclear) or NULL with o->sqlstate set. */
PGresult *br_sql(PGconn *c, struct br_out *o, const char *sql, int n, const char *const *params);
bool br_sql_ok(PGconn *c, struct br_out *o, const char *sql, int n, const char *const *params);
bool br_sql_begin(PGconn *c, struct br_out *o);
bool br_sql_commit(PGconn *c, struct br_out *o);
void br_sql_rollback(PGconn *c);
/* Runs a query whose single column is JSON text; copies row 0 into o (status) or returns false if no row. */
int br_sql_json(PGconn *c, struct br_out *o, int status, const char *sql, int n, const char *const *params);

/* A list page: column 0 the JSON array, column 1 the total; {"data":[...],"totalCount":N} when count. */
void br_out_page(struct br_out *o, PGresult *r, bool count);

/* Secret paths: DMT's layout with a name component escaped to the store's alphabet. */
void br_secret_path(char *out, size_t outlen, const char *prefix, const char *name);

/* Config events (events.c): a dmt.events row in the caller's transaction + an MQTT event after the response. */
bool br_event_config(PGconn *c, struct br_txn *t, struct br_out *o, const char *object_type, const char *name,
                     const char *operation);
void br_event_publish(struct br_server *s, struct br_out *o);

/* ------------------------------------------------------------------ RPS objects (admin_crud.c) */

/* A reference that forbids deleting an object: SELECT EXISTS(...) with $1 = tenant, $2 = name. */
struct br_ref_check {
  const char *sql;
  const char *message; /* printf format with the object's name */
};

struct br_kind {
  const char *label;        /* DMT's NOT_FOUND_MESSAGE type: Domain, CIRA, AMT, Wireless, 802.1x, Proxy */
  const char *table;        /* "dmt.domains" */
  const char *name_col;     /* "name" */
  const char *json;         /* SQL expression over alias x rendering DMT's public JSON */
  const char *event_type;   /* "domain": actions domain_create / domain_update / domain_delete */
  const char *const *secrets;     /* secret path prefixes removed with the object (NULL-terminated) */
  const struct br_ref_check *refs;
  size_t nrefs;
};

/* Generic handlers (route data = the kind). */
void br_admin_list(struct br_txn *t);
/* Parses $top/$skip/$count (answering 400 itself), then runs work with the
 * struct br_page as t->ctx. max_top 0: no upper bound. */
void br_list_paged(struct br_txn *t, long long default_top, long long max_top, br_work_fn work);
void br_admin_get(struct br_txn *t);
void br_admin_delete(struct br_txn *t);
/* Worker helpers. */
int br_admin_fetch(PGconn *c, const struct br_kind *k, const char *tenant, const char *name, struct br_out *o,
                   int status); /* 1 found (o = row), 0 not found, -1 error */
/* The canonical (stored) spelling of a case-insensitive name; false when absent. */
bool br_admin_canonical(PGconn *c, const struct br_kind *k, const char *tenant, const char *name, char *out,
                        size_t outlen);
/* 409 (412 with If-Match) with the current row and its ETag. */
void br_admin_conflict(PGconn *c, struct br_txn *t, const struct br_kind *k, const char *name, struct br_out *o);
/* The version to match: the If-Match header, else body.version (string or number); NULL when absent. */
const char *br_admin_version(struct br_txn *t, char *buf, size_t buflen);
/* Runs a validation chain with database access; false (o = 400) when it failed. */
bool br_admin_validate(PGconn *c, struct br_txn *t, const struct br_chain *chain, void *ud, struct br_out *o);
/* Puts or deletes one secret of an object; false (o = 500) on failure. */
bool br_admin_secret_put(PGconn *c, struct br_txn *t, const char *prefix, const char *name, json_t *obj,
                         struct br_out *o);
bool br_admin_secret_del(PGconn *c, struct br_txn *t, const char *prefix, const char *name, struct br_out *o);
/* Writes the config event and commits; false (rolled back, o = 500) on failure. */
bool br_admin_finish(PGconn *c, struct br_txn *t, const struct br_kind *k, const char *name, const char *operation,
                     struct br_out *o);
/* Opens a transaction; false (o = 500) on failure. */
bool br_admin_begin(PGconn *c, struct br_txn *t, const char *name, struct br_out *o);
/* JSON-number test as JavaScript's `x === n`. */
bool br_json_eq_int(const json_t *v, long long n);
/* Body helpers: string or NULL, and the SQL text of a JSON value ("true", "42", NULL for null/absent). */
const char *br_jstr(const json_t *obj, const char *key);
char *br_jsql(const json_t *obj, const char *key);

/* ------------------------------------------------------------------ device commands */

struct br_cmd;
typedef void (*br_reply_fn)(struct br_txn *t, int code, const char *error, const char *message,
                            const json_t *result);
/*
 * Checks that the device is known and connected in the caller's tenant (DMT's 404 otherwise), publishes
 * verb with args (msgpack, may be NULL) on its cmd topic and calls on_reply with the correlated reply,
 * or answers DMT's 404 when no terminator replied within the deadline. on_reply NULL: the default mapping
 * (ok -> 200 + result, errors -> DMT error bodies).
 */
void br_amt_command(struct br_txn *t, const char *guid, const char *verb, const void *args, size_t args_len,
                    br_reply_fn on_reply);
void br_amt_default_reply(struct br_txn *t, int code, const char *error, const char *message,
                          const json_t *result);

struct br_amt {
  char client_id[160];
  char reply_filter[200];
  struct dmt_strmap pending; /* correlation hex -> struct br_cmd */
  uint64_t seq;
  uint8_t salt[8];
  int timeout_ms;            /* command deadline */
  int grace_ms;              /* extra wait for a late reply before answering 404 */
};
void br_amt_init(struct br_server *s);
void br_amt_on_message(struct br_server *s, const struct dmt_mqtt_msg *m);
void br_amt_cancel(struct br_txn *t);
void br_amt_free(struct br_server *s);

/* ------------------------------------------------------------------ PFX */

struct br_pfx_info {
  char cn[256];
  int64_t not_after_min; /* unix seconds: earliest notAfter of every certificate */
};
/*
 * Reads a base64 PKCS#12 provisioning certificate (password-checked, bags in file order) and, when full,
 * validates it in DMT's order (rps-activation.md §3.4): decrypt, suffix, validity, root, key size, private
 * key, chain, AMT EKU. Returns 0, or -1 with DMT's message. suffix NULL skips the suffix check; full=false
 * only decrypts and computes the expiry (PATCH, where DMT re-runs no check).
 */
int br_pfx_check(const char *b64, const char *password, const char *suffix, bool full, struct br_pfx_info *info,
                 char *msg, size_t msglen);
/* MPS certificate upload: base64 DER (or base64 PEM) X.509 that has not expired; -1 with DMT's message. */
int br_x509_check_b64(const char *b64, char *msg, size_t msglen);
/* Loads OpenSSL's legacy provider (RC2/3DES PKCS#12); call once at start. */
void br_pfx_init(void);
void br_pfx_cleanup(void);

/* ------------------------------------------------------------------ server */

struct br_server {
  struct dmt_log log;
  struct dmt_config *cfg;
  struct lws_context *lws;
  struct dmt_workq q;
  struct dmt_mqtt *mqtt;
  struct dmt_db *db;
  struct dmt_secrets *secrets;
  struct br_auth auth;
  struct br_amt amt;
  char instance[128];
  size_t max_body;
  int request_timeout_ms;
  int client_timeout_s;       /* bridge.client_timeout_s: idle limit while reading headers and body */
  int health_timeout_ms;
  bool mqtt_up;
  volatile int stopping;
  const char *ciracert_file;
  struct {
    uint64_t requests, responses_5xx, timeouts, commands, command_timeouts;
  } stats;
};

/* http_server.c */
int br_http_start(struct br_server *s, char *err, size_t errlen);
void br_http_stop(struct br_server *s);
/* Arms (or re-arms) the transaction's deadline; on expiry it answers 503 and abandons pending work. */
void br_txn_arm_timeout(struct br_txn *t, int ms);

/* auth.c / auth_standalone.c / auth_emf.c */
/* Fills t->who; on failure fills t->out with 401/403 and returns false. */
bool br_authenticate(struct br_txn *t);
bool br_auth_standalone(struct br_txn *t);
bool br_auth_emf(struct br_txn *t);
int br_auth_emf_init(struct br_server *s, char *err, size_t errlen);
void br_auth_emf_free(struct br_server *s);
/* HS256 token as DMT's MPS signs it. malloc'd. */
char *br_sign_token(const struct br_auth *a, const char *device_id, const char *tenant, long minutes);

#endif
