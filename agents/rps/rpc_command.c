/*
 * The `method` string is a command line (rps-activation.md §1.4): DMT's
 * CommandParser trims it, splits it on single spaces and runs minimist with
 * string [text, password], boolean [force, synctime, syncip, changepassword,
 * synchostname] and aliases t->text, p->password, f->force, e->encrypted.
 * This file reproduces the parts of minimist those options reach, quirks
 * included, because rpc-go relies on them:
 *  - "-password pw" is the short flags -p -a -s -s -w -o -r -d with d=pw and
 *    password="" (falsy), so the payload's password stands;
 *  - a short-flag group whose tail ends in a number takes it as the value
 *    ("-password1" sets p="assword1");
 *  - numeric-looking values become JavaScript numbers (--profile 0123 is
 *    the profile "123"), repeated keys become arrays (joined with ",");
 *  - "--" ends option parsing.
 * Also the protocol version check (§1.2, VersionChecker).
 */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "rps.h"

/* ---- JavaScript Number -> String ---- */

void rps_js_number_string(double v, char *out, size_t outlen) {
  if (isnan(v)) {
    snprintf(out, outlen, "NaN");
    return;
  }
  if (isinf(v)) {
    snprintf(out, outlen, v < 0 ? "-Infinity" : "Infinity");
    return;
  }
  if (v == 0) {
    snprintf(out, outlen, "0");
    return;
  }
  /* Shortest digits that round-trip, then ECMAScript Number::toString's layout. */
  char buf[64];
  int prec;
  for (prec = 1; prec <= 17; prec++) {
    snprintf(buf, sizeof buf, "%.*e", prec - 1, v);
    if (strtod(buf, NULL) == v) break;
  }
  bool neg = buf[0] == '-';
  const char *p = buf + neg;
  char digits[32];
  size_t k = 0;
  for (; *p && *p != 'e'; p++)
    if (isdigit((unsigned char)*p)) digits[k++] = *p;
  while (k > 1 && digits[k - 1] == '0') k--;
  digits[k] = '\0';
  int e = atoi(p + 1);
  int n = e + 1; /* value = 0.digits x 10^n */
  char res[96];
  size_t r = 0;
  if (neg) res[r++] = '-';
  if ((int)k <= n && n <= 21) {
    r += (size_t)snprintf(res + r, sizeof res - r, "%s", digits);
    for (int i = 0; i < n - (int)k; i++) res[r++] = '0';
  } else if (0 < n && n <= 21) {
    r += (size_t)snprintf(res + r, sizeof res - r, "%.*s.%s", n, digits, digits + n);
  } else if (-6 < n && n <= 0) {
    res[r++] = '0';
    res[r++] = '.';
    for (int i = 0; i < -n; i++) res[r++] = '0';
    r += (size_t)snprintf(res + r, sizeof res - r, "%s", digits);
  } else {
    res[r++] = digits[0];
    if (k > 1) r += (size_t)snprintf(res + r, sizeof res - r, ".%s", digits + 1);
    r += (size_t)snprintf(res + r, sizeof res - r, "e%c%d", n - 1 >= 0 ? '+' : '-', abs(n - 1));
  }
  res[r] = '\0';
  snprintf(out, outlen, "%s", res);
}

/* ---- a tiny model of minimist's argv ---- */

enum jsv_type { JSV_UNDEF = 0, JSV_STR, JSV_NUM, JSV_BOOL, JSV_ARRAY, JSV_OBJECT };

struct jsv {
  enum jsv_type type;
  char *text;   /* STR/NUM: rendering; ARRAY: joined with "," */
  bool b;
  double num;
};

#define MAX_KEYS 48
struct argv_model {
  struct { char *key; struct jsv v; } kv[MAX_KEYS];
  size_t n;
  char *under[64]; /* argv._ renderings */
  size_t nunder;
};

