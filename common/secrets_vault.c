/*
 * Vault back end of the secret store (see dmt/secrets.h): HashiCorp Vault KV
 * v2 over libcurl, with DMT's secret path layout for the default tenant
 * (../shared/reference/mps-cira.md §4.3, rps-activation.md §4.3): read
 * `GET <mount>/<path>` -> data.data, write `POST` {"data": {...}} (whole
 * object), delete `DELETE` on the metadata path (all versions), health
 * `GET /v1/sys/health?standbyok=true`.
 *
 * The token: either static (secrets.vault.token), looked up at start and
 * renewed with renew-self at two thirds of each lease, or obtained by a
 * Kubernetes login (POST /v1/auth/<mount>/login with the service account
 * JWT), renewed the same way and replaced by a fresh login once renewal stops
 * giving a full lease (the role's max TTL) or Vault answers 403. Renewal runs
 * on a background thread, so an idle agent's token does not lapse (EMF's
 * Vault tokens last one hour). Requests are blocking and thread-safe: one
 * curl handle per request, the token copied under the lock.
 *
 * No token, JWT or secret value reaches a log line or an error message; the
 * store itself sits in memory excluded from core dumps, and every response
 * and request body is zeroed after use.
 */
#include <curl/curl.h>
#include <errno.h>
#include <openssl/crypto.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dmt/log.h"
#include "secrets_internal.h"

#define MAX_TOKEN 512
#define MAX_RESPONSE (1024 * 1024)
#define MAX_JWT (64 * 1024)
#define RETRY_S 10
#define TIMEOUT_S 15L

struct vault {
  struct dmt_secrets base;
  char address[256], data_prefix[256], meta_prefix[272], ca_file[512], role[128], jwt_file[512], k8s_mount[128];
  bool k8s;
  const struct dmt_log *log;
  pthread_mutex_t mu;
  pthread_cond_t wake;
  /* Guarded by mu. */
  char token[MAX_TOKEN]; /* "" = none yet */
  bool known;            /* ttl/renewable of the token are known */
  bool renewable, stop;
  long full_ttl;         /* lease at login/lookup: a renewal giving less means the max TTL is near */
  time_t expires;        /* 0 = never */
  time_t renew_at;       /* 0 = nothing scheduled */
  pthread_t renewer;
  bool renewer_running;
};

/* ---- HTTP ---- */

struct body {
  char *data;
  size_t len;
  bool too_big;
};

static size_t collect(char *ptr, size_t size, size_t nmemb, void *ud) {
  struct body *b = ud;
  size_t n = size * nmemb;
  if (b->len + n > MAX_RESPONSE) {
    b->too_big = true;
    return 0;
  }
  char *nd = malloc(b->len + n + 1);
  if (!nd) return 0;
  if (b->data) {
    memcpy(nd, b->data, b->len);
    OPENSSL_cleanse(b->data, b->len);
    free(b->data);
  }
  memcpy(nd + b->len, ptr, n);
  b->data = nd;
  b->len += n;
  return n;
}

static void token_copy(struct vault *v, char out[MAX_TOKEN]) {
  pthread_mutex_lock(&v->mu);
  memcpy(out, v->token, MAX_TOKEN);
  pthread_mutex_unlock(&v->mu);
}

/* A token is sent as a header: printable ASCII only, so it cannot inject another header. */
static bool token_ok(const char *t, size_t len) {
  if (len == 0 || len >= MAX_TOKEN) return false;
  for (size_t i = 0; i < len; i++)
    if (t[i] < 0x21 || t[i] > 0x7e) return false;
  return true;
}

/*
 * One request to <address>/v1/<path>. token may be "" (no header). On success
 * (0) *status is the HTTP status and *json the parsed body (or NULL); -1 is a
 * transport failure with err set.
 */
