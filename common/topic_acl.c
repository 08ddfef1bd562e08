/*
 * Topic authorisation (see dmt/topic_acl.h). Topics are walked level by level
 * in place, without copying, so the broker can call this on every publish,
 * delivery and subscribe. The allowed shapes are short pattern tables
 * relative to dmt/v1/<tenant>/; everything not listed is refused.
 */
#include "dmt/topic_acl.h"

#include <stdio.h>
#include <string.h>

/* What north clients may receive and publish, relative to dmt/v1/<tenant>/. */
static const char *const north_read[] = {"devices/+/state", "devices/+/events/#", "events/#"};
static const char *const north_write[] = {"devices/+/cmd/+", "provisioning/cmd/+"};

struct level {
  const char *p;
  size_t n;
};

/* Takes the next level off *s; *s becomes NULL after the last level. */
static struct level take(const char **s) {
  struct level l = {*s, 0};
  const char *slash = strchr(*s, '/');
  if (slash) {
    l.n = (size_t)(slash - *s);
    *s = slash + 1;
  } else {
    l.n = strlen(*s);
    *s = NULL;
  }
  return l;
}

static bool is(struct level l, const char *lit) {
  size_t n = strlen(lit);
  return l.n == n && memcmp(l.p, lit, n) == 0;
}

static bool same(struct level a, struct level b) { return a.n == b.n && memcmp(a.p, b.p, a.n) == 0; }

bool dmt_topic_tenant_valid_n(const char *t, size_t len) {
  if (!t || len == 0 || len > DMT_TENANT_MAX) return false;
  for (size_t i = 0; i < len; i++) {
    char c = t[i];
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-'))
      return false;
  }
  return true;
}

bool dmt_topic_tenant_valid(const char *t) { return t && dmt_topic_tenant_valid_n(t, strlen(t)); }

bool dmt_topic_client_id_valid(const char *id) {
  size_t n = id ? strlen(id) : 0;
  if (n == 0 || n > DMT_CLIENT_ID_MAX) return false;
  for (size_t i = 0; i < n; i++) {
    char c = id[i];
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || strchr("._:@-", c)))
      return false;
  }
  return true;
}

enum dmt_perm dmt_grants_perm(const struct dmt_grants *g, const char *tenant, size_t len) {
  if (!g) return DMT_PERM_NONE;
  for (size_t i = 0; i < g->n; i++)
    if (strlen(g->v[i].tenant) == len && memcmp(g->v[i].tenant, tenant, len) == 0) return g->v[i].perm;
  return DMT_PERM_NONE;
}

bool dmt_topic_filters_intersect(const char *a, const char *b) {
  const char *pa = a, *pb = b;
  for (;;) {
    bool ha = pa != NULL, hb = pb != NULL;
    struct level la = {0}, lb = {0};
    if (ha) la = take(&pa);
    if (hb) lb = take(&pb);
    if ((ha && is(la, "#")) || (hb && is(lb, "#"))) return true;
    if (!ha || !hb) return !ha && !hb;
    if (!is(la, "+") && !is(lb, "+") && !same(la, lb)) return false;
  }
}

bool dmt_topic_matches(const char *filter, const char *topic) {
  const char *pf = filter, *pt = topic;
  for (;;) {
    bool hf = pf != NULL, ht = pt != NULL;
    struct level lf = {0}, lt = {0};
    if (hf) lf = take(&pf);
    if (ht) lt = take(&pt);
    if (hf && is(lf, "#")) return true;
    if (!hf || !ht) return !hf && !ht;
    if (!is(lf, "+") && !same(lf, lt)) return false;
  }
}

static bool deny(const char **why, const char *reason) {
  if (why) *why = reason;
  return false;
}

static bool allow(const char **why) {
  if (why) *why = "allowed";
  return true;
}

/* `$share/<group>/<filter>` -> <filter>; NULL when the shared form is malformed. */
static const char *unshare(const char *topic) {
  if (strncmp(topic, "$share/", 7) != 0) return topic;
  const char *group = topic + 7, *slash = strchr(group, '/');
  if (!slash || slash == group || slash[1] == '\0') return NULL;
  for (const char *c = group; c < slash; c++)
    if (*c == '+' || *c == '#') return NULL;
  return slash + 1;
}

