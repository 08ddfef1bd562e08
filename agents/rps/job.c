/*
 * Jobs: what one RPC connection (or one MQTT command) asks for, from the
 * first message to the terminal one (rps-activation.md §1.3-1.7, §2.1).
 *
 *   message -> envelope + version check -> command line -> payload
 *     -> lookup (DB worker: profile, CIRA config, domain, device record)
 *     -> validation (DMT's Validator texts, plain-text errors)
 *     -> [ACM: provisioning certificate on the signing pool, root hash check]
 *     -> flow (ccm / acm / reconfigure / deactivate / maintenance)
 *     -> terminal message (status JSON) + event
 *
 * The record rule ("never half-registered", docs/rps.md): the device row and
 * its devices/<guid> secret are written together, in one transaction, only
 * once the device has confirmed the credentials they hold (SAVE_RECORD after
 * Setup/AdminSetup/SetAdminAclEntryEx, the CIRA step before AddMpServer as
 * DMT does). A job that ends in any way after the device confirmed new
 * credentials but before they were saved (an RPC disconnect during the
 * post-activation delay or MEBx step) still saves them: the device holds
 * them, dropping them would orphan it. Nothing else is ever written.
 */
#include <ctype.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dmt/events.h"
#include "rps.h"

/* ---- small helpers ---- */

const char *job_mode_name(enum act_mode m) { return m == MODE_ACM ? "acm" : m == MODE_CCM ? "ccm" : "pre"; }

void job_mark_wait(struct rps_job *j) {
  uint64_t now = rps_now_us();
  j->t_server += now - j->t_mark;
  j->t_mark = now;
}

void job_mark_work(struct rps_job *j) {
  uint64_t now = rps_now_us();
  j->t_wait += now - j->t_mark;
  j->t_mark = now;
}

static void wipe(char *s, size_t n) { OPENSSL_cleanse(s, n); }

struct rps_job *job_new(struct rps *s, enum job_kind kind) {
  struct rps_job *j = calloc(1, sizeof *j);
  if (!j) return NULL;
  j->srv = s;
  j->refs = 1;
  j->kind = kind;
  j->dev.current_mode = -1;
  wsman_session_reset(&j->ws);
  dmt_uuid4(j->id);
  j->t_start = j->t_mark = rps_now_us();
  s->njobs++;
  s->count.jobs_started++;
  return j;
}

struct rps_job *job_ref(struct rps_job *j) {
  j->refs++;
  return j;
}

void job_unref(struct rps_job *j) {
  if (--j->refs > 0) return;
  rps_timer_stop(&j->t_wsman);
  rps_timer_stop(&j->t_delay);
  rps_timer_stop(&j->t_deadline);
  j->srv->njobs--;
  rpc_device_free(&j->dev);
  rpc_command_free(&j->args);
  lookup_free(&j->lk);
  acm_chain_unref(j->chain);
  free(j->signature_b64);
  name_list_clear(&j->names);
  json_decref(j->general);
  json_decref(j->wired);
  json_decref(j->saved);
  json_decref(j->optin);
  wsman_session_reset(&j->ws);
  dmt_buf_free(&j->ws.body);
  wipe(j->amt_password, sizeof j->amt_password);
  wipe(j->mebx_password, sizeof j->mebx_password);
  wipe(j->mps_password, sizeof j->mps_password);
  free(j);
}

/* ---- ending ---- */

static void send_terminal(struct rps_job *j, bool ok, const char *message) {
  if (!j->conn) return;
  /* activation keeps DMT's method/status pairs; deactivation and maintenance too (§1.7) */
  conn_send_text(j->conn, rpc_msg_encode(ok ? "success" : "error", ok ? "success" : "failed", message, NULL));
}

static void log_done(struct rps_job *j, bool ok) {
  uint64_t total = rps_now_us() - j->t_start;
  DMT_INFO(&j->srv->log, "job_done",
           "job=%s kind=%d guid=%s tenant=%s outcome=%s step=%s mode=%s round_trips=%u total_ms=%.1f "
           "server_ms=%.2f wait_ms=%.1f db_ms=%.2f sign_ms=%.2f",
           j->id, (int)j->kind, j->guid[0] ? j->guid : "-", j->tenant[0] ? j->tenant : "_default",
           ok ? "success" : "failure", j->step[0] ? j->step : "-",
           job_mode_name(j->kind == JOB_ACTIVATE ? j->target : j->device_mode), j->round_trips,
           (double)total / 1000.0, (double)j->t_server / 1000.0, (double)j->t_wait / 1000.0, (double)j->t_db / 1000.0,
           (double)j->t_sign / 1000.0);
}

