/*
 * Output for dmtctl: aligned tables (the default, kubectl style: upper-case
 * headers, columns two spaces apart, "-" for empty cells), "Key: value"
 * listings for single objects, and JSON or YAML of the same data for
 * scripts. The YAML emitter is small and strict about quoting: any string
 * a YAML 1.1 or 1.2 reader could take for something else (numbers, booleans,
 * null, leading indicators, ": ", " #", control characters) is double-quoted.
 */
#include <ctype.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "dmtctl.h"

int ctl_parse_format(const char *s, enum ctl_format *out) {
  static const struct {
    const char *name;
    enum ctl_format fmt;
  } names[] = {{"table", CTL_FMT_TABLE}, {"wide", CTL_FMT_WIDE}, {"json", CTL_FMT_JSON},
               {"yaml", CTL_FMT_YAML},   {"name", CTL_FMT_NAME}};
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
    if (!strcmp(s, names[i].name)) {
      *out = names[i].fmt;
      return 0;
    }
  return -1;
}

void ctl_print_json(FILE *out, const json_t *v) {
  char *s = json_dumps(v, JSON_INDENT(2) | JSON_ENCODE_ANY);
  if (s) fprintf(out, "%s\n", s);
  free(s);
}

/* ---- YAML ---- */

/* Would a YAML 1.1 or 1.2 reader take this plain scalar for a number, a date or a time? */
static bool looks_numeric(const char *s) {
  char tmp[128];
  size_t o = 0;
  for (const char *p = s; *p; p++) {
    if (o + 1 >= sizeof tmp) return false;
    if (*p != '_') tmp[o++] = *p;
  }
  tmp[o] = '\0';
  const char *p = tmp;
  if (*p == '+' || *p == '-') p++;
  if (!*p) return false;
  if (p[0] == '0' && (p[1] == 'x' || p[1] == 'X' || p[1] == 'o' || p[1] == 'b')) return true;
  char *end;
  strtod(tmp, &end);
  if (end != tmp && *end == '\0') return true; /* integers, floats, 1e5, .5 */
  if (isdigit((unsigned char)p[0])) {
    bool colon = false, other = false;
    for (const char *q = p; *q; q++) {
      if (*q == ':') colon = true;
      else if (!isdigit((unsigned char)*q) && *q != '.') other = true;
    }
    if (colon && !other) return true; /* sexagesimal 190:20:30 */
  }
  return isdigit((unsigned char)s[0]) && isdigit((unsigned char)s[1]) && isdigit((unsigned char)s[2]) &&
         isdigit((unsigned char)s[3]) && s[4] == '-' && isdigit((unsigned char)s[5]); /* dates, timestamps */
}

static bool looks_special(const char *s) {
  static const char *const words[] = {"true", "false", "yes", "no", "on", "off", "null", "y", "n", "~",
                                      ".inf", "-.inf", "+.inf", ".nan"};
  for (size_t i = 0; i < sizeof words / sizeof words[0]; i++)
    if (!strcasecmp(s, words[i])) return true;
  return looks_numeric(s);
}

static bool needs_quotes(const char *s) {
  if (!*s || looks_special(s)) return true;
  if (strchr("-?:,[]{}#&*!|>'\"%@` ", s[0])) return true;
  size_t n = strlen(s);
  if (s[n - 1] == ' ' || s[n - 1] == ':') return true;
  for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
    if (*p < 0x20 || *p == 0x7f) return true;
    if (*p == ':' && p[1] == ' ') return true;
    if (*p == ' ' && p[1] == '#') return true;
  }
  return false;
}

