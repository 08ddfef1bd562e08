/*
 * One simulated device's identity and persistent state. The GUID DMT uses is
 * the mixed-endian rendering of the 16 SMBIOS UUID bytes the device sends in
 * PROTOCOLVERSION (mps-cira.md §1.8, codec dmt/amt_guid.h); the same bytes
 * are CIM_ComputerSystemPackage.PlatformGUID, and the digest realm is derived
 * from them, so all three always agree. State that firmware keeps across
 * restarts (control mode, admin password hash, power state, MPS, policies,
 * trusted roots, network settings) is written to <state_dir>/<guid>.json,
 * atomically (temporary file + rename), whenever it changes.
 */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "dmt/amt_guid.h"
#include "dmt/digest.h"
#include "sim.h"

#define REDIRECTION_IDER_SOL 32771
#define USER_INITIATED_DISABLED 32768
#define OPTIN_NONE 0u
#define OPTIN_ALL 0xFFFFFFFFu

static void random_password(char *out, size_t n) {
  static const char alphabet[] = "ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnpqrstuvwxyz23456789";
  uint8_t r[64];
  RAND_bytes(r, sizeof r);
  for (size_t i = 0; i + 1 < n && i < sizeof r; i++) out[i] = alphabet[r[i] % (sizeof alphabet - 1)];
  out[n - 1] = '\0';
}

void sim_device_init(struct sim *s, struct sim_device *d, uint32_t index, const char *guid) {
  memset(d, 0, sizeof *d);
  d->sim = s;
  d->index = index;
  dmt_guid_normalize(guid, d->guid);
  dmt_amt_guid_to_uuid(d->guid, d->uuid);
  snprintf(d->hostname, sizeof d->hostname, "sim-%05u", index);
  d->mode = SIM_MODE_PRE;
  d->power_state = 2;
  d->os_power_saving = 2;
  d->dhcp = d->ip_sync = true;
  d->kvm_enabled = true;
  d->redirection_state = REDIRECTION_IDER_SOL;
  d->user_initiated_state = USER_INITIATED_DISABLED;
  d->optin_required = OPTIN_ALL;
  random_password(d->lsa_password, 17);
  RAND_bytes(d->config_nonce, sizeof d->config_nonce);
  sim_stream_init(&d->conn, s, d);
  dmt_timer_init(&d->timer, NULL, d);
}

void sim_device_realm(const struct sim_device *d, char out[40]) {
  char *p = out + snprintf(out, 40, "Digest:");
  for (int i = 0; i < 16; i++) p += snprintf(p, 3, "%02X", d->uuid[i]);
}

void sim_device_platform_guid(const struct sim_device *d, char out[33]) {
  for (int i = 0; i < 16; i++) snprintf(out + 2 * i, 3, "%02X", d->uuid[i]);
}

void sim_device_set_amt_password(struct sim_device *d, const char *password) {
  char realm[40];
  sim_device_realm(d, realm);
  dmt_digest_ha1("admin", realm, password, d->amt_ha1);
  snprintf(d->amt_password, sizeof d->amt_password, "%s", password);
}

struct sim_cira_config *sim_device_cira(struct sim_device *d) {
  if (!d->cira) d->cira = calloc(1, sizeof *d->cira);
  return d->cira;
}

struct sim_extra *sim_device_extra(struct sim_device *d) {
  if (!d->extra) d->extra = calloc(1, sizeof *d->extra);
  return d->extra;
}

void sim_device_extra_release(struct sim_device *d) {
  struct sim_extra *x = d->extra;
  if (x && !x->chain && !x->enums) {
    free(x);
    d->extra = NULL;
  }
}

static void free_enums(struct sim_device *d);

void sim_device_reset_volatile(struct sim_device *d) {
  d->nonce[0] = '\0';
  RAND_bytes(d->config_nonce, sizeof d->config_nonce);
  if (d->extra) {
    if (d->extra->chain) {
      amt_chain_free(d->extra->chain);
      free(d->extra->chain);
      d->extra->chain = NULL;
    }
    free_enums(d);
    sim_device_extra_release(d);
  }
}

