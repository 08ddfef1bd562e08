/*
 * MOSQ_EVT_ACL_CHECK: every subscribe, unsubscribe, publish and delivery is
 * decided by dmt/topic_acl.h - agents by dmt_acl_agent(), north clients by
 * dmt_acl_north() over the grants of their (unexpired) token. A client with
 * neither an svc: username nor a live token identity gets nothing. Refused
 * subscribes and publishes are logged; refused deliveries (a broad
 * subscription meeting a command) only at debug level.
 */
#include <string.h>

#include "plugin.h"

int on_acl_check(int event, void *event_data, void *userdata) {
  struct mosquitto_evt_acl_check *ed = event_data;
  struct plugin *p = userdata;
  static const struct {
    int mosq;
    enum dmt_acl_access access;
    const char *verb;
  } kinds[] = {{MOSQ_ACL_SUBSCRIBE, DMT_ACL_SUBSCRIBE, "subscribe"},
               {MOSQ_ACL_UNSUBSCRIBE, DMT_ACL_UNSUBSCRIBE, "unsubscribe"},
               {MOSQ_ACL_READ, DMT_ACL_READ, "read"},
               {MOSQ_ACL_WRITE, DMT_ACL_WRITE, "publish"}};
  size_t k = 0;
  while (k < sizeof kinds / sizeof kinds[0] && kinds[k].mosq != ed->access) k++;
  if (k == sizeof kinds / sizeof kinds[0]) return MOSQ_ERR_ACL_DENIED;
  enum dmt_acl_access access = kinds[k].access;
  const char *user = mosquitto_client_username(ed->client), *why = "no valid token";
  bool ok;
  if (is_agent(user)) {
    ok = dmt_acl_agent(ed->topic, access, &why);
  } else {
    const struct client *c = clients_find(p, ed->client, time(NULL));
    ok = c && dmt_acl_north(&c->id.grants, mosquitto_client_id(ed->client), ed->topic, access, ed->retain, &why);
  }
  if (!ok) {
    char cbuf[160], tbuf[300];
    plog(access == DMT_ACL_READ ? MOSQ_LOG_DEBUG : MOSQ_LOG_NOTICE, "event=acl_denied client=%s access=%s topic=%s reason=\"%s\"",
         log_safe(mosquitto_client_id(ed->client), cbuf, sizeof cbuf), kinds[k].verb, log_safe(ed->topic, tbuf, sizeof tbuf), why);
  }
  return ok ? MOSQ_ERR_SUCCESS : MOSQ_ERR_ACL_DENIED;
}
