/*
 * Configuration table (see dmt/config.h). Values are heap strings in an array
 * parallel to the agent's key table, so lookups are a linear scan over a few
 * dozen entries: simpler than a map and fast enough for start-up reads.
 */
#include "dmt/config.h"

#include <assert.h>
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static long key_index(const struct dmt_config *c, const char *name) {
  for (size_t i = 0; i < c->nkeys; i++)
    if (strcmp(c->keys[i].name, name) == 0) return (long)i;
  return -1;
}

static void set_value(struct dmt_config *c, size_t i, const char *v) {
  free(c->values[i]);
  c->values[i] = v ? strdup(v) : NULL;
}

int dmt_config_init(struct dmt_config *c, const struct dmt_config_key *keys, size_t nkeys) {
  c->keys = keys;
  c->nkeys = nkeys;
  c->values = calloc(nkeys ? nkeys : 1, sizeof *c->values);
  if (!c->values) return -1;
  for (size_t i = 0; i < nkeys; i++) set_value(c, i, keys[i].def);
  return 0;
}

void dmt_config_free(struct dmt_config *c) {
  for (size_t i = 0; i < c->nkeys; i++) {
    if (c->values[i] && (c->keys[i].flags & DMT_CFG_SECRET))
      memset(c->values[i], 0, strlen(c->values[i]));
    free(c->values[i]);
  }
  free(c->values);
  c->values = NULL;
}

int dmt_config_set(struct dmt_config *c, const char *name, const char *value) {
  long i = key_index(c, name);
  if (i < 0) return -1;
  set_value(c, (size_t)i, value);
  return 0;
}

static char *trim(char *s) {
  while (isspace((unsigned char)*s)) s++;
  char *e = s + strlen(s);
  while (e > s && isspace((unsigned char)e[-1])) *--e = '\0';
  return s;
}

int dmt_config_load_file(struct dmt_config *c, const char *path, char *err, size_t errlen) {
  FILE *f = fopen(path, "r");
  if (!f) {
    snprintf(err, errlen, "cannot open config file %s: %s", path, strerror(errno));
    return -1;
  }
  char line[4096];
  int lineno = 0, rc = 0;
  while (fgets(line, sizeof line, f)) {
    lineno++;
    char *s = trim(line);
    if (*s == '\0' || *s == '#') continue;
    char *eq = strchr(s, '=');
    if (!eq) {
      snprintf(err, errlen, "%s:%d: expected `name = value`", path, lineno);
      rc = -1;
      break;
    }
    *eq = '\0';
    char *name = trim(s), *value = trim(eq + 1);
    size_t vl = strlen(value);
    if (vl >= 2 && (value[0] == '"' || value[0] == '\'') && value[vl - 1] == value[0]) {
      value[vl - 1] = '\0';
      value++;
    }
    if (dmt_config_set(c, name, value) != 0) {
      snprintf(err, errlen, "%s:%d: unknown setting `%s`", path, lineno, name);
      rc = -1;
      break;
    }
  }
  fclose(f);
  return rc;
}

static int read_secret_file(const char *path, char **out, char *err, size_t errlen) {
  FILE *f = fopen(path, "r");
  if (!f) {
    snprintf(err, errlen, "cannot read secret file %s: %s", path, strerror(errno));
    return -1;
  }
  char buf[8192];
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[n] = '\0';
  while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r')) buf[--n] = '\0';
  *out = strdup(buf);
  memset(buf, 0, sizeof buf);
  return 0;
}

int dmt_config_load_env(struct dmt_config *c, char *err, size_t errlen) {
  for (size_t i = 0; i < c->nkeys; i++) {
    const struct dmt_config_key *k = &c->keys[i];
    const char *v;
    if (k->dmt_env && (v = getenv(k->dmt_env))) set_value(c, i, v);
    if (k->env && (v = getenv(k->env))) set_value(c, i, v);
    if ((k->flags & DMT_CFG_SECRET) && k->env) {
      char fname[256];
      snprintf(fname, sizeof fname, "%s_FILE", k->env);
      if ((v = getenv(fname))) {
        char *secret;
        if (read_secret_file(v, &secret, err, errlen) != 0) return -1;
        if (c->values[i]) memset(c->values[i], 0, strlen(c->values[i]));
        free(c->values[i]);
        c->values[i] = secret;
      }
    }
  }
  return 0;
}