static void free_enums(struct sim_device *d) {
  while (d->extra->enums) {
    struct sim_enum_ctx *e = d->extra->enums;
    d->extra->enums = e->next;
    free(e);
  }
}

void sim_device_unprovision(struct sim_device *d) {
  d->mode = SIM_MODE_PRE;
  d->amt_ha1[0] = d->amt_password[0] = '\0';
  d->mebx_password_set = false;
  d->trust = NULL;
  free(d->cira);
  d->cira = NULL;
  free(d->detection_strings);
  d->detection_strings = NULL;
  d->user_initiated_state = USER_INITIATED_DISABLED;
  d->optin_required = OPTIN_ALL;
  d->redirection_state = REDIRECTION_IDER_SOL;
  d->kvm_enabled = true;
  d->boot_options_set = false;
  sim_device_reset_volatile(d);
  sim_device_save(d);
}

void sim_device_free(struct sim_device *d) {
  sim_device_reset_volatile(d);
  free(d->extra);
  d->extra = NULL;
  free(d->cira);
  d->cira = NULL;
  free(d->detection_strings);
  d->detection_strings = NULL;
}

static bool inside_enterprise(const struct sim_device *d) {
  /* Environment detection: a detection string naming the network's DNS domain means "at home". */
  if (!d->detection_strings || !d->dns_suffix) return false;
  const char *p = d->detection_strings;
  size_t sl = strlen(d->dns_suffix);
  while (*p) {
    const char *nl = strchr(p, '\n');
    size_t n = nl ? (size_t)(nl - p) : strlen(p);
    if (n == sl && !strncasecmp(p, d->dns_suffix, n)) return true;
    if (!nl) break;
    p = nl + 1;
  }
  return false;
}

bool sim_device_wants_cira(const struct sim_device *d) {
  const struct sim_cira_config *c = d->cira;
  return c && c->has_mps && c->periodic && c->host && c->user && d->mode != SIM_MODE_PRE && !d->rebooting &&
         !inside_enterprise(d);
}

/* ---- persistence ---- */

static char *state_path(const struct sim_device *d, const char *suffix) {
  char *p = NULL;
  if (asprintf(&p, "%s/%s.json%s", d->sim->state_dir, d->guid, suffix) < 0) return NULL;
  return p;
}

static json_t *cira_json(const struct sim_cira_config *c) {
  json_t *o = json_object();
  json_object_set_new(o, "host", json_string(c->host ? c->host : ""));
  json_object_set_new(o, "port", json_integer(c->port));
  json_object_set_new(o, "info_format", json_integer(c->info_format));
  if (c->cn) json_object_set_new(o, "cn", json_string(c->cn));
  json_object_set_new(o, "username", json_string(c->user ? c->user : ""));
  json_object_set_new(o, "password", json_string(c->password));
  if (c->alt_host) {
    json_object_set_new(o, "alt_host", json_string(c->alt_host));
    json_object_set_new(o, "alt_port", json_integer(c->alt_port));
  }
  json_object_set_new(o, "mps_type", json_integer(c->mps_type));
  json_object_set_new(o, "has_mps", json_boolean(c->has_mps));
  json_object_set_new(o, "periodic", json_boolean(c->periodic));
  json_object_set_new(o, "periodic_interval", json_integer(c->periodic_interval_s));
  json_object_set_new(o, "periodic_lifetime", json_integer(c->periodic_lifetime_s));
  json_object_set_new(o, "user_initiated", json_boolean(c->user_initiated));
  json_object_set_new(o, "user_initiated_lifetime", json_integer(c->user_initiated_lifetime_s));
  return o;
}