static int http(struct vault *v, const char *method, const char *path, const char *token, const char *body,
                long *status, json_t **json, char *err, size_t errlen) {
  *json = NULL;
  *status = 0;
  CURL *c = curl_easy_init();
  if (!c) {
    snprintf(err, errlen, "cannot create an HTTP client");
    return -1;
  }
  char url[1024], header[MAX_TOKEN + 32], cerr[CURL_ERROR_SIZE] = "";
  snprintf(url, sizeof url, "%s/v1/%s", v->address, path);
  struct curl_slist *headers = NULL;
  if (token[0]) {
    snprintf(header, sizeof header, "X-Vault-Token: %s", token);
    headers = curl_slist_append(headers, header);
    OPENSSL_cleanse(header, sizeof header);
  }
  if (body) {
    headers = curl_slist_append(headers, "Content-Type: application/json");
    headers = curl_slist_append(headers, "Expect:"); /* no 100-continue round trip */
  }
  struct body resp = {0};
  curl_easy_setopt(c, CURLOPT_URL, url);
  curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(c, CURLOPT_TIMEOUT, TIMEOUT_S);
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 5L);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &resp);
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, cerr);
  if (body) curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
  if (v->ca_file[0]) curl_easy_setopt(c, CURLOPT_CAINFO, v->ca_file);
  CURLcode rc = curl_easy_perform(c);
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, status);
  curl_easy_cleanup(c);
  for (struct curl_slist *h = headers; h; h = h->next) OPENSSL_cleanse(h->data, strlen(h->data));
  curl_slist_free_all(headers);
  if (rc != CURLE_OK) {
    snprintf(err, errlen, "Vault unreachable: %s", resp.too_big ? "response too large" : cerr[0] ? cerr : curl_easy_strerror(rc));
  } else if (resp.len) {
    *json = json_loadb(resp.data, resp.len, 0, NULL);
  }
  if (resp.data) OPENSSL_cleanse(resp.data, resp.len);
  free(resp.data);
  return rc == CURLE_OK ? 0 : -1;
}

/* "Vault answered 403: permission denied" from Vault's {"errors": [...]}, control characters flattened. */
static void vault_error(long status, const json_t *json, char *err, size_t errlen) {
  const char *first = json_string_value(json_array_get(json_object_get(json, "errors"), 0));
  snprintf(err, errlen, "Vault answered %ld%s%.120s", status, first && *first ? ": " : "", first ? first : "");
  for (char *p = err; *p; p++)
    if ((unsigned char)*p < 0x20) *p = ' ';
}

/* Zeroes every string in a JSON value (tokens, secret values) in place. */
static void zero_strings(json_t *j) {
  const char *k;
  size_t i;
  json_t *x;
  if (json_is_string(j)) OPENSSL_cleanse((char *)json_string_value(j), json_string_length(j));
  else if (json_is_object(j)) json_object_foreach(j, k, x) zero_strings(x);
  else if (json_is_array(j)) json_array_foreach(j, i, x) zero_strings(x);
}

static void scrub(json_t *j) {
  zero_strings(j);
  json_decref(j);
}

/* ---- the token ---- */

/* Records a lease under the lock: expiry, and renewal at two thirds of it. */
static void schedule(struct vault *v, long ttl, bool renewable) {
  time_t now = time(NULL);
  v->known = true;
  v->renewable = renewable;
  v->expires = ttl > 0 ? now + ttl : 0;
  v->renew_at = ttl > 0 && (renewable || v->k8s) ? now + (ttl * 2 / 3 > 0 ? ttl * 2 / 3 : 1) : 0;
  pthread_cond_signal(&v->wake);
}

