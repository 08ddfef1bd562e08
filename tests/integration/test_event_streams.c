/*
 * The event streams with real agents: the CIRA terminator and 40 simulated
 * devices publish, and the consumer example of docs/consumer-example.md
 * (plain Paho + msgpack-c) consumes, as EIM and OBaaS would.
 *
 *  - EIM joining late: exactly one retained state per device (the snapshot,
 *    closed by the probe marker), then only changes: 5 power-offs and one
 *    dropped-and-back device give exactly 7 state changes and 12 events, and
 *    no state is ever repeated.
 *  - OBaaS with two replicas in one shared subscription: every event
 *    persisted in dmt.events for the tenant reaches exactly one of them (no
 *    loss, no duplicate, counted by id), and both get a fair share; a replica
 *    that restarts with its persistent session still gets the share queued
 *    for it while it was away.
 */
#include <libpq-fe.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "dmt/evloop.h"
#include "dmt/strmap.h"
#include "dmtctl_stack.h"

#define N 40

static struct stack S;
static struct ctl_env E;
static char *DIR_;

static int setup(void **state) {
  if (stack_start(&S, "streams", N, "7e7e0000-0000-4000-8000-", NULL) != 0) return -1;
  ctl_env_init(&E, dmt_test_mqtt_url(), S.tenant);
  DIR_ = dmt_test_tmpdir("streams");
  return stack_wait_connected(&S, 60000) ? 0 : -1;
}

static int teardown(void **state) {
  stack_stop(&S);
  free(DIR_);
  return 0;
}

static size_t lines_starting(const char *s, const char *prefix) {
  size_t n = 0, pl = strlen(prefix);
  for (const char *p = s; p && *p;) {
    if (!strncmp(p, prefix, pl)) n++;
    const char *nl = strchr(p, '\n');
    p = nl ? nl + 1 : NULL;
  }
  return n;
}

struct wait_lines {
  struct bg *b;
  const char *prefix;
  size_t want;
};

static bool has_lines(void *arg) {
  struct wait_lines *w = arg;
  char *s = bg_out(w->b);
  bool ok = lines_starting(s, w->prefix) >= w->want;
  free(s);
  return ok;
}

static void start_consumer(struct bg *b, const char *name, const char *mode, const char *client_id, const char *group) {
  const char *args[] = {mode, "--broker", dmt_test_mqtt_url(), "--tenant", S.tenant, "--client-id", client_id,
                        "--group", group, NULL};
  assert_int_equal(bg_start(b, NULL, DIR_, name, consumer_bin(), args), 0);
}

static bool err_says_subscribed(void *arg) {
  struct bg *b = arg;
  char *s = read_text(b->err_path);
  bool ok = strstr(s, "subscribed") != NULL;
  free(s);
  return ok;
}

#define DMTCTL_OK(...)                                                                         \
  do {                                                                                         \
    struct run r_;                                                                             \
    run_ctl(&r_, &E, 60000, __VA_ARGS__, NULL);                                                \
    if (r_.status != 0) fprintf(stderr, "dmtctl: exit %d\n%s%s", r_.status, r_.out, r_.err);   \
    assert_int_equal(r_.status, 0);                                                            \
    run_free(&r_);                                                                             \
  } while (0)

static bool is_connected_again(void *arg) { return dmt_test_mqtt_state_of(S.mq, arg, NULL) == 1; }