static json_t *device_json(const struct sim_device *d) {
  json_t *o = json_object();
  json_object_set_new(o, "guid", json_string(d->guid));
  json_object_set_new(o, "mode", json_integer(d->mode));
  json_object_set_new(o, "power_state", json_integer(d->power_state));
  json_object_set_new(o, "os_power_saving", json_integer(d->os_power_saving));
  json_object_set_new(o, "amt_ha1", json_string(d->amt_ha1));
  if (d->amt_password[0]) json_object_set_new(o, "amt_password", json_string(d->amt_password));
  json_object_set_new(o, "lsa_password", json_string(d->lsa_password));
  json_object_set_new(o, "mebx_password_set", json_boolean(d->mebx_password_set));
  json_object_set_new(o, "hostname", json_string(d->hostname));
  json_object_set_new(o, "dhcp", json_boolean(d->dhcp));
  json_object_set_new(o, "ip_sync", json_boolean(d->ip_sync));
  json_object_set_new(o, "shared_static_ip", json_boolean(d->shared_static_ip));
  json_object_set_new(o, "static_ip", json_integer(d->static_ip));
  json_object_set_new(o, "static_mask", json_integer(d->static_mask));
  json_object_set_new(o, "static_gateway", json_integer(d->static_gateway));
  json_object_set_new(o, "static_dns", json_integer(d->static_dns));
  json_object_set_new(o, "kvm_enabled", json_boolean(d->kvm_enabled));
  json_object_set_new(o, "redirection_state", json_integer(d->redirection_state));
  json_object_set_new(o, "user_initiated_state", json_integer(d->user_initiated_state));
  json_object_set_new(o, "optin_required", json_integer(d->optin_required));
  json_object_set_new(o, "boot_options_set", json_boolean(d->boot_options_set));
  if (d->detection_strings) json_object_set_new(o, "detection_strings", json_string(d->detection_strings));
  json_t *roots = json_array();
  for (size_t i = 0; d->trust && i < d->trust->n; i++)
    json_array_append_new(roots, json_string(d->trust->certs[i]->sha256_hex));
  json_object_set_new(o, "trusted_roots", roots);
  if (d->cira) json_object_set_new(o, "cira", cira_json(d->cira));
  return o;
}

void sim_device_save(struct sim_device *d) {
  struct sim *s = d->sim;
  if (!s->state_dir) return;
  json_t *o = device_json(d);
  char *tmp = state_path(d, ".tmp"), *final = state_path(d, "");
  int fd = tmp ? open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600) : -1;
  bool ok = fd >= 0 && json_dumpfd(o, fd, JSON_COMPACT) == 0;
  if (fd >= 0 && close(fd) != 0) ok = false;
  if (ok && rename(tmp, final) == 0) s->count.state_writes++;
  else DMT_WARN(&s->log, "state_save_failed", "guid=%s error=\"%s\"", d->guid, strerror(errno));
  for (size_t i = 0; d->trust && i < d->trust->n; i++) sim_cert_persist(s, d->trust->certs[i]);
  json_decref(o);
  free(tmp);
  free(final);
}

static const char *jstr(json_t *o, const char *key) { return json_string_value(json_object_get(o, key)); }
static long jint(json_t *o, const char *key, long def) {
  json_t *v = json_object_get(o, key);
  return json_is_integer(v) ? (long)json_integer_value(v) : def;
}
static bool jbool(json_t *o, const char *key, bool def) {
  json_t *v = json_object_get(o, key);
  return json_is_boolean(v) ? json_is_true(v) : def;
}
static void jcopy(json_t *o, const char *key, char *dst, size_t n) {
  const char *v = jstr(o, key);
  if (v) snprintf(dst, n, "%s", v);
}

static void restore_cira(struct sim_device *d, json_t *c) {
  struct sim *s = d->sim;
  if (!json_is_object(c)) {
    free(d->cira);
    d->cira = NULL;
    return;
  }
  struct sim_cira_config *cc = sim_device_cira(d);
  memset(cc, 0, sizeof *cc);
  cc->host = sim_intern(s, jstr(c, "host"));
  cc->cn = sim_intern(s, jstr(c, "cn"));
  cc->user = sim_intern(s, jstr(c, "username"));
  cc->alt_host = sim_intern(s, jstr(c, "alt_host"));
  cc->alt_port = (uint16_t)jint(c, "alt_port", 0);
  jcopy(c, "password", cc->password, sizeof cc->password);
  cc->port = (uint16_t)jint(c, "port", 4433);
  cc->info_format = (uint8_t)jint(c, "info_format", 201);
  cc->mps_type = (uint8_t)jint(c, "mps_type", 2);
  cc->has_mps = jbool(c, "has_mps", false);
  cc->periodic = jbool(c, "periodic", false);
  cc->periodic_interval_s = (uint32_t)jint(c, "periodic_interval", 25);
  cc->periodic_lifetime_s = (uint32_t)jint(c, "periodic_lifetime", 0);
  cc->user_initiated = jbool(c, "user_initiated", false);
  cc->user_initiated_lifetime_s = (uint32_t)jint(c, "user_initiated_lifetime", 300);
}

