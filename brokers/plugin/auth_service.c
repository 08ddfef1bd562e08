/*
 * Agents (dmt-cira, dmt-rps, dmt-bridge, ...): username svc:<name> and a long
 * random secret checked against the salted hashes of agents_file
 * (dmt/svc_auth.h). The file is reloaded on SIGHUP and when it changes; an
 * agent whose entry disappears or is re-keyed is disconnected at once (with
 * its will, so a terminator's peers take over its devices). With
 * `agent_secrets false` only client certificates can make an agent (the
 * internal listener's `use_identity_as_username`, certificate CN svc:<name>);
 * the ACL treats any svc: username as an agent because only these two paths
 * can produce one.
 */
#include <errno.h>
#include <string.h>

#include "plugin.h"

bool is_agent(const char *username) {
  return username && strncmp(username, DMT_SVC_PREFIX, strlen(DMT_SVC_PREFIX)) == 0;
}

static void revoke(const char *username, void *ud) {
  plog(MOSQ_LOG_NOTICE, "event=agent_revoked user=%s effect=disconnected", username);
  mosquitto_kick_client_by_username(username, true);
}

int agents_load(struct plugin *p, bool force) {
  if (!p->agents_file) return 0;
  struct stat st;
  if (stat(p->agents_file, &st) != 0) {
    plog(p->agents ? MOSQ_LOG_WARNING : MOSQ_LOG_ERR, "event=agents_unreadable error=\"%s\"", strerror(errno));
    return -1;
  }
  if (!force && st.st_ino == p->agents_st.st_ino && st.st_size == p->agents_st.st_size &&
      st.st_mtim.tv_sec == p->agents_st.st_mtim.tv_sec && st.st_mtim.tv_nsec == p->agents_st.st_mtim.tv_nsec)
    return 0;
  p->agents_st = st;
  char err[256];
  struct dmt_svc_creds *fresh = dmt_svc_creds_load_file(p->agents_file, err, sizeof err);
  if (!fresh) {
    plog(p->agents ? MOSQ_LOG_WARNING : MOSQ_LOG_ERR, "event=agents_rejected error=\"%s\"%s", err,
         p->agents ? " effect=\"previous credentials kept\"" : "");
    return -1;
  }
  struct dmt_svc_creds *old = p->agents;
  p->agents = fresh;
  dmt_svc_creds_changed(old, fresh, revoke, p);
  dmt_svc_creds_free(old);
  plog(MOSQ_LOG_NOTICE, "event=agents_loaded count=%zu", dmt_svc_creds_count(fresh));
  return 0;
}

int auth_service(struct plugin *p, struct mosquitto *client, const char *username, const char *password) {
  char ubuf[120], cbuf[160];
  const char *cid = mosquitto_client_id(client);
  const char *reason = NULL;
  if (!p->agent_secrets || !p->agents) reason = "agent secrets are not accepted here";
  else if (!dmt_svc_creds_check(p->agents, username, password)) reason = "unknown agent or wrong secret";
  if (reason) {
    plog(MOSQ_LOG_NOTICE, "event=auth_failed kind=service user=%s client=%s reason=\"%s\"",
         log_safe(username, ubuf, sizeof ubuf), log_safe(cid, cbuf, sizeof cbuf), reason);
    return MOSQ_ERR_AUTH;
  }
  if (cid) clients_forget(p, cid); /* no north identity may linger under this client id */
  plog(MOSQ_LOG_INFO, "event=auth_ok kind=service user=%s client=%s", log_safe(username, ubuf, sizeof ubuf),
       log_safe(cid, cbuf, sizeof cbuf));
  return MOSQ_ERR_SUCCESS;
}
