/*
 * The state-machine engine. A flow is a table of states (struct flow_state):
 * an entry action that starts the step (a WS-Man request, database or
 * signing work, a timer) or decides at once, an optional reply handler that
 * turns the device's answer into an event, or a sub-flow to run; and
 * explicit transitions on events. Defaults keep tables short and readable:
 * FE_OK/FE_ALT go to the next row, failures (FE_FAIL, FE_TIMEOUT) end the
 * flow in failure unless the row is `soft` (DMT's sub-machines: a failed
 * network or CIRA step is reported but the job goes on).
 *
 * A job runs a stack of flows (activation -> post-activation -> CIRA ...).
 * When a flow ends, its `done` hook records the outcome and the parent's
 * current state receives FE_OK or FE_FAIL. The bottom flow's end finishes
 * the job. Events posted while the engine runs (an entry action that decides
 * synchronously) are queued, so the stack never recurses through entries.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "rps.h"

static const struct flow_state *current(const struct rps_job *j) {
  if (j->depth == 0) return NULL;
  const struct flow *f = j->stack[j->depth - 1].f;
  return &f->states[j->stack[j->depth - 1].state];
}

const char *flow_current_state(const struct rps_job *j) { return j->step; }

void flow_fail_text(struct rps_job *j, const char *fmt, ...) {
  if (j->fail_text[0]) return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(j->fail_text, sizeof j->fail_text, fmt, ap);
  va_end(ap);
}

/* Table texts may name the device as <uuid>. */
static void set_table_fail(struct rps_job *j, const char *text) {
  if (j->fail_text[0] || !text) return;
  const char *at = strstr(text, "<uuid>");
  if (at) snprintf(j->fail_text, sizeof j->fail_text, "%.*s%s%s", (int)(at - text), text, j->guid, at + 6);
  else snprintf(j->fail_text, sizeof j->fail_text, "%s", text);
}

static void enter(struct rps_job *j) {
  const struct flow_state *st = current(j);
  const struct flow *f = j->stack[j->depth - 1].f;
  j->fail_text[0] = '\0';
  j->ws.one_shot = st->one_shot;
  if (st->call && st->skip && st->skip(j)) { /* a skipped sub-flow is not a step reached */
    flow_post(j, FE_OK);
    return;
  }
  snprintf(j->step, sizeof j->step, "%s.%s", f->name, st->name);
  DMT_DEBUG(&j->srv->log, "flow_enter", "job=%s guid=%s state=%s", j->id, j->guid, j->step);
  if (st->call) {
    flow_start(j, st->call);
    return;
  }
  if (st->enter) st->enter(j);
  else flow_post(j, FE_OK);
}

static void process(struct rps_job *j, int ev);

static void end_flow(struct rps_job *j, bool ok) {
  const struct flow *f = j->stack[j->depth - 1].f;
  j->depth--;
  if (f->done) f->done(j, ok);
  if (j->depth == 0) {
    job_finish(j, ok);
    return;
  }
  process(j, ok ? FE_OK : FE_FAIL);
}

static void process(struct rps_job *j, int ev) {
  if (j->ended || j->depth == 0) return;
  const struct flow_state *st = current(j);
  const struct flow *f = j->stack[j->depth - 1].f;
  int idx = j->stack[j->depth - 1].state;
  bool failure = ev == FE_FAIL || ev == FE_TIMEOUT || ev == FE_DISCONNECT;
  if (failure) {
    set_table_fail(j, st->fail);
    if (ev == FE_TIMEOUT) flow_fail_text(j, "Timed out waiting for the device");
    if (!j->fail_text[0]) snprintf(j->fail_text, sizeof j->fail_text, "Unknown error has occured");
    if (!st->call)
      DMT_INFO(&j->srv->log, "flow_step_failed", "job=%s guid=%s state=%s event=%d soft=%d detail=\"%s\"", j->id,
               j->guid, j->step, ev, st->soft, j->ws.last_error);
  }
  int to = FLOW_NEXT;
  bool explicit_edge = false;
  for (size_t i = 0; i < FLOW_MAX_EDGES && st->on[i].event; i++)
    if (st->on[i].event == ev) {
      to = st->on[i].to;
      explicit_edge = true;
      break;
    }
  if (!explicit_edge && failure && !st->soft) to = FLOW_END_FAIL;
  if (to == FLOW_END_OK || to == FLOW_END_FAIL) {
    end_flow(j, to == FLOW_END_OK);
    return;
  }
  int next = to == FLOW_NEXT ? idx + 1 : to - 1;
  if (next >= (int)f->nstates) {
    end_flow(j, true);
    return;
  }
  j->stack[j->depth - 1].state = next;
  enter(j);
}