static bool is_number(const char *x) {
  /* minimist isNumber: /^0x[0-9a-f]+$/i or /^[-+]?(?:\d+(?:\.\d*)?|\.\d+)(e[-+]?\d+)?$/ */
  if (!strncasecmp(x, "0x", 2) && x[2]) {
    for (const char *p = x + 2; *p; p++)
      if (!isxdigit((unsigned char)*p)) return false;
    return true;
  }
  const char *p = x;
  if (*p == '-' || *p == '+') p++;
  bool digits = false;
  while (isdigit((unsigned char)*p)) p++, digits = true;
  if (*p == '.') {
    p++;
    bool frac = false;
    while (isdigit((unsigned char)*p)) p++, frac = true;
    if (!digits && !frac) return false;
  } else if (!digits) {
    return false;
  }
  if (*p == 'e') { /* minimist's regex is case-sensitive here */
    p++;
    if (*p == '-' || *p == '+') p++;
    if (!isdigit((unsigned char)*p)) return false;
    while (isdigit((unsigned char)*p)) p++;
  }
  return *p == '\0';
}

static double js_number(const char *x) {
  if (!strncasecmp(x, "0x", 2)) return (double)strtoull(x + 2, NULL, 16);
  return strtod(x, NULL);
}

static const char *const string_keys[] = {"text", "t", "password", "p"};
static const char *const bool_keys[] = {"force", "synctime", "syncip", "changepassword", "synchostname"};
static const char *const alias_pairs[][2] = {{"t", "text"}, {"p", "password"}, {"f", "force"}, {"e", "encrypted"}};

static bool in_list(const char *k, const char *const *l, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (!strcmp(k, l[i])) return true;
  return false;
}
static bool is_string_key(const char *k) { return in_list(k, string_keys, 4); }
static bool is_bool_key(const char *k) { return in_list(k, bool_keys, 5); }

static const char *alias_of(const char *k) {
  for (size_t i = 0; i < 4; i++) {
    if (!strcmp(k, alias_pairs[i][0])) return alias_pairs[i][1];
    if (!strcmp(k, alias_pairs[i][1])) return alias_pairs[i][0];
  }
  return NULL;
}

/* aliases[key] ? !aliasIsBoolean(key) : true */
static bool alias_not_boolean(const char *k) {
  const char *a = alias_of(k);
  if (!a) return true;
  return !is_bool_key(a) && !is_bool_key(k);
}

static struct jsv *slot(struct argv_model *m, const char *key) {
  for (size_t i = 0; i < m->n; i++)
    if (!strcmp(m->kv[i].key, key)) return &m->kv[i].v;
  if (m->n == MAX_KEYS) return NULL;
  m->kv[m->n].key = strdup(key);
  if (!m->kv[m->n].key) return NULL;
  memset(&m->kv[m->n].v, 0, sizeof m->kv[m->n].v);
  return &m->kv[m->n++].v;
}

static void jsv_clear(struct jsv *v) {
  free(v->text);
  memset(v, 0, sizeof *v);
}

/* JavaScript String(value) of a scalar we are about to store. */
static char *render(const struct jsv *v) {
  char buf[64];
  switch (v->type) {
    case JSV_STR: return strdup(v->text ? v->text : "");
    case JSV_NUM: rps_js_number_string(v->num, buf, sizeof buf); return strdup(buf);
    case JSV_BOOL: return strdup(v->b ? "true" : "false");
    case JSV_ARRAY: return strdup(v->text ? v->text : "");
    case JSV_OBJECT: return strdup("[object Object]");
    default: return strdup("");
  }
}

/* minimist setKey for one key: first value, booleans overwrite, repeats become arrays. */
static void set_key(struct argv_model *m, const char *key, const struct jsv *value) {
  struct jsv *v = slot(m, key);
  if (!v) return;
  if (v->type == JSV_UNDEF || is_bool_key(key) || v->type == JSV_BOOL) {
    jsv_clear(v);
    *v = *value;
    v->text = value->text ? strdup(value->text) : NULL;
    return;
  }
  char *a = render(v), *b = render(value), *joined = NULL;
  if (a && b && asprintf(&joined, "%s,%s", a, b) < 0) joined = NULL;
  free(a);
  free(b);
  jsv_clear(v);
  v->type = JSV_ARRAY;
  v->text = joined;
}

