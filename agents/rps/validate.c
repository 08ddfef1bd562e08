/*
 * Validation of a job against what the lookup found, with DMT's Validator
 * texts (rps-activation.md §1.5, §2.1, §2.2, §2.8, §2.9). Pure: the job's
 * fields in, a decision or an error text out, so every rule is unit-tested.
 *
 * An error text starting with '!' is a failure of DMT's activation machine
 * rather than of its Validator: the client receives it inside the status
 * JSON instead of as plain text (e.g. the tenant check).
 */
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rps.h"

/* §2.2: a.b.vprodemo.com -> a.b.vprodemo.com, b.vprodemo.com, vprodemo.com (never the TLD). */
size_t rps_suffix_candidates(const char *fqdn, char out[][256], size_t max) {
  size_t n = 0;
  if (!fqdn || !*fqdn) return 0;
  size_t labels = 1;
  for (const char *p = fqdn; *p; p++) labels += *p == '.';
  /* for i = 0 .. labels-2: labels[i..].join('.') */
  const char *p = fqdn;
  for (size_t i = 0; i + 1 < labels && n < max; i++) {
    snprintf(out[n++], 256, "%s", p);
    const char *dot = strchr(p, '.');
    if (!dot) break;
    p = dot + 1;
  }
  return n;
}

static bool in_list(double v, const double *l, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (v == l[i]) return true;
  return false;
}

int validate_amt_version(const struct rpc_device *d, const char *action, char *err, size_t errlen) {
  static const double verified[] = {7.0, 7.1, 8.0, 8.1, 9.0, 9.1, 9.5, 10.0, 11.0, 11.5, 11.6};
  double ver = strtod(d->ver, NULL); /* parseFloat */
  if (in_list(ver, verified, sizeof verified / sizeof verified[0])) {
    if (strtol(d->build, NULL, 10) < 3000) {
      snprintf(err, errlen, "Device %s %s failed. Please check with your OEM for a firmware update.", d->uuid, action);
      return -1;
    }
  } else if (ver < 7) {
    snprintf(err, errlen,
             "Device %s %s failed. AMT version: %s. Version less than 7 cannot be remotely configured ", d->uuid,
             action, d->ver);
    return -1;
  }
  return 0;
}

/* 1: the client's password equals the stored AMT password; 0: it does not; -1: none is stored. */
static int stored_password_matches(const struct rps_job *j) {
  const char *stored = j->lk.record.amt_password;
  if (!stored || !*stored) return -1;
  size_t a = strlen(stored), b = strlen(j->dev.password);
  return a == b && CRYPTO_memcmp(stored, j->dev.password, a) == 0;
}

/* Activation of an activated device: checked only when a password is stored (§2.1). */
static int check_stored_password(const struct rps_job *j, char *err, size_t errlen) {
  if (stored_password_matches(j) == 0) {
    snprintf(err, errlen, "AMT password DOES NOT match stored version for Device %s", j->guid);
    return -1;
  }
  return 0;
}

/* Deactivation and maintenance without -f: a stored password is required and must match (§2.8). */
static int require_stored_password(const struct rps_job *j, char *err, size_t errlen) {
  if (j->args.force || stored_password_matches(j) == 1) return 0;
  snprintf(err, errlen, "AMT password DOES NOT match stored version for Device %s", j->guid);
  return -1;
}