bool job_claim_device(struct rps_job *j) {
  struct rps_job *holder = dmt_strmap_get(&j->srv->active, j->guid);
  if (holder && holder != j) return false;
  return dmt_strmap_put(&j->srv->active, j->guid, j, NULL) == 0;
}

static void finish_now(struct rps_job *j, bool ok, const char *message) {
  if (j->ended) return;
  j->ended = true;
  if (j->guid[0] && dmt_strmap_get(&j->srv->active, j->guid) == j) dmt_strmap_del(&j->srv->active, j->guid);
  job_mark_work(j);
  rps_timer_stop(&j->t_wsman);
  rps_timer_stop(&j->t_delay);
  rps_timer_stop(&j->t_deadline);
  if (ok) j->srv->count.jobs_ok++;
  else j->srv->count.jobs_failed++;
  send_terminal(j, ok, message);
  if (j->cmd) provisioning_job_done(j, ok, ok ? 200 : 500, ok ? NULL : "device_error", message);
  events_job_done(j, ok, message);
  log_done(j, ok);
  if (j->conn) conn_job_ended(j->conn, j);
  j->conn = NULL;
}

static void saved_after_end(struct rps_job *j, bool ok) {
  DMT_INFO(&j->srv->log, "record_saved_after_end", "job=%s guid=%s ok=%d", j->id, j->guid, ok);
  job_unref(j);
}

/*
 * The record rule's last clause: credentials the device confirmed are never dropped. An activation
 * writes the whole record; a password change (maintenance) only the secret's AMT_PASSWORD.
 */
static void save_unsaved(struct rps_job *j) {
  if (!j->activated || j->record_saved || !j->guid[0]) return;
  DMT_WARN(&j->srv->log, "record_saved_on_abort", "job=%s guid=%s step=%s", j->id, j->guid, j->step);
  job_ref(j);
  int rc = j->kind == JOB_ACTIVATE ? device_register_save(j, saved_after_end)
                                   : device_register_update_password(j, saved_after_end);
  if (rc != 0) job_unref(j);
}

void job_finish(struct rps_job *j, bool ok) {
  if (j->ended) return;
  char *msg = NULL;
  if (j->kind == JOB_ACTIVATE || j->kind == JOB_DEACTIVATE || j->kind == JOB_MAINTENANCE) {
    if (!ok && j->fail_text[0]) snprintf(j->st.status, sizeof j->st.status, "%s", j->fail_text);
    if (!ok && j->kind == JOB_ACTIVATE && !j->st.activation.result) {
      j->st.activation.result = "Failure";
      snprintf(j->st.activation.details, sizeof j->st.activation.details, "%s", j->fail_text);
    }
    msg = rps_status_json(&j->st);
  } else {
    msg = strdup(ok ? j->st.status : (j->fail_text[0] ? j->fail_text : "failed"));
  }
  finish_now(j, ok, msg ? msg : "");
  free(msg);
  save_unsaved(j);
  job_unref(j); /* the reference the job started with */
}

/* A failure before any flow ran: DMT answers with the plain text (§1.5). */
static void finish_plain(struct rps_job *j, const char *text) {
  if (j->ended) return;
  snprintf(j->fail_text, sizeof j->fail_text, "%s", text);
  finish_now(j, false, text);
  job_unref(j);
}

/* A failure of the activation machine before its first WS-Man step (status JSON). */
static void finish_machine(struct rps_job *j, const char *text) {
  snprintf(j->fail_text, sizeof j->fail_text, "%s", text);
  job_finish(j, false);
}

void job_on_disconnect(struct rps_job *j) {
  j->conn = NULL;
  if (j->ended) return;
  j->disconnected = true;
  j->srv->count.disconnects_mid_job++;
  DMT_WARN(&j->srv->log, "rpc_disconnected_mid_job", "job=%s guid=%s step=%s", j->id, j->guid,
           j->step[0] ? j->step : "validation");
  snprintf(j->fail_text, sizeof j->fail_text, "RPC client disconnected during %s", j->step[0] ? j->step : "validation");
  job_finish(j, false);
}