/* minimist setArg: numbers unless a string flag; dotted keys make objects; aliases follow. */
static void set_arg(struct argv_model *m, const char *key, const char *sval, int bval /* -1 = use sval */) {
  struct jsv v = {0};
  if (bval >= 0) {
    v.type = JSV_BOOL;
    v.b = bval != 0;
  } else if (!is_string_key(key) && is_number(sval)) {
    v.type = JSV_NUM;
    v.num = js_number(sval);
    char buf[64];
    rps_js_number_string(v.num, buf, sizeof buf);
    v.text = strdup(buf);
  } else {
    v.type = JSV_STR;
    v.text = strdup(sval);
  }
  char top[128];
  snprintf(top, sizeof top, "%s", key);
  char *dot = strchr(top, '.');
  if (dot) { /* --profile.x y: profile becomes an object */
    *dot = '\0';
    free(v.text);
    v = (struct jsv){.type = JSV_OBJECT};
  }
  set_key(m, top, &v);
  const char *a = alias_of(top);
  if (a) set_key(m, a, &v);
  free(v.text);
}

static void push_under(struct argv_model *m, const char *arg) {
  if (m->nunder == sizeof m->under / sizeof m->under[0]) return;
  char buf[64];
  if (is_number(arg)) {
    rps_js_number_string(js_number(arg), buf, sizeof buf);
    m->under[m->nunder++] = strdup(buf);
  } else {
    m->under[m->nunder++] = strdup(arg);
  }
}

static bool looks_like_flag(const char *next) { /* /^(-|--)[^-]/ */
  return next[0] == '-' && ((next[1] && next[1] != '-') || (next[1] == '-' && next[2] && next[2] != '-'));
}

static bool ends_with_number(const char *s) { /* /-?\d+(\.\d*)?(e-?\d+)?$/ (unanchored at the start) */
  size_t n = strlen(s);
  if (!n) return false;
  /* try every start position: the regex matches if some suffix has the shape */
  for (size_t st = 0; st < n; st++) {
    const char *p = s + st;
    if (*p == '-') p++;
    if (!isdigit((unsigned char)*p)) continue;
    while (isdigit((unsigned char)*p)) p++;
    if (*p == '.') {
      p++;
      while (isdigit((unsigned char)*p)) p++;
    }
    if (*p == 'e') {
      const char *q = p + 1;
      if (*q == '-') q++;
      if (isdigit((unsigned char)*q)) {
        while (isdigit((unsigned char)*q)) q++;
        p = q;
      }
    }
    if (*p == '\0') return true;
  }
  return false;
}

