/*
 * The fleet: devices from a fleet file (devices already provisioned with
 * CIRA, as tests of the terminator need them) or from a template (N devices
 * with templated GUIDs, for scale runs and RPS activations), lookup by GUID,
 * and the interning tables that let 50,000 devices share one copy of each
 * MPS host name, user name, firmware model and DNS suffix.
 *
 * Fleet file (JSON; see docs/simulator.md):
 *   {"mps": {"host", "port", "root_ca", "username", "password"},
 *    "defaults": {"amt_version", "amt_build", "amt_sku", "dns_suffix", "mode", "amt_password"},
 *    "acm_root_hashes": ["<hex>", ...],
 *    "devices": [{"guid", "amt_password", "mps_username", "mps_password", "mps_host", "mps_port",
 *                 "mps_cn", "mps_alternate": "host:port", "mps_root_ca", "hostname", "mode",
 *                 "power_state", "amt_version", "amt_build", "amt_sku", "dns_suffix"}]}
 */
#include <ctype.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dmt/amt_guid.h"
#include "sim.h"

#define DEFAULT_VERSION "16.1.27"
#define DEFAULT_BUILD "2225"
#define DEFAULT_SKU "16392"
#define DEFAULT_DNS_SUFFIX "vprodemo.com"

const char *sim_intern(struct sim *s, const char *str) {
  if (!str) return NULL;
  const char *v = dmt_strmap_get(&s->interned, str);
  if (v) return v;
  char *copy = strdup(str);
  if (!copy || dmt_strmap_put(&s->interned, str, copy, NULL) != 0) {
    free(copy);
    return NULL;
  }
  return copy;
}

/* rpc-go derives the feature string from the SKU bits (AMT, Standard Manageability, ...). */
static void features_of(const char *sku, char *out, size_t n) {
  unsigned long v = strtoul(sku, NULL, 10);
  if (v & 0x10) snprintf(out, n, "Intel Standard Manageability%s", (v & 0x4000) ? " Corporate" : "");
  else snprintf(out, n, "AMT Pro%s", (v & 0x4000) ? " Corporate" : "");
}

const struct sim_model *sim_model_get(struct sim *s, const char *version, const char *build, const char *sku) {
  for (size_t i = 0; i < s->nmodels; i++) {
    const struct sim_model *m = &s->models[i];
    if (!strcmp(m->version, version) && !strcmp(m->build, build) && !strcmp(m->sku, sku)) return m;
  }
  /* Models are few (one per firmware in the fleet) and never move once handed out. */
  if (!s->models) s->models = calloc(64, sizeof *s->models);
  if (!s->models || s->nmodels == 64) return s->nmodels ? &s->models[0] : NULL;
  struct sim_model *m = &s->models[s->nmodels++];
  snprintf(m->version, sizeof m->version, "%s", version);
  snprintf(m->build, sizeof m->build, "%s", build);
  snprintf(m->sku, sizeof m->sku, "%s", sku);
  features_of(m->sku, m->features, sizeof m->features);
  m->legacy_tls = strtoul(version, NULL, 10) <= 12;
  return m;
}

int sim_fleet_add_acm_hashes(struct sim *s, const char *list) {
  if (!list || !*list) return 0;
  char *copy = strdup(list), *save = NULL;
  int rc = 0;
  for (char *tok = strtok_r(copy, ", \n", &save); tok; tok = strtok_r(NULL, ", \n", &save)) {
    size_t hl = strlen(tok);
    if (hl != 40 && hl != 64 && hl != 96) {
      rc = -1;
      break;
    }
    struct sim_hash h = {.len = (uint8_t)(hl / 2)};
    for (size_t i = 0; i < h.len; i++) {
      if (!isxdigit((unsigned char)tok[2 * i]) || !isxdigit((unsigned char)tok[2 * i + 1])) rc = -1;
      char two[3] = {tok[2 * i], tok[2 * i + 1], 0};
      h.md[i] = (uint8_t)strtoul(two, NULL, 16);
    }
    if (rc) break;
    struct sim_hash *n = realloc(s->acm_hashes, (s->nacm_hashes + 1) * sizeof *n);
    if (!n) {
      rc = -1;
      break;
    }
    s->acm_hashes = n;
    s->acm_hashes[s->nacm_hashes++] = h;
  }
  free(copy);
  return rc;
}

struct sim_device *sim_fleet_find(struct sim *s, const char *guid) {
  char norm[DMT_GUID_STRLEN + 1];
  if (dmt_guid_normalize(guid, norm) != 0) return NULL;
  return dmt_strmap_get(&s->by_guid, norm);
}

static int set_mode(struct sim_device *d, const char *mode) {
  if (!mode) return 0;
  if (!strcmp(mode, "acm")) d->mode = SIM_MODE_ACM;
  else if (!strcmp(mode, "ccm")) d->mode = SIM_MODE_CCM;
  else if (!strcmp(mode, "pre")) d->mode = SIM_MODE_PRE;
  else return -1;
  return 0;
}

