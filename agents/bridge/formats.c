/*
 * String formats used by the validators. Each function reproduces one DMT
 * regular expression (or one validator.js function) exactly, quirks included,
 * because the conformance suites assert DMT's accept/reject decisions. They
 * are pure and bounded (no backtracking engine), so hostile input cannot
 * make them slow.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "bridge.h"

static bool is_hex(int c) { return isxdigit((unsigned char)c) != 0; }
static bool is_alnum(int c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'); }
static bool is_lower_alnum(int c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }
static bool is_digit(int c) { return c >= '0' && c <= '9'; }

bool br_fmt_uuid(const char *s) {
  static const int groups[] = {8, 4, 4, 4, 12};
  for (int g = 0; g < 5; g++) {
    for (int i = 0; i < groups[g]; i++, s++)
      if (!is_hex(*s)) return false;
    if (g < 4 && *s++ != '-') return false;
  }
  return *s == '\0';
}

bool br_fmt_alnum(const char *s) {
  if (!*s) return false;
  for (; *s; s++)
    if (!is_alnum(*s)) return false;
  return true;
}

bool br_fmt_name_ud(const char *s) {
  if (!*s) return false;
  for (; *s; s++)
    if (!is_alnum(*s) && *s != '_' && *s != '-') return false;
  return true;
}

/* [a-zA-Z0-9$@$!%*#?&-_~^]: the "&-_" is a range (0x26..0x5F), so it also admits '()*+,-./:;<=>?@[\]. */
static bool profile_char(int c) {
  return is_alnum(c) || (c >= 0x26 && c <= 0x5f) || c == '$' || c == '@' || c == '!' || c == '%' || c == '*' ||
         c == '#' || c == '?' || c == '~' || c == '^';
}

bool br_fmt_profile_name(const char *s) {
  if (!*s) return false;
  for (; *s; s++)
    if (!profile_char((unsigned char)*s)) return false;
  return true;
}

/* ^(?=.*[0-9])(?=.*[!@#$%^&*])(?=.*[a-z])(?=.*[A-Z])[a-zA-Z0-9$@$!%*#?&-_~^]{8,32}$ */
bool br_fmt_strong_password(const char *s) {
  size_t n = strlen(s);
  if (n < 8 || n > 32) return false;
  bool digit = false, special = false, lower = false, upper = false;
  for (const char *p = s; *p; p++) {
    int c = (unsigned char)*p;
    if (!profile_char(c)) return false;
    digit |= is_digit(c);
    special |= strchr("!@#$%^&*", c) != NULL && c != 0;
    lower |= c >= 'a' && c <= 'z';
    upper |= c >= 'A' && c <= 'Z';
  }
  return digit && special && lower && upper;
}

/* One octet of ([01]?[0-9]?[0-9]|2[0-4][0-9]|25[0-5]); advances *p. */
static bool octet_dmt(const char **p) {
  const char *s = *p;
  size_t n = 0;
  while (n < 3 && is_digit(s[n])) n++;
  if (n == 0) return false;
  /* the regex alternatives accept 1-3 digits where a 3-digit value is 0xx, 1xx, 2[0-4]x or 25[0-5] */
  if (n == 3) {
    int v = (s[0] - '0') * 100 + (s[1] - '0') * 10 + (s[2] - '0');
    if (v > 255) return false;
  }
  *p = s + n;
  return true;
}

bool br_fmt_ipv4_dmt(const char *s) {
  for (int i = 0; i < 4; i++) {
    if (!octet_dmt(&s)) return false;
    if (i < 3 && *s++ != '.') return false;
  }
  return *s == '\0';
}

/* h = [0-9A-Fa-f]{1,4}; advances and returns true if one group is there. */
static bool hgroup(const char **p) {
  const char *s = *p;
  size_t n = 0;
  while (n < 4 && is_hex(s[n])) n++;
  if (!n) return false;
  /* a greedy {1,4} followed by more hex digits leaves them for the next token, which then fails */
  *p = s + n;
  return true;
}

/*
 * DMT's IPv6 expression is an unparenthesised alternation:
 *   ^h(:h)*::h(:h)*   |   h(:h){7}$
 * so the first branch only anchors the start and the second only the end.
 */