static void minimist(char **args, size_t nargs, struct argv_model *m) {
  for (size_t i = 0; i < sizeof bool_keys / sizeof bool_keys[0]; i++) set_arg(m, bool_keys[i], NULL, 0);
  size_t end = nargs;
  for (size_t i = 0; i < nargs; i++)
    if (!strcmp(args[i], "--")) {
      end = i;
      break;
    }
  for (size_t i = 0; i < end; i++) {
    const char *arg = args[i];
    const char *next = i + 1 < end ? args[i + 1] : NULL;
    if (!strncmp(arg, "--", 2) && arg[2] && strchr(arg + 3, '=')) { /* --key=value */
      char key[128];
      const char *eq = strchr(arg + 2, '=');
      if (eq == arg + 2) continue; /* "--==x": minimist throws here; DMT then keeps the raw method */
      snprintf(key, sizeof key, "%.*s", (int)(eq - arg - 2), arg + 2);
      if (is_bool_key(key)) set_arg(m, key, NULL, strcmp(eq + 1, "false") != 0);
      else set_arg(m, key, eq + 1, -1);
    } else if (!strncmp(arg, "--no-", 5) && arg[5]) {
      set_arg(m, arg + 5, NULL, 0);
    } else if (!strncmp(arg, "--", 2) && arg[2]) {
      const char *key = arg + 2;
      if (next && !looks_like_flag(next) && !is_bool_key(key) && alias_not_boolean(key)) {
        set_arg(m, key, next, -1);
        i++;
      } else if (next && (!strcmp(next, "true") || !strcmp(next, "false"))) {
        set_arg(m, key, NULL, !strcmp(next, "true"));
        i++;
      } else if (is_string_key(key)) {
        set_arg(m, key, "", -1);
      } else {
        set_arg(m, key, NULL, 1);
      }
    } else if (arg[0] == '-' && arg[1] && arg[1] != '-') {
      size_t alen = strlen(arg);
      bool broken = false;
      for (size_t j = 0; j + 2 < alen; j++) { /* letters = arg.slice(1, -1) */
        char letter[2] = {arg[j + 1], 0};
        const char *rest = arg + j + 2;
        if (!strcmp(rest, "-")) {
          set_arg(m, letter, rest, -1);
          continue;
        }
        if (isalpha((unsigned char)letter[0]) && rest[0] == '=') {
          set_arg(m, letter, rest + 1, -1);
          broken = true;
          break;
        }
        if (isalpha((unsigned char)letter[0]) && ends_with_number(rest)) {
          set_arg(m, letter, rest, -1);
          broken = true;
          break;
        }
        char nl = arg[j + 2];
        if (j + 2 < alen - 1 && nl && !(isalnum((unsigned char)nl) || nl == '_')) {
          set_arg(m, letter, rest, -1);
          broken = true;
          break;
        }
        if (is_string_key(letter)) set_arg(m, letter, "", -1);
        else set_arg(m, letter, NULL, 1);
      }
      char key[2] = {arg[alen - 1], 0};
      if (!broken && key[0] != '-') {
        if (next && *next && !looks_like_flag(next) && !is_bool_key(key) && alias_not_boolean(key)) {
          set_arg(m, key, next, -1);
          i++;
        } else if (next && *next && (!strcmp(next, "true") || !strcmp(next, "false"))) {
          set_arg(m, key, NULL, !strcmp(next, "true"));
          i++;
        } else if (is_string_key(key)) {
          set_arg(m, key, "", -1);
        } else {
          set_arg(m, key, NULL, 1);
        }
      }
    } else {
      push_under(m, arg);
    }
  }
  for (size_t i = end + 1; i < nargs; i++) push_under(m, args[i]);
}

static const struct jsv *get(const struct argv_model *m, const char *key) {
  for (size_t i = 0; i < m->n; i++)
    if (!strcmp(m->kv[i].key, key)) return &m->kv[i].v;
  return NULL;
}

static bool js_truthy(const struct jsv *v) {
  if (!v) return false;
  switch (v->type) {
    case JSV_STR: return v->text && *v->text;
    case JSV_NUM: return v->num != 0 && !isnan(v->num);
    case JSV_BOOL: return v->b;
    case JSV_ARRAY:
    case JSV_OBJECT: return true;
    default: return false;
  }
}

static void model_free(struct argv_model *m) {
  for (size_t i = 0; i < m->n; i++) {
    free(m->kv[i].key);
    jsv_clear(&m->kv[i].v);
  }
  for (size_t i = 0; i < m->nunder; i++) free(m->under[i]);
}

static bool js_isspace(unsigned char c) { return c == ' ' || (c >= '\t' && c <= '\r'); }