static void test_late_joiner_snapshot_then_changes(void **state) {
  struct bg eim;
  char id[64];
  snprintf(id, sizeof id, "eim-late-%d", (int)getpid());
  start_consumer(&eim, "eim", "eim", id, "-");
  struct wait_lines w = {&eim, "snapshot-complete", 1};
  assert_true(dmt_test_wait_until(has_lines, &w, 20000));
  char *out = bg_out(&eim);
  assert_int_equal(lines_starting(out, "snapshot "), N);
  assert_non_null(strstr(out, "snapshot-complete 40\n"));
  for (size_t i = 0; i < N; i++) {
    char want[80];
    snprintf(want, sizeof want, "snapshot %s connected=1", S.devs[i].guid);
    assert_int_equal(count_matching(out, want), 1); /* every device exactly once */
  }
  assert_int_equal(lines_starting(out, "change "), 0);
  free(out);

  /* changes: five power-offs (each: one state change, a power event and a command event) */
  DMTCTL_OK("power", "off", S.devs[0].guid, S.devs[1].guid, S.devs[2].guid, S.devs[3].guid, S.devs[4].guid);
  w = (struct wait_lines){&eim, "change ", 5};
  assert_true(dmt_test_wait_until(has_lines, &w, 10000));
  /* ... and one device dropping and coming back (two state changes, two events) */
  assert_non_null(stack_sim(&S, "fault %s drop", S.devs[5].guid));
  w = (struct wait_lines){&eim, "change ", 7};
  assert_true(dmt_test_wait_until(has_lines, &w, 15000));
  assert_true(dmt_test_wait_until(is_connected_again, (void *)S.devs[5].guid, 15000));
  w = (struct wait_lines){&eim, "event ", 12};
  assert_true(dmt_test_wait_until(has_lines, &w, 10000));
  usleep(2000000); /* nothing else may follow */
  out = bg_out(&eim);
  assert_int_equal(lines_starting(out, "snapshot "), N); /* the snapshot is never repeated */
  assert_int_equal(lines_starting(out, "change "), 7);
  assert_int_equal(lines_starting(out, "event "), 12);
  for (size_t i = 0; i < 5; i++) {
    char want[96];
    snprintf(want, sizeof want, "change %s connected=1 power=8", S.devs[i].guid);
    assert_int_equal(count_matching(out, want), 1);
  }
  char want[96];
  snprintf(want, sizeof want, "change %s connected=0", S.devs[5].guid);
  assert_int_equal(count_matching(out, want), 1);
  snprintf(want, sizeof want, "change %s connected=1", S.devs[5].guid);
  assert_int_equal(count_matching(out, want), 1);
  assert_int_equal(count_matching(out, " power "), 5);
  assert_int_equal(count_matching(out, " command "), 5);
  assert_int_equal(count_matching(out, " disconnected "), 1);
  assert_int_equal(count_matching(out, " connected "), 1);
  free(out);
  assert_int_equal(bg_stop(&eim, SIGTERM), 0);
}

/* ---- shared subscriptions ---- */

/* id -> count of event lines in a consumer's output */
static void count_ids(const char *out, struct dmt_strmap *ids) {
  for (const char *p = out; p && *p;) {
    char id[64];
    if (sscanf(p, "event %63s ", id) == 1) {
      intptr_t n = (intptr_t)dmt_strmap_get(ids, id);
      dmt_strmap_put(ids, id, (void *)(n + 1), NULL);
    }
    const char *nl = strchr(p, '\n');
    p = nl ? nl + 1 : NULL;
  }
}

static size_t persisted_ids(uint64_t since_ms, struct dmt_strmap *ids) {
  PGconn *c = PQconnectdb(S.dsn);
  char sql[400];
  snprintf(sql, sizeof sql,
           "SELECT id FROM dmt.events WHERE tenant_id = '%s' AND ts >= to_timestamp(%llu / 1000.0)", S.tenant,
           (unsigned long long)since_ms);
  PGresult *r = PQexec(c, sql);
  size_t n = PQresultStatus(r) == PGRES_TUPLES_OK ? (size_t)PQntuples(r) : 0;
  for (size_t i = 0; i < n; i++) dmt_strmap_put(ids, PQgetvalue(r, (int)i, 0), (void *)1, NULL);
  PQclear(r);
  PQfinish(c);
  return n;
}

static size_t union_size(struct bg *a, struct bg *b, const char *extra, struct dmt_strmap *u) {
  dmt_strmap_init(u);
  char *sa = bg_out(a), *sb = bg_out(b);
  count_ids(sa, u);
  count_ids(sb, u);
  if (extra) count_ids(extra, u);
  free(sa);
  free(sb);
  return u->len;
}

struct covered {
  struct dmt_strmap *truth, *u;
  size_t missing;
};

static void check_cover(const char *key, void *value, void *ud) {
  struct covered *c = ud;
  if (!dmt_strmap_has(c->u, key)) c->missing++;
}

static void check_dups(const char *key, void *value, void *ud) {
  size_t *dups = ud;
  if ((intptr_t)value > 1) (*dups)++;
}

struct arg2 {
  struct bg *a, *b;
  const char *extra;
  size_t want;
};

static bool union_reached(void *arg) {
  struct arg2 *x = arg;
  struct dmt_strmap u;
  size_t n = union_size(x->a, x->b, x->extra, &u);
  dmt_strmap_free(&u);
  return n >= x->want;
}