static bool ipv6_branch1(const char *s) {
  if (!hgroup(&s)) return false;
  /* (:h)* then "::" — try every split (the greedy loop may have to give back) */
  for (;;) {
    if (s[0] == ':' && s[1] == ':') {
      const char *t = s + 2;
      if (hgroup(&t)) return true; /* the rest is unanchored */
    }
    if (s[0] == ':' && is_hex(s[1])) {
      s++;
      hgroup(&s);
      continue;
    }
    return false;
  }
}

static bool ipv6_branch2_at(const char *s) {
  if (!hgroup(&s)) return false;
  for (int i = 0; i < 7; i++) {
    if (*s++ != ':') return false;
    if (!hgroup(&s)) return false;
  }
  return *s == '\0';
}

bool br_fmt_ipv6_dmt(const char *s) {
  if (ipv6_branch1(s)) return true;
  for (const char *p = s; *p; p++)
    if (ipv6_branch2_at(p)) return true;
  return false;
}

/* One label of ((?=[a-z0-9-]{1,63}\.)(xn--+)?[a-z0-9]+(-[a-z0-9]+)*\.) without the dot. */
static bool fqdn_label_dmt(const char *s, size_t n) {
  if (n < 1 || n > 63) return false;
  for (size_t i = 0; i < n; i++)
    if (!is_lower_alnum(s[i]) && s[i] != '-') return false;
  size_t i = 0;
  if (n >= 4 && !memcmp(s, "xn--", 4)) {
    i = 3;
    while (i < n && s[i] == '-') i++;
  }
  if (i >= n || s[i] == '-') return false;
  bool prev_dash = false;
  for (; i < n; i++) {
    if (s[i] == '-') {
      if (prev_dash) return false;
      prev_dash = true;
    } else {
      prev_dash = false;
    }
  }
  return !prev_dash;
}

bool br_fmt_fqdn_dmt(const char *s) {
  size_t len = strlen(s);
  if (len < 1 || len > 254) return false;
  const char *last = strrchr(s, '.');
  if (!last || last == s) return false;
  size_t tld = strlen(last + 1);
  if (tld < 2 || tld > 63) return false;
  for (const char *p = last + 1; *p; p++)
    if (*p < 'a' || *p > 'z') return false;
  const char *p = s;
  while (p < last) {
    const char *dot = memchr(p, '.', (size_t)(last - p) + 1);
    if (!fqdn_label_dmt(p, (size_t)(dot - p))) return false;
    p = dot + 1;
  }
  return true;
}

/* Proxy validator IPv4: ^((25[0-5]|(2[0-4]|1\d|[1-9]|)\d)\.?\b){4}$ — a dotted quad without leading zeros. */
static bool ipv4_proxy(const char *s) {
  for (int i = 0; i < 4; i++) {
    size_t n = 0;
    while (n < 3 && is_digit(s[n])) n++;
    if (!n || (n > 1 && s[0] == '0')) return false;
    int v = atoi(s);
    if (v > 255) return false;
    s += n;
    if (i < 3 && *s++ != '.') return false;
  }
  return *s == '\0';
}

/* An octet of the proxy IPv6 expression's embedded IPv4: (25[0-5]|(2[0-4]|1?[0-9])?[0-9]). */
static bool octet_v6(const char **p) {
  const char *s = *p;
  size_t n = 0;
  while (n < 3 && is_digit(s[n])) n++;
  if (!n || (n == 3 && s[0] != '1' && s[0] != '2') || atoi(s) > 255) return false;
  *p = s + n;
  return true;
}

static bool ipv4_v6(const char *s) {
  for (int i = 0; i < 4; i++) {
    if (!octet_v6(&s)) return false;
    if (i < 3 && *s++ != '.') return false;
  }
  return *s == '\0';
}

/* Plain IPv6 text: 8 groups, or one "::" with at most 7 groups. */
static bool ipv6_plain(const char *q) {
  int groups = 0, dbl = 0;
  if (q[0] == ':') {
    if (q[1] != ':') return false;
    dbl = 1;
    q += 2;
    if (!*q) return true;
  }
  for (;;) {
    int h = 0;
    while (is_hex(*q) && h < 5) q++, h++;
    if (h == 0 || h > 4) return false;
    groups++;
    if (!*q) break;
    if (*q++ != ':') return false;
    if (*q == ':') {
      if (dbl) return false;
      dbl = 1;
      q++;
      if (!*q) break;
    } else if (!*q) {
      return false;
    }
  }
  return dbl ? groups <= 7 : groups == 8;
}

