/*
 * Unit tests for the topic ACL (dmt/topic_acl.h): a table of north-client and
 * agent requests with the expected decision, covering every topic form a
 * tenant-A client could use to reach tenant B (exact, `+`, `#`, shared
 * subscriptions, $SYS, dmt/_sys), read-only roles, reply inboxes and retained
 * publishes; plus the wildcard matcher itself.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "dmt/topic_acl.h"

enum { S = DMT_ACL_SUBSCRIBE, U = DMT_ACL_UNSUBSCRIBE, R = DMT_ACL_READ, W = DMT_ACL_WRITE };

struct row {
  int access;
  const char *topic;
  bool retain;
  bool allow;
};

/* Client "cli-a" holds A read-write, RO read-only and _default read-write; not B. */
static struct dmt_tenant_grant grants_v[] = {
    {"A", DMT_PERM_READ_WRITE}, {"RO", DMT_PERM_READ}, {"_default", DMT_PERM_READ_WRITE}};
static const struct dmt_grants grants = {grants_v, 3};

static const struct row north[] = {
    /* what a tenant-A client does */
    {S, "dmt/v1/A/devices/+/state", false, true},
    {S, "dmt/v1/A/devices/0f5c2b1e-1111-2222-3333-444455556666/state", false, true},
    {S, "dmt/v1/A/devices/+/events/#", false, true},
    {S, "dmt/v1/A/events/#", false, true},
    {S, "dmt/v1/A/#", false, true}, /* broad, but READ filters each message */
    {S, "dmt/v1/A/replies/cli-a/#", false, true},
    {S, "dmt/v1/A/replies/cli-a", false, true},
    {S, "$share/obaas/dmt/v1/A/devices/+/events/#", false, true},
    {S, "dmt/v1/_default/devices/+/state", false, true},
    {R, "dmt/v1/A/devices/g/state", false, true},
    {R, "dmt/v1/A/devices/g/events/power", false, true},
    {R, "dmt/v1/A/events/config", false, true},
    {R, "dmt/v1/A/replies/cli-a", false, true},
    {R, "dmt/v1/A/replies/cli-a/123", false, true},
    {W, "dmt/v1/A/devices/g/cmd/power_action", false, true},
    {W, "dmt/v1/A/provisioning/cmd/deactivate", false, true},
    {U, "dmt/v1/B/#", false, true},
    /* tenant B by every topic form */
    {S, "dmt/v1/B/devices/+/state", false, false},
    {S, "dmt/v1/+/devices/+/state", false, false},
    {S, "dmt/v1/#", false, false},
    {S, "dmt/v1/+/#", false, false},
    {S, "dmt/+/A/devices/+/state", false, false},
    {S, "+/v1/A/devices/+/state", false, false},
    {S, "dmt/#", false, false},
    {S, "#", false, false},
    {S, "+/#", false, false},
    {S, "$share/g/dmt/v1/B/devices/+/events/#", false, false},
    {S, "$share/g/dmt/v1/+/devices/+/events/#", false, false},
    {S, "$share/g/#", false, false},
    {S, "$share//dmt/v1/A/events/#", false, false},
    {S, "$share/g+/dmt/v1/A/events/#", false, false},
    {S, "$share/g", false, false},
    {S, "$share/g/", false, false},
    {S, "$share/g/$share/h/dmt/v1/A/events/#", false, false},
    {R, "dmt/v1/B/devices/g/state", false, false},
    {W, "dmt/v1/B/devices/g/cmd/power_action", false, false},
    {S, "dmt/v1/A#/devices/+/state", false, false},
    {S, "dmt/v1/A+/devices/+/state", false, false},
    /* agents' topics and $ topics */
    {S, "$SYS/#", false, false},
    {S, "$SYS/broker/clients/connected", false, false},
    {R, "$SYS/broker/uptime", false, false},
    {S, "dmt/_sys/#", false, false},
    {S, "dmt/_sys/instances/+", false, false},
    {W, "dmt/_sys/instances/x", false, false},
    {S, "$CONTROL/dynamic-security/v1", false, false},
    /* commands and replies are not for north clients to read */
    {S, "dmt/v1/A/devices/+/cmd/#", false, false},
    {S, "dmt/v1/A/provisioning/cmd/+", false, false},
    {R, "dmt/v1/A/devices/g/cmd/power_action", false, false},
    {S, "dmt/v1/A/replies/other/#", false, false},
    {S, "dmt/v1/A/replies/+/#", false, false},
    {S, "dmt/v1/A/replies/#", false, false},
    {S, "dmt/v1/A/replies", false, false},
    {S, "dmt/v1/A/replies/cli-ab/#", false, false},
    {R, "dmt/v1/A/replies/other/1", false, false},
    {R, "dmt/v1/A/replies/cli-ab/1", false, false},
    {S, "dmt/v1/A", false, false},
    {S, "dmt/v1/A/unknown/#", false, false},
    /* north clients publish commands only, never retained, never with a read-only role */
    {W, "dmt/v1/A/devices/g/cmd/power_action", true, false},
    {W, "dmt/v1/A/devices/g/state", false, false},
    {W, "dmt/v1/A/devices/g/events/power", false, false},
    {W, "dmt/v1/A/replies/cli-a/1", false, false},
    {W, "dmt/v1/A/devices/g/cmd/power_action/extra", false, false},
    {W, "dmt/v1/RO/devices/g/cmd/power_action", false, false},
    {W, "dmt/v1/RO/provisioning/cmd/deactivate", false, false},
    {S, "dmt/v1/RO/devices/+/state", false, true},
    {R, "dmt/v1/RO/devices/g/state", false, true},
    {W, "$SYS/broker/x", false, false},
    {W, "other/topic", false, false},
    {S, "", false, false},
    /* concrete topics never hold wildcards (the broker refuses them too) */
    {W, "dmt/v1/A/devices/+/cmd/power_action", false, false},
    {W, "dmt/v1/A/provisioning/cmd/#", false, false},
    {R, "dmt/v1/A/devices/+/state", false, false},
};