const char *ctl_yaml_scalar(const char *s, char *buf, size_t buflen) {
  if (!needs_quotes(s)) return s;
  size_t o = 0;
  if (buflen < 3) return "\"\"";
  buf[o++] = '"';
  for (const unsigned char *p = (const unsigned char *)s; *p && o + 6 < buflen; p++) {
    switch (*p) {
      case '"': buf[o++] = '\\'; buf[o++] = '"'; break;
      case '\\': buf[o++] = '\\'; buf[o++] = '\\'; break;
      case '\n': buf[o++] = '\\'; buf[o++] = 'n'; break;
      case '\r': buf[o++] = '\\'; buf[o++] = 'r'; break;
      case '\t': buf[o++] = '\\'; buf[o++] = 't'; break;
      default:
        if (*p < 0x20 || *p == 0x7f) o += (size_t)snprintf(buf + o, buflen - o, "\\x%02x", *p);
        else buf[o++] = (char)*p;
    }
  }
  buf[o++] = '"';
  buf[o] = '\0';
  return buf;
}

static void yaml_scalar(FILE *out, const json_t *v) {
  char buf[8192];
  switch (json_typeof(v)) {
    case JSON_STRING: {
      const char *s = json_string_value(v);
      size_t need = strlen(s) * 4 + 3;
      char *big = need > sizeof buf ? malloc(need) : NULL;
      fputs(ctl_yaml_scalar(s, big ? big : buf, big ? need : sizeof buf), out);
      free(big);
      break;
    }
    case JSON_INTEGER: fprintf(out, "%" JSON_INTEGER_FORMAT, json_integer_value(v)); break;
    case JSON_REAL: fprintf(out, "%.17g", json_real_value(v)); break;
    case JSON_TRUE: fputs("true", out); break;
    case JSON_FALSE: fputs("false", out); break;
    default: fputs("null", out); break;
  }
}

static bool is_container(const json_t *v) {
  return (json_is_object(v) && json_object_size(v) > 0) || (json_is_array(v) && json_array_size(v) > 0);
}

static void yaml_value(FILE *out, const json_t *v, int indent, bool inline_first);

static void yaml_after_key(FILE *out, const json_t *v, int indent) {
  if (is_container(v)) {
    fputc('\n', out);
    yaml_value(out, v, indent + 2, false);
  } else {
    fputc(' ', out);
    if (json_is_object(v)) fputs("{}", out);
    else if (json_is_array(v)) fputs("[]", out);
    else yaml_scalar(out, v);
    fputc('\n', out);
  }
}

/* inline_first: the first line continues a "- " already printed. */
static void yaml_value(FILE *out, const json_t *v, int indent, bool inline_first) {
  if (json_is_object(v) && json_object_size(v) > 0) {
    const char *k;
    json_t *x;
    bool first = true;
    json_object_foreach((json_t *)v, k, x) {
      if (!(first && inline_first)) fprintf(out, "%*s", indent, "");
      first = false;
      char kb[512];
      fprintf(out, "%s:", ctl_yaml_scalar(k, kb, sizeof kb));
      yaml_after_key(out, x, indent);
    }
  } else if (json_is_array(v) && json_array_size(v) > 0) {
    size_t i;
    json_t *x;
    json_array_foreach(v, i, x) {
      if (!(i == 0 && inline_first)) fprintf(out, "%*s", indent, "");
      fputs("- ", out);
      if (is_container(x)) {
        yaml_value(out, x, indent + 2, true);
      } else {
        if (json_is_object(x)) fputs("{}", out);
        else if (json_is_array(x)) fputs("[]", out);
        else yaml_scalar(out, x);
        fputc('\n', out);
      }
    }
  } else {
    if (!inline_first) fprintf(out, "%*s", indent, "");
    if (json_is_object(v)) fputs("{}", out);
    else if (json_is_array(v)) fputs("[]", out);
    else yaml_scalar(out, v);
    fputc('\n', out);
  }
}

void ctl_print_yaml(FILE *out, const json_t *v) { yaml_value(out, v, 0, false); }

void ctl_print_value(struct ctl *c, const json_t *v) {
  if (c->fmt == CTL_FMT_YAML) ctl_print_yaml(c->out, v);
  else ctl_print_json(c->out, v);
}

