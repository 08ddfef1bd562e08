/*
 * Times for dmtctl: RFC 3339 UTC rendering with milliseconds (sortable and
 * unambiguous in logs), and parsing of --timeout / --since / --until values:
 * durations ("500ms", "30s", "10m", "2h", "7d", a bare number = seconds),
 * RFC 3339 times (zone optional, UTC assumed; a date alone is midnight UTC)
 * and unix epoch milliseconds.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dmtctl.h"

const char *ctl_time_fmt(uint64_t ms, char *buf, size_t buflen) {
  time_t secs = (time_t)(ms / 1000);
  struct tm tm;
  if (!gmtime_r(&secs, &tm)) {
    snprintf(buf, buflen, "-");
    return buf;
  }
  snprintf(buf, buflen, "%04d-%02d-%02dT%02d:%02d:%02d.%03uZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
           tm.tm_hour, tm.tm_min, tm.tm_sec, (unsigned)(ms % 1000));
  return buf;
}

int ctl_parse_duration_ms(const char *s, uint64_t *out) {
  if (!s || !*s) return -1;
  errno = 0;
  char *end;
  double v = strtod(s, &end);
  if (errno || end == s || v < 0) return -1;
  double mult;
  if (!*end || !strcmp(end, "s")) mult = 1000;
  else if (!strcmp(end, "ms")) mult = 1;
  else if (!strcmp(end, "m")) mult = 60e3;
  else if (!strcmp(end, "h")) mult = 3600e3;
  else if (!strcmp(end, "d")) mult = 86400e3;
  else return -1;
  double ms = v * mult;
  if (ms > 1e15) return -1;
  *out = (uint64_t)(ms + 0.5);
  return 0;
}

static int digits(const char **p, int n, int *out) {
  int v = 0;
  for (int i = 0; i < n; i++) {
    if (!isdigit((unsigned char)(*p)[i])) return -1;
    v = v * 10 + ((*p)[i] - '0');
  }
  *p += n;
  *out = v;
  return 0;
}

static int parse_rfc3339(const char *s, uint64_t *out_ms) {
  const char *p = s;
  struct tm tm = {0};
  int y, mo, d, h = 0, mi = 0, sec = 0;
  unsigned frac_ms = 0;
  if (digits(&p, 4, &y) || *p++ != '-' || digits(&p, 2, &mo) || *p++ != '-' || digits(&p, 2, &d)) return -1;
  if (*p == 'T' || *p == 't' || *p == ' ') {
    p++;
    if (digits(&p, 2, &h) || *p++ != ':' || digits(&p, 2, &mi)) return -1;
    if (*p == ':') {
      p++;
      if (digits(&p, 2, &sec)) return -1;
      if (*p == '.') {
        p++;
        unsigned scale = 100;
        if (!isdigit((unsigned char)*p)) return -1;
        while (isdigit((unsigned char)*p)) {
          frac_ms += (unsigned)(*p - '0') * scale;
          scale /= 10;
          p++;
        }
      }
    }
  }
  long offset_s = 0;
  if (*p == 'Z' || *p == 'z') {
    p++;
  } else if (*p == '+' || *p == '-') {
    int sign = *p == '-' ? -1 : 1, oh, om;
    p++;
    if (digits(&p, 2, &oh)) return -1;
    if (*p == ':') p++;
    if (digits(&p, 2, &om)) return -1;
    offset_s = sign * (oh * 3600L + om * 60L);
  }
  if (*p) return -1;
  if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60) return -1;
  tm.tm_year = y - 1900;
  tm.tm_mon = mo - 1;
  tm.tm_mday = d;
  tm.tm_hour = h;
  tm.tm_min = mi;
  tm.tm_sec = sec;
  time_t t = timegm(&tm);
  if (t == (time_t)-1 || t + offset_s < 0) return -1;
  *out_ms = (uint64_t)(t - offset_s) * 1000u + frac_ms;
  return 0;
}

int ctl_parse_time(const char *s, uint64_t now_ms, uint64_t *out_ms) {
  if (!s || !*s) return -1;
  size_t n = strlen(s), nd = strspn(s, "0123456789");
  if (nd == n && n >= 13) { /* epoch milliseconds */
    *out_ms = strtoull(s, NULL, 10);
    return 0;
  }
  if (parse_rfc3339(s, out_ms) == 0) return 0;
  uint64_t ago;
  if (nd < n && ctl_parse_duration_ms(s, &ago) == 0) {
    *out_ms = ago > now_ms ? 0 : now_ms - ago;
    return 0;
  }
  return -1;
}