void rpc_command_parse(const char *method, struct rpc_command *c) {
  memset(c, 0, sizeof *c);
  if (!method) method = "";
  /* trim (ASCII whitespace; JavaScript's trim also strips Unicode spaces, which rpc-go never sends) */
  while (js_isspace((unsigned char)*method)) method++;
  size_t len = strlen(method);
  while (len && js_isspace((unsigned char)method[len - 1])) len--;
  char *copy = strndup(method, len);
  char *args[128];
  size_t nargs = 0;
  if (copy) {
    /* split(' '): consecutive spaces give empty strings */
    char *p = copy;
    for (;;) {
      char *sp = strchr(p, ' ');
      if (nargs == sizeof args / sizeof args[0]) break;
      args[nargs++] = p;
      if (!sp) break;
      *sp = '\0';
      p = sp + 1;
    }
  }
  struct argv_model m = {0};
  minimist(args, nargs, &m);
  const struct jsv *t = get(&m, "t"), *e = get(&m, "e");
  char *text = NULL;
  const char *first_non_flag = m.nunder > 0 ? m.under[0] : NULL;
  if ((!t || t->type == JSV_UNDEF) && (!e || e->type == JSV_UNDEF) && nargs > 0 && args[0][0] && args[0][0] != '-') {
    text = strdup(args[0]);
    first_non_flag = m.nunder > 1 ? m.under[1] : NULL;
  } else if (js_truthy(t)) {
    text = render(t);
  }
  if (text) {
    c->method = text;
    if (js_truthy(get(&m, "profile"))) c->profile = render(get(&m, "profile"));
    if (js_truthy(get(&m, "password"))) c->password = render(get(&m, "password"));
    if (js_truthy(get(&m, "force"))) c->force = true;
    if (!strcmp(text, "maintenance")) {
      static const char *const tasks[] = {"synctime", "syncip", "changepassword", "synchostname", "syncdeviceinfo"};
      for (size_t i = 0; i < 5; i++)
        if (js_truthy(get(&m, tasks[i]))) {
          c->task = strdup(tasks[i]);
          if (i == 2 && first_non_flag) c->task_arg = strdup(first_non_flag);
          break;
        }
    }
  } else {
    c->method = strdup(method ? method : "");
  }
  model_free(&m);
  free(copy);
}

void rpc_command_free(struct rpc_command *c) {
  if (c->password) {
    memset(c->password, 0, strlen(c->password));
    free(c->password);
  }
  if (c->task_arg) {
    memset(c->task_arg, 0, strlen(c->task_arg));
    free(c->task_arg);
  }
  free(c->method);
  free(c->profile);
  free(c->task);
  memset(c, 0, sizeof *c);
}

/* ---- protocol version (VersionChecker) ---- */

/* JavaScript parseInt(s, 10): whitespace, sign, digits; NaN (-1 here) if no digits. */
static bool js_parse_int(const char *s, long *out) {
  while (js_isspace((unsigned char)*s)) s++;
  int sign = 1;
  if (*s == '+' || *s == '-') sign = *s++ == '-' ? -1 : 1;
  if (!isdigit((unsigned char)*s)) return false;
  long v = 0;
  while (isdigit((unsigned char)*s) && v < 100000000) v = v * 10 + (*s++ - '0');
  *out = sign * v;
  return true;
}

static int parse_version(const char *v, long out[3], char *err, size_t errlen) {
  out[0] = out[1] = out[2] = 0;
  if (!v || !*v) {
    snprintf(err, errlen, "version must be defined");
    return -1;
  }
  size_t parts = 1;
  for (const char *p = v; *p; p++) parts += *p == '.';
  if (parts > 3) {
    snprintf(err, errlen, "invalid version string length");
    return -1;
  }
  static const char *const names[] = {"major", "minor", "revision"};
  const char *p = v;
  for (size_t i = 0; i < parts; i++) {
    char part[64];
    const char *dot = strchr(p, '.');
    size_t n = dot ? (size_t)(dot - p) : strlen(p);
    snprintf(part, sizeof part, "%.*s", (int)(n < sizeof part ? n : sizeof part - 1), p);
    if (!js_parse_int(part, &out[i])) {
      snprintf(err, errlen, "failed to parse %s", names[i]);
      return -1;
    }
    p = dot ? dot + 1 : p + n;
  }
  return 0;
}

int rpc_version_check(const char *client, const char *server, char *err, size_t errlen) {
  long c[3], s[3];
  if (parse_version(server, s, err, errlen) || parse_version(client, c, err, errlen)) return -1;
  if (s[0] != c[0]) return 0;
  if (s[1] == c[1]) return s[2] >= c[2];
  return s[1] >= c[1];
}