static void deadline_expired(lws_sorted_usec_list_t *sul) {
  struct rps_job *j = lws_container_of(sul, struct rps_job, t_deadline);
  if (j->ended) return;
  DMT_WARN(&j->srv->log, "job_deadline", "job=%s guid=%s step=%s", j->id, j->guid, j->step);
  snprintf(j->fail_text, sizeof j->fail_text, "Timed out: the job did not finish within %u s",
           j->srv->set.job_timeout_ms / 1000);
  job_finish(j, false);
}

/* ---- starting flows ---- */

static void chain_ready(struct rps_job *j, const char *err) {
  if (j->ended) {
    job_unref(j);
    return;
  }
  char msg[1024];
  if (err) {
    snprintf(msg, sizeof msg, "Failed to extract domain certificate");
    DMT_WARN(&j->srv->log, "provisioning_cert_unusable", "job=%s guid=%s domain=%s error=\"%s\"", j->id, j->guid,
             j->lk.domain.name, err);
    finish_machine(j, msg);
  } else {
    int64_t now = (int64_t)time(NULL);
    if (now > j->chain->not_after_min || now < j->chain->not_before_max) {
      snprintf(msg, sizeof msg, "Device %s activation failed. The provisioning certificate of domain %.100s is %s.",
               j->guid, j->lk.domain.name, now > j->chain->not_after_min ? "expired" : "not yet valid");
      finish_machine(j, msg);
    } else if (!acm_domain_matches(j->chain->leaf_cn, j->dev.fqdn) &&
               !(j->device_mode == MODE_ACM && !j->dev.fqdn[0])) {
      snprintf(msg, sizeof msg,
               "Device %s activation failed. The provisioning certificate of domain %.100s (%.200s) does not match "
               "the device's DNS suffix %.255s.",
               j->guid, j->lk.domain.name, j->chain->leaf_cn, j->dev.fqdn);
      finish_machine(j, msg);
    } else if (!acm_root_trusted(j->chain, j->dev.cert_hashes, j->dev.ncert_hashes)) {
      finish_machine(j, "Invalid domain certificate, hash does not exists in list of trusted root certificates on AMT");
    } else {
      flow_start(j, &flow_acm);
    }
  }
  job_unref(j);
}

/* The passwords this activation sets: the profile's, or random ones (§2.3, §2.4). */
static int prepare_credentials(struct rps_job *j) {
  const struct rps_profile *p = &j->lk.profile;
  if (p->random_amt) {
    if (amt_random_password(j->amt_password, sizeof j->amt_password) != 0) return -1;
  } else if (p->amt_password && *p->amt_password) {
    snprintf(j->amt_password, sizeof j->amt_password, "%s", p->amt_password);
  } else {
    return -1;
  }
  if (j->target != MODE_ACM) return 0;
  if (p->random_mebx) return amt_random_password(j->mebx_password, sizeof j->mebx_password);
  if (!p->mebx_password || !*p->mebx_password) return -1;
  snprintf(j->mebx_password, sizeof j->mebx_password, "%s", p->mebx_password);
  return 0;
}

static void start_activation(struct rps_job *j) {
  char err[512];
  if (validate_activation(j, err, sizeof err) != 0) {
    if (err[0] == '!') finish_machine(j, err + 1); /* a machine-level failure (status JSON) */
    else finish_plain(j, err);
    return;
  }
  if (prepare_credentials(j) != 0) {
    finish_machine(j, "Failed to get amt profile from database");
    return;
  }
  /* fresh devices: the local system account; activated ones: admin with the password the client gave */
  if (j->device_mode == MODE_NONE) wsman_set_credentials(j, j->dev.username, j->dev.password);
  else wsman_set_credentials(j, RPS_ADMIN_USER, j->dev.password);
  if (j->target == MODE_ACM && (j->device_mode == MODE_NONE || j->upgrade)) {
    job_ref(j);
    if (chain_get(j, chain_ready) != 0) {
      job_unref(j);
      finish_machine(j, "Failed to get amt domain certificate from database");
    }
    return;
  }
  if (j->device_mode != MODE_NONE) flow_start(j, &flow_reconfigure);
  else flow_start(j, j->target == MODE_ACM ? &flow_acm : &flow_ccm);
}

