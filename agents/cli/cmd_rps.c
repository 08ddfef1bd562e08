/*
 * dmtctl profiles|ciraconfigs|domains list|get|create|update|delete: the RPS
 * objects, through the REST bridge's DMT-compatible routes
 * (/api/v1/admin/<resource>, rps-activation.md §3). CRUD is where MQTT does
 * not serve, so this is the one place dmtctl speaks HTTP besides the event
 * history. Bodies for create/update are DMT's JSON (-f FILE, or - for stdin).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dmtctl.h"

#define LIST_PAGE 100

struct resource {
  const char *group;      /* command word */
  const char *path;       /* /api/v1/admin/<path> */
  const char *noun;       /* for messages */
  const char *name_field; /* the object's name */
  const char *cols[6][2]; /* header, field */
};

static const struct resource resources[] = {
    {"profiles", "profiles", "profile", "profileName",
     {{"NAME", "profileName"}, {"ACTIVATION", "activation"}, {"CIRA CONFIG", "ciraConfigName"},
      {"TLS MODE", "tlsMode"}, {"USER CONSENT", "userConsent"}, {"TAGS", "tags"}}},
    {"ciraconfigs", "ciraconfigs", "CIRA config", "configName",
     {{"NAME", "configName"}, {"MPS ADDRESS", "mpsServerAddress"}, {"PORT", "mpsPort"}, {"USERNAME", "username"},
      {"AUTH METHOD", "authMethod"}, {"COMMON NAME", "commonName"}}},
    {"domains", "domains", "domain", "profileName",
     {{"NAME", "profileName"}, {"DOMAIN SUFFIX", "domainSuffix"}, {"FORMAT", "provisioningCertStorageFormat"},
      {"EXPIRES", "expirationDate"}, {"TENANT", "tenantId"}, {NULL, NULL}}},
};

static const struct resource *resource_of(const struct ctl_cmd *cmd) {
  for (size_t i = 0; i < sizeof resources / sizeof resources[0]; i++) {
    size_t l = strlen(resources[i].group);
    if (!strncmp(cmd->name, resources[i].group, l) && cmd->name[l] == ' ') return &resources[i];
  }
  return &resources[0];
}

/* One call; turns transport failures and non-2xx answers into exit codes with a message. */
static int call(struct ctl *c, const char *method, const char *path, const char *body, struct ctl_http_resp *r,
                const char *what) {
  char base[512], err[512];
  const char *url = ctl_rps_url(c, base, sizeof base);
  if (!url) return ctl_fail(c, CTL_USAGE, "no bridge configured: set --bridge or DMTCTL_BRIDGE");
  int rc = ctl_http(c, method, url, path, body, r, err, sizeof err);
  if (rc != CTL_OK) return ctl_fail(c, rc, "%s", err);
  rc = ctl_http_exit(r->status);
  if (rc != CTL_OK) {
    char e[512];
    ctl_http_error_text(r, e, sizeof e);
    ctl_fail(c, rc, "%s: %s (HTTP %d)", what, e, r->status);
  }
  return rc;
}

static void segment(char *out, size_t len, const char *prefix, const char *name) {
  /* percent-encode one path segment by reusing the query encoder on a scratch buffer */
  char tmp[600] = "";
  ctl_url_param(tmp, sizeof tmp, "x", name);
  snprintf(out, len, "%s/%s", prefix, tmp + 3);
}

