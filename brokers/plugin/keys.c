/*
 * The key set north tokens are checked against. Two sources:
 *  - jwks_file: loaded at start (the broker refuses to start without it),
 *    reloaded on SIGHUP and whenever its mtime, size or inode change (checked
 *    from the tick), so a Kubernetes Secret/ConfigMap update is picked up;
 *  - jwks_url: Keycloak's certs endpoint, fetched at start and then every
 *    jwks_refresh seconds by a thread (never on the broker's thread), and
 *    early, at most every 30 s, when a token names a kid we do not have, which
 *    is how a Keycloak key rotation shows up.
 * A set that fails to load never replaces a good one.
 */
#include <curl/curl.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "plugin.h"

#define FETCH_TIMEOUT_S 10L
#define RETRY_S 10
#define FORCED_MIN_S 30

static void install(struct plugin_keys *k, struct dmt_jwks *set, const char *source) {
  pthread_mutex_lock(&k->lock);
  struct dmt_jwks *old = k->set;
  k->set = set;
  pthread_mutex_unlock(&k->lock);
  dmt_jwks_free(old);
  plog(MOSQ_LOG_NOTICE, "event=jwks_loaded source=%s keys=%zu", source, dmt_jwks_count(set));
}

static bool same_file(const struct stat *a, const struct stat *b) {
  return a->st_ino == b->st_ino && a->st_size == b->st_size && a->st_mtim.tv_sec == b->st_mtim.tv_sec &&
         a->st_mtim.tv_nsec == b->st_mtim.tv_nsec;
}

/* 0 when the current set reflects the file (loaded now or unchanged). */
static int load_file(struct plugin_keys *k, bool force) {
  struct stat st;
  if (stat(k->file, &st) != 0) {
    plog(MOSQ_LOG_WARNING, "event=jwks_unreadable source=file error=\"%s\"", strerror(errno));
    return -1;
  }
  if (!force && same_file(&st, &k->st)) return 0;
  k->st = st; /* a broken file is reported once, not at every check */
  char err[256];
  struct dmt_jwks *set = dmt_jwks_load_file(k->file, err, sizeof err);
  if (!set) {
    plog(MOSQ_LOG_WARNING, "event=jwks_rejected source=file error=\"%s\" effect=\"previous keys kept\"", err);
    return -1;
  }
  install(k, set, "file");
  return 0;
}

void keys_check_file(struct plugin_keys *k, bool force) {
  if (k->file) load_file(k, force);
}

static int fetch(struct plugin_keys *k) {
  char err[512];
  struct dmt_jwks *set;
  int rc = dmt_jwks_fetch(k->url, k->ca_file, FETCH_TIMEOUT_S, &set, err, sizeof err);
  if (rc == DMT_JWKS_UNREACHABLE)
    plog(MOSQ_LOG_WARNING, "event=jwks_fetch_failed error=\"%s\"", err);
  else if (rc == DMT_JWKS_REFUSED)
    plog(MOSQ_LOG_WARNING, "event=jwks_rejected source=url error=\"%s\" effect=\"previous keys kept\"", err);
  else
    install(k, set, "url");
  return rc == DMT_JWKS_FETCHED ? 0 : -1;
}

static void *fetcher(void *arg) {
  struct plugin_keys *k = arg;
  pthread_mutex_lock(&k->lock);
  bool ok = k->set != NULL; /* how the start-up fetch went */
  while (!k->stop) {
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += ok ? (time_t)k->refresh : RETRY_S;
    while (!k->stop && !k->want_refresh && pthread_cond_timedwait(&k->wake, &k->lock, &until) != ETIMEDOUT) {
    }
    if (k->stop) break;
    k->want_refresh = false;
    pthread_mutex_unlock(&k->lock);
    ok = fetch(k) == 0;
    pthread_mutex_lock(&k->lock);
  }
  pthread_mutex_unlock(&k->lock);
  return NULL;
}

int keys_open(struct plugin_keys *k, const char *file, const char *url, const char *ca_file, unsigned refresh,
              char *err, size_t errlen) {
  if (file) {
    k->file = strdup(file);
    if (load_file(k, true) != 0) {
      snprintf(err, errlen, "cannot load jwks_file %s", file);
      return -1;
    }
    return 0;
  }
  if (strncmp(url, "https://", 8) != 0 && strncmp(url, "http://", 7) != 0) {
    snprintf(err, errlen, "jwks_url must be http:// or https://");
    return -1;
  }
  curl_global_init(CURL_GLOBAL_DEFAULT);
  k->url = strdup(url);
  k->ca_file = ca_file ? strdup(ca_file) : NULL;
  k->refresh = refresh;
  if (fetch(k) != 0) plog(MOSQ_LOG_WARNING, "event=jwks_pending effect=\"north logins fail until the keys load\"");
  if (pthread_create(&k->thread, NULL, fetcher, k) != 0) {
    snprintf(err, errlen, "cannot start the JWKS fetcher");
    return -1;
  }
  k->thread_running = true;
  return 0;
}

void keys_close(struct plugin_keys *k) {
  if (k->thread_running) {
    pthread_mutex_lock(&k->lock);
    k->stop = true;
    pthread_cond_signal(&k->wake);
    pthread_mutex_unlock(&k->lock);
    pthread_join(k->thread, NULL);
  }
  dmt_jwks_free(k->set);
  free(k->file);
  free(k->url);
  free(k->ca_file);
  pthread_cond_destroy(&k->wake);
  pthread_mutex_destroy(&k->lock);
  memset(k, 0, sizeof *k);
}

int keys_verify(struct plugin_keys *k, const struct dmt_jwt_verifier *v, const char *token, time_t now,
                struct dmt_identity *out) {
  pthread_mutex_lock(&k->lock);
  int rc = dmt_jwt_verify(v, k->set, token, now, out);
  if (rc == DMT_JWT_UNKNOWN_KEY && k->thread_running && now - k->last_forced >= FORCED_MIN_S) {
    k->last_forced = now;
    k->want_refresh = true;
    pthread_cond_signal(&k->wake);
  }
  pthread_mutex_unlock(&k->lock);
  return rc;
}