static int login(struct vault *v) {
  char err[256], path[200];
  FILE *f = fopen(v->jwt_file, "rb");
  if (!f) {
    DMT_WARN(v->log, "vault_login_failed", "reason=\"cannot read the service account token file\" errno=%d", errno);
    return -1;
  }
  char *jwt = calloc(1, MAX_JWT + 1);
  size_t n = jwt ? fread(jwt, 1, MAX_JWT, f) : 0;
  fclose(f);
  while (n && (jwt[n - 1] == '\n' || jwt[n - 1] == '\r')) jwt[--n] = '\0';
  json_t *req = n ? json_pack("{s:s, s:s}", "role", v->role, "jwt", jwt) : NULL;
  char *body = req ? json_dumps(req, JSON_COMPACT) : NULL;
  if (jwt) OPENSSL_cleanse(jwt, MAX_JWT + 1);
  free(jwt);
  scrub(req);
  if (!body) {
    DMT_WARN(v->log, "vault_login_failed", "reason=\"empty service account token\"");
    return -1;
  }
  snprintf(path, sizeof path, "auth/%s/login", v->k8s_mount);
  long status;
  json_t *resp;
  int rc = http(v, "POST", path, "", body, &status, &resp, err, sizeof err);
  OPENSSL_cleanse(body, strlen(body));
  free(body);
  json_t *auth = json_object_get(resp, "auth");
  const char *tok = json_string_value(json_object_get(auth, "client_token"));
  long ttl = (long)json_integer_value(json_object_get(auth, "lease_duration"));
  if (rc == 0 && status == 200 && tok && token_ok(tok, strlen(tok))) {
    pthread_mutex_lock(&v->mu);
    OPENSSL_cleanse(v->token, sizeof v->token);
    memcpy(v->token, tok, strlen(tok));
    v->full_ttl = ttl;
    schedule(v, ttl, json_is_true(json_object_get(auth, "renewable")));
    pthread_mutex_unlock(&v->mu);
    DMT_INFO(v->log, "vault_login", "method=kubernetes role=%s ttl=%ld", v->role, ttl);
    rc = 0;
  } else {
    if (rc == 0) vault_error(status, resp, err, sizeof err);
    DMT_WARN(v->log, "vault_login_failed", "method=kubernetes role=%s error=\"%s\"", v->role, err);
    rc = -1;
  }
  scrub(resp);
  return rc;
}

/* lookup-self (the static token at start) or renew-self; 0 when the lease is recorded. */
static int lease(struct vault *v, bool renew) {
  char err[256], tok[MAX_TOKEN];
  long status;
  json_t *resp;
  token_copy(v, tok);
  int rc = renew ? http(v, "POST", "auth/token/renew-self", tok, "{}", &status, &resp, err, sizeof err)
                 : http(v, "GET", "auth/token/lookup-self", tok, NULL, &status, &resp, err, sizeof err);
  OPENSSL_cleanse(tok, sizeof tok);
  const json_t *info = json_object_get(resp, renew ? "auth" : "data");
  json_t *ttl_j = json_object_get(info, renew ? "lease_duration" : "ttl");
  if (rc == 0 && status == 200 && json_is_integer(ttl_j)) {
    long ttl = (long)json_integer_value(ttl_j);
    bool renewable = json_is_true(json_object_get(info, "renewable"));
    pthread_mutex_lock(&v->mu);
    if (!renew) v->full_ttl = ttl;
    schedule(v, ttl, renewable);
    long full = v->full_ttl;
    pthread_mutex_unlock(&v->mu);
    DMT_INFO(v->log, renew ? "vault_token_renewed" : "vault_token", "ttl=%ld renewable=%s", ttl,
             renewable ? "true" : "false");
    if (ttl > 0 && !renewable && !v->k8s)
      DMT_WARN(v->log, "vault_token_expiring", "ttl=%ld effect=\"the static token cannot be renewed; secrets fail when it expires\"", ttl);
    /* Renewal capped below the full lease: the token nears its max TTL, so a Kubernetes login takes over. */
    rc = renew && v->k8s && ttl < full ? -1 : 0;
  } else {
    if (rc == 0) vault_error(status, resp, err, sizeof err);
    DMT_WARN(v->log, renew ? "vault_renew_failed" : "vault_lookup_failed", "error=\"%s\"", err);
    rc = -1;
  }
  scrub(resp);
  return rc;
}