static void lookup_done(struct rps_job *j) {
  if (j->ended) {
    job_unref(j);
    return;
  }
  char err[512];
  if (j->lk.rc != 0) {
    /* DMT sends nothing when its store fails; we say so */
    snprintf(err, sizeof err, "Device %s %s failed. The database or secret store is unavailable.", j->guid,
             j->kind == JOB_ACTIVATE ? "activation" : j->kind == JOB_DEACTIVATE ? "deactivation" : "maintenance");
    finish_plain(j, err);
  } else if (j->kind == JOB_ACTIVATE) {
    start_activation(j);
  } else if (j->kind == JOB_DEACTIVATE) {
    if (validate_deactivation(j, err, sizeof err) != 0) finish_plain(j, err);
    else {
      wsman_set_credentials(j, RPS_ADMIN_USER, j->dev.password);
      flow_start(j, &flow_deactivate_local);
    }
  } else {
    if (validate_maintenance(j, err, sizeof err) != 0) finish_plain(j, err);
    else {
      wsman_set_credentials(j, RPS_ADMIN_USER, j->dev.password);
      flow_start(j, &flow_maintenance);
    }
  }
  job_unref(j);
}

/* ---- messages ---- */

static void send_error(struct rps_conn *c, const char *text) {
  conn_send_text(c, rpc_msg_encode("error", "failed", text, NULL));
}

static int decode_payload(const struct rpc_msg *m, const char *client_id, struct rpc_device *d, char *err,
                          size_t errlen) {
  uint8_t *raw = NULL;
  size_t rawlen = 0;
  if (!m->payload || rps_b64_decode(m->payload, strlen(m->payload), &raw, &rawlen) != 0) {
    snprintf(err, errlen, "Invalid payload from client");
    return -1;
  }
  int rc = rpc_device_decode(raw, rawlen, client_id, d, err, errlen);
  OPENSSL_cleanse(raw, rawlen);
  free(raw);
  return rc;
}

static void start_job(struct rps_conn *c, struct rps_job **slot, const struct rpc_msg *m, struct rpc_command *args,
                      enum job_kind kind) {
  struct rps *s = conn_server(c);
  char err[512];
  struct rps_job *j = job_new(s, kind);
  if (!j) {
    send_error(c, "out of memory");
    return;
  }
  snprintf(j->id, sizeof j->id, "%s", conn_client_id(c));
  j->args = *args;
  memset(args, 0, sizeof *args);
  if (decode_payload(m, j->id, &j->dev, err, sizeof err) != 0) {
    send_error(c, err);
    s->count.jobs_failed++;
    job_unref(j);
    return;
  }
  snprintf(j->guid, sizeof j->guid, "%s", j->dev.uuid);
  if (!job_claim_device(j)) {
    /* two clients for one device would race on its record: the second waits its turn */
    snprintf(err, sizeof err, "Device %s is already being provisioned by another connection", j->guid);
    j->guid[0] = '\0';
    send_error(c, err);
    s->count.jobs_failed++;
    job_unref(j);
    return;
  }
  j->conn = c;
  *slot = j;
  j->device_mode = j->dev.current_mode == 1 ? MODE_CCM : j->dev.current_mode == 2 ? MODE_ACM : MODE_NONE;
  snprintf(j->tenant, sizeof j->tenant, "%s", m->tenant_id ? m->tenant_id : "");
  /* the tenant is a topic level and a secret-store key: [A-Za-z0-9_-]{0,64} (schemas/topics.md) */
  const char *tid = m->tenant_id ? m->tenant_id : "";
  bool tenant_ok = strlen(tid) <= 64;
  for (const char *t = tid; tenant_ok && *t; t++) tenant_ok = isalnum((unsigned char)*t) || *t == '-' || *t == '_';
  if (!tenant_ok) {
    j->tenant[0] = '\0';
    j->bad_tenant = true; /* its event goes to the system namespace */
    snprintf(err, sizeof err, "Device %s: invalid tenantId", j->guid);
    finish_plain(j, err);
    return;
  }
  /* CommandParser: --password overrides the payload's */
  if (j->args.password) snprintf(j->dev.password, sizeof j->dev.password, "%s", j->args.password);
  rps_timer_start(s, &j->t_deadline, deadline_expired, s->set.job_timeout_ms);
  const char *action = kind == JOB_ACTIVATE ? "activation" : kind == JOB_DEACTIVATE ? "deactivation" : "maintenance";
  DMT_INFO(&s->log, "job_started", "job=%s kind=%s guid=%s tenant=%s profile=%s mode=%d ver=%s", j->id, action,
           j->guid, j->tenant[0] ? j->tenant : "_default", j->args.profile ? j->args.profile : "-",
           j->dev.current_mode, j->dev.ver);
  /* checks that need no database, in DMT's order */
  if (kind != JOB_MAINTENANCE && validate_amt_version(&j->dev, action, err, sizeof err) != 0) {
    finish_plain(j, err);
    return;
  }
  if (kind == JOB_ACTIVATE && !j->dev.password[0]) {
    snprintf(err, sizeof err, "Device %s activation failed. Missing password.", j->guid);
    finish_plain(j, err);
    return;
  }
  if (j->dev.tls_enforced || j->dev.tls_tunnel) {
    snprintf(err, sizeof err,
             "Device %s %s failed. TLS tunnel mode (AMT 19+ TLS-enforced or --tls-tunnel) is not supported by this "
             "server.",
             j->guid, action);
    finish_plain(j, err);
    return;
  }
  if (kind == JOB_MAINTENANCE && validate_maintenance(j, err, sizeof err) != 0) {
    finish_plain(j, err);
    return;
  }
  struct rps_lookup *lk = &j->lk;
  snprintf(lk->tenant, sizeof lk->tenant, "%s", j->tenant);
  snprintf(lk->guid, sizeof lk->guid, "%s", j->guid);
  snprintf(lk->fqdn, sizeof lk->fqdn, "%s", j->dev.fqdn);
  if (kind == JOB_ACTIVATE) {
    snprintf(lk->profile_name, sizeof lk->profile_name, "%s", j->args.profile ? j->args.profile : "undefined");
    lk->want_profile = lk->want_domain = true;
  }
  lk->want_record = true;
  job_ref(j);
  if (lookup_start(j, lookup_done) != 0) {
    job_unref(j);
    snprintf(err, sizeof err, "Device %s %s failed. The database is overloaded; try again.", j->guid, action);
    finish_plain(j, err);
  }
}

