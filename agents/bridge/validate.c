/*
 * A small re-implementation of the parts of express-validator v7 that DMT's
 * routes use, so that our 400 bodies match DMT's field for field: chains of
 * rules per field, run in declaration order, every failing validator adding
 * {"type":"field","value","msg","path","location"}; optional()/nullable,
 * if(), bail(), default() and the to*() sanitizers writing back into the
 * request (later chains see the sanitized value, as in Express).
 *
 * Standard validators see JavaScript's String(value) (arrays: their first
 * element), custom ones (isString, isArray, custom checks) the JSON value.
 * The engine is pure: validation chains run on the lws thread for MPS routes
 * and on a DB worker for RPS routes whose checks read the database.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bridge.h"

static void js_number(double d, char *out, size_t outlen) {
  if (isnan(d)) {
    snprintf(out, outlen, "NaN");
    return;
  }
  if (isinf(d)) {
    snprintf(out, outlen, d > 0 ? "Infinity" : "-Infinity");
    return;
  }
  if (d == floor(d) && fabs(d) < 1e21) {
    snprintf(out, outlen, "%.0f", d);
    if (!strcmp(out, "-0")) snprintf(out, outlen, "0");
    return;
  }
  for (int prec = 1; prec <= 17; prec++) {
    snprintf(out, outlen, "%.*g", prec, d);
    if (strtod(out, NULL) == d) return;
  }
}

static void js_string_depth(const json_t *v, char *out, size_t outlen, bool deep) {
  out[0] = '\0';
  if (!v || json_is_null(v)) return;
  switch (json_typeof(v)) {
    case JSON_STRING:
      snprintf(out, outlen, "%s", json_string_value(v));
      return;
    case JSON_TRUE:
      snprintf(out, outlen, "true");
      return;
    case JSON_FALSE:
      snprintf(out, outlen, "false");
      return;
    case JSON_INTEGER:
      snprintf(out, outlen, "%lld", (long long)json_integer_value(v));
      return;
    case JSON_REAL:
      js_number(json_real_value(v), out, outlen);
      return;
    case JSON_ARRAY: {
      size_t n = json_array_size(v);
      if (n && deep) {
        js_string_depth(json_array_get(v, 0), out, outlen, false);
        return;
      }
      /* Array.prototype.toString: elements joined with "," (null/undefined as "") */
      size_t used = 0;
      for (size_t i = 0; i < n && used + 1 < outlen; i++) {
        char part[256];
        js_string_depth(json_array_get(v, i), part, sizeof part, false);
        int w = snprintf(out + used, outlen - used, "%s%s", i ? "," : "", part);
        if (w < 0) break;
        used += (size_t)w < outlen - used ? (size_t)w : outlen - used - 1;
      }
      return;
    }
    case JSON_OBJECT:
      snprintf(out, outlen, "[object Object]");
      return;
    default:
      return;
  }
}

void br_js_string(const json_t *v, char *out, size_t outlen) { js_string_depth(v, out, outlen, true); }

bool br_js_truthy(const json_t *v) {
  if (!v) return false;
  switch (json_typeof(v)) {
    case JSON_NULL:
    case JSON_FALSE:
      return false;
    case JSON_STRING:
      return json_string_length(v) > 0;
    case JSON_INTEGER:
      return json_integer_value(v) != 0;
    case JSON_REAL:
      return json_real_value(v) != 0 && !isnan(json_real_value(v));
    default:
      return true;
  }
}

const json_t *br_body_get(const struct br_vctx *v, const char *key) {
  return json_is_object(v->body) ? json_object_get(v->body, key) : NULL;
}

json_t *br_verror(const json_t *value, const char *msg, const char *path, const char *location) {
  json_t *e = json_object();
  json_object_set_new(e, "type", json_string("field"));
  if (value) json_object_set_new(e, "value", json_deep_copy(value));
  json_object_set_new(e, "msg", json_string(msg ? msg : "Invalid value"));
  json_object_set_new(e, "path", json_string(path));
  json_object_set_new(e, "location", json_string(location));
  return e;
}

/* Counts code points (validator.js isLength counts surrogate pairs as one character). */
static size_t utf8_chars(const char *s) {
  size_t n = 0;
  for (; *s; s++)
    if (((unsigned char)*s & 0xc0) != 0x80) n++;
  return n;
}

