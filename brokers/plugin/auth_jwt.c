/*
 * North clients (EIM services, OBaaS, dmtctl): the MQTT password is a
 * Keycloak access token. It is verified against the JWKS (see keys.c and
 * dmt/jwt_auth.h), the client id must be usable as a reply-inbox topic level,
 * and the identity (name, tenant grants, expiry) is kept per client for the
 * ACL, the requester stamp and the expiry sweep. The MQTT username is not
 * trusted for anything; it only must not start with svc:, which routes a
 * login to auth_service.c. Neither the token nor any claim of a rejected
 * token is ever logged.
 */
#include <string.h>

#include "plugin.h"

int auth_jwt(struct plugin *p, struct mosquitto *client, const char *username, const char *password) {
  const char *cid = mosquitto_client_id(client);
  char cbuf[160];
  const char *reason = NULL;
  if (!p->verifier) reason = "token logins are not configured";
  else if (!dmt_topic_client_id_valid(cid)) reason = "client id must be 1-128 of [A-Za-z0-9._:@-]";
  else if (!password || !*password) reason = "no token in the password";
  if (reason) {
    plog(MOSQ_LOG_NOTICE, "event=auth_failed kind=token client=%s reason=\"%s\"", log_safe(cid, cbuf, sizeof cbuf),
         reason);
    return MOSQ_ERR_AUTH;
  }
  struct dmt_identity id;
  time_t now = time(NULL);
  int rc = keys_verify(&p->keys, p->verifier, password, now, &id);
  if (rc != DMT_JWT_OK) {
    plog(MOSQ_LOG_NOTICE, "event=auth_failed kind=token client=%s reason=\"%s\"", log_safe(cid, cbuf, sizeof cbuf),
         dmt_jwt_strerror(rc));
    dmt_identity_clear(&id);
    return MOSQ_ERR_AUTH;
  }
  char nbuf[160];
  plog(MOSQ_LOG_INFO, "event=auth_ok kind=token client=%s user=%s tenants=%zu expires_in=%llds",
       log_safe(cid, cbuf, sizeof cbuf), log_safe(id.name, nbuf, sizeof nbuf), id.grants.n,
       (long long)(id.exp - now));
  if (clients_put(p, client, cid, &id) != 0) {
    dmt_identity_clear(&id);
    return MOSQ_ERR_NOMEM;
  }
  return MOSQ_ERR_SUCCESS;
}
