/*
 * Log verbs: the device's audit log (AMT_AuditLog.ReadRecords from the
 * requested index, newest first, {totalCnt, records}) and event log
 * (AMT_MessageLog PositionToFirstRecord + GetRecords, an array), decoded
 * from AMT's binary records into DMT's field names (shape.c).
 */
#include <stdio.h>

#include "cira.h"
#include "dmt/mptree.h"

static void audit_read(struct cmd *c, struct wsman_call *call) {
  if (cmd_check(c, call)) return;
  shape_audit_log(&c->pk, wsman_tree(call));
  cmd_done(c, 200);
}

void verb_audit_log(struct cmd *c) {
  int64_t start = 0;
  if (cmd_arg(c, "start_index") && (!cmd_arg_int(c, "start_index", &start) || start < 0)) {
    cmd_fail(c, 400, "bad_request", "start_index must be an integer, 0 or more");
    return;
  }
  char idx[24];
  snprintf(idx, sizeof idx, "%lld", (long long)start + 1); /* AMT numbers records from 1 */
  struct dmt_wsman_param p[] = {{"StartIndex", idx, false}};
  cmd_invoke(c, "AMT_AuditLog", "ReadRecords", NULL, 0, p, 1, audit_read);
}

static void events_read(struct cmd *c, struct wsman_call *call) {
  if (cmd_check(c, call)) return;
  shape_event_log(&c->pk, wsman_tree(call));
  cmd_done(c, 200);
}

static void events_positioned(struct cmd *c, struct wsman_call *call) {
  if (cmd_check(c, call)) return;
  char iter[32] = "1";
  dmt_mp_text(dmt_mp_path(shape_body(wsman_tree(call)), "PositionToFirstRecord_OUTPUT.IterationIdentifier"), iter,
              sizeof iter);
  struct dmt_wsman_param p[] = {{"IterationIdentifier", iter, false}, {"MaxReadRecords", "390", false}};
  cmd_invoke(c, "AMT_MessageLog", "GetRecords", NULL, 0, p, 2, events_read);
}

void verb_event_log(struct cmd *c) {
  cmd_invoke(c, "AMT_MessageLog", "PositionToFirstRecord", NULL, 0, NULL, 0, events_positioned);
}