int validate_activation(struct rps_job *j, char *err, size_t errlen) {
  const struct rps_profile *p = &j->lk.profile;
  if (!p->found) {
    snprintf(err, errlen, "Device %s activation failed. %s does not match list of available AMT profiles.", j->guid,
             j->args.profile ? j->args.profile : "undefined");
    return -1;
  }
  if (!strcmp(p->activation, "acmactivate")) j->target = MODE_ACM;
  else if (!strcmp(p->activation, "ccmactivate")) j->target = MODE_CCM;
  else {
    snprintf(err, errlen, "Device %s activation failed. Failed to get activation mode for the profile :%s", j->guid,
             p->name);
    return -1;
  }
  switch (j->dev.current_mode) {
    case 0:
      j->device_mode = MODE_NONE;
      break;
    case 1:
      j->device_mode = MODE_CCM;
      j->upgrade = j->target == MODE_ACM;
      snprintf(j->st.status, sizeof j->st.status, "%s",
               j->upgrade ? "Upgraded to admin control mode." : "already enabled in client mode.");
      break;
    case 2:
      if (j->target != MODE_ACM) {
        snprintf(err, errlen, "Device %s already enabled in admin control mode.", j->guid);
        return -1;
      }
      j->device_mode = MODE_ACM;
      snprintf(j->st.status, sizeof j->st.status, "already enabled in admin mode.");
      break;
    default:
      snprintf(err, errlen, "Device %s activation failed. It is in unknown mode.", j->guid);
      return -1;
  }
  if (j->device_mode != MODE_NONE && check_stored_password(j, err, errlen) != 0) return -1;
  if (j->target == MODE_ACM) {
    if (!j->dev.has_cert_hashes) {
      snprintf(err, errlen, "Device %s activation failed. Missing certificate hashes from the device.", j->guid);
      return -1;
    }
    if (!j->dev.fqdn[0] && j->dev.current_mode != 2) {
      snprintf(err, errlen, "Device %s activation failed. Missing DNS Suffix.", j->guid);
      return -1;
    }
    if (!j->lk.domain.found && j->dev.current_mode != 2) {
      snprintf(err, errlen,
               "Device %s activation failed. Specified AMT domain suffix: %s does not match list of available AMT "
               "domain suffixes.",
               j->guid, j->dev.fqdn);
      return -1;
    }
  }
  /* CHECK_TENANT_ACCESS (§2.5): an activated device registered under another tenant */
  if (j->device_mode != MODE_NONE && j->lk.record.exists && strcmp(j->lk.record.tenant, j->tenant) != 0) {
    snprintf(err, errlen, "!Device belongs to another tenant. Please unprovision and re-activate device.");
    return -1;
  }
  if (j->target == MODE_ACM && j->lk.domain.found && !j->lk.domain.p12 && (j->device_mode == MODE_NONE || j->upgrade)) {
    snprintf(err, errlen, "!Failed to get amt domain certificate from database");
    return -1;
  }
  if (j->lk.profile.cira_name[0] && !j->lk.cira.found) {
    snprintf(err, errlen, "!Failed to get amt profile from database");
    return -1;
  }
  return 0;
}

int validate_deactivation(struct rps_job *j, char *err, size_t errlen) {
  switch (j->dev.current_mode) {
    case -1: break; /* absent: DMT skips the check */
    case 0:
      snprintf(err, errlen, "Device %s is in pre-provisioning mode.", j->guid);
      return -1;
    case 1:
    case 2:
      break;
    default:
      snprintf(err, errlen, "Device %s deactivation failed. It is in unknown mode: %d.", j->guid, j->dev.current_mode);
      return -1;
  }
  return require_stored_password(j, err, errlen);
}

int validate_maintenance(struct rps_job *j, char *err, size_t errlen) {
  if (!j->args.task) {
    snprintf(err, errlen, "%s - missing maintenance task in message", j->id);
    return -1;
  }
  if (j->dev.current_mode <= 0) {
    snprintf(err, errlen, "Device %s is in pre-provisioning mode.", j->guid);
    return -1;
  }
  if (!strcmp(j->args.task, "syncip") && !j->dev.ip.present) {
    snprintf(err, errlen, "%s - missing ipConfiguration", j->id);
    return -1;
  }
  if (!strcmp(j->args.task, "synchostname") && !j->dev.has_hostname_info) {
    snprintf(err, errlen, "%s - missing HostnameInfo", j->id);
    return -1;
  }
  if (!j->lk.want_record) return 0; /* before the lookup: the checks that need no database */
  if (require_stored_password(j, err, errlen) != 0) return -1;
  if (!j->lk.record.exists && (!strcmp(j->args.task, "changepassword") || !strcmp(j->args.task, "syncdeviceinfo"))) {
    snprintf(err, errlen, "Device %s maintenance failed. The device is not registered.", j->guid);
    return -1;
  }
  return 0;
}