static int allocate(struct sim *s, size_t n, char *err, size_t errlen) {
  s->devices = calloc(n, sizeof *s->devices);
  if (!s->devices) {
    snprintf(err, errlen, "out of memory for %zu devices", n);
    return -1;
  }
  s->ndevices = n;
  return 0;
}

static int register_device(struct sim *s, struct sim_device *d, char *err, size_t errlen) {
  if (dmt_strmap_has(&s->by_guid, d->guid)) {
    /* Non-unique SMBIOS UUIDs exist in the field (MeshCentral #2359), but one fleet file must not repeat one. */
    snprintf(err, errlen, "duplicate device %s", d->guid);
    return -1;
  }
  return dmt_strmap_put(&s->by_guid, d->guid, d, NULL);
}

/* A device that arrives "already provisioned with CIRA": MPS, credentials and a periodic policy. */
static void provision_cira(struct sim *s, struct sim_device *d, const char *host, unsigned port, const char *user,
                           const char *password) {
  struct sim_cira_config *c = sim_device_cira(d);
  c->host = sim_intern(s, host);
  c->port = (uint16_t)port;
  c->info_format = 201;
  c->user = sim_intern(s, user);
  snprintf(c->password, sizeof c->password, "%s", password);
  c->has_mps = true;
  c->periodic = true;
  c->periodic_interval_s = s->policy_interval_s;
  c->user_initiated = true;
  c->user_initiated_lifetime_s = 300;
  c->mps_type = 2;
  d->user_initiated_state = 32771;
  if (!d->trust) d->trust = s->default_trust;
}

static const char *jstr(json_t *o, const char *key, const char *def) {
  const char *v = json_string_value(json_object_get(o, key));
  return v ? v : def;
}

static long jint(json_t *o, const char *key, long def) {
  json_t *v = json_object_get(o, key);
  return json_is_integer(v) ? (long)json_integer_value(v) : def;
}

static int load_device(struct sim *s, struct sim_device *d, uint32_t i, json_t *dj, json_t *mps, json_t *defs,
                       const char *path, char *err, size_t errlen) {
  const char *guid = jstr(dj, "guid", "");
  if (!dmt_guid_valid(guid)) {
    snprintf(err, errlen, "%s: device %u: invalid guid \"%s\"", path, i, guid);
    return -1;
  }
  sim_device_init(s, d, i, guid);
  d->model = sim_model_get(s, jstr(dj, "amt_version", jstr(defs, "amt_version", DEFAULT_VERSION)),
                           jstr(dj, "amt_build", jstr(defs, "amt_build", DEFAULT_BUILD)),
                           jstr(dj, "amt_sku", jstr(defs, "amt_sku", DEFAULT_SKU)));
  d->dns_suffix = sim_intern(s, jstr(dj, "dns_suffix", jstr(defs, "dns_suffix", DEFAULT_DNS_SUFFIX)));
  const char *hostname = jstr(dj, "hostname", NULL);
  if (hostname) snprintf(d->hostname, sizeof d->hostname, "%s", hostname);
  d->power_state = (uint8_t)jint(dj, "power_state", d->power_state);
  const char *user = jstr(dj, "mps_username", jstr(mps, "username", NULL));
  if (set_mode(d, jstr(dj, "mode", jstr(defs, "mode", user ? "acm" : "pre"))) != 0) {
    snprintf(err, errlen, "%s: device %u: mode must be pre, ccm or acm", path, i);
    return -1;
  }
  const char *amt_pw = jstr(dj, "amt_password", jstr(defs, "amt_password", NULL));
  if (amt_pw && d->mode != SIM_MODE_PRE) sim_device_set_amt_password(d, amt_pw);
  const char *root = jstr(dj, "mps_root_ca", NULL);
  if (root) {
    const struct sim_cert *c = sim_cert_intern_pem_file(s, root, err, errlen);
    if (!c) return -1;
    d->trust = sim_trust_with(s, NULL, c);
  }
  if (user) {
    unsigned port = (unsigned)jint(dj, "mps_port", jint(mps, "port", 4433));
    provision_cira(s, d, jstr(dj, "mps_host", jstr(mps, "host", "127.0.0.1")), port, user,
                   jstr(dj, "mps_password", jstr(mps, "password", "")));
    d->cira->cn = sim_intern(s, jstr(dj, "mps_cn", NULL));
    const char *alt = jstr(dj, "mps_alternate", NULL); /* "host:port", a secondary MPS */
    const char *colon = alt ? strrchr(alt, ':') : NULL;
    if (colon) {
      char host[128];
      snprintf(host, sizeof host, "%.*s", (int)(colon - alt), alt);
      d->cira->alt_host = sim_intern(s, host);
      d->cira->alt_port = (uint16_t)strtoul(colon + 1, NULL, 10);
    }
  }
  sim_device_restore(d);
  return register_device(s, d, err, errlen);
}