/*
 * Proxy validator IPv6 (the common long expression): plain forms, fe80 with a zone,
 * ::[ffff[:0{1,4}]:]IPv4 and (h:){1,4}:IPv4.
 */
static bool ipv6_proxy(const char *s) {
  if (strlen(s) > 100) return false;
  const char *pct = strchr(s, '%');
  if (pct) { /* fe80:(:h{0,4}){0,4}%[0-9a-zA-Z]+ */
    if (strncmp(s, "fe80:", 5) != 0 || !pct[1]) return false;
    for (const char *z = pct + 1; *z; z++)
      if (!is_alnum(*z)) return false;
    int groups = 0;
    for (const char *q = s + 5; q < pct;) {
      if (*q++ != ':') return false;
      int h = 0;
      while (q < pct && is_hex(*q)) q++, h++;
      if (h > 4 || ++groups > 4) return false;
    }
    return true;
  }
  if (!strchr(s, '.')) return ipv6_plain(s);
  if (s[0] == ':' && s[1] == ':') {
    const char *q = s + 2;
    if (!strncmp(q, "ffff", 4)) {
      const char *r = q + 4;
      if (*r == ':' && r[1] == '0') {
        const char *z = r + 1;
        int zeros = 0;
        while (*z == '0' && zeros < 5) z++, zeros++;
        if (zeros <= 4 && *z == ':' && ipv4_v6(z + 1)) return true;
      }
      if (*r == ':' && ipv4_v6(r + 1)) return true;
    }
    return ipv4_v6(q);
  }
  const char *q = s;
  for (int g = 1; g <= 4; g++) {
    int h = 0;
    while (is_hex(*q) && h < 5) q++, h++;
    if (h == 0 || h > 4 || *q != ':') return false;
    q++;
    if (*q == ':') return ipv4_v6(q + 1);
  }
  return false;
}

/* Proxy validator FQDN: ^(?!:\/\/)([a-zA-Z0-9-_]+\.)*[a-zA-Z0-9][a-zA-Z0-9-_]+\.[a-zA-Z]{2,11}?$ */
static bool fqdn_proxy(const char *s) {
  const char *last = strrchr(s, '.');
  if (!last) return false;
  size_t tld = strlen(last + 1);
  if (tld < 2 || tld > 11) return false;
  for (const char *p = last + 1; *p; p++)
    if (!isalpha((unsigned char)*p)) return false;
  /* the label before the TLD: [a-zA-Z0-9][a-zA-Z0-9-_]+ (two characters at least) */
  const char *start = last;
  while (start > s && start[-1] != '.') start--;
  if (last - start < 2 || !is_alnum(*start)) return false;
  for (const char *p = start; p < last; p++)
    if (!is_alnum(*p) && *p != '-' && *p != '_') return false;
  /* earlier labels: [a-zA-Z0-9-_]+ */
  const char *p = s;
  while (p < start) {
    const char *dot = strchr(p, '.');
    if (dot == p) return false;
    for (const char *c = p; c < dot; c++)
      if (!is_alnum(*c) && *c != '-' && *c != '_') return false;
    p = dot + 1;
  }
  return true;
}

bool br_fmt_proxy_address(const char *s) { return ipv4_proxy(s) || ipv6_proxy(s) || fqdn_proxy(s); }

int br_fmt_address_format(const char *s) {
  if (ipv6_proxy(s)) return 4;
  if (ipv4_proxy(s)) return 3;
  return 201;
}

/* validator.js isFQDN (ASCII labels; characters above 0x7f are accepted like its \u00a1-\uffff class). */
bool br_fmt_fqdn_validatorjs(const char *s, bool require_tld, bool allow_underscores) {
  size_t len = strlen(s);
  if (len == 0 || len > 253 + 1) return false;
  if (s[len - 1] == '.') return false; /* allow_trailing_dot: false */
  const char *last = strrchr(s, '.');
  if (require_tld) {
    if (!last) return false;
    const char *tld = last + 1;
    size_t tl = strlen(tld);
    bool xn = tl >= 4 && (tld[0] == 'x' || tld[0] == 'X') && (tld[1] == 'n' || tld[1] == 'N');
    if (xn) {
      for (const char *p = tld + 2; *p; p++)
        if (!is_alnum(*p) && *p != '-') return false;
    } else {
      if (tl < 2) return false;
      for (const char *p = tld; *p; p++)
        if (!isalpha((unsigned char)*p) && !((unsigned char)*p >= 0x80)) return false;
    }
  }
  const char *p = s;
  for (;;) {
    const char *dot = strchr(p, '.');
    size_t n = dot ? (size_t)(dot - p) : strlen(p);
    if (n == 0 || n > 63) return false;
    for (size_t i = 0; i < n; i++) {
      unsigned char c = (unsigned char)p[i];
      if (!(is_alnum(c) || c == '-' || c == '_' || c >= 0x80)) return false;
      if (c == '_' && !allow_underscores) return false;
    }
    if (p[0] == '-' || p[n - 1] == '-') return false;
    if (!dot) break;
    p = dot + 1;
  }
  return true;
}