/* Whatever keeps a usable token: login, lookup or renewal; retries in RETRY_S when all fail. */
static void refresh(struct vault *v) {
  pthread_mutex_lock(&v->mu);
  bool have = v->token[0] != '\0', known = v->known, renewable = v->renewable;
  pthread_mutex_unlock(&v->mu);
  int rc = -1;
  if (have && !known) rc = lease(v, false);
  else if (have && renewable) rc = lease(v, true);
  if (rc != 0 && v->k8s) rc = login(v);
  if (rc != 0) {
    pthread_mutex_lock(&v->mu);
    v->renew_at = time(NULL) + RETRY_S;
    pthread_mutex_unlock(&v->mu);
  }
}

static void *renewer(void *arg) {
  struct vault *v = arg;
  pthread_mutex_lock(&v->mu);
  while (!v->stop) {
    time_t now = time(NULL);
    if (v->renew_at && now >= v->renew_at) {
      v->renew_at = 0;
      pthread_mutex_unlock(&v->mu);
      refresh(v);
      pthread_mutex_lock(&v->mu);
      continue;
    }
    if (v->renew_at) {
      struct timespec until = {.tv_sec = v->renew_at};
      pthread_cond_timedwait(&v->wake, &v->mu, &until);
    } else {
      pthread_cond_wait(&v->wake, &v->mu);
    }
  }
  pthread_mutex_unlock(&v->mu);
  return NULL;
}

/*
 * A request with the current token; with Kubernetes login, a 403 (token
 * expired or revoked) triggers one fresh login and a retry.
 */
static int call(struct vault *v, const char *method, const char *path, const char *body, long *status, json_t **json,
                char *err, size_t errlen) {
  for (int attempt = 0;; attempt++) {
    char tok[MAX_TOKEN];
    token_copy(v, tok);
    if (!tok[0] && v->k8s && attempt == 0 && login(v) == 0) token_copy(v, tok);
    int rc = http(v, method, path, tok, body, status, json, err, errlen);
    OPENSSL_cleanse(tok, sizeof tok);
    if (rc != 0 || *status != 403 || !v->k8s || attempt > 0) return rc;
    scrub(*json);
    if (login(v) != 0) {
      *json = NULL;
      return 0; /* status stays 403 */
    }
  }
}

/* ---- the store ---- */

static int kv_path(const struct vault *v, bool metadata, const char *tenant, const char *path, char *out,
                   size_t outlen, char *err, size_t errlen) {
  if (!tenant[0] && strncmp(path, "tenants/", 8) == 0) {
    snprintf(err, errlen, "default-tenant secret paths may not start with tenants/ (that is where tenants live)");
    return DMT_SECRETS_BAD_INPUT;
  }
  snprintf(out, outlen, "%s%s%s%s%s", metadata ? v->meta_prefix : v->data_prefix, tenant[0] ? "tenants/" : "", tenant,
           tenant[0] ? "/" : "", path);
  return DMT_SECRETS_OK;
}

static int v_get(struct dmt_secrets *s, PGconn *db, const char *tenant, const char *path, json_t **out, char *err,
                 size_t errlen) {
  struct vault *v = (struct vault *)s;
  char p[700];
  int rc = kv_path(v, false, tenant, path, p, sizeof p, err, errlen);
  if (rc != DMT_SECRETS_OK) return rc;
  long status;
  json_t *resp;
  if (call(v, "GET", p, NULL, &status, &resp, err, errlen) != 0) return DMT_SECRETS_ERROR;
  json_t *data = json_object_get(json_object_get(resp, "data"), "data");
  if (status == 200 && json_is_object(data)) {
    *out = json_incref(data); /* the caller's now; dmt_secrets_wipe() zeroes it */
    json_object_del(json_object_get(resp, "data"), "data");
    rc = DMT_SECRETS_OK;
  } else if (status == 404 || (status == 200 && json_is_null(data))) {
    rc = DMT_SECRETS_NOT_FOUND; /* absent, or its latest version deleted */
  } else {
    vault_error(status, resp, err, errlen);
    rc = DMT_SECRETS_ERROR;
  }
  scrub(resp);
  return rc;
}