int sim_fleet_load(struct sim *s, const char *path, char *err, size_t errlen) {
  json_error_t jerr;
  json_t *root = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
  if (!root) {
    snprintf(err, errlen, "%s:%d: %s", path, jerr.line, jerr.text);
    return -1;
  }
  int rc = -1;
  json_t *mps = json_object_get(root, "mps"), *defs = json_object_get(root, "defaults");
  json_t *devs = json_object_get(root, "devices"), *hashes = json_object_get(root, "acm_root_hashes");
  if (!json_is_array(devs) || json_array_size(devs) == 0) {
    snprintf(err, errlen, "%s: `devices` must be a non-empty array", path);
    goto out;
  }
  size_t hi;
  json_t *hv;
  json_array_foreach(hashes, hi, hv) {
    if (sim_fleet_add_acm_hashes(s, json_string_value(hv)) != 0) {
      snprintf(err, errlen, "%s: acm_root_hashes[%zu] is not a SHA-1/256/384 hex digest", path, hi);
      goto out;
    }
  }
  const char *ca = jstr(mps, "root_ca", NULL);
  if (ca) {
    const struct sim_cert *c = sim_cert_intern_pem_file(s, ca, err, errlen);
    if (!c) goto out;
    s->default_trust = sim_trust_with(s, NULL, c);
  }
  if (allocate(s, json_array_size(devs), err, errlen) != 0) goto out;
  size_t i;
  json_t *dj;
  json_array_foreach(devs, i, dj) {
    if (load_device(s, &s->devices[i], (uint32_t)i, dj, mps, defs, path, err, errlen) != 0) goto out;
  }
  rc = 0;
out:
  json_decref(root);
  return rc;
}

/* The i-th element of a comma list, cycling. */
static void nth(const char *list, size_t i, char *out, size_t n) {
  size_t count = 1;
  for (const char *p = list; *p; p++) count += *p == ',';
  i %= count;
  const char *p = list;
  while (i--) p = strchr(p, ',') + 1;
  const char *end = strchr(p, ',');
  snprintf(out, n, "%.*s", (int)(end ? (size_t)(end - p) : strlen(p)), p);
}

int sim_fleet_template(struct sim *s, const struct sim_template *t, char *err, size_t errlen) {
  if (t->count == 0 || t->count > 1000000) {
    snprintf(err, errlen, "sim.count must be between 1 and 1000000");
    return -1;
  }
  if (allocate(s, t->count, err, errlen) != 0) return -1;
  for (size_t i = 0; i < t->count; i++) {
    struct sim_device *d = &s->devices[i];
    char guid[64], v[32], b[16], k[16], host[128], port[16];
    snprintf(guid, sizeof guid, "%.24s%012zx", t->guid_prefix, i);
    if (strlen(t->guid_prefix) != 24 || !dmt_guid_valid(guid)) {
      snprintf(err, errlen, "sim.guid_prefix must be the first 24 characters of a GUID (8-4-4-4-)");
      return -1;
    }
    sim_device_init(s, d, (uint32_t)i, guid);
    nth(t->versions, i, v, sizeof v);
    nth(t->builds, i, b, sizeof b);
    nth(t->skus, i, k, sizeof k);
    d->model = sim_model_get(s, v, b, k);
    d->dns_suffix = sim_intern(s, t->dns_suffix);
    bool cira = t->mps_password && *t->mps_password && t->mps_user && *t->mps_user;
    if (set_mode(d, t->mode ? t->mode : (cira ? "acm" : "pre")) != 0) {
      snprintf(err, errlen, "sim.mode must be pre, ccm or acm");
      return -1;
    }
    if (d->mode != SIM_MODE_PRE) {
      sim_device_set_amt_password(d, t->amt_password);
      if (cira) {
        nth(t->mps_hosts, i, host, sizeof host);
        nth(t->mps_ports, i, port, sizeof port);
        provision_cira(s, d, host, (unsigned)strtoul(port, NULL, 10), t->mps_user, t->mps_password);
      }
    }
    sim_device_restore(d);
    if (register_device(s, d, err, errlen) != 0) return -1;
  }
  return 0;
}

static void free_value(const char *key, void *value, void *ud) { free(value); }

static void free_cert(const char *key, void *value, void *ud) {
  struct sim_cert *c = value;
  X509_free(c->x509);
  free(c->der);
  free(c);
}

static void free_trust(const char *key, void *value, void *ud) {
  struct sim_trust *t = value;
  X509_STORE_free(t->store);
  free(t->certs);
  free(t);
}

void sim_fleet_free(struct sim *s) {
  for (size_t i = 0; i < s->ndevices; i++) sim_device_free(&s->devices[i]);
  free(s->devices);
  s->devices = NULL;
  s->ndevices = 0;
  dmt_strmap_free(&s->by_guid);
  dmt_strmap_foreach(&s->interned, free_value, NULL);
  dmt_strmap_free(&s->interned);
  dmt_strmap_foreach(&s->certs, free_cert, NULL);
  dmt_strmap_free(&s->certs);
  dmt_strmap_foreach(&s->trusts, free_trust, NULL);
  dmt_strmap_free(&s->trusts);
  free(s->models);
  s->models = NULL;
  s->nmodels = 0;
  free(s->acm_hashes);
  s->acm_hashes = NULL;
  s->nacm_hashes = 0;
}
