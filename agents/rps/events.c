/*
 * Activation, deactivation and maintenance events (schemas/topics.md): one
 * per job, when it ends, on dmt/v1/<tenant>/devices/<guid>/events/<kind> and
 * in dmt.events (dmt/events.h). `action` names the flow (ccm_activate,
 * acm_activate, acm_upgrade, reconfigure, deactivate, remote_deactivate or the
 * maintenance task), `message` is what the RPC client was told, `data`
 * carries the step reached, the mode, the DMT status strings, the transport
 * detail of a failure and the timings. Never a password, hash or signature.
 * A job that failed before the device was identified goes to the system
 * namespace (dmt/_sys/events/<kind>).
 */
#include <stdio.h>
#include <string.h>

#include "dmt/events.h"
#include "rps.h"

static const char *kind_of(const struct rps_job *j) {
  switch (j->kind) {
    case JOB_ACTIVATE: return "activation";
    case JOB_MAINTENANCE: return "maintenance";
    default: return "deactivation";
  }
}

static const char *action_of(const struct rps_job *j) {
  switch (j->kind) {
    case JOB_ACTIVATE:
      if (j->device_mode != MODE_NONE && !j->upgrade) return "reconfigure";
      if (j->upgrade) return "acm_upgrade";
      return j->target == MODE_ACM ? "acm_activate" : j->target == MODE_CCM ? "ccm_activate" : "activate";
    case JOB_DEACTIVATE: return "deactivate";
    case JOB_REMOTE_DEACTIVATE: return "remote_deactivate";
    case JOB_MAINTENANCE: return j->args.task ? j->args.task : "maintenance";
  }
  return "unknown";
}

static void pack_str(msgpack_packer *pk, const char *k, const char *v) {
  msgpack_pack_str_with_body(pk, k, strlen(k));
  msgpack_pack_str_with_body(pk, v, strlen(v));
}

void events_job_done(struct rps_job *j, bool ok, const char *message) {
  /* the message is the outcome in one line; the full status JSON is in data */
  if (ok && j->st.status[0]) message = j->st.status;
  else if (!ok && j->fail_text[0]) message = j->fail_text;
  msgpack_sbuffer sb;
  msgpack_sbuffer_init(&sb);
  msgpack_packer pk;
  msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
  size_t n = 7 + (j->args.profile ? 1 : 0) + (!ok && j->ws.last_error[0] ? 1 : 0) + (j->disconnected ? 1 : 0);
  msgpack_pack_map(&pk, n);
  pack_str(&pk, "step", j->step[0] ? j->step : "validation");
  pack_str(&pk, "mode", job_mode_name(ok && j->kind == JOB_ACTIVATE ? j->target : j->device_mode));
  pack_str(&pk, "transport", j->cmd ? "mqtt" : "rpc");
  pack_str(&pk, "status", j->st.status);
  pack_str(&pk, "network", j->st.network);
  pack_str(&pk, "cira", j->st.cira);
  if (j->args.profile) pack_str(&pk, "profile", j->args.profile);
  if (!ok && j->ws.last_error[0]) pack_str(&pk, "detail", j->ws.last_error);
  if (j->disconnected) {
    msgpack_pack_str_with_body(&pk, "client_disconnected", 19);
    msgpack_pack_true(&pk);
  }
  msgpack_pack_str_with_body(&pk, "timing_ms", 9);
  msgpack_pack_map(&pk, 4);
  msgpack_pack_str_with_body(&pk, "server", 6);
  msgpack_pack_double(&pk, (double)j->t_server / 1000.0);
  msgpack_pack_str_with_body(&pk, "wait", 4);
  msgpack_pack_double(&pk, (double)j->t_wait / 1000.0);
  msgpack_pack_str_with_body(&pk, "sign", 4);
  msgpack_pack_double(&pk, (double)j->t_sign / 1000.0);
  msgpack_pack_str_with_body(&pk, "round_trips", 11);
  msgpack_pack_uint32(&pk, j->round_trips);
  struct dmt_event_spec e = {.tenant = j->guid[0] && !j->bad_tenant ? j->tenant : NULL, .guid = j->guid[0] ? j->guid : NULL,
                             .kind = kind_of(j), .action = action_of(j), .success = ok,
                             .requester = j->requester[0] ? j->requester : NULL, .source = j->srv->instance,
                             .message = message, .data = sb.data, .data_len = sb.size};
  if (dmt_event_emit(j->srv->mqtt, j->srv->db, &e) != 0)
    DMT_WARN(&j->srv->log, "event_emit_failed", "job=%s guid=%s", j->id, j->guid);
  msgpack_sbuffer_destroy(&sb);
}
