/*
 * Entry points of the tenancy plugin (Mosquitto plugin API v5): options,
 * callback registration, reload and cleanup. Every option is checked at
 * start and an unknown one stops the broker, because a mistyped security
 * setting must not silently fall back to a default. brokers/README.md lists
 * the options.
 *
 * Mosquitto 2.0 only delivers MOSQ_EVT_TICK to plugins loaded with
 * `per_listener_settings false` (its per-listener tick is unimplemented), and
 * token expiry depends on the tick, so that is the supported layout; state
 * lives in the instance, never in globals.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "dmt/log.h"
#include "plugin.h"

struct options {
  const char *issuer, *audience, *jwks_file, *jwks_url, *jwks_ca_file, *roles_rw, *roles_ro, *roles_client;
  const char *agents_file;
  long clock_skew, max_token_bytes, jwks_refresh, file_check_interval;
  bool agent_secrets;
};

const char *log_safe(const char *s, char *buf, size_t len) { return dmt_log_kv_quote(s ? s : "-", buf, len); }

static int parse_long(const char *key, const char *v, long min, long max, long *out) {
  char *end;
  long n = strtol(v, &end, 10);
  if (end == v || *end || n < min || n > max) {
    plog(MOSQ_LOG_ERR, "event=bad_option option=%s expected=%ld..%ld", key, min, max);
    return -1;
  }
  *out = n;
  return 0;
}

static int parse_options(struct mosquitto_opt *opts, int n, struct options *o) {
  *o = (struct options){.clock_skew = 30, .jwks_refresh = 300, .file_check_interval = 10, .agent_secrets = true};
  const struct {
    const char *name;
    const char **dst;
  } strs[] = {{"issuer", &o->issuer},         {"audience", &o->audience},         {"jwks_file", &o->jwks_file},
              {"jwks_url", &o->jwks_url},     {"jwks_ca_file", &o->jwks_ca_file}, {"roles_rw", &o->roles_rw},
              {"roles_ro", &o->roles_ro},     {"roles_client", &o->roles_client}, {"agents_file", &o->agents_file}};
  for (int i = 0; i < n; i++) {
    const char *k = opts[i].key, *v = opts[i].value ? opts[i].value : "";
    bool known = false;
    for (size_t j = 0; j < sizeof strs / sizeof strs[0] && !known; j++) {
      if (!strcmp(k, strs[j].name)) {
        *strs[j].dst = v;
        known = true;
      }
    }
    if (known) continue;
    int rc = 0;
    if (!strcmp(k, "clock_skew")) rc = parse_long(k, v, 0, 600, &o->clock_skew);
    else if (!strcmp(k, "max_token_bytes")) rc = parse_long(k, v, 1024, 65535, &o->max_token_bytes);
    else if (!strcmp(k, "jwks_refresh")) rc = parse_long(k, v, 10, 86400, &o->jwks_refresh);
    else if (!strcmp(k, "file_check_interval")) rc = parse_long(k, v, 1, 3600, &o->file_check_interval);
    else if (!strcmp(k, "agent_secrets")) {
      if (strcasecmp(v, "true") && strcasecmp(v, "false")) {
        plog(MOSQ_LOG_ERR, "event=bad_option option=agent_secrets expected=true|false");
        rc = -1;
      }
      o->agent_secrets = !strcasecmp(v, "true");
    } else {
      char buf[80];
      plog(MOSQ_LOG_ERR, "event=unknown_option option=%s", log_safe(k, buf, sizeof buf));
      return -1;
    }
    if (rc) return -1;
  }
  if (o->jwks_file && o->jwks_url) {
    plog(MOSQ_LOG_ERR, "event=bad_option reason=\"jwks_file and jwks_url are exclusive\"");
    return -1;
  }
  if (!o->jwks_file && !o->jwks_url && !o->agents_file) {
    plog(MOSQ_LOG_ERR, "event=bad_option reason=\"configure jwks_file or jwks_url (north clients) and/or agents_file\"");
    return -1;
  }
  return 0;
}

static int on_basic_auth(int event, void *event_data, void *userdata) {
  struct mosquitto_evt_basic_auth *ed = event_data;
  struct plugin *p = userdata;
  if (is_agent(ed->username)) return auth_service(p, ed->client, ed->username, ed->password);
  return auth_jwt(p, ed->client, ed->username, ed->password);
}

static int on_reload(int event, void *event_data, void *userdata) {
  struct plugin *p = userdata;
  plog(MOSQ_LOG_NOTICE, "event=reload");
  keys_check_file(&p->keys, true);
  agents_load(p, true);
  return MOSQ_ERR_SUCCESS;
}

static const struct {
  int event;
  MOSQ_FUNC_generic_callback cb;
} callbacks[] = {
    {MOSQ_EVT_BASIC_AUTH, on_basic_auth}, {MOSQ_EVT_ACL_CHECK, on_acl_check}, {MOSQ_EVT_MESSAGE, on_message},
    {MOSQ_EVT_TICK, on_tick},             {MOSQ_EVT_DISCONNECT, on_disconnect}, {MOSQ_EVT_RELOAD, on_reload},
};

static void destroy(struct plugin *p) {
  keys_close(&p->keys);
  clients_free_all(p);
  dmt_jwt_verifier_free(p->verifier);
  dmt_svc_creds_free(p->agents);
  free(p->agents_file);
  free(p);
}

__attribute__((visibility("default"))) int mosquitto_plugin_version(int supported_version_count, const int *supported_versions) {
  for (int i = 0; i < supported_version_count; i++)
    if (supported_versions[i] == 5) return 5;
  return -1;
}

__attribute__((visibility("default"))) int mosquitto_plugin_init(mosquitto_plugin_id_t *identifier, void **userdata, struct mosquitto_opt *opts,
                          int opt_count) {
  struct options o;
  if (parse_options(opts, opt_count, &o) != 0) return MOSQ_ERR_INVAL;
  struct plugin *p = calloc(1, sizeof *p);
  if (!p) return MOSQ_ERR_NOMEM;
  p->pid = identifier;
  p->agent_secrets = o.agent_secrets;
  p->file_check_interval = (unsigned)o.file_check_interval;
  dmt_strmap_init(&p->clients);
  pthread_mutex_init(&p->keys.lock, NULL);
  pthread_cond_init(&p->keys.wake, NULL);
  char err[256];
  if (o.jwks_file || o.jwks_url) {
    struct dmt_jwt_config jc = {.issuer = o.issuer, .audience = o.audience, .clock_skew = o.clock_skew,
                                .max_token_len = (size_t)o.max_token_bytes, .roles_rw = o.roles_rw,
                                .roles_ro = o.roles_ro, .roles_client = o.roles_client};
    if (!(p->verifier = dmt_jwt_verifier_new(&jc, err, sizeof err)) ||
        keys_open(&p->keys, o.jwks_file, o.jwks_url, o.jwks_ca_file, (unsigned)o.jwks_refresh, err, sizeof err) != 0) {
      plog(MOSQ_LOG_ERR, "event=init_failed error=\"%s\"", err);
      destroy(p);
      return MOSQ_ERR_INVAL;
    }
  }
  if (o.agents_file) {
    p->agents_file = strdup(o.agents_file);
    if (agents_load(p, true) != 0) {
      destroy(p);
      return MOSQ_ERR_INVAL;
    }
  }
  for (size_t i = 0; i < sizeof callbacks / sizeof callbacks[0]; i++) {
    if (mosquitto_callback_register(identifier, callbacks[i].event, callbacks[i].cb, NULL, p) != MOSQ_ERR_SUCCESS) {
      plog(MOSQ_LOG_ERR, "event=init_failed error=\"cannot register callback %d\"", callbacks[i].event);
      for (size_t j = 0; j < i; j++) mosquitto_callback_unregister(identifier, callbacks[j].event, callbacks[j].cb, NULL);
      destroy(p);
      return MOSQ_ERR_UNKNOWN;
    }
  }
  plog(MOSQ_LOG_NOTICE, "event=ready tokens=%s agents=%zu agent_secrets=%s",
       !p->verifier ? "off" : o.jwks_url ? "jwks_url" : "jwks_file", dmt_svc_creds_count(p->agents),
       p->agent_secrets ? "on" : "off");
  *userdata = p;
  return MOSQ_ERR_SUCCESS;
}

__attribute__((visibility("default"))) int mosquitto_plugin_cleanup(void *userdata, struct mosquitto_opt *opts, int opt_count) {
  struct plugin *p = userdata;
  if (!p) return MOSQ_ERR_SUCCESS;
  for (size_t i = 0; i < sizeof callbacks / sizeof callbacks[0]; i++)
    mosquitto_callback_unregister(p->pid, callbacks[i].event, callbacks[i].cb, NULL);
  destroy(p);
  return MOSQ_ERR_SUCCESS;
}