/* Splits dmt/v1/<tenant>/<rest>; rest is NULL when nothing follows the tenant. */
static bool split_tenant(const char *topic, struct level *tenant, const char **rest) {
  const char *s = topic;
  if (!is(take(&s), "dmt") || !s) return false;
  if (!is(take(&s), "v1") || !s) return false;
  *tenant = take(&s);
  *rest = s;
  return true;
}

/* replies/<client_id>/#, the client's own inbox; false when the id cannot name one. */
static bool inbox_filter(const char *client_id, char *out, size_t outlen) {
  if (!dmt_topic_client_id_valid(client_id)) return false;
  snprintf(out, outlen, "replies/%s/#", client_id);
  return true;
}

static bool north_readable(const char *client_id, const char *rest, bool filter) {
  bool (*test)(const char *, const char *) = filter ? dmt_topic_filters_intersect : dmt_topic_matches;
  for (size_t i = 0; i < sizeof north_read / sizeof north_read[0]; i++)
    if (test(north_read[i], rest)) return true;
  char inbox[DMT_CLIENT_ID_MAX + 16];
  return inbox_filter(client_id, inbox, sizeof inbox) && test(inbox, rest);
}

bool dmt_acl_north(const struct dmt_grants *g, const char *client_id, const char *topic,
                   enum dmt_acl_access access, bool retain, const char **why) {
  if (!topic) return deny(why, "no topic");
  if (access == DMT_ACL_UNSUBSCRIBE) return allow(why);
  if (access == DMT_ACL_WRITE && retain) return deny(why, "north clients never publish retained messages");
  if (access != DMT_ACL_SUBSCRIBE && strpbrk(topic, "+#")) return deny(why, "wildcards belong in filters only");
  if (access == DMT_ACL_SUBSCRIBE) {
    topic = unshare(topic);
    if (!topic) return deny(why, "malformed shared subscription");
  }
  if (topic[0] == '$') return deny(why, "$SYS and other $ topics are for agents only");
  struct level tenant;
  const char *rest;
  if (!split_tenant(topic, &tenant, &rest)) return deny(why, "outside dmt/v1/<tenant>/");
  if (!dmt_topic_tenant_valid_n(tenant.p, tenant.n)) return deny(why, "tenant level is not a literal tenant id");
  enum dmt_perm perm = dmt_grants_perm(g, tenant.p, tenant.n);
  if (perm == DMT_PERM_NONE) return deny(why, "tenant not granted by the token");
  if (!rest) return deny(why, "nothing readable at the tenant root");

  switch (access) {
  case DMT_ACL_SUBSCRIBE: {
    const char *s = rest;
    if (is(take(&s), "replies")) {
      char inbox[DMT_CLIENT_ID_MAX + 16];
      struct level who = s ? take(&s) : (struct level){"", 0};
      if (!inbox_filter(client_id, inbox, sizeof inbox) || !is(who, client_id))
        return deny(why, "another client's replies");
    }
    return north_readable(client_id, rest, true) ? allow(why) : deny(why, "matches no topic north clients receive");
  }
  case DMT_ACL_READ:
    return north_readable(client_id, rest, false) ? allow(why) : deny(why, "not a topic north clients receive");
  case DMT_ACL_WRITE:
    if (perm != DMT_PERM_READ_WRITE) return deny(why, "read-only role");
    for (size_t i = 0; i < sizeof north_write / sizeof north_write[0]; i++)
      if (dmt_topic_matches(north_write[i], rest)) return allow(why);
    return deny(why, "north clients publish commands only");
  default:
    return deny(why, "unknown access");
  }
}

bool dmt_acl_agent(const char *topic, enum dmt_acl_access access, const char **why) {
  if (!topic) return deny(why, "no topic");
  if (access == DMT_ACL_UNSUBSCRIBE) return allow(why);
  if (access != DMT_ACL_SUBSCRIBE && strpbrk(topic, "+#")) return deny(why, "wildcards belong in filters only");
  if (access == DMT_ACL_SUBSCRIBE) {
    topic = unshare(topic);
    if (!topic) return deny(why, "malformed shared subscription");
  }
  const char *s = topic;
  struct level first = take(&s);
  if (is(first, "dmt")) return allow(why);
  if (is(first, "$SYS") && access != DMT_ACL_WRITE) return allow(why);
  return deny(why, "agents stay under dmt/ (and read $SYS)");
}
