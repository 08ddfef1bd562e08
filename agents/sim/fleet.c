/*
 * The fleet: devices from a fleet file or a template, and each device's
 * persistent state (one small JSON file per device, replaced atomically), so
 * a restarted simulator comes back with the same activation, passwords, MPS
 * settings and power state.
 */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dmt/amt_guid.h"
#include "dmt/digest.h"
#include "sim.h"

static void device_defaults(struct sim *s, struct sim_device *d, size_t index) {
  memset(d, 0, sizeof *d);
  d->sim = s;
  d->index = index;
  d->fd = -1;
  snprintf(d->amt_version, sizeof d->amt_version, "16.1.27");
  snprintf(d->amt_build, sizeof d->amt_build, "2225");
  snprintf(d->amt_sku, sizeof d->amt_sku, "16392");
  snprintf(d->hostname, sizeof d->hostname, "sim-%05zu", index);
  snprintf(d->dns_suffix, sizeof d->dns_suffix, "vprodemo.com");
  d->mode = SIM_MODE_ACM;
  d->power_state = 2;
  d->os_power_saving = 2;
  dmt_buf_init(&d->in, 2u << 20);
  dmt_buf_init(&d->out, 4u << 20);
  dmt_timer_init(&d->timer, NULL, d);
  dmt_timer_init(&d->aux, NULL, d);
}

/* The realm is stable per device: "Digest:" + the UUID bytes in hex, as AMT derives a fixed one. */
static void set_identity(struct sim_device *d, const char *guid) {
  dmt_guid_normalize(guid, d->guid);
  dmt_amt_guid_to_uuid(d->guid, d->uuid);
  char *p = d->realm + snprintf(d->realm, sizeof d->realm, "Digest:");
  for (int i = 0; i < 16; i++) p += sprintf(p, "%02X", d->uuid[i]);
}

void sim_device_set_amt_password(struct sim_device *d, const char *password) {
  dmt_digest_ha1("admin", d->realm, password, d->amt_ha1);
}

static int set_mode(struct sim_device *d, const char *mode) {
  if (!mode) return 0;
  if (!strcmp(mode, "acm")) d->mode = SIM_MODE_ACM;
  else if (!strcmp(mode, "ccm")) d->mode = SIM_MODE_CCM;
  else if (!strcmp(mode, "pre")) d->mode = SIM_MODE_PRE;
  else return -1;
  return 0;
}

static const char *str_or(json_t *o, const char *key, const char *def) {
  const char *v = json_string_value(json_object_get(o, key));
  return v ? v : def;
}

int sim_fleet_load(struct sim *s, const char *path, char *err, size_t errlen) {
  json_error_t jerr;
  json_t *root = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
  if (!root) {
    snprintf(err, errlen, "%s:%d: %s", path, jerr.line, jerr.text);
    return -1;
  }
  json_t *mps = json_object_get(root, "mps"), *devs = json_object_get(root, "devices");
  const char *host = str_or(mps, "host", "127.0.0.1");
  unsigned port = (unsigned)json_integer_value(json_object_get(mps, "port"));
  if (!json_is_array(devs) || json_array_size(devs) == 0) {
    snprintf(err, errlen, "%s: `devices` must be a non-empty array", path);
    json_decref(root);
    return -1;
  }
  s->ndevices = json_array_size(devs);
  s->devices = calloc(s->ndevices, sizeof *s->devices);
  size_t i;
  json_t *dj;
  json_array_foreach(devs, i, dj) {
    struct sim_device *d = &s->devices[i];
    device_defaults(s, d, i);
    const char *guid = str_or(dj, "guid", "");
    if (!dmt_guid_valid(guid) || set_mode(d, str_or(dj, "mode", NULL)) != 0) {
      snprintf(err, errlen, "%s: device %zu: invalid guid or mode", path, i);
      json_decref(root);
      return -1;
    }
    set_identity(d, guid);
    sim_device_set_amt_password(d, str_or(dj, "amt_password", "P@ssw0rd1"));
    snprintf(d->mps_host, sizeof d->mps_host, "%s", str_or(dj, "mps_host", host));
    d->mps_port = json_integer_value(json_object_get(dj, "mps_port")) ? (unsigned)json_integer_value(json_object_get(dj, "mps_port")) : (port ? port : 4433);
    const char *alt = str_or(dj, "mps_alternate", NULL); /* "host:port" */
    const char *colon = alt ? strrchr(alt, ':') : NULL;
    if (colon) {
      snprintf(d->alt_host, sizeof d->alt_host, "%.*s", (int)(colon - alt), alt);
      d->alt_port = (unsigned)strtoul(colon + 1, NULL, 10);
    }
    snprintf(d->mps_user, sizeof d->mps_user, "%s", str_or(dj, "mps_username", ""));
    snprintf(d->mps_password, sizeof d->mps_password, "%s", str_or(dj, "mps_password", ""));
    snprintf(d->hostname, sizeof d->hostname, "%s", str_or(dj, "hostname", d->hostname));
    if (json_is_integer(json_object_get(dj, "power_state")))
      d->power_state = (uint16_t)json_integer_value(json_object_get(dj, "power_state"));
    sim_device_restore(d);
  }
  json_decref(root);
  return 0;
}