const char *dmt_config_str(const struct dmt_config *c, const char *name) {
  long i = key_index(c, name);
  assert(i >= 0 && "undeclared configuration key");
  if (i < 0) return NULL;
  const char *v = c->values[i];
  return (v && *v) ? v : NULL;
}

long dmt_config_int(const struct dmt_config *c, const char *name, long fallback) {
  const char *v = dmt_config_str(c, name);
  if (!v) return fallback;
  char *end;
  errno = 0;
  long n = strtol(v, &end, 10);
  return (errno || *end) ? fallback : n;
}

bool dmt_config_bool(const struct dmt_config *c, const char *name, bool fallback) {
  const char *v = dmt_config_str(c, name);
  if (!v) return fallback;
  if (!strcasecmp(v, "true") || !strcmp(v, "1") || !strcasecmp(v, "yes") || !strcasecmp(v, "on"))
    return true;
  if (!strcasecmp(v, "false") || !strcmp(v, "0") || !strcasecmp(v, "no") || !strcasecmp(v, "off"))
    return false;
  return fallback;
}

void dmt_config_usage(const struct dmt_config *c, FILE *out) {
  fprintf(out, "Settings (file name / --flag, environment, default):\n");
  for (size_t i = 0; i < c->nkeys; i++) {
    const struct dmt_config_key *k = &c->keys[i];
    fprintf(out, "  --%s=VALUE\n      env %s", k->name, k->env ? k->env : "-");
    if (k->dmt_env) fprintf(out, " (DMT: %s)", k->dmt_env);
    if (k->def && !(k->flags & DMT_CFG_SECRET)) fprintf(out, ", default %s", k->def);
    if (k->flags & DMT_CFG_SECRET) fprintf(out, ", secret: also %s_FILE", k->env);
    fprintf(out, "\n      %s\n", k->doc);
  }
}

void dmt_config_dump(const struct dmt_config *c, FILE *out) {
  for (size_t i = 0; i < c->nkeys; i++) {
    const char *v = c->values[i];
    if (c->keys[i].flags & DMT_CFG_SECRET) v = v ? "(set)" : "(unset)";
    fprintf(out, "%s=%s\n", c->keys[i].name, v ? v : "");
  }
}

int dmt_config_from_args(struct dmt_config *c, int argc, char **argv, char *err, size_t errlen) {
  const char *file = getenv("DMT_CONFIG_FILE");
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
      printf("usage: %s [--config FILE] [--name=value ...]\n\n", argv[0]);
      dmt_config_usage(c, stdout);
      return 1;
    }
    if ((!strcmp(argv[i], "-c") || !strcmp(argv[i], "--config")) && i + 1 < argc) file = argv[++i];
    else if (!strncmp(argv[i], "--config=", 9)) file = argv[i] + 9;
  }
  if (file && dmt_config_load_file(c, file, err, errlen) != 0) return -1;
  if (dmt_config_load_env(c, err, errlen) != 0) return -1;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (!strcmp(a, "-c") || !strcmp(a, "--config")) {
      i++;
      continue;
    }
    if (!strncmp(a, "--config=", 9)) continue;
    if (strncmp(a, "--", 2) != 0 || !strchr(a, '=')) {
      snprintf(err, errlen, "unexpected argument `%s` (settings are --name=value)", a);
      return -1;
    }
    const char *eq = strchr(a, '=');
    char name[128];
    snprintf(name, sizeof name, "%.*s", (int)(eq - a - 2), a + 2);
    if (dmt_config_set(c, name, eq + 1) != 0) {
      snprintf(err, errlen, "unknown setting --%s (see --help)", name);
      return -1;
    }
  }
  return 0;
}

int dmt_config_startup(struct dmt_config *c, const struct dmt_config_key *keys, size_t nkeys, int argc, char **argv,
                       const char *prog) {
  char err[512];
  dmt_config_init(c, keys, nkeys);
  int rc = dmt_config_from_args(c, argc, argv, err, sizeof err);
  if (rc == 0) return -1;
  if (rc < 0) fprintf(stderr, "%s: %s\n", prog, err);
  dmt_config_free(c);
  return rc < 0 ? 2 : 0;
}