void job_on_message(struct rps_conn *c, struct rps_job **slot, const char *text, size_t len) {
  struct rps *s = conn_server(c);
  struct rpc_msg m;
  char err[512];
  if (rpc_msg_decode(text, len, &m, err, sizeof err) != 0) {
    s->count.rejected_messages++;
    DMT_WARN(&s->log, "rpc_bad_message", "client=%s error=\"%s\"", conn_client_id(c), err);
    send_error(c, err);
    return;
  }
  if (m.protocol_version && *m.protocol_version) {
    char verr[128];
    int v = rpc_version_check(m.protocol_version, RPS_PROTOCOL_VERSION, verr, sizeof verr);
    if (v != 1) {
      if (v == 0) snprintf(err, sizeof err, "protocol version NOT supported: %s", m.protocol_version);
      else snprintf(err, sizeof err, "%s", verr);
      send_error(c, err);
      rpc_msg_free(&m);
      return;
    }
  }
  struct rps_job *j = *slot;
  if (!strcmp(m.method, "response")) {
    if (j && !j->ended) wsman_on_response(j, m.payload);
    rpc_msg_free(&m);
    return;
  }
  struct rpc_command args;
  rpc_command_parse(!strcmp(m.method, "heartbeat_response") ? "" : m.method, &args);
  enum job_kind kind;
  bool known = true;
  if (!strcmp(args.method, "activate")) kind = JOB_ACTIVATE;
  else if (!strcmp(args.method, "deactivate")) kind = JOB_DEACTIVATE;
  else if (!strcmp(args.method, "maintenance")) kind = JOB_MAINTENANCE;
  else known = false;
  if (!known) {
    /* DMT's default branch; tls_data/connection_reset/port_switch_ack belong to the TLS tunnel we do not offer */
    snprintf(err, sizeof err, "Device %s Not a supported method received from AMT device",
             j ? j->guid : "undefined");
    send_error(c, err);
  } else if (j && !j->ended) {
    snprintf(err, sizeof err, "Device %s a job is already running on this connection", j->guid);
    send_error(c, err);
  } else {
    start_job(c, slot, &m, &args, kind);
  }
  rpc_command_free(&args);
  rpc_msg_free(&m);
}
