/*
 * EMF mode: every non-public route needs `Authorization: Bearer <Keycloak
 * access token>`, verified by the shared verifier (common/jwt_auth.c, also
 * used by the broker plugin: RS256 only, key by kid from a JWKS, iss, aud,
 * exp/nbf with clock skew, roles `<project>_<role>` mapped to read-write or
 * read-only grants). The tenant is the ActiveProjectID header (MT-GW sets it
 * for north calls), which must name a project the token grants; a call
 * without it (a south call) takes the tenant from the token when the token
 * grants exactly one. Read-only grants cannot use mutating routes (the
 * router's BR_RF_WRITE check). Failures are 401 (token) or 403 (project,
 * permission) with a JSON error; the token never appears in a log or a body.
 *
 * Keys: a JWKS file (reloaded when it changes, checked at most once a second
 * on the loop) or Keycloak's certs URL, fetched by a thread at start, every
 * auth.jwks_refresh_s seconds and early (at most every 30 s) when a token
 * names an unknown kid (a key rotation). New key sets reach the loop through
 * the workq, so only the loop ever reads or frees the current one.
 */
#include <curl/curl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>

#include "bridge.h"
#include "dmt/jwks.h"
#include "dmt/jwt_auth.h"
#include "dmt/topic_acl.h"

#define FORCED_MIN_S 30
#define FETCH_TIMEOUT_S 10L

struct br_emf {
  struct br_server *srv;
  struct dmt_jwt_verifier *verifier;
  struct dmt_jwks *keys; /* loop-owned */
  /* file source */
  char *file;
  struct stat st;
  time_t last_check;
  /* url source */
  char *url, *ca_file;
  unsigned refresh_s;
  pthread_t thread;
  bool thread_started, stopping, kick;
  time_t last_forced;
  pthread_mutex_t mu;
  pthread_cond_t cv;
};

static void install(struct br_emf *e, struct dmt_jwks *set, const char *source) {
  dmt_jwks_free(e->keys);
  e->keys = set;
  DMT_INFO(&e->srv->log, "jwks_loaded", "source=%s keys=%zu", source, dmt_jwks_count(set));
}

static void check_file(struct br_emf *e, bool force) {
  time_t now = time(NULL);
  if (!force && now == e->last_check) return;
  e->last_check = now;
  struct stat st;
  if (stat(e->file, &st) != 0) return;
  if (!force && st.st_ino == e->st.st_ino && st.st_size == e->st.st_size &&
      st.st_mtim.tv_sec == e->st.st_mtim.tv_sec && st.st_mtim.tv_nsec == e->st.st_mtim.tv_nsec)
    return;
  e->st = st;
  char err[256];
  struct dmt_jwks *set = dmt_jwks_load_file(e->file, err, sizeof err);
  if (set) install(e, set, "file");
  else DMT_WARN(&e->srv->log, "jwks_rejected", "source=file error=\"%s\" effect=\"previous keys kept\"", err);
}

/* ---- url source (fetch thread) ---- */

struct fetched {
  struct br_emf *e;
  struct dmt_jwks *set;
};

static void install_task(void *arg) {
  struct fetched *f = arg;
  install(f->e, f->set, "url");
  free(f);
}

static bool fetch(struct br_emf *e) {
  char err[512];
  struct dmt_jwks *set;
  int rc = dmt_jwks_fetch(e->url, e->ca_file, FETCH_TIMEOUT_S, &set, err, sizeof err);
  if (rc == DMT_JWKS_UNREACHABLE) {
    DMT_WARN(&e->srv->log, "jwks_fetch_failed", "error=\"%s\"", err);
    return false;
  }
  if (rc == DMT_JWKS_REFUSED) {
    DMT_WARN(&e->srv->log, "jwks_rejected", "source=url error=\"%s\" effect=\"previous keys kept\"", err);
    return false;
  }
  struct fetched *f = malloc(sizeof *f);
  bool ok = false;
  if (f) {
    f->e = e;
    f->set = set;
    ok = dmt_workq_post_owned(&e->srv->q, install_task, f) == 0;
  }
  if (!ok) {
    dmt_jwks_free(set);
    free(f);
  }
  return ok;
}

static void *fetcher(void *arg) {
  struct br_emf *e = arg;
  pthread_mutex_lock(&e->mu);
  while (!e->stopping) {
    pthread_mutex_unlock(&e->mu);
    bool ok = fetch(e);
    pthread_mutex_lock(&e->mu);
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += ok ? (time_t)e->refresh_s : 10; /* retry sooner after a failure */
    while (!e->stopping && !e->kick)
      if (pthread_cond_timedwait(&e->cv, &e->mu, &until) != 0) break;
    e->kick = false;
  }
  pthread_mutex_unlock(&e->mu);
  return NULL;
}

static void kick_fetch(struct br_emf *e) {
  time_t now = time(NULL);
  if (!e->url || now - e->last_forced < FORCED_MIN_S) return;
  e->last_forced = now;
  pthread_mutex_lock(&e->mu);
  e->kick = true;
  pthread_cond_signal(&e->cv);
  pthread_mutex_unlock(&e->mu);
}

/* ---- lifecycle ---- */