static int run_list(struct ctl *c, const struct ctl_cmd *cmd, struct ctl_args *a) {
  const struct resource *res = resource_of(cmd);
  json_t *all = json_array();
  int rc = CTL_OK;
  for (size_t skip = 0;; skip += LIST_PAGE) {
    char path[256], num[24];
    snprintf(path, sizeof path, "/api/v1/admin/%s", res->path);
    ctl_url_param(path, sizeof path, "$count", "true");
    snprintf(num, sizeof num, "%d", LIST_PAGE);
    ctl_url_param(path, sizeof path, "$top", num);
    snprintf(num, sizeof num, "%zu", skip);
    ctl_url_param(path, sizeof path, "$skip", num);
    struct ctl_http_resp r;
    char what[96];
    snprintf(what, sizeof what, "listing %ss", res->noun);
    rc = call(c, "GET", path, NULL, &r, what);
    const json_t *page = json_is_array(r.json) ? r.json : json_object_get(r.json, "data");
    if (rc == CTL_OK && !json_is_array(page)) rc = ctl_fail(c, CTL_FAILED, "%s: unexpected answer", what);
    size_t n = rc == CTL_OK ? json_array_size(page) : 0;
    if (rc == CTL_OK) json_array_extend(all, (json_t *)page);
    json_int_t total = json_integer_value(json_object_get(r.json, "totalCount"));
    ctl_http_resp_free(&r);
    if (rc != CTL_OK || n < LIST_PAGE || (total && (json_int_t)json_array_size(all) >= total)) break;
  }
  if (rc == CTL_OK) {
    if (c->fmt == CTL_FMT_JSON || c->fmt == CTL_FMT_YAML) {
      ctl_print_value(c, all);
    } else if (c->fmt == CTL_FMT_NAME) {
      size_t i;
      json_t *o;
      json_array_foreach(all, i, o) fprintf(c->out, "%s\n", json_string_value(json_object_get(o, res->name_field)));
    } else if (json_array_size(all) == 0) {
      fprintf(c->err, "No %ss found.\n", res->noun);
    } else {
      const char *headers[6];
      size_t nc = 0;
      while (nc < 6 && res->cols[nc][0]) {
        headers[nc] = res->cols[nc][0];
        nc++;
      }
      struct ctl_table t;
      ctl_table_init(&t, headers, nc);
      size_t i;
      json_t *o;
      json_array_foreach(all, i, o) {
        char cells[6][512];
        const char *row[6];
        for (size_t k = 0; k < nc; k++) row[k] = ctl_json_text(json_object_get(o, res->cols[k][1]), cells[k], 512);
        ctl_table_row(&t, row);
      }
      ctl_table_print(c->out, &t);
      ctl_table_free(&t);
    }
  }
  json_decref(all);
  return rc;
}

static void print_object(struct ctl *c, const struct resource *res, const json_t *o) {
  if (c->fmt == CTL_FMT_JSON || c->fmt == CTL_FMT_YAML) {
    ctl_print_value(c, o);
    return;
  }
  if (c->fmt == CTL_FMT_NAME) {
    fprintf(c->out, "%s\n", json_string_value(json_object_get(o, res->name_field)));
    return;
  }
  size_t n = json_object_size(o), i = 0;
  const char **keys = calloc(n ? n : 1, sizeof *keys), **vals = calloc(n ? n : 1, sizeof *vals);
  char (*bufs)[512] = calloc(n ? n : 1, sizeof *bufs);
  const char *k;
  json_t *v;
  json_object_foreach((json_t *)o, k, v) {
    keys[i] = k;
    if (json_is_object(v) || (json_is_array(v) && json_array_size(v) && json_is_object(json_array_get(v, 0)))) {
      char *s = json_dumps(v, JSON_COMPACT);
      snprintf(bufs[i], 512, "%s", s ? s : "");
      free(s);
      vals[i] = bufs[i];
    } else {
      vals[i] = ctl_json_text(v, bufs[i], 512);
    }
    i++;
  }
  ctl_print_kv(c->out, keys, vals, n);
  free(keys);
  free(vals);
  free(bufs);
}

static int run_get(struct ctl *c, const struct ctl_cmd *cmd, struct ctl_args *a) {
  const struct resource *res = resource_of(cmd);
  char prefix[128], path[768], what[300];
  snprintf(prefix, sizeof prefix, "/api/v1/admin/%s", res->path);
  segment(path, sizeof path, prefix, a->pos[0]);
  snprintf(what, sizeof what, "%s %s", res->noun, a->pos[0]);
  struct ctl_http_resp r;
  int rc = call(c, "GET", path, NULL, &r, what);
  if (rc == CTL_OK) print_object(c, res, r.json);
  ctl_http_resp_free(&r);
  return rc;
}

static char *read_body(struct ctl *c, const char *file) {
  FILE *f = !strcmp(file, "-") ? stdin : fopen(file, "r");
  if (!f) {
    ctl_fail(c, CTL_USAGE, "cannot read %s", file);
    return NULL;
  }
  json_error_t je;
  json_t *j = json_loadf(f, 0, &je);
  if (f != stdin) fclose(f);
  if (!json_is_object(j)) {
    json_decref(j);
    ctl_fail(c, CTL_USAGE, "%s: not a JSON object (%s, line %d)", file, je.text, je.line);
    return NULL;
  }
  char *s = json_dumps(j, JSON_COMPACT);
  json_decref(j);
  return s;
}

