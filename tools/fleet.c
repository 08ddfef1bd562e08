/* Simulated-fleet provisioning (see fleet.h). One transaction for the whole fleet. */
#include "fleet.h"

#include <jansson.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dmt/pg.h"
#include "dmt/secrets.h"

static void random_password(char *out, size_t n) {
  static const char alphabet[] = "abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
  unsigned char r[64];
  RAND_bytes(r, sizeof r);
  for (size_t i = 0; i + 1 < n && i < sizeof r; i++) out[i] = alphabet[r[i] % (sizeof alphabet - 1)];
  out[n - 1] = '\0';
}

struct dmt_fleet_device *dmt_fleet_provision(const char *dsn, const char *key, const char *key_id,
                                             const char *tenant, const char *guid_prefix, size_t n, char *err,
                                             size_t errlen) {
  PGconn *c = dmt_pg_connect(dsn, err, errlen);
  if (!c) return NULL;
  struct dmt_secrets_config sc = {.backend = "embedded", .key = key, .key_id = key_id};
  struct dmt_secrets *s = NULL;
  struct dmt_fleet_device *d = NULL;
  if (dmt_pg_migrate(c, NULL, err, errlen) < 0 || !(s = dmt_secrets_open(&sc, err, errlen))) goto out;
  d = calloc(n, sizeof *d);
  if (!d || dmt_pg_exec(c, "BEGIN", 0, NULL, NULL, err, errlen) != DMT_PG_OK) goto fail;
  for (size_t i = 0; i < n; i++) {
    snprintf(d[i].guid, sizeof d[i].guid, "%.24s%012zx", guid_prefix, i & 0xffffffffffffu);
    snprintf(d[i].tenant, sizeof d[i].tenant, "%s", tenant);
    snprintf(d[i].mps_user, sizeof d[i].mps_user, "cirauser%zu", i % 7);
    random_password(d[i].mps_password, 17);
    snprintf(d[i].amt_password, sizeof d[i].amt_password, "Amt@Passw0rd%zu", i % 5);
    const char *p[] = {d[i].guid, tenant, d[i].mps_user};
    if (dmt_pg_exec(c, "DELETE FROM dmt.devices WHERE guid = $1::uuid", 1, p, NULL, err, errlen) != DMT_PG_OK ||
        dmt_pg_exec(c, "INSERT INTO dmt.devices (guid, tenant_id, mps_username, hostname, tags, device_info) "
                       "VALUES ($1::uuid, $2, $3, 'sim-' || right($1::text, 6), ARRAY['sim','lab1'], "
                       "'{\"fwVersion\":\"16.1.27\",\"currentMode\":\"acm\"}')",
                    3, p, NULL, err, errlen) != DMT_PG_OK)
      goto fail;
    json_t *secret = json_pack("{s:s, s:s, s:s}", "MPS_PASSWORD", d[i].mps_password, "AMT_PASSWORD",
                               d[i].amt_password, "MEBX_PASSWORD", "Mebx@Passw0rd1");
    char path[64];
    snprintf(path, sizeof path, "devices/%s", d[i].guid);
    int rc = dmt_secrets_put(s, c, tenant, path, secret, err, errlen);
    json_decref(secret);
    if (rc != DMT_SECRETS_OK) goto fail;
  }
  if (dmt_pg_exec(c, "COMMIT", 0, NULL, NULL, err, errlen) == DMT_PG_OK) goto out;
fail:
  free(d);
  d = NULL;
out:
  dmt_secrets_close(s);
  PQfinish(c);
  return d;
}

static int write_fleet(const char *path, const struct dmt_fleet_device *d, size_t n, const char *host, int port_a,
                       int port_b) {
  FILE *f = fopen(path, "w");
  if (!f) return -1;
  fprintf(f, "{\"mps\":{\"host\":\"%s\",\"port\":%d},\"devices\":[\n", host, port_a);
  for (size_t i = 0; i < n; i++) {
    int primary = (i % 2 && port_b) ? port_b : port_a, secondary = primary == port_a ? port_b : port_a;
    fprintf(f, "%s{\"guid\":\"%s\",\"mps_username\":\"%s\",\"mps_password\":\"%s\",\"amt_password\":\"%s\","
               "\"mps_port\":%d",
            i ? "," : "", d[i].guid, d[i].mps_user, d[i].mps_password, d[i].amt_password, primary);
    if (port_b) fprintf(f, ",\"mps_alternate\":\"%s:%d\"", host, secondary);
    fprintf(f, "}\n");
  }
  fprintf(f, "]}\n");
  return fclose(f);
}

int dmt_fleet_write(const char *path, const struct dmt_fleet_device *d, size_t n, const char *host, int port) {
  return write_fleet(path, d, n, host, port, 0);
}

int dmt_fleet_write_split(const char *path, const struct dmt_fleet_device *d, size_t n, const char *host,
                          int port_a, int port_b) {
  return write_fleet(path, d, n, host, port_a, port_b);
}