static const struct row agent[] = {
    {S, "dmt/v1/+/devices/+/cmd/#", false, true},
    {S, "$share/dmt-rps/dmt/v1/+/provisioning/cmd/#", false, true},
    {S, "dmt/_sys/instances/+", false, true},
    {S, "dmt/v1/+/replies/svc-bridge-1/#", false, true},
    {S, "$SYS/#", false, true},
    {R, "$SYS/broker/uptime", false, true},
    {R, "dmt/v1/B/devices/g/cmd/x", false, true},
    {W, "dmt/v1/A/devices/g/state", true, true},
    {W, "dmt/v1/B/devices/g/state", true, true},
    {W, "dmt/_sys/instances/cira-1", true, true},
    {W, "$SYS/broker/x", false, false},
    {S, "#", false, false},
    {S, "+/v1/#", false, false},
    {S, "$share/g/#", false, false},
    {W, "other/topic", false, false},
    {R, "other/topic", false, false},
    {U, "#", false, true},
    {W, "dmt/v1/+/devices/g/state", false, false},
};

static void test_north_table(void **state) {
  for (size_t i = 0; i < sizeof north / sizeof north[0]; i++) {
    const char *why = NULL;
    bool got = dmt_acl_north(&grants, "cli-a", north[i].topic, north[i].access, north[i].retain, &why);
    if (got != north[i].allow)
      fail_msg("north row %zu (%d %s retain=%d): expected %s, got %s (%s)", i, north[i].access, north[i].topic,
               north[i].retain, north[i].allow ? "allow" : "deny", got ? "allow" : "deny", why);
    assert_non_null(why);
  }
}

static void test_agent_table(void **state) {
  for (size_t i = 0; i < sizeof agent / sizeof agent[0]; i++) {
    const char *why = NULL;
    bool got = dmt_acl_agent(agent[i].topic, agent[i].access, &why);
    if (got != agent[i].allow)
      fail_msg("agent row %zu (%d %s): expected %s, got %s (%s)", i, agent[i].access, agent[i].topic,
               agent[i].allow ? "allow" : "deny", got ? "allow" : "deny", why);
  }
}

static void test_no_grants_no_access(void **state) {
  const struct dmt_grants none = {NULL, 0};
  assert_false(dmt_acl_north(&none, "c", "dmt/v1/A/devices/+/state", DMT_ACL_SUBSCRIBE, false, NULL));
  assert_false(dmt_acl_north(NULL, "c", "dmt/v1/A/devices/g/state", DMT_ACL_READ, false, NULL));
  assert_false(dmt_acl_north(&grants, "c", NULL, DMT_ACL_READ, false, NULL));
  /* A client id that cannot name a single inbox level has no inbox at all. */
  assert_false(dmt_acl_north(&grants, "a/b", "dmt/v1/A/replies/a/b/1", DMT_ACL_READ, false, NULL));
  assert_false(dmt_acl_north(&grants, "+", "dmt/v1/A/replies/+/#", DMT_ACL_SUBSCRIBE, false, NULL));
}

static void test_validators(void **state) {
  assert_true(dmt_topic_tenant_valid("0f5c2b1e-1111-2222-3333-444455556666"));
  assert_true(dmt_topic_tenant_valid("_default"));
  assert_false(dmt_topic_tenant_valid(""));
  assert_false(dmt_topic_tenant_valid("a/b"));
  assert_false(dmt_topic_tenant_valid("+"));
  assert_false(dmt_topic_tenant_valid("a b"));
  char long_tenant[70];
  memset(long_tenant, 'x', 65);
  long_tenant[65] = '\0';
  assert_false(dmt_topic_tenant_valid(long_tenant));
  long_tenant[64] = '\0';
  assert_true(dmt_topic_tenant_valid(long_tenant));
  assert_true(dmt_topic_client_id_valid("dmtctl-alice@host:1.2"));
  assert_false(dmt_topic_client_id_valid("a/b"));
  assert_false(dmt_topic_client_id_valid("#"));
  assert_false(dmt_topic_client_id_valid(""));
  assert_false(dmt_topic_client_id_valid(NULL));
}

static void test_matching(void **state) {
  assert_true(dmt_topic_matches("a/+/c", "a/b/c"));
  assert_true(dmt_topic_matches("a/#", "a"));
  assert_true(dmt_topic_matches("a/#", "a/b/c"));
  assert_true(dmt_topic_matches("#", "a"));
  assert_false(dmt_topic_matches("a/+", "a/b/c"));
  assert_false(dmt_topic_matches("a/+/c", "a/b"));
  assert_false(dmt_topic_matches("a/b", "a/bc"));
  assert_true(dmt_topic_matches("+", ""));
  assert_true(dmt_topic_filters_intersect("a/+/c", "a/b/+"));
  assert_true(dmt_topic_filters_intersect("a/#", "+/b"));
  assert_true(dmt_topic_filters_intersect("a", "a/#"));
  assert_false(dmt_topic_filters_intersect("a/+/c", "a/b/d"));
  assert_false(dmt_topic_filters_intersect("a/+", "a/b/c"));
  assert_false(dmt_topic_filters_intersect("a/b/c", "a/b"));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_north_table),
      cmocka_unit_test(test_agent_table),
      cmocka_unit_test(test_no_grants_no_access),
      cmocka_unit_test(test_validators),
      cmocka_unit_test(test_matching),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