const char *ctl_json_text(const json_t *v, char *buf, size_t buflen) {
  buf[0] = '\0';
  if (!v) return buf;
  switch (json_typeof(v)) {
    case JSON_STRING: snprintf(buf, buflen, "%s", json_string_value(v)); break;
    case JSON_INTEGER: snprintf(buf, buflen, "%" JSON_INTEGER_FORMAT, json_integer_value(v)); break;
    case JSON_REAL: snprintf(buf, buflen, "%g", json_real_value(v)); break;
    case JSON_TRUE: snprintf(buf, buflen, "true"); break;
    case JSON_FALSE: snprintf(buf, buflen, "false"); break;
    case JSON_ARRAY: {
      size_t i, o = 0;
      json_t *x;
      json_array_foreach(v, i, x) {
        char item[256];
        ctl_json_text(x, item, sizeof item);
        int w = snprintf(buf + o, buflen - o, "%s%s", i ? "," : "", item);
        if (w < 0 || (size_t)w >= buflen - o) break;
        o += (size_t)w;
      }
      break;
    }
    default: break;
  }
  return buf;
}

/* ---- tables ---- */

void ctl_table_init(struct ctl_table *t, const char *const *headers, size_t ncols) {
  memset(t, 0, sizeof *t);
  t->headers = headers;
  t->ncols = ncols;
}

void ctl_table_row(struct ctl_table *t, const char *const *cells) {
  if (t->nrows == t->cap) {
    size_t cap = t->cap ? t->cap * 2 : 64;
    char **n = realloc(t->cells, cap * t->ncols * sizeof *n);
    if (!n) return;
    t->cells = n;
    t->cap = cap;
  }
  for (size_t i = 0; i < t->ncols; i++)
    t->cells[t->nrows * t->ncols + i] = strdup(cells[i] && cells[i][0] ? cells[i] : "-");
  t->nrows++;
}

void ctl_table_print(FILE *out, const struct ctl_table *t) {
  size_t *w = calloc(t->ncols, sizeof *w);
  if (!w) return;
  for (size_t c = 0; c < t->ncols; c++) {
    w[c] = strlen(t->headers[c]);
    for (size_t r = 0; r < t->nrows; r++) {
      size_t l = strlen(t->cells[r * t->ncols + c]);
      if (l > w[c]) w[c] = l;
    }
  }
  for (size_t r = 0; r <= t->nrows; r++) {
    for (size_t c = 0; c < t->ncols; c++) {
      const char *s = r == 0 ? t->headers[c] : t->cells[(r - 1) * t->ncols + c];
      if (c + 1 == t->ncols) fprintf(out, "%s\n", s);
      else fprintf(out, "%-*s  ", (int)w[c], s);
    }
  }
  free(w);
}

void ctl_table_free(struct ctl_table *t) {
  for (size_t i = 0; i < t->nrows * t->ncols; i++) free(t->cells[i]);
  free(t->cells);
  memset(t, 0, sizeof *t);
}

void ctl_print_kv(FILE *out, const char *const *keys, const char *const *values, size_t n) {
  size_t w = 0;
  for (size_t i = 0; i < n; i++)
    if (strlen(keys[i]) > w) w = strlen(keys[i]);
  for (size_t i = 0; i < n; i++)
    fprintf(out, "%s:%*s%s\n", keys[i], (int)(w - strlen(keys[i]) + 2), "",
            values[i] && values[i][0] ? values[i] : "-");
}

/* ---- per-device results of bulk operations ---- */

void ctl_item_check_return(struct ctl_item *it, const char *key) {
  if (it->status != CTL_OK || !it->result) return;
  const json_t *holder = key ? json_object_get(it->result, key) : it->result;
  const json_t *rv = json_object_get(holder, "ReturnValue");
  if (!json_is_integer(rv) || json_integer_value(rv) == 0) return;
  const char *name = json_string_value(json_object_get(holder, "ReturnValueStr"));
  char msg[160];
  snprintf(msg, sizeof msg, "%s (ReturnValue %" JSON_INTEGER_FORMAT ")", name ? name : "refused by the firmware",
           json_integer_value(rv));
  it->status = CTL_FAILED;
  free(it->error);
  free(it->message);
  it->error = strdup("device_error");
  it->message = strdup(msg);
}

