/*
 * Topic authorisation for the MQTT namespace of schemas/topics.md: which
 * topics and filters a north client (fenced to the tenants its Keycloak token
 * grants) and an agent (service credential, every tenant) may subscribe to,
 * receive and publish. Pure functions over strings, no I/O and no allocation,
 * so the broker plugin, the tests and the fuzz target share one decision and
 * the REST bridge can reuse the tenant checks.
 *
 * The rules (brokers/README.md has the table):
 *  - North clients live under dmt/v1/<tenant>/... for tenants they hold; the
 *    tenant level must be a literal (no `+`, `#`), so `#`, `dmt/#`,
 *    `dmt/v1/+/...` and `dmt/v1/#` are refused at SUBSCRIBE.
 *  - They receive devices/<guid>/state, devices/<guid>/events/..., events/...
 *    and their own inbox replies/<their client id>/...; never commands nor
 *    another client's replies. A subscribe filter that can match nothing they
 *    may receive is refused; a broad one (dmt/v1/<t>/#) is accepted and the
 *    per-message READ check filters what it delivers.
 *  - Only READ_WRITE holders publish, only commands
 *    (devices/<guid>/cmd/<verb>, provisioning/cmd/<verb>), never retained.
 *  - `$share/<group>/<filter>` is judged as <filter>; `$SYS`, `dmt/_sys` and
 *    any other `$` topic are refused.
 *  - Agents may use everything under dmt/ (all tenants, dmt/_sys) and read
 *    $SYS; nothing outside those.
 */
#ifndef DMT_TOPIC_ACL_H
#define DMT_TOPIC_ACL_H

#include <stdbool.h>
#include <stddef.h>

#define DMT_TENANT_MAX 64       /* tenant ids: [A-Za-z0-9_-]{1,64} */
#define DMT_CLIENT_ID_MAX 128   /* north client ids: [A-Za-z0-9._:@-]{1,128} */

/* DMT's default tenant (the empty string in the database) as a topic level. */
#define DMT_TOPIC_DEFAULT_TENANT "_default"

enum dmt_perm { DMT_PERM_NONE = 0, DMT_PERM_READ = 1, DMT_PERM_READ_WRITE = 2 };

enum dmt_acl_access { DMT_ACL_SUBSCRIBE, DMT_ACL_UNSUBSCRIBE, DMT_ACL_READ, DMT_ACL_WRITE };

struct dmt_tenant_grant {
  char tenant[DMT_TENANT_MAX + 1];
  enum dmt_perm perm;
};

/* What a token grants: at most one entry per tenant (the highest permission). */
struct dmt_grants {
  struct dmt_tenant_grant *v;
  size_t n;
};

bool dmt_topic_tenant_valid(const char *tenant);
bool dmt_topic_tenant_valid_n(const char *tenant, size_t len);

/* A client id that is one safe topic level, so replies/<id>/# names exactly one inbox. */
bool dmt_topic_client_id_valid(const char *client_id);

/* The permission grants give on tenant[0..len). */
enum dmt_perm dmt_grants_perm(const struct dmt_grants *g, const char *tenant, size_t len);

/* True if some topic matches both filters (MQTT wildcard semantics; '#' also matches the parent). */
bool dmt_topic_filters_intersect(const char *a, const char *b);
/* True if the concrete topic matches the filter. */
bool dmt_topic_matches(const char *filter, const char *topic);

/*
 * The decisions. `why` (may be NULL) receives a static reason for logs.
 * retain only matters for DMT_ACL_WRITE. Returns true to allow.
 */
bool dmt_acl_north(const struct dmt_grants *g, const char *client_id, const char *topic,
                   enum dmt_acl_access access, bool retain, const char **why);
bool dmt_acl_agent(const char *topic, enum dmt_acl_access access, const char **why);

#endif