static void restore_trust(struct sim_device *d, json_t *roots) {
  struct sim *s = d->sim;
  const struct sim_trust *t = NULL;
  size_t i;
  json_t *v;
  json_array_foreach(roots, i, v) {
    const char *hex = json_string_value(v);
    const struct sim_cert *c = hex ? sim_cert_find(s, hex) : NULL;
    if (!c && hex) {
      /* Certificates are stored once per fleet: <state_dir>/certs/<sha256>.der */
      char *path = NULL;
      if (asprintf(&path, "%s/certs/%s.der", s->state_dir, hex) > 0) {
        FILE *f = fopen(path, "rb");
        uint8_t der[16384];
        size_t n = f ? fread(der, 1, sizeof der, f) : 0;
        if (f) fclose(f);
        if (n > 0) c = sim_cert_intern(s, der, n);
      }
      free(path);
    }
    if (c) t = sim_trust_with(s, t, c);
    else DMT_WARN(&s->log, "state_cert_missing", "guid=%s sha256=%s", d->guid, hex ? hex : "?");
  }
  d->trust = t;
}

int sim_device_restore(struct sim_device *d) {
  struct sim *s = d->sim;
  if (!s->state_dir) return 1;
  char *path = state_path(d, "");
  json_error_t jerr;
  json_t *o = NULL;
  int rc = 1;
  if (path && access(path, F_OK) == 0) {
    o = json_load_file(path, 0, &jerr);
    rc = o ? 0 : -1;
    if (!o) DMT_WARN(&s->log, "state_corrupt", "guid=%s error=\"%s\"", d->guid, jerr.text);
  }
  free(path);
  if (!o) return rc;
  d->mode = (uint8_t)jint(o, "mode", d->mode);
  d->power_state = (uint8_t)jint(o, "power_state", d->power_state);
  d->os_power_saving = (uint8_t)jint(o, "os_power_saving", d->os_power_saving);
  jcopy(o, "amt_ha1", d->amt_ha1, sizeof d->amt_ha1);
  d->amt_password[0] = '\0';
  jcopy(o, "amt_password", d->amt_password, sizeof d->amt_password);
  jcopy(o, "lsa_password", d->lsa_password, sizeof d->lsa_password);
  jcopy(o, "hostname", d->hostname, sizeof d->hostname);
  d->mebx_password_set = jbool(o, "mebx_password_set", d->mebx_password_set);
  d->dhcp = jbool(o, "dhcp", d->dhcp);
  d->ip_sync = jbool(o, "ip_sync", d->ip_sync);
  d->shared_static_ip = jbool(o, "shared_static_ip", d->shared_static_ip);
  d->static_ip = (uint32_t)jint(o, "static_ip", d->static_ip);
  d->static_mask = (uint32_t)jint(o, "static_mask", d->static_mask);
  d->static_gateway = (uint32_t)jint(o, "static_gateway", d->static_gateway);
  d->static_dns = (uint32_t)jint(o, "static_dns", d->static_dns);
  d->kvm_enabled = jbool(o, "kvm_enabled", d->kvm_enabled);
  d->redirection_state = (uint16_t)jint(o, "redirection_state", d->redirection_state);
  d->user_initiated_state = (uint16_t)jint(o, "user_initiated_state", d->user_initiated_state);
  d->optin_required = (uint32_t)jint(o, "optin_required", d->optin_required);
  d->boot_options_set = jbool(o, "boot_options_set", d->boot_options_set);
  free(d->detection_strings);
  d->detection_strings = jstr(o, "detection_strings") ? strdup(jstr(o, "detection_strings")) : NULL;
  restore_trust(d, json_object_get(o, "trusted_roots"));
  restore_cira(d, json_object_get(o, "cira"));
  json_decref(o);
  return 0;
}