int sim_fleet_template(struct sim *s, size_t count, const char *guid_prefix, const char *mps_host, unsigned mps_port,
                       const char *mps_user, const char *mps_password, const char *amt_password) {
  s->ndevices = count;
  s->devices = calloc(count, sizeof *s->devices);
  if (!s->devices) return -1;
  for (size_t i = 0; i < count; i++) {
    struct sim_device *d = &s->devices[i];
    device_defaults(s, d, i);
    char guid[64];
    /* guid_prefix supplies the first 24 characters (8-4-4-4-), the index the last 12 hex digits. */
    snprintf(guid, sizeof guid, "%.24s%012zx", guid_prefix, i);
    if (!dmt_guid_valid(guid)) return -1;
    set_identity(d, guid);
    sim_device_set_amt_password(d, amt_password);
    snprintf(d->mps_host, sizeof d->mps_host, "%s", mps_host);
    d->mps_port = mps_port;
    snprintf(d->mps_user, sizeof d->mps_user, "%s", mps_user);
    snprintf(d->mps_password, sizeof d->mps_password, "%s", mps_password);
    sim_device_restore(d);
  }
  return 0;
}

static char *state_path(const struct sim_device *d, const char *suffix) {
  char *p = NULL;
  if (asprintf(&p, "%s/%s.json%s", d->sim->state_dir, d->guid, suffix) < 0) return NULL;
  return p;
}

void sim_device_save(struct sim_device *d) {
  if (!d->sim->state_dir) return;
  json_t *o = json_pack("{s:s, s:i, s:i, s:s, s:s, s:i, s:s, s:s}", "guid", d->guid, "mode", (int)d->mode,
                        "power_state", (int)d->power_state, "amt_ha1", d->amt_ha1, "mps_host", d->mps_host,
                        "mps_port", (int)d->mps_port, "mps_username", d->mps_user, "mps_password", d->mps_password);
  char *tmp = state_path(d, ".tmp"), *final = state_path(d, "");
  if (o && tmp && final && json_dump_file(o, tmp, JSON_COMPACT) == 0 && rename(tmp, final) != 0)
    DMT_WARN(&d->sim->log, "state_save_failed", "guid=%s error=\"%s\"", d->guid, strerror(errno));
  json_decref(o);
  free(tmp);
  free(final);
}

void sim_device_restore(struct sim_device *d) {
  if (!d->sim->state_dir) return;
  char *path = state_path(d, "");
  json_t *o = path ? json_load_file(path, 0, NULL) : NULL;
  free(path);
  if (!o) return;
  json_t *v;
  if ((v = json_object_get(o, "mode")) && json_is_integer(v)) d->mode = (enum sim_mode)json_integer_value(v);
  if ((v = json_object_get(o, "power_state")) && json_is_integer(v)) d->power_state = (uint16_t)json_integer_value(v);
  snprintf(d->amt_ha1, sizeof d->amt_ha1, "%s", str_or(o, "amt_ha1", d->amt_ha1));
  snprintf(d->mps_host, sizeof d->mps_host, "%s", str_or(o, "mps_host", d->mps_host));
  if ((v = json_object_get(o, "mps_port")) && json_integer_value(v)) d->mps_port = (unsigned)json_integer_value(v);
  snprintf(d->mps_user, sizeof d->mps_user, "%s", str_or(o, "mps_username", d->mps_user));
  snprintf(d->mps_password, sizeof d->mps_password, "%s", str_or(o, "mps_password", d->mps_password));
  json_decref(o);
}