/* Every persisted event since since_ms reached exactly one of the outputs. */
static void assert_split(uint64_t since_ms, struct bg *a, struct bg *b, const char *extra, size_t *na, size_t *nb) {
  struct dmt_strmap truth;
  dmt_strmap_init(&truth);
  size_t want = persisted_ids(since_ms, &truth);
  assert_true(want > 0);
  struct arg2 x = {a, b, extra, want};
  assert_true(dmt_test_wait_until(union_reached, &x, 20000));
  usleep(1000000);
  /* per consumer and together */
  struct dmt_strmap ua, ub, ux, all;
  dmt_strmap_init(&ua);
  dmt_strmap_init(&ub);
  dmt_strmap_init(&ux);
  char *sa = bg_out(a), *sb = bg_out(b);
  count_ids(sa, &ua);
  count_ids(sb, &ub);
  if (extra) count_ids(extra, &ux);
  union_size(a, b, extra, &all);
  size_t dups = 0;
  dmt_strmap_foreach(&all, check_dups, &dups);
  struct covered cv = {&truth, &all, 0};
  dmt_strmap_foreach(&truth, check_cover, &cv);
  fprintf(stderr,
          "persisted %zu events; replica A %zu, replica B %zu (+%zu before a restart), union %zu, duplicates %zu, "
          "missing %zu\n",
          want, ua.len, ub.len, ux.len, all.len, dups, cv.missing);
  assert_int_equal(cv.missing, 0);       /* no loss */
  assert_int_equal(dups, 0);             /* no duplicate, within or across replicas */
  assert_int_equal(all.len, want);       /* nothing that is not in the log */
  assert_int_equal(ua.len + ub.len + ux.len, want);
  *na = ua.len;
  *nb = ub.len;
  free(sa);
  free(sb);
  dmt_strmap_free(&ua);
  dmt_strmap_free(&ub);
  dmt_strmap_free(&ux);
  dmt_strmap_free(&all);
  dmt_strmap_free(&truth);
}

static void test_shared_subscription_split(void **state) {
  char group[48], ida[64], idb[64];
  snprintf(group, sizeof group, "obaas-%d", (int)getpid());
  snprintf(ida, sizeof ida, "obaas-a-%d", (int)getpid());
  snprintf(idb, sizeof idb, "obaas-b-%d", (int)getpid());
  struct bg a, b;
  start_consumer(&a, "obaas-a", "obaas", ida, group);
  start_consumer(&b, "obaas-b", "obaas", idb, group);
  assert_true(dmt_test_wait_until(err_says_subscribed, &a, 10000));
  assert_true(dmt_test_wait_until(err_says_subscribed, &b, 10000));
  uint64_t t0 = dmt_wall_ms();
  for (int round = 0; round < 5; round++) DMTCTL_OK("power", "state", "--tag", "lab1");
  size_t na, nb;
  assert_split(t0, &a, &b, NULL, &na, &nb);
  assert_true(na >= 200 / 4 && nb >= 200 / 4); /* both replicas carry load */

  /* replica B restarts; its persistent session keeps its share queued meanwhile */
  assert_int_equal(bg_stop(&b, SIGTERM), 0);
  char *b_first = bg_out(&b);
  uint64_t t1 = dmt_wall_ms();
  for (int round = 0; round < 3; round++) DMTCTL_OK("power", "state", "--tag", "lab1");
  struct bg b2;
  start_consumer(&b2, "obaas-b2", "obaas", idb, group);
  assert_true(dmt_test_wait_until(err_says_subscribed, &b2, 10000));
  struct dmt_strmap away, all;
  dmt_strmap_init(&away);
  dmt_strmap_init(&all);
  size_t while_away = persisted_ids(t1, &away);
  struct arg2 x = {&a, &b2, b_first, persisted_ids(t0, &all)};
  dmt_strmap_free(&away);
  dmt_strmap_free(&all);
  assert_true(dmt_test_wait_until(union_reached, &x, 20000));
  char *sb2 = bg_out(&b2);
  size_t b2_events = lines_starting(sb2, "event ");
  fprintf(stderr, "while replica B was away %zu events were persisted; B got %zu of them on its return\n", while_away,
          b2_events);
  assert_true(b2_events > 0);
  free(sb2);
  size_t na2, nb2;
  assert_split(t0, &a, &b2, b_first, &na2, &nb2);
  free(b_first);
  bg_stop(&a, SIGTERM);
  bg_stop(&b2, SIGTERM);
}

int main(void) {
  dmt_test_mqtt_url();
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_late_joiner_snapshot_then_changes),
      cmocka_unit_test(test_shared_subscription_split),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