static int v_put(struct dmt_secrets *s, PGconn *db, const char *tenant, const char *path, const json_t *obj, char *err,
                 size_t errlen) {
  struct vault *v = (struct vault *)s;
  char p[700];
  int rc = kv_path(v, false, tenant, path, p, sizeof p, err, errlen);
  if (rc != DMT_SECRETS_OK) return rc;
  json_t *wrap = json_pack("{s:O}", "data", obj); /* references obj: not scrubbed here, the caller owns it */
  char *body = wrap ? json_dumps(wrap, JSON_COMPACT) : NULL;
  json_decref(wrap);
  if (!body) return DMT_SECRETS_BAD_INPUT;
  long status;
  json_t *resp;
  rc = call(v, "POST", p, body, &status, &resp, err, errlen) != 0 ? DMT_SECRETS_ERROR : DMT_SECRETS_OK;
  if (rc == DMT_SECRETS_OK && status != 200 && status != 204) {
    vault_error(status, resp, err, errlen);
    rc = DMT_SECRETS_ERROR;
  }
  OPENSSL_cleanse(body, strlen(body));
  free(body);
  scrub(resp);
  return rc;
}

static int v_del(struct dmt_secrets *s, PGconn *db, const char *tenant, const char *path, char *err, size_t errlen) {
  struct vault *v = (struct vault *)s;
  char p[700];
  int rc = kv_path(v, true, tenant, path, p, sizeof p, err, errlen);
  if (rc != DMT_SECRETS_OK) return rc;
  long status;
  json_t *resp;
  rc = call(v, "DELETE", p, NULL, &status, &resp, err, errlen) != 0 ? DMT_SECRETS_ERROR : DMT_SECRETS_OK;
  if (rc == DMT_SECRETS_OK && status != 200 && status != 204 && status != 404) {
    vault_error(status, resp, err, errlen);
    rc = DMT_SECRETS_ERROR;
  }
  scrub(resp);
  return rc;
}

static int v_health(struct dmt_secrets *s, PGconn *db, char *err, size_t errlen) {
  struct vault *v = (struct vault *)s;
  long status;
  json_t *resp;
  if (http(v, "GET", "sys/health?standbyok=true", "", NULL, &status, &resp, err, errlen) != 0) return DMT_SECRETS_ERROR;
  json_decref(resp);
  if (status != 200) {
    snprintf(err, errlen, "Vault health answered %ld (sealed, uninitialised or not active)", status);
    return DMT_SECRETS_ERROR;
  }
  pthread_mutex_lock(&v->mu);
  bool valid = v->token[0] && (!v->expires || time(NULL) < v->expires);
  pthread_mutex_unlock(&v->mu);
  if (!valid) {
    snprintf(err, errlen, "no valid Vault token (login or renewal failing; see the log)");
    return DMT_SECRETS_ERROR;
  }
  return DMT_SECRETS_OK;
}

static void v_close(struct dmt_secrets *s) {
  struct vault *v = (struct vault *)s;
  if (v->renewer_running) {
    pthread_mutex_lock(&v->mu);
    v->stop = true;
    pthread_cond_signal(&v->wake);
    pthread_mutex_unlock(&v->mu);
    pthread_join(v->renewer, NULL);
  }
  pthread_cond_destroy(&v->wake);
  pthread_mutex_destroy(&v->mu);
  dmt_secrets_secure_free(v, sizeof *v);
}

static const struct dmt_secrets_ops vault_ops = {v_close, v_get, v_put, v_del, NULL, v_health};

static void curl_init_once(void) { curl_global_init(CURL_GLOBAL_DEFAULT); }

/* secret/data/ -> secret/metadata/ (the last "data/" path segment). */
static bool metadata_prefix(const char *data, char *out, size_t outlen) {
  const char *hit = NULL;
  for (const char *p = data; (p = strstr(p, "data/")); p++)
    if (p == data || p[-1] == '/') hit = p;
  if (!hit) return false;
  snprintf(out, outlen, "%.*smetadata/%s", (int)(hit - data), data, hit + 5);
  return true;
}

