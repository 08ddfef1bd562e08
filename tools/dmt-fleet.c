/*
 * dmt-fleet: provisions a simulated fleet the way an activation would (device
 * rows + devices/<guid> credentials) and writes the dmt-sim fleet file.
 *   dmt-fleet --fleet.count=20 --fleet.tenant= --fleet.file=var/up/fleet.json
 */
#include <stdio.h>
#include <stdlib.h>

#include "dmt/config.h"
#include "fleet.h"

static const struct dmt_config_key keys[] = {
    DMT_CONFIG_COMMON_KEYS,
    {"fleet.count", "DMT_FLEET_COUNT", NULL, "20", "devices to provision", 0},
    {"fleet.tenant", "DMT_FLEET_TENANT", NULL, "", "tenant of the devices (DMT's default tenant is empty)", 0},
    {"fleet.guid_prefix", "DMT_FLEET_GUID_PREFIX", NULL, "5a5a0000-0000-4000-8000-", "first 24 GUID characters", 0},
    {"fleet.file", "DMT_FLEET_FILE", NULL, "fleet.json", "fleet file to write for dmt-sim", 0},
    {"fleet.mps_host", "DMT_FLEET_MPS_HOST", NULL, "127.0.0.1", "CIRA terminator address the devices call", 0},
    {"fleet.mps_port", "DMT_FLEET_MPS_PORT", NULL, "4433", "CIRA terminator port", 0},
};

int main(int argc, char **argv) {
  struct dmt_config cfg;
  char err[512];
  int rc = dmt_config_startup(&cfg, keys, sizeof keys / sizeof keys[0], argc, argv, "dmt-fleet");
  if (rc >= 0) return rc;
  const char *tenant = dmt_config_str(&cfg, "fleet.tenant");
  size_t n = (size_t)dmt_config_int(&cfg, "fleet.count", 20);
  struct dmt_fleet_device *d = dmt_fleet_provision(dmt_config_str(&cfg, "db.dsn"), dmt_config_str(&cfg, "secrets.key"),
                                                   dmt_config_str(&cfg, "secrets.key_id"), tenant ? tenant : "",
                                                   dmt_config_str(&cfg, "fleet.guid_prefix"), n, err, sizeof err);
  if (!d || dmt_fleet_write(dmt_config_str(&cfg, "fleet.file"), d, n, dmt_config_str(&cfg, "fleet.mps_host"),
                            (int)dmt_config_int(&cfg, "fleet.mps_port", 4433)) != 0) {
    fprintf(stderr, "dmt-fleet: %s\n", d ? "cannot write the fleet file" : err);
    free(d);
    dmt_config_free(&cfg);
    return 1;
  }
  printf("provisioned %zu devices, fleet file %s\n", n, dmt_config_str(&cfg, "fleet.file"));
  free(d);
  dmt_config_free(&cfg);
  return 0;
}