static bool in_list(const char *s, const char *const *list) {
  for (; *list; list++)
    if (!strcmp(s, *list)) return true;
  return false;
}

static bool loose_boolean(const char *s) {
  return !strcmp(s, "true") || !strcmp(s, "false") || !strcmp(s, "1") || !strcmp(s, "0");
}

static bool numeric(const char *s) { /* ^[+-]?([0-9]*[.])?[0-9]+$ */
  const char *p = s;
  if (*p == '+' || *p == '-') p++;
  const char *digits = p;
  while (*p >= '0' && *p <= '9') p++;
  if (*p == '.') {
    p++;
    const char *frac = p;
    while (*p >= '0' && *p <= '9') p++;
    return p > frac && !*p;
  }
  return p > digits && !*p;
}

/* Runs one standard (string) or custom validator; returns pass/fail before negation. */
static bool run_validator(const struct br_rule *r, struct br_vctx *v, const json_t *value, char *msg,
                          size_t msglen) {
  char s[4096];
  switch (r->kind) {
    case BR_R_STRING: return json_is_string(value);
    case BR_R_ARRAY: return json_is_array(value);
    case BR_R_OBJECT: return json_is_object(value);
    case BR_R_EXISTS: return value != NULL;
    case BR_R_BOOLEAN_STRICT: return json_is_boolean(value);
    case BR_R_CUSTOM: return r->check(v, value, msg, msglen);
    default: break;
  }
  br_js_string(value, s, sizeof s);
  switch (r->kind) {
    case BR_R_EMPTY: return s[0] == '\0';
    case BR_R_MATCH: return r->match(s);
    case BR_R_IN: return in_list(s, r->in);
    case BR_R_INT: {
      long long n;
      if (!br_fmt_int(s, &n)) return false;
      return n >= r->min && n <= r->max;
    }
    case BR_R_LENGTH: {
      size_t n = utf8_chars(s);
      return (long long)n >= r->min && (long long)n <= r->max;
    }
    case BR_R_BOOLEAN: return loose_boolean(s);
    case BR_R_UUID: return br_fmt_uuid(s);
    case BR_R_NUMERIC: return numeric(s);
    default: return true;
  }
}

/* ----- field selection ----- */

struct instance {
  json_t *container; /* object or array holding the value (NULL when absent) */
  const char *key;   /* object key, or NULL for an array element */
  size_t index;
  json_t *value;     /* borrowed; NULL = undefined */
  char path[128];
  const char *location;
};

static json_t *lookup(json_t *root, const char *path, json_t **container, const char **last) {
  json_t *cur = root;
  const char *p = path;
  char seg[64];
  *container = NULL;
  *last = NULL;
  for (;;) {
    const char *dot = strchr(p, '.');
    size_t n = dot ? (size_t)(dot - p) : strlen(p);
    if (n >= sizeof seg) return NULL;
    memcpy(seg, p, n);
    seg[n] = '\0';
    if (!json_is_object(cur)) return NULL;
    if (!dot) {
      *container = cur;
      *last = p;
      return json_object_get(cur, seg);
    }
    cur = json_object_get(cur, seg);
    p = dot + 1;
  }
}

static json_t *location_root(struct br_vctx *v, enum br_loc loc) {
  switch (loc) {
    case BR_LOC_BODY: return v->body;
    case BR_LOC_PARAMS: return v->params;
    case BR_LOC_QUERY: return v->query;
    default: return NULL;
  }
}

static const char *location_name(enum br_loc loc) {
  return loc == BR_LOC_PARAMS ? "params" : loc == BR_LOC_QUERY ? "query" : "body";
}

static void set_value(struct instance *in, json_t *nv) {
  if (in->container && json_is_object(in->container) && in->key) {
    json_object_set_new(in->container, in->key, nv);
    in->value = json_object_get(in->container, in->key);
  } else if (in->container && json_is_array(in->container)) {
    json_array_set_new(in->container, in->index, nv);
    in->value = json_array_get(in->container, in->index);
  } else {
    json_decref(nv); /* nowhere to write (no body): keep the sanitized value out of the request */
  }
}

