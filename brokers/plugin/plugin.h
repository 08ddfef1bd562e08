/*
 * Internal interface of the tenancy plugin (dmt_auth_plugin.so): the state
 * one plugin instance keeps and the functions its files share. One file per
 * concern, as Mosquitto's own plugins are laid out:
 *   plugin.c        entry points, options, callback registration, reload
 *   keys.c          the JWKS (file watched by mtime, or URL fetched by a thread)
 *   auth_jwt.c      north clients: Keycloak token as the MQTT password
 *   auth_service.c  agents: svc:<name> + secret, the credentials file
 *   clients.c       per-client identities, token expiry, disconnects
 *   acl.c           ACL_CHECK -> dmt/topic_acl.h
 *   requester.c     MESSAGE: stamp dmt-requester on every publish
 * Everything runs on the broker's single thread except the JWKS fetcher,
 * which only touches `keys` under its lock.
 */
#ifndef DMT_BROKER_PLUGIN_H
#define DMT_BROKER_PLUGIN_H

// clang-format off
#include <mosquitto.h>
#include <mosquitto_broker.h>
#include <mosquitto_plugin.h>
// clang-format on
#include <pthread.h>
#include <stdbool.h>
#include <sys/stat.h>
#include <time.h>

#include "dmt/jwt_auth.h"
#include "dmt/strmap.h"
#include "dmt/svc_auth.h"

#define PLUGIN_LOG_PREFIX "dmt-auth"

struct plugin_keys {
  pthread_mutex_t lock;
  struct dmt_jwks *set;     /* current key set; NULL until one loads */
  char *file;               /* file mode */
  struct stat st;
  char *url, *ca_file;      /* URL mode: a fetcher thread refreshes `set` */
  unsigned refresh;         /* seconds between fetches */
  pthread_t thread;
  bool thread_running, stop, want_refresh;
  pthread_cond_t wake;
  time_t last_forced;
};

/* A north client's identity, keyed by client id in plugin.clients. */
struct client {
  const struct mosquitto *conn; /* compared, never dereferenced: the connection this identity belongs to */
  bool online;
  struct dmt_identity id;
};

struct plugin {
  mosquitto_plugin_id_t *pid;
  struct dmt_jwt_verifier *verifier; /* NULL: token logins are off */
  struct plugin_keys keys;
  struct dmt_strmap clients;         /* client id -> struct client * */
  char *agents_file;
  struct dmt_svc_creds *agents;
  struct stat agents_st;
  bool agent_secrets;                /* accept svc:<name> + secret logins */
  unsigned file_check_interval;
  time_t last_tick, next_file_check;
};

/* Logs through the broker with the plugin's prefix. */
#define plog(level, ...) mosquitto_log_printf((level), PLUGIN_LOG_PREFIX " " __VA_ARGS__)

/* keys.c */
int keys_open(struct plugin_keys *k, const char *file, const char *url, const char *ca_file, unsigned refresh,
              char *err, size_t errlen);
void keys_close(struct plugin_keys *k);
void keys_check_file(struct plugin_keys *k, bool force);
int keys_verify(struct plugin_keys *k, const struct dmt_jwt_verifier *v, const char *token, time_t now,
                struct dmt_identity *out);

/* auth_jwt.c */
int auth_jwt(struct plugin *p, struct mosquitto *client, const char *username, const char *password);

/* auth_service.c */
int agents_load(struct plugin *p, bool force);
int auth_service(struct plugin *p, struct mosquitto *client, const char *username, const char *password);
bool is_agent(const char *username);

/* clients.c */
int clients_put(struct plugin *p, const struct mosquitto *conn, const char *client_id, struct dmt_identity *id);
const struct client *clients_find(struct plugin *p, const struct mosquitto *conn, time_t now);
void clients_forget(struct plugin *p, const char *client_id);
void clients_free_all(struct plugin *p);
int on_disconnect(int event, void *event_data, void *userdata);
int on_tick(int event, void *event_data, void *userdata);

/* acl.c */
int on_acl_check(int event, void *event_data, void *userdata);

/* requester.c */
int on_message(int event, void *event_data, void *userdata);

/* A client id or username made safe for a log line (static buffer, one per call site is enough). */
const char *log_safe(const char *s, char *buf, size_t len);

#endif
