/*
 * RPS proxy configs (/api/v1/admin/proxyconfigs): DMT's proxyValidator
 * (address IPv4, IPv6 or FQDN; port; network DNS suffix as validator.js
 * isFQDN), infoFormat detected from the address (3, 4 or 201), and the
 * (address, port) pair unique per tenant.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bridge.h"
#include "dmt/pg.h"

#define PROXY_JSON                                                                                         \
  "json_build_object('name', x.proxy_config_name, 'address', x.address, 'infoFormat', x.info_format, "     \
  "'port', x.port, 'networkDnsSuffix', x.network_dns_suffix, 'tenantId', x.tenant_id, 'version', x.xmin::text)"

static const struct br_ref_check proxy_refs[] = {
    {"SELECT EXISTS (SELECT 1 FROM dmt.profiles_proxyconfigs WHERE tenant_id = $1 AND lower(proxy_config_name) = "
     "lower($2))",
     "Proxy profile: %s is associated with an AMT Profile."},
};
static const struct br_kind proxy_kind = {"Proxy", "dmt.proxyconfigs", "proxy_config_name", PROXY_JSON, "proxy",
                                          NULL, proxy_refs, 1};

static bool alnum(const char *s) { return br_fmt_alnum(s); }
static bool port(const char *s) {
  long long n;
  return br_fmt_int(s, &n) && !(s[0] == '0' && s[1]) && s[0] != '+' && s[0] != '-' && n >= 0 && n <= 65535;
}
static bool network_suffix(const char *s) { return br_fmt_fqdn_validatorjs(s, true, false); }

static bool address(struct br_vctx *v, const json_t *value, char *msg, size_t msglen) {
  char s[512];
  br_js_string(value, s, sizeof s);
  if (br_fmt_proxy_address(s)) return true;
  snprintf(msg, msglen, "Server address must be a valid IPv4, IPv6, or FQDN");
  return false;
}

#define PROXY_COMMON                                                                                             \
  V_FIELD("address", BR_REQUIRED, V_NOT_EMPTY("Server address is required"), V_CUSTOM(address, NULL)),          \
      V_FIELD("port", BR_REQUIRED, V_EXISTS(NULL), V_MATCH(port, "Port value should range between 1 and 65535")), \
      V_FIELD("networkDnsSuffix", BR_REQUIRED, V_NOT_EMPTY("Domain name of the network is required"),            \
              V_MATCH(network_suffix, "Domain name of the network should contain alphanumeric and hyphens in the middle"), \
              V_LEN(0, 192, "Domain name of the network maximum length is 192"))

BR_CHAIN(create_chain,
         V_FIELD("name", BR_REQUIRED, V_NOT_EMPTY("Proxy profile name is required"),
                 V_MATCH(alnum, "Proxy profile name should be alphanumeric"),
                 V_LEN(0, 32, "Proxy profile name maximum length is 32")),
         PROXY_COMMON);
BR_CHAIN(update_chain, V_FIELD("name", BR_REQUIRED, V_NOT_EMPTY("Proxy profile name is required")), PROXY_COMMON);

static int write_work(PGconn *c, struct br_txn *t, struct br_out *o, bool insert) {
  if (!br_admin_validate(c, t, insert ? &create_chain : &update_chain, NULL, o)) return DMT_PG_OK;
  const json_t *b = t->body;
  const char *name = br_jstr(b, "name");
  char stored[300], vbuf[64], fmt[8];
  if (!insert && !br_admin_canonical(c, &proxy_kind, t->who.tenant, name, stored, sizeof stored)) {
    br_out_not_found(o, "Proxy", name);
    return DMT_PG_OK;
  }
  const char *target = insert ? name : stored;
  char *addr = br_jsql(b, "address"), *prt = br_jsql(b, "port"), *suffix = br_jsql(b, "networkDnsSuffix");
  snprintf(fmt, sizeof fmt, "%d", br_fmt_address_format(addr ? addr : ""));
  const char *p[] = {t->who.tenant, target, addr, fmt, prt, suffix,
                     insert ? NULL : br_admin_version(t, vbuf, sizeof vbuf)};
  if (br_admin_begin(c, t, target, o)) {
    int rc = insert ? br_sql_json(c, o, 201,
                                  "INSERT INTO dmt.proxyconfigs AS x (tenant_id, proxy_config_name, address, info_format, "
                                  "port, network_dns_suffix) VALUES ($1, $2, $3, $4::int, $5::int, $6) RETURNING (" PROXY_JSON
                                  ")::text",
                                  6, p)
                    : br_sql_json(c, o, 200,
                                  "UPDATE dmt.proxyconfigs x SET address = $3, info_format = $4::int, port = $5::int, "
                                  "network_dns_suffix = $6 WHERE tenant_id = $1 AND proxy_config_name = $2 AND "
                                  "($7::text IS NULL OR xmin::text = $7) RETURNING (" PROXY_JSON ")::text",
                                  7, p);
    if (rc <= 0) {
      br_sql_rollback(c);
      if (rc == 0) br_admin_conflict(c, t, &proxy_kind, target, o);
      else if (!strcmp(o->sqlstate, "23505")) {
        char msg[400];
        snprintf(msg, sizeof msg, "Proxy profile %s already exists", name);
        br_out_error(o, 400, "Unique key violation", msg);
      } else {
        br_out_unexpected(o, insert ? "POST" : "PATCH", name);
      }
    } else {
      br_admin_finish(c, t, &proxy_kind, target, insert ? "create" : "update", o);
    }
  }
  free(addr);
  free(prt);
  free(suffix);
  return DMT_PG_OK;
}

static int create_work(PGconn *c, struct br_txn *t, struct br_out *o) { return write_work(c, t, o, true); }
static int update_work(PGconn *c, struct br_txn *t, struct br_out *o) { return write_work(c, t, o, false); }
static void create(struct br_txn *t) { br_db_run(t, create_work); }
static void update(struct br_txn *t) { br_db_run(t, update_work); }

#define BASE "/api/v1/admin/proxyconfigs"
static const struct br_route routes[] = {
    {.methods = BR_M_GET, .pattern = BASE, .handler = br_admin_list, .chain = NULL, .flags = 0, .data = &proxy_kind},
    {.methods = BR_M_GET, .pattern = BASE "/:name", .handler = br_admin_get, .chain = NULL, .flags = 0, .data = &proxy_kind},
    {.methods = BR_M_POST, .pattern = BASE, .handler = create, .chain = NULL, .flags = BR_RF_WRITE, .data = &proxy_kind, .job_chain = &create_chain},
    {.methods = BR_M_PATCH, .pattern = BASE, .handler = update, .chain = NULL, .flags = BR_RF_WRITE, .data = &proxy_kind, .job_chain = &update_chain},
    {.methods = BR_M_DELETE, .pattern = BASE "/:name", .handler = br_admin_delete, .chain = NULL, .flags = BR_RF_WRITE, .data = &proxy_kind},
};

const struct br_route_table br_routes_proxy = {routes, sizeof routes / sizeof routes[0]};