static bool copy(char *dst, size_t cap, const char *src) {
  size_t n = src ? strlen(src) : 0;
  if (n >= cap) return false;
  memcpy(dst, src ? src : "", n + 1);
  return true;
}

struct dmt_secrets *dmt_secrets_vault_open(const struct dmt_secrets_config *cfg, char *err, size_t errlen) {
  static pthread_once_t once = PTHREAD_ONCE_INIT;
  pthread_once(&once, curl_init_once);
  struct vault *v = dmt_secrets_secure_alloc(sizeof *v);
  if (!v) {
    snprintf(err, errlen, "out of memory");
    return NULL;
  }
  v->base.ops = &vault_ops;
  v->log = cfg->log;
  pthread_mutex_init(&v->mu, NULL);
  pthread_cond_init(&v->wake, NULL);
  const char *addr = cfg->vault_address ? cfg->vault_address : "";
  const char *mount = cfg->vault_mount_path && *cfg->vault_mount_path ? cfg->vault_mount_path : "secret/data/";
  while (*mount == '/') mount++;
  size_t alen = strlen(addr), mlen = strlen(mount);
  const char *why = NULL;
  if ((strncmp(addr, "http://", 7) && strncmp(addr, "https://", 8)) || !copy(v->address, sizeof v->address, addr))
    why = "the Vault address must be http(s)://host[:port]";
  else if (mlen + 2 > sizeof v->data_prefix)
    why = "the Vault mount path is too long";
  if (!why) {
    while (alen && v->address[alen - 1] == '/') v->address[--alen] = '\0';
    snprintf(v->data_prefix, sizeof v->data_prefix, "%s%s", mount, mount[mlen - 1] == '/' ? "" : "/");
    if (!metadata_prefix(v->data_prefix, v->meta_prefix, sizeof v->meta_prefix))
      why = "the Vault mount path must be a KV v2 data path such as secret/data/";
  }
  bool has_token = cfg->vault_token && *cfg->vault_token;
  if (!why && has_token && !token_ok(cfg->vault_token, strlen(cfg->vault_token)))
    why = "the Vault token must be printable ASCII without spaces";
  if (!why && !has_token && !(cfg->vault_k8s_role && *cfg->vault_k8s_role))
    why = "the Vault back end needs a token or a Kubernetes auth role";
  if (!why && (!copy(v->role, sizeof v->role, cfg->vault_k8s_role) ||
               !copy(v->jwt_file, sizeof v->jwt_file,
                     cfg->vault_k8s_jwt_file ? cfg->vault_k8s_jwt_file : "/var/run/secrets/kubernetes.io/serviceaccount/token") ||
               !copy(v->k8s_mount, sizeof v->k8s_mount, cfg->vault_k8s_mount ? cfg->vault_k8s_mount : "kubernetes") ||
               !copy(v->ca_file, sizeof v->ca_file, cfg->vault_ca_file)))
    why = "a Vault setting is too long";
  if (why) {
    snprintf(err, errlen, "%s", why);
    v_close(&v->base);
    return NULL;
  }
  v->k8s = !has_token;
  if (has_token) memcpy(v->token, cfg->vault_token, strlen(cfg->vault_token));
  bool loopback = !strncmp(v->address, "http://127.", 11) || !strncmp(v->address, "http://localhost", 16) ||
                  !strncmp(v->address, "http://[::1]", 12); /* e.g. a Vault Agent sidecar */
  if (strncmp(v->address, "http://", 7) == 0 && !loopback)
    DMT_WARN(v->log, "vault_plaintext", "address=%s effect=\"secrets and the token cross the network unencrypted\"",
             v->address);
  /* First token now, so the agent starts ready; a failure is retried in the background, not fatal. */
  if ((v->k8s ? login(v) : lease(v, false)) != 0) v->renew_at = time(NULL) + RETRY_S;
  if (pthread_create(&v->renewer, NULL, renewer, v) != 0) {
    snprintf(err, errlen, "cannot start the Vault token renewer");
    v_close(&v->base);
    return NULL;
  }
  v->renewer_running = true;
  return &v->base;
}