void flow_post(struct rps_job *j, int ev) {
  if (j->ended) return;
  if (j->in_engine) {
    if (j->nqueued < (int)(sizeof j->queued / sizeof j->queued[0])) j->queued[j->nqueued++] = ev;
    return;
  }
  j->in_engine = true;
  job_ref(j);
  process(j, ev);
  while (j->nqueued > 0 && !j->ended) {
    int next = j->queued[0];
    memmove(j->queued, j->queued + 1, (size_t)(--j->nqueued) * sizeof j->queued[0]);
    process(j, next);
  }
  j->nqueued = 0;
  j->in_engine = false;
  job_unref(j);
}

void flow_start(struct rps_job *j, const struct flow *f) {
  if (j->depth == FLOW_MAX_DEPTH || f->nstates == 0) {
    flow_fail_text(j, "Unknown error has occured");
    flow_post(j, FE_FAIL);
    return;
  }
  j->stack[j->depth].f = f;
  j->stack[j->depth].state = 0;
  j->depth++;
  if (j->in_engine) {
    enter(j);
    return;
  }
  j->in_engine = true;
  job_ref(j);
  enter(j);
  j->in_engine = false;
  /* drain what the entry queued */
  if (j->nqueued > 0) {
    int ev = j->queued[0];
    memmove(j->queued, j->queued + 1, (size_t)(--j->nqueued) * sizeof j->queued[0]);
    flow_post(j, ev);
  }
  job_unref(j);
}

void flow_reply(struct rps_job *j, const struct wsman_reply *r) {
  const struct flow_state *st = current(j);
  if (!st || j->ended) return;
  int ev = st->reply ? st->reply(j, r) : (wsman_ok(r) ? FE_OK : FE_FAIL);
  flow_post(j, ev);
}

static const char *event_name(int ev) {
  switch (ev) {
    case FE_OK: return "ok";
    case FE_ALT: return "alt";
    case FE_FAIL: return "fail";
    case FE_TIMEOUT: return "timeout";
    case FE_DISCONNECT: return "disconnect";
    default: return "?";
  }
}

void flow_print(const struct flow *f, FILE *out) {
  fprintf(out, "flow %s\n", f->name);
  for (size_t i = 0; i < f->nstates; i++) {
    const struct flow_state *st = &f->states[i];
    fprintf(out, "  %2zu %-34s %s%s%s", i, st->name, st->call ? "call " : "", st->call ? st->call->name : "",
            st->soft ? " [soft]" : "");
    if (st->one_shot) fprintf(out, " [one-shot]");
    for (size_t k = 0; k < FLOW_MAX_EDGES && st->on[k].event; k++) {
      int to = st->on[k].to;
      fprintf(out, " %s->%s", event_name(st->on[k].event),
              to == FLOW_END_OK ? "END_OK" : to == FLOW_END_FAIL ? "END_FAIL" : to == FLOW_NEXT ? "next"
                                                                                    : f->states[to - 1].name);
    }
    if (st->fail) fprintf(out, "  fail: \"%s\"", st->fail);
    fputc('\n', out);
  }
}