static int run_write(struct ctl *c, const struct ctl_cmd *cmd, struct ctl_args *a) {
  const struct resource *res = resource_of(cmd);
  const char *file = ctl_arg(a, "file");
  if (!file) return ctl_fail(c, CTL_USAGE, "give the %s as JSON with -f FILE (- for stdin)", res->noun);
  char *body = read_body(c, file);
  if (!body) return CTL_USAGE;
  bool create = strstr(cmd->name, " create") != NULL;
  char path[128], what[96];
  snprintf(path, sizeof path, "/api/v1/admin/%s", res->path);
  snprintf(what, sizeof what, "%s %s", create ? "creating the" : "updating the", res->noun);
  struct ctl_http_resp r;
  int rc = call(c, create ? "POST" : "PATCH", path, body, &r, what);
  if (rc == CTL_OK) {
    if (c->fmt == CTL_FMT_TABLE || c->fmt == CTL_FMT_WIDE)
      fprintf(c->out, "%s %s %s\n", res->noun, json_string_value(json_object_get(r.json, res->name_field)) ?: "?",
              create ? "created" : "updated");
    else print_object(c, res, r.json);
  }
  ctl_http_resp_free(&r);
  free(body);
  return rc;
}

static int run_delete(struct ctl *c, const struct ctl_cmd *cmd, struct ctl_args *a) {
  const struct resource *res = resource_of(cmd);
  char prefix[128], path[768], what[300];
  snprintf(prefix, sizeof prefix, "/api/v1/admin/%s", res->path);
  segment(path, sizeof path, prefix, a->pos[0]);
  snprintf(what, sizeof what, "deleting %s %s", res->noun, a->pos[0]);
  struct ctl_http_resp r;
  int rc = call(c, "DELETE", path, NULL, &r, what);
  if (rc == CTL_OK && c->fmt != CTL_FMT_NAME) fprintf(c->out, "%s %s deleted\n", res->noun, a->pos[0]);
  else if (rc == CTL_OK) fprintf(c->out, "%s\n", a->pos[0]);
  ctl_http_resp_free(&r);
  return rc;
}

static const struct ctl_flag file_flags[] = {
    {"file", 'f', "FILE", "the object as DMT's JSON (- reads stdin)", "file"},
    {NULL, 0, NULL, NULL, NULL},
};

#define RPS_CMDS(group, noun, example)                                                                          \
  {group " list", "", "List " noun "s (through the bridge)",                                                    \
   "GET /api/v1/admin/" group " on the bridge (RPS-compatible routes), every page.\n\n"                       \
   "Example:\n  dmtctl " group " list -o yaml",                                                                  \
   NULL, 0, 0, run_list, 0, NULL},                                                                              \
  {group " get", "<name>", "Show one " noun,                                                                    \
   "GET /api/v1/admin/" group "/<name>.\n\nExample:\n  dmtctl " group " get " example " -o json",             \
   NULL, 1, 1, run_get, 0, NULL},                                                                               \
  {group " create", "-f FILE", "Create a new " noun " from DMT's JSON",                                             \
   "POST /api/v1/admin/" group " with the JSON object in FILE.\n\nExample:\n  dmtctl " group                  \
   " create -f " example ".json",                                                                               \
   file_flags, 0, 0, run_write, 0, NULL},                                                                       \
  {group " update", "-f FILE", "Update a " noun " (DMT PATCH semantics: include \"version\")",                 \
   "PATCH /api/v1/admin/" group " with the JSON object in FILE.\n\nExample:\n  dmtctl " group                 \
   " update -f " example ".json",                                                                               \
   file_flags, 0, 0, run_write, 0, NULL},                                                                       \
  {group " delete", "<name>", "Delete a " noun,                                                                 \
   "DELETE /api/v1/admin/" group "/<name>.\n\nExample:\n  dmtctl " group " delete " example,                   \
   NULL, 1, 1, run_delete, 0, NULL}

const struct ctl_cmd ctl_cmds_rps[] = {
    RPS_CMDS("profiles", "AMT profile", "acm-lab"),
    RPS_CMDS("ciraconfigs", "CIRA config", "cira-lab"),
    RPS_CMDS("domains", "domain", "vprodemo"),
    {NULL, NULL, NULL, NULL, NULL, 0, 0, NULL, 0, NULL},
};
