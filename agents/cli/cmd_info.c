/*
 * dmtctl info <guid>: AMT general settings, hardware inventory and firmware
 * versions of one device (three MQTT requests in parallel: general_settings,
 * hardware_info, version), summarised as "Key: value" lines or printed whole
 * as JSON/YAML. dmtctl deactivate <guid>...: unprovisions AMT through the
 * terminator holding the device (DMT's DELETE /api/v1/amt/deactivate/:guid).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dmtctl.h"

static const char *const info_verbs[] = {"general_settings", "hardware_info", "version"};
#define NVERBS (sizeof info_verbs / sizeof info_verbs[0])

/* DMT's hardwareInfo: Get classes carry {response: <object>}, enumerated ones {responses: [...]}. */
static const json_t *first_response(const json_t *tree, const char *cls) {
  const json_t *c = json_object_get(tree, cls);
  const json_t *one = json_object_get(c, "response");
  if (json_is_object(one)) return one;
  const json_t *r = json_object_get(c, "responses");
  return json_is_array(r) ? json_array_get(r, 0) : NULL;
}

static const char *provisioning_text(const json_t *setup, char *buf, size_t len) {
  const json_t *mode = json_object_get(setup, "ProvisioningMode"), *state = json_object_get(setup, "ProvisioningState");
  if (!json_is_integer(mode) && !json_is_integer(state)) {
    buf[0] = '\0';
    return buf;
  }
  json_int_t m = json_integer_value(mode), st = json_integer_value(state);
  snprintf(buf, len, "%s, %s", m == 1 ? "admin control mode (ACM)" : m == 4 ? "client control mode (CCM)" : "mode unknown",
           st == 0 ? "pre-provisioning" : st == 1 ? "in provisioning" : st == 2 ? "post-provisioning" : "state unknown");
  return buf;
}

static const char *text_of(const json_t *obj, const char *key, char *buf, size_t len) {
  const json_t *v = json_object_get(obj, key);
  if (json_is_object(v) && json_object_get(v, "Datetime")) v = json_object_get(v, "Datetime");
  return ctl_json_text(v, buf, len);
}

static const char *software_version(const json_t *version, const char *instance_id, char *buf, size_t len) {
  buf[0] = '\0';
  const json_t *r = json_object_get(json_object_get(version, "CIM_SoftwareIdentity"), "responses");
  size_t i;
  json_t *x;
  json_array_foreach(r, i, x) {
    if (!strcmp(json_string_value(json_object_get(x, "InstanceID")) ?: "", instance_id))
      return ctl_json_text(json_object_get(x, "VersionString"), buf, len);
  }
  return buf;
}

static const char *memory_total(const json_t *hw, char *buf, size_t len) {
  const json_t *r = json_object_get(json_object_get(hw, "CIM_PhysicalMemory"), "responses");
  double bytes = 0;
  size_t i, n = 0;
  json_t *x;
  json_array_foreach(r, i, x) {
    const json_t *cap = json_object_get(x, "Capacity");
    double v = json_is_integer(cap) ? (double)json_integer_value(cap)
               : json_is_string(cap) ? strtod(json_string_value(cap), NULL) : 0;
    if (v > 0) {
      bytes += v;
      n++;
    }
  }
  if (n == 0) buf[0] = '\0';
  else snprintf(buf, len, "%.1f GiB in %zu module%s", bytes / (1024.0 * 1024 * 1024), n, n == 1 ? "" : "s");
  return buf;
}

static void print_summary(struct ctl *c, const char *guid, const json_t *gs, const json_t *hw, const json_t *ver) {
  const json_t *settings = json_object_get(json_object_get(gs, "Body"), "AMT_GeneralSettings");
  if (!settings) settings = json_object_get(gs, "Body");
  const json_t *chassis = first_response(hw, "CIM_Chassis");
  const json_t *system = first_response(hw, "CIM_ComputerSystemPackage");
  const json_t *bios = first_response(hw, "CIM_BIOSElement");
  const json_t *cpu = first_response(hw, "CIM_Processor");
  const json_t *setup = json_object_get(json_object_get(ver, "AMT_SetupAndConfigurationService"), "response");
  char b[20][256];
  char bios_text[600], cpu_text[300];
  snprintf(bios_text, sizeof bios_text, "%s %s %s", text_of(bios, "Manufacturer", b[10], 256),
           text_of(bios, "Version", b[11], 256), text_of(bios, "ReleaseDate", b[12], 256));
  snprintf(cpu_text, sizeof cpu_text, "%s", text_of(cpu, "ElementName", b[13], 256));
  if (!cpu_text[0]) snprintf(cpu_text, sizeof cpu_text, "%s", text_of(cpu, "Family", b[13], 256));
  const char *keys[] = {"GUID", "Host name", "Domain", "Digest realm", "AMT version", "AMT build", "AMT SKU",
                        "Provisioning", "Manufacturer", "Model", "Serial number", "Platform GUID", "BIOS", "CPU",
                        "Memory"};
  const char *vals[] = {guid,
                        text_of(settings, "HostName", b[0], 256)[0] ? b[0]
                                                                    : text_of(settings, "HostOSFQDN", b[0], 256),
                        text_of(settings, "DomainName", b[1], 256),
                        text_of(settings, "DigestRealm", b[2], 256),
                        software_version(ver, "AMT", b[3], 256),
                        software_version(ver, "Build Number", b[4], 256),
                        software_version(ver, "Sku", b[5], 256),
                        provisioning_text(setup, b[6], 256),
                        text_of(chassis, "Manufacturer", b[7], 256),
                        text_of(chassis, "Model", b[8], 256),
                        text_of(chassis, "SerialNumber", b[9], 256),
                        text_of(system, "PlatformGUID", b[14], 256),
                        bios_text[2] ? bios_text : "",
                        cpu_text,
                        memory_total(hw, b[15], 256)};
  ctl_print_kv(c->out, keys, vals, sizeof keys / sizeof keys[0]);
}

