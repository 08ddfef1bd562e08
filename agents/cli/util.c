/*
 * Small shared helpers: error reporting, the token file, outcome names and
 * aggregation (the exit-code rules), GUID and tenant validation, CIM power
 * state names.
 */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dmtctl.h"

const char *ctl_exit_name(enum ctl_exit e) {
  switch (e) {
    case CTL_OK: return "ok";
    case CTL_USAGE: return "usage";
    case CTL_PARTIAL: return "partial";
    case CTL_AUTH: return "denied";
    case CTL_NOT_FOUND: return "not-found";
    case CTL_OFFLINE: return "offline";
    case CTL_TIMEOUT: return "timeout";
    case CTL_UNREACHABLE: return "unreachable";
    case CTL_FAILED: return "failed";
  }
  return "failed";
}

enum ctl_exit ctl_exit_from_error(const char *error) {
  if (!error) return CTL_OK;
  if (!strcmp(error, "offline")) return CTL_OFFLINE;
  if (!strcmp(error, "unknown_device")) return CTL_NOT_FOUND;
  if (!strcmp(error, "timeout") || !strcmp(error, "expired")) return CTL_TIMEOUT;
  if (!strcmp(error, "unauthorized") || !strcmp(error, "forbidden")) return CTL_AUTH;
  return CTL_FAILED; /* busy, unsupported, bad_request, device_error, internal, anything new */
}

enum ctl_exit ctl_exit_merge(const enum ctl_exit *v, size_t n) {
  if (n == 0) return CTL_OK;
  for (size_t i = 1; i < n; i++)
    if (v[i] != v[0]) return CTL_PARTIAL;
  return v[0];
}

bool ctl_guid_norm(const char *in, char out[37]) {
  if (!in || strlen(in) != 36) return false;
  for (int i = 0; i < 36; i++) {
    char ch = in[i];
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      if (ch != '-') return false;
    } else if (!isxdigit((unsigned char)ch)) {
      return false;
    }
    out[i] = (char)tolower((unsigned char)ch);
  }
  out[36] = '\0';
  return true;
}

bool ctl_tenant_valid(const char *t) {
  size_t n = strlen(t);
  if (n == 0 || n > 64) return false;
  for (size_t i = 0; i < n; i++)
    if (!isalnum((unsigned char)t[i]) && t[i] != '_' && t[i] != '-') return false;
  return true;
}

const char *ctl_power_name(int64_t ps) {
  switch (ps) {
    case 2: return "on";
    case 3: return "sleep-light";
    case 4: return "sleep-deep";
    case 5: return "cycle-soft";
    case 6: return "off-hard";
    case 7: return "hibernate";
    case 8: return "off-soft";
    case 9: return "cycle-hard";
    case 10: return "reset";
    case 12: return "off-soft-graceful";
    case 13: return "off-hard-graceful";
    default: return "unknown";
  }
}

const char *ctl_os_power_name(int64_t s) {
  switch (s) {
    case 1: return "unsupported";
    case 2: return "full-power";
    case 3: return "power-saving";
    default: return "unknown";
  }
}

int ctl_fail(struct ctl *c, int code, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(c->err, "dmtctl: ");
  vfprintf(c->err, fmt, ap);
  fputc('\n', c->err);
  va_end(ap);
  return code;
}

int ctl_load_token(struct ctl *c) {
  const char *path = dmt_config_str(&c->cfg, "token_file");
  if (!path) return CTL_OK;
  FILE *f = fopen(path, "r");
  if (!f) return ctl_fail(c, CTL_USAGE, "cannot read the token file %s: %s", path, strerror(errno));
  char buf[16384];
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[n] = '\0';
  while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' ')) buf[--n] = '\0';
  if (n == 0) return ctl_fail(c, CTL_USAGE, "the token file %s is empty", path);
  c->token = strdup(buf);
  memset(buf, 0, sizeof buf);
  return CTL_OK;
}