static size_t run_rules(const struct br_field *f, struct br_vctx *v, struct instance *in, json_t *errors) {
  if (f->opt == BR_OPTIONAL && !in->value) return 0;
  if (f->opt == BR_NULLABLE && (!in->value || json_is_null(in->value))) return 0;
  if (f->opt == BR_FALSY && !br_js_truthy(in->value)) return 0;
  size_t added = 0;
  for (size_t i = 0; i < f->nrules; i++) {
    const struct br_rule *r = &f->rules[i];
    switch (r->kind) {
      case BR_R_IF:
        if (!r->cond(v, in->value)) return added;
        continue;
      case BR_R_BAIL:
        if (added) return added;
        continue;
      case BR_R_DEFAULT: {
        json_t *cv = in->value;
        bool missing = !cv || json_is_null(cv) || (json_is_string(cv) && json_string_length(cv) == 0);
        if (missing) {
          json_t *d = json_loads(r->deflt, JSON_DECODE_ANY, NULL);
          if (d) {
            if (in->container) set_value(in, d);
            else {
              json_decref(d);
            }
          }
        }
        continue;
      }
      case BR_R_TO_INT: {
        char s[64];
        br_js_string(in->value, s, sizeof s);
        char *end;
        long long n = strtoll(s, &end, 10);
        set_value(in, end == s ? json_null() : json_integer(n));
        continue;
      }
      case BR_R_TO_BOOL: {
        char s[64];
        br_js_string(in->value, s, sizeof s);
        set_value(in, json_boolean(!(s[0] == '\0' || !strcmp(s, "0") || !strcmp(s, "false"))));
        continue;
      }
      default: break;
    }
    char msg[512] = "";
    bool ok = run_validator(r, v, in->value, msg, sizeof msg);
    if (r->negate) ok = !ok;
    if (!ok) {
      json_array_append_new(errors, br_verror(in->value, msg[0] ? msg : r->msg, in->path, in->location));
      added++;
    }
  }
  return added;
}

size_t br_validate(const struct br_chain *c, struct br_vctx *v, json_t *errors) {
  size_t added = 0;
  for (size_t i = 0; i < c->n; i++) {
    const struct br_field *f = &c->fields[i];
    char base[128];
    snprintf(base, sizeof base, "%s", f->path);
    size_t bl = strlen(base);
    bool wildcard = bl > 2 && !strcmp(base + bl - 2, ".*");
    if (wildcard) base[bl - 2] = '\0';

    /* express-validator's check() looks in body, (cookies, headers,) params and query; the first
     * location holding the field wins, and an absent field is reported against the first one. */
    enum br_loc locs[3] = {BR_LOC_BODY, BR_LOC_PARAMS, BR_LOC_QUERY};
    size_t nlocs = 3;
    if (f->loc != BR_LOC_ANY) {
      locs[0] = f->loc;
      nlocs = 1;
    }
    struct instance in = {0};
    bool found = false;
    for (size_t l = 0; l < nlocs && !found; l++) {
      json_t *root = location_root(v, locs[l]);
      json_t *container = NULL;
      const char *last = NULL;
      json_t *val = root ? lookup(root, base, &container, &last) : NULL;
      if (val || l == 0) {
        in.container = container;
        in.key = last;
        in.value = val;
        in.location = location_name(locs[l]);
        snprintf(in.path, sizeof in.path, "%s", base);
      }
      if (val) found = true;
    }
    if (!in.location) in.location = location_name(locs[0]);
    if (!wildcard) {
      added += run_rules(f, v, &in, errors);
      continue;
    }
    if (json_is_array(in.value)) {
      json_t *arr = in.value;
      for (size_t k = 0; k < json_array_size(arr); k++) {
        struct instance el = {.container = arr, .index = k, .value = json_array_get(arr, k),
                              .location = in.location};
        snprintf(el.path, sizeof el.path, "%s[%zu]", base, k);
        added += run_rules(f, v, &el, errors);
      }
    } else if (json_is_object(in.value)) {
      const char *key;
      json_t *val;
      json_t *obj = in.value;
      json_object_foreach(obj, key, val) {
        struct instance el = {.container = obj, .key = key, .value = val, .location = in.location};
        snprintf(el.path, sizeof el.path, "%s.%s", base, key);
        added += run_rules(f, v, &el, errors);
      }
    }
  }
  return added;
}