static const char *item_detail(const struct ctl_item *it, char *buf, size_t len) {
  if (it->status != CTL_OK) {
    snprintf(buf, len, "%s", it->message ? it->message : it->error ? it->error : "");
    return buf;
  }
  const json_t *body = json_object_get(it->result, "Body");
  const char *s = json_string_value(json_object_get(body ? body : it->result, "ReturnValueStr"));
  if (!s) s = json_string_value(json_object_get(it->result, "status"));
  snprintf(buf, len, "%s", s ? s : "");
  return buf;
}

int ctl_report(struct ctl *c, const char *operation, const struct ctl_item *items, size_t n,
               const struct ctl_column *cols, size_t ncols) {
  static const enum ctl_exit order[] = {CTL_OK, CTL_FAILED, CTL_OFFLINE, CTL_NOT_FOUND, CTL_TIMEOUT, CTL_AUTH, CTL_USAGE};
  size_t counts[sizeof order / sizeof order[0]] = {0};
  enum ctl_exit *st = calloc(n ? n : 1, sizeof *st);
  for (size_t i = 0; i < n; i++) {
    st[i] = items[i].status;
    for (size_t k = 0; k < sizeof order / sizeof order[0]; k++)
      if (order[k] == items[i].status) counts[k]++;
  }
  if (c->fmt == CTL_FMT_JSON || c->fmt == CTL_FMT_YAML) {
    json_t *res = json_array(), *cnt = json_object();
    for (size_t k = 0; k < sizeof order / sizeof order[0]; k++)
      if (counts[k]) json_object_set_new(cnt, ctl_exit_name(order[k]), json_integer((json_int_t)counts[k]));
    for (size_t i = 0; i < n; i++) {
      char d[512];
      json_t *o = json_pack("{s:s, s:s, s:s}", "guid", items[i].guid, "verb", items[i].verb, "result",
                            ctl_exit_name(items[i].status));
      if (items[i].code) json_object_set_new(o, "code", json_integer(items[i].code));
      if (items[i].error) json_object_set_new(o, "error", json_string(items[i].error));
      item_detail(&items[i], d, sizeof d);
      if (d[0]) json_object_set_new(o, "detail", json_string(d));
      if (items[i].result) json_object_set(o, "reply", items[i].result);
      json_array_append_new(res, o);
    }
    json_t *doc = json_pack("{s:s, s:I, s:o, s:o}", "operation", operation, "total", (json_int_t)n, "counts", cnt,
                            "results", res);
    ctl_print_value(c, doc);
    json_decref(doc);
  } else if (c->fmt == CTL_FMT_NAME) {
    for (size_t i = 0; i < n; i++)
      if (items[i].status == CTL_OK) fprintf(c->out, "%s\n", items[i].guid);
  } else {
    const char *headers[12] = {"GUID"};
    size_t nc = 1;
    for (size_t k = 0; k < ncols && nc < 10; k++) headers[nc++] = cols[k].header;
    headers[nc++] = "RESULT";
    headers[nc++] = "DETAIL";
    struct ctl_table t;
    ctl_table_init(&t, headers, nc);
    for (size_t i = 0; i < n; i++) {
      char bufs[10][512];
      const char *row[12] = {items[i].guid};
      size_t k = 1;
      for (size_t x = 0; x < ncols && k < 10; x++, k++) row[k] = cols[x].cell(&items[i], bufs[x], sizeof bufs[x]);
      row[k++] = ctl_exit_name(items[i].status);
      row[k++] = item_detail(&items[i], bufs[9], sizeof bufs[9]);
      ctl_table_row(&t, row);
    }
    ctl_table_print(c->out, &t);
    ctl_table_free(&t);
    fprintf(c->out, "\n%s: %zu device%s:", operation, n, n == 1 ? "" : "s");
    bool first = true;
    for (size_t k = 0; k < sizeof order / sizeof order[0]; k++)
      if (counts[k]) {
        fprintf(c->out, "%s %zu %s", first ? "" : ",", counts[k], ctl_exit_name(order[k]));
        first = false;
      }
    fputc('\n', c->out);
  }
  enum ctl_exit rc = ctl_exit_merge(st, n);
  free(st);
  return rc;
}