bool br_fmt_dns_suffix(const char *s) {
  size_t len = strlen(s);
  if (len == 0) return true;
  if (s[len - 1] == '.') len--;
  if (len == 0 || len > 253) return false;
  const char *p = s, *end = s + len;
  while (p < end) {
    const char *dot = memchr(p, '.', (size_t)(end - p));
    if (!dot) dot = end;
    size_t n = (size_t)(dot - p);
    if (n == 0 || n > 63 || p[0] == '-' || p[n - 1] == '-') return false;
    for (size_t i = 0; i < n; i++)
      if (!is_alnum(p[i]) && p[i] != '-' && p[i] != '_') return false;
    p = dot + 1;
  }
  return true;
}

/* validator.js isISO8601 (non-strict): date, optional time with fraction and zone. */
bool br_fmt_iso8601(const char *s) {
  const char *p = s;
  if (*p == '+' || *p == '-') p++;
  for (int i = 0; i < 4; i++, p++)
    if (!is_digit(*p)) return false;
  if (*p == '\0') return true;
  if (*p == '-') p++;
  if (!is_digit(p[0]) || !is_digit(p[1])) return false;
  int month = (p[0] - '0') * 10 + (p[1] - '0');
  p += 2;
  if (month < 1 || month > 12) return false;
  if (*p == '\0') return true;
  if (*p == '-') p++;
  if (!is_digit(p[0]) || !is_digit(p[1])) return false;
  int day = (p[0] - '0') * 10 + (p[1] - '0');
  p += 2;
  if (day < 1 || day > 31) return false;
  if (*p == '\0') return true;
  if (*p != 'T' && *p != 't' && *p != ' ') return false;
  p++;
  if (!is_digit(p[0]) || !is_digit(p[1])) return false;
  p += 2;
  if (*p == ':') p++;
  if (!is_digit(p[0]) || !is_digit(p[1])) return false;
  p += 2;
  if (*p == ':' || is_digit(*p)) {
    if (*p == ':') p++;
    if (!is_digit(p[0]) || !is_digit(p[1])) return false;
    p += 2;
    if (*p == '.' || *p == ',') {
      p++;
      if (!is_digit(*p)) return false;
      while (is_digit(*p)) p++;
    }
  }
  if (*p == 'Z' || *p == 'z') p++;
  else if (*p == '+' || *p == '-') {
    p++;
    if (!is_digit(p[0]) || !is_digit(p[1])) return false;
    p += 2;
    if (*p == ':') p++;
    if (is_digit(p[0]) && is_digit(p[1])) p += 2;
  }
  return *p == '\0';
}

bool br_fmt_ipv4_strict(const char *s) {
  for (int i = 0; i < 4; i++) {
    size_t n = 0;
    while (n < 3 && is_digit(s[n])) n++;
    if (!n || (n > 1 && s[0] == '0') || atoi(s) > 255) return false;
    s += n;
    if (i < 3 && *s++ != '.') return false;
  }
  return *s == '\0';
}

bool br_fmt_int(const char *s, long long *out) {
  const char *p = s;
  if (*p == '+' || *p == '-') p++;
  if (!is_digit(*p)) return false;
  while (is_digit(*p)) p++;
  if (*p) return false;
  if (out) {
    char *end;
    *out = strtoll(s, &end, 10); /* saturates like Number() would lose precision: fine for range checks */
  }
  return true;
}

bool br_fmt_tenant(const char *s) {
  size_t n = strlen(s);
  if (n < 1 || n > BR_TENANT_MAX) return false;
  for (; *s; s++)
    if (!is_alnum(*s) && *s != '_' && *s != '-') return false;
  return true;
}