static int run_info(struct ctl *c, const struct ctl_cmd *cmd, struct ctl_args *a) {
  char guid[37];
  if (!ctl_guid_norm(a->pos[0], guid))
    return ctl_fail(c, CTL_USAGE, "`%s` is not a device GUID (8-4-4-4-12 hex digits)", a->pos[0]);
  struct ctl_session *s;
  int rc = ctl_session_open(c, &s);
  if (rc != CTL_OK) return rc;
  struct ctl_snapshot snap;
  const char *one[] = {guid};
  rc = ctl_snapshot_load(s, &snap, one, 1);
  struct ctl_item items[NVERBS];
  memset(items, 0, sizeof items);
  if (rc == CTL_OK) {
    for (size_t i = 0; i < NVERBS; i++) {
      snprintf(items[i].guid, sizeof items[i].guid, "%s", guid);
      items[i].verb = info_verbs[i];
    }
    ctl_bulk_run(s, items, NVERBS, &snap, "info");
    enum ctl_exit st[NVERBS];
    for (size_t i = 0; i < NVERBS; i++) st[i] = items[i].status;
    rc = ctl_exit_merge(st, NVERBS);
    if (ctl_session_interrupted(s)) rc = 130;
    if (rc != CTL_OK) {
      for (size_t i = 0; i < NVERBS; i++)
        if (items[i].status != CTL_OK)
          fprintf(c->err, "dmtctl: %s %s: %s: %s\n", guid, items[i].verb, ctl_exit_name(items[i].status),
                  items[i].message ? items[i].message : items[i].error ? items[i].error : "");
    }
    if (c->fmt == CTL_FMT_JSON || c->fmt == CTL_FMT_YAML) {
      json_t *doc = json_pack("{s:s}", "guid", guid);
      for (size_t i = 0; i < NVERBS; i++)
        if (items[i].result) json_object_set(doc, info_verbs[i], items[i].result);
      if (rc == CTL_OK || json_object_size(doc) > 1) ctl_print_value(c, doc);
      json_decref(doc);
    } else if (c->fmt == CTL_FMT_NAME) {
      if (rc == CTL_OK) fprintf(c->out, "%s\n", guid);
    } else if (items[0].result || items[1].result || items[2].result) {
      print_summary(c, guid, items[0].result, items[1].result, items[2].result);
    }
  }
  for (size_t i = 0; i < NVERBS; i++) {
    free(items[i].error);
    free(items[i].message);
    json_decref(items[i].result);
  }
  ctl_snapshot_free(&snap);
  ctl_session_close(s);
  return rc;
}

static int run_deactivate(struct ctl *c, const struct ctl_cmd *cmd, struct ctl_args *a) {
  if (!ctl_has(a, "yes"))
    return ctl_fail(c, CTL_USAGE, "deactivation unprovisions AMT on the device and cannot be undone here; "
                                  "add --yes to confirm");
  struct ctl_session *s;
  int rc = ctl_session_open(c, &s);
  if (rc != CTL_OK) return rc;
  struct ctl_snapshot snap = {0};
  struct ctl_item *items = NULL;
  size_t n = 0;
  rc = ctl_targets(c, s, a, "deactivate", NULL, &snap, &items, &n);
  if (rc == CTL_OK) {
    for (size_t i = 0; i < n; i++) items[i].check_return = true;
    ctl_bulk_run(s, items, n, &snap, "deactivate");
    int rep = ctl_report(c, "deactivate", items, n, NULL, 0);
    rc = ctl_session_interrupted(s) ? 130 : rep;
  }
  ctl_items_free(items, n);
  ctl_snapshot_free(&snap);
  ctl_session_close(s);
  return rc;
}

static const struct ctl_flag deactivate_flags[] = {
    {"yes", 'y', NULL, "confirm: deactivation cannot be undone from here", NULL},
    {NULL, 0, NULL, NULL, NULL},
};

const struct ctl_cmd ctl_cmds_info[] = {
    {"info", "<guid>", "AMT general settings, hardware and firmware versions of a device",
     "Runs general_settings, hardware_info and version on the device (three MQTT\n"
     "requests in parallel) and prints a summary; -o json or -o yaml prints the three\n"
     "answers whole (DMT's JSON bodies).\n\n"
     "Examples:\n"
     "  dmtctl info 4c4c4544-004b-4210-8033-b6c04f504633\n"
     "  dmtctl info 4c4c4544-004b-4210-8033-b6c04f504633 -o yaml",
     NULL, 1, 1, run_info, 0, "guid"},
    {"deactivate", "<guid>... --yes", "Unprovision AMT on devices (irreversible)",
     "Asks the terminator holding each device to unprovision AMT (devices/<guid>/cmd/\n"
     "deactivate, DMT's DELETE /api/v1/amt/deactivate/:guid); the device row is\n"
     "removed. Needs --yes.\n\n"
     "Example:\n"
     "  dmtctl deactivate 4c4c4544-004b-4210-8033-b6c04f504633 --yes",
     deactivate_flags, 1, -1, run_deactivate, 0, "guid"},
    {NULL, NULL, NULL, NULL, NULL, 0, 0, NULL, 0, NULL},
};
