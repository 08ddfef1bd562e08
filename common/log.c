/*
 * Structured key=value logging (see dmt/log.h). A line is assembled in a stack
 * buffer and written with one fwrite so concurrent threads never interleave
 * within a line.
 */
#include "dmt/log.h"

#include <ctype.h>
#include <string.h>
#include <strings.h>
#include <time.h>

static const char *const level_names[] = {"debug", "info", "warn", "error"};

int dmt_log_level_parse(const char *s, enum dmt_log_level *out) {
  for (int i = 0; i <= DMT_LOG_ERROR; i++) {
    if (s && strcasecmp(s, level_names[i]) == 0) {
      *out = (enum dmt_log_level)i;
      return 0;
    }
  }
  return -1;
}

const char *dmt_log_level_name(enum dmt_log_level lvl) {
  return (lvl >= DMT_LOG_DEBUG && lvl <= DMT_LOG_ERROR) ? level_names[lvl] : "unknown";
}

static int is_bare(unsigned char c) {
  return isalnum(c) || c == '.' || c == '_' || c == ':' || c == '/' || c == '@' || c == '-';
}

const char *dmt_log_kv_quote(const char *in, char *out, size_t outlen) {
  if (outlen == 0) return out;
  if (!in) in = "";
  int bare = *in != '\0';
  for (const char *p = in; *p && bare; p++) bare = is_bare((unsigned char)*p);
  if (bare) {
    snprintf(out, outlen, "%s", in);
    return out;
  }
  size_t o = 0;
  if (outlen < 3) {
    out[0] = '\0';
    return out;
  }
  out[o++] = '"';
  for (const unsigned char *p = (const unsigned char *)in; *p; p++) {
    char esc[5];
    size_t n;
    if (*p == '"' || *p == '\\') {
      esc[0] = '\\';
      esc[1] = (char)*p;
      n = 2;
    } else if (*p == '\n') {
      memcpy(esc, "\\n", 2);
      n = 2;
    } else if (*p < 0x20 || *p == 0x7f) {
      snprintf(esc, sizeof esc, "\\x%02x", *p);
      n = 4;
    } else {
      esc[0] = (char)*p;
      n = 1;
    }
    if (o + n + 2 > outlen) break;
    memcpy(out + o, esc, n);
    o += n;
  }
  out[o++] = '"';
  out[o] = '\0';
  return out;
}

void dmt_log_vwrite(const struct dmt_log *lg, enum dmt_log_level lvl, const char *event,
                    const char *fmt, va_list ap) {
  if (lg && lvl < lg->min) return;
  char line[2048];
  struct timespec ts;
  struct tm tm;
  clock_gettime(CLOCK_REALTIME, &ts);
  gmtime_r(&ts.tv_sec, &tm);
  int n = snprintf(line, sizeof line, "ts=%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ level=%s comp=%s event=%s",
                   tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                   ts.tv_nsec / 1000000, dmt_log_level_name(lvl),
                   (lg && lg->component) ? lg->component : "-", event ? event : "-");
  if (n < 0) return;
  size_t len = (size_t)n < sizeof line ? (size_t)n : sizeof line - 1;
  if (fmt && *fmt && len + 2 < sizeof line) {
    line[len++] = ' ';
    int m = vsnprintf(line + len, sizeof line - len, fmt, ap);
    if (m > 0) len += (size_t)m < sizeof line - len ? (size_t)m : sizeof line - len - 1;
  }
  if (len >= sizeof line - 1) len = sizeof line - 2;
  line[len++] = '\n';
  FILE *out = (lg && lg->out) ? lg->out : stderr;
  fwrite(line, 1, len, out);
  fflush(out);
}

void dmt_log_write(const struct dmt_log *lg, enum dmt_log_level lvl, const char *event,
                   const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  dmt_log_vwrite(lg, lvl, event, fmt, ap);
  va_end(ap);
}