int br_auth_emf_init(struct br_server *s, char *err, size_t errlen) {
  struct br_emf *e = calloc(1, sizeof *e);
  if (!e) return -1;
  e->srv = s;
  pthread_mutex_init(&e->mu, NULL);
  pthread_cond_init(&e->cv, NULL);
  s->auth.emf = e;
  const struct dmt_config *c = s->cfg;
  struct dmt_jwt_config jc = {.issuer = dmt_config_str(c, "auth.issuer"),
                              .audience = dmt_config_str(c, "auth.audience"),
                              .clock_skew = dmt_config_int(c, "auth.clock_skew_s", 30),
                              .roles_rw = dmt_config_str(c, "auth.roles_rw"),
                              .roles_ro = dmt_config_str(c, "auth.roles_ro"),
                              .roles_client = dmt_config_str(c, "auth.roles_client")};
  e->verifier = dmt_jwt_verifier_new(&jc, err, errlen);
  if (!e->verifier) return -1;
  const char *file = dmt_config_str(c, "auth.jwks_file"), *url = dmt_config_str(c, "auth.jwks_url");
  if (!file == !url) {
    snprintf(err, errlen, "emf mode needs exactly one of auth.jwks_file and auth.jwks_url");
    return -1;
  }
  if (file) {
    e->file = strdup(file);
    e->keys = dmt_jwks_load_file(file, err, errlen);
    if (!e->keys) return -1;
    stat(file, &e->st);
    e->last_check = time(NULL);
    return 0;
  }
  if (strncmp(url, "https://", 8) != 0 && strncmp(url, "http://", 7) != 0) {
    snprintf(err, errlen, "auth.jwks_url must be http:// or https://");
    return -1;
  }
  curl_global_init(CURL_GLOBAL_DEFAULT);
  e->url = strdup(url);
  const char *ca = dmt_config_str(c, "auth.jwks_ca_file");
  e->ca_file = ca ? strdup(ca) : NULL;
  e->refresh_s = (unsigned)dmt_config_int(c, "auth.jwks_refresh_s", 300);
  if (e->refresh_s < 10) e->refresh_s = 10;
  if (pthread_create(&e->thread, NULL, fetcher, e) != 0) {
    snprintf(err, errlen, "cannot start the JWKS fetcher");
    return -1;
  }
  e->thread_started = true;
  return 0;
}

void br_auth_emf_free(struct br_server *s) {
  struct br_emf *e = s->auth.emf;
  if (!e) return;
  if (e->thread_started) {
    pthread_mutex_lock(&e->mu);
    e->stopping = true;
    pthread_cond_signal(&e->cv);
    pthread_mutex_unlock(&e->mu);
    pthread_join(e->thread, NULL);
    curl_global_cleanup();
  }
  dmt_workq_run(&s->q); /* a set fetched during shutdown */
  dmt_jwks_free(e->keys);
  dmt_jwt_verifier_free(e->verifier);
  pthread_mutex_destroy(&e->mu);
  pthread_cond_destroy(&e->cv);
  free(e->file);
  free(e->url);
  free(e->ca_file);
  free(e);
  s->auth.emf = NULL;
}

/* ---- per request ---- */

static bool deny(struct br_txn *t, int status, const char *message) {
  br_out_error(&t->out, status, status == 401 ? "Unauthorized" : "Forbidden", message);
  return false;
}

bool br_auth_emf(struct br_txn *t) {
  struct br_emf *e = t->srv->auth.emf;
  if (!e) return deny(t, 401, "token verification is not configured");
  if (e->file) check_file(e, false);
  const char *h = t->req.authorization;
  if (!h || strncasecmp(h, "Bearer ", 7) != 0 || !h[7]) return deny(t, 401, "a bearer token is required");
  const char *token = h + 7;
  while (*token == ' ') token++;
  struct dmt_identity id = {0};
  int rc = e->keys ? dmt_jwt_verify(e->verifier, e->keys, token, time(NULL), &id) : DMT_JWT_UNKNOWN_KEY;
  if (rc != DMT_JWT_OK) {
    dmt_identity_clear(&id);
    if (rc == DMT_JWT_UNKNOWN_KEY) kick_fetch(e);
    if (rc == DMT_JWT_NO_GRANTS) return deny(t, 403, dmt_jwt_strerror(rc));
    return deny(t, 401, dmt_jwt_strerror(rc));
  }
  const char *project = t->req.project_id;
  enum dmt_perm perm = DMT_PERM_NONE;
  const char *tenant = NULL;
  if (project && *project) {
    if (!dmt_topic_tenant_valid(project)) {
      dmt_identity_clear(&id);
      return deny(t, 403, "ActiveProjectID is not a valid project id");
    }
    perm = dmt_grants_perm(&id.grants, project, strlen(project));
    tenant = project;
  } else if (id.grants.n == 1) {
    perm = id.grants.v[0].perm; /* a south call: the token names its single project */
    tenant = id.grants.v[0].tenant;
  } else {
    dmt_identity_clear(&id);
    return deny(t, 403, "ActiveProjectID is required (the token grants several projects)");
  }
  if (perm == DMT_PERM_NONE) {
    dmt_identity_clear(&id);
    return deny(t, 403, "ActiveProjectID is not one of the token's projects");
  }
  /* DMT's default tenant "" is spelled _default in grants and topics */
  snprintf(t->who.tenant, sizeof t->who.tenant, "%s", strcmp(tenant, DMT_TOPIC_DEFAULT_TENANT) ? tenant : "");
  snprintf(t->who.subject, sizeof t->who.subject, "%s", id.name);
  t->who.perms = BR_PERM_READ | (perm == DMT_PERM_READ_WRITE ? BR_PERM_WRITE : 0);
  dmt_identity_clear(&id);
  return true;
}
