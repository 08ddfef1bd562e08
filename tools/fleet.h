/*
 * Simulated-fleet provisioning without RPS: writes the device rows and
 * devices/<guid> secrets that an activation would have written (random
 * per-device CIRA passwords, as RPS does by default) and the matching
 * dmt-sim fleet file. Used by `./dmt up`, the tests and the benchmarks.
 */
#ifndef DMT_TOOLS_FLEET_H
#define DMT_TOOLS_FLEET_H

#include <stddef.h>

struct dmt_fleet_device {
  char guid[37];
  char tenant[65];
  char mps_user[32];
  char mps_password[40];
  char amt_password[40];
};

/*
 * Provisions n devices with GUIDs guid_prefix (24 characters) + index, in
 * tenant, with secrets under (key, key_id). Existing rows of those GUIDs are
 * replaced. Returns a malloc'd array, or NULL with err set.
 */
struct dmt_fleet_device *dmt_fleet_provision(const char *dsn, const char *key, const char *key_id,
                                             const char *tenant, const char *guid_prefix, size_t n, char *err,
                                             size_t errlen);
/* Writes a dmt-sim fleet file for devices[0..n) calling host:port. */
int dmt_fleet_write(const char *path, const struct dmt_fleet_device *d, size_t n, const char *host, int port);
/*
 * Same, split across two terminators: even devices call port_a first and
 * port_b as their secondary MPS, odd devices the other way round.
 */
int dmt_fleet_write_split(const char *path, const struct dmt_fleet_device *d, size_t n, const char *host,
                          int port_a, int port_b);

#endif
