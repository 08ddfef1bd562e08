/*
 * Table-driven msgpack codec (see dmt/payload.h). Decoding is two passes: a
 * cheap structural check over the raw bytes (depth, lengths against the input
 * size) so hostile input can never make msgpack-c allocate gigabytes, then
 * msgpack-c unpacks and each map entry is matched against the field table.
 */
#include "dmt/payload.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_DEPTH 32

/* ---- structural check ---- */

static int need(size_t len, size_t off, size_t n) { return n <= len && off <= len - n; }

static uint64_t be(const uint8_t *p, int n) {
  uint64_t v = 0;
  for (int i = 0; i < n; i++) v = (v << 8) | p[i];
  return v;
}

/*
 * Returns the offset after the value at off, or 0 with err set (a value is
 * never 0 bytes). depth_left counts the container levels still allowed.
 */
static size_t skip_value(const uint8_t *b, size_t len, size_t off, int depth_left, char *err,
                         size_t errlen) {
  if (depth_left < 0) {
    snprintf(err, errlen, "msgpack: nesting too deep");
    return 0;
  }
  if (!need(len, off, 1)) goto truncated;
  uint8_t t = b[off++];
  uint64_t n = 0;         /* element count (array/map) or byte length */
  int kind = 0;           /* 0 scalar bytes, 1 array, 2 map */
  if (t <= 0x7f || t >= 0xe0 || t == 0xc0 || t == 0xc2 || t == 0xc3) return off;
  if ((t & 0xf0) == 0x80) { n = t & 0x0f; kind = 2; }
  else if ((t & 0xf0) == 0x90) { n = t & 0x0f; kind = 1; }
  else if ((t & 0xe0) == 0xa0) { n = t & 0x1f; }
  else {
    int w = 0, extra = 0;
    switch (t) {
      case 0xc4: case 0xd9: w = 1; break;
      case 0xc5: case 0xda: w = 2; break;
      case 0xc6: case 0xdb: w = 4; break;
      case 0xc7: w = 1; extra = 1; break;
      case 0xc8: w = 2; extra = 1; break;
      case 0xc9: w = 4; extra = 1; break;
      case 0xca: n = 4; break;
      case 0xcb: n = 8; break;
      case 0xcc: case 0xd0: n = 1; break;
      case 0xcd: case 0xd1: n = 2; break;
      case 0xce: case 0xd2: n = 4; break;
      case 0xcf: case 0xd3: n = 8; break;
      case 0xd4: n = 2; break;
      case 0xd5: n = 3; break;
      case 0xd6: n = 5; break;
      case 0xd7: n = 9; break;
      case 0xd8: n = 17; break;
      case 0xdc: w = 2; kind = 1; break;
      case 0xdd: w = 4; kind = 1; break;
      case 0xde: w = 2; kind = 2; break;
      case 0xdf: w = 4; kind = 2; break;
      default:
        snprintf(err, errlen, "msgpack: invalid type byte 0x%02x", t);
        return 0;
    }
    if (w) {
      if (!need(len, off, (size_t)w)) goto truncated;
      n = be(b + off, w) + (uint64_t)extra;
      off += (size_t)w;
    }
  }
  if (kind == 0) {
    if (!need(len, off, n)) goto truncated;
    return off + (size_t)n;
  }
  /* Each element takes at least one byte: reject counts the input cannot hold. */
  uint64_t items = kind == 2 ? n * 2 : n;
  if (items > len - off) goto truncated;
  for (uint64_t i = 0; i < items; i++) {
    off = skip_value(b, len, off, depth_left - 1, err, errlen);
    if (!off) return 0;
  }
  return off;
truncated:
  snprintf(err, errlen, "msgpack: truncated input or length beyond end");
  return 0;
}

int dmt_msgpack_check(const void *buf, size_t len, int max_depth, char *err, size_t errlen) {
  size_t end = skip_value(buf, len, 0, max_depth, err, errlen);
  if (!end) return -1;
  if (end != len) {
    snprintf(err, errlen, "msgpack: %zu trailing bytes after the value", len - end);
    return -1;
  }
  return 0;
}

/* ---- helpers ---- */

static bool utf8_valid(const char *s, size_t n) {
  const unsigned char *p = (const unsigned char *)s;
  size_t i = 0;
  while (i < n) {
    unsigned c = p[i];
    size_t k;
    unsigned min;
    if (c < 0x80) { i++; continue; }
    if ((c & 0xe0) == 0xc0) { k = 1; c &= 0x1f; min = 0x80; }
    else if ((c & 0xf0) == 0xe0) { k = 2; c &= 0x0f; min = 0x800; }
    else if ((c & 0xf8) == 0xf0) { k = 3; c &= 0x07; min = 0x10000; }
    else return false;
    if (n - i <= k) return false;
    for (size_t j = 1; j <= k; j++) {
      if ((p[i + j] & 0xc0) != 0x80) return false;
      c = (c << 6) | (p[i + j] & 0x3f);
    }
    if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff)) return false;
    i += k + 1;
  }
  return true;
}

#define FIELD(msg, f, type) ((type *)((char *)(msg) + (f)->offset))
#define LENF(msg, f) ((size_t *)((char *)(msg) + (f)->len_offset))
#define PRESENT(msg, d) ((uint32_t *)((char *)(msg) + (d)->present_offset))

static void pack_str(msgpack_packer *pk, const char *s, size_t n) {
  msgpack_pack_str(pk, n);
  msgpack_pack_str_body(pk, s, n);
}

static bool field_set(const struct dmt_msg_desc *d, const struct dmt_field_desc *f, const void *msg) {
  switch (f->type) {
    case DMT_FIELD_STR: return *FIELD(msg, f, char *) != NULL;
    case DMT_FIELD_BIN:
    case DMT_FIELD_ANY: return *FIELD(msg, f, uint8_t *) != NULL;
    case DMT_FIELD_STRARR: return *FIELD(msg, f, char **) != NULL || (*PRESENT(msg, d) & f->bit);
    default: return (*PRESENT(msg, d) & f->bit) != 0;
  }
}

/* ---- encode ---- */

int dmt_payload_encode(const struct dmt_msg_desc *d, const void *msg, msgpack_sbuffer *out,
                       char *err, size_t errlen) {
  size_t count = 0;
  for (size_t i = 0; i < d->nfields; i++) {
    const struct dmt_field_desc *f = &d->fields[i];
    bool set = field_set(d, f, msg);
    if (!set && f->required) {
      snprintf(err, errlen, "%s: required field `%s` is missing", d->name, f->name);
      return -1;
    }
    if (!set) continue;
    count++;
    switch (f->type) {
      case DMT_FIELD_STR:
        if (strlen(*FIELD(msg, f, char *)) > f->max_len) goto too_long;
        break;
      case DMT_FIELD_BIN:
      case DMT_FIELD_ANY:
        if (*LENF(msg, f) > f->max_len) goto too_long;
        if (f->type == DMT_FIELD_ANY &&
            dmt_msgpack_check(*FIELD(msg, f, uint8_t *), *LENF(msg, f), MAX_DEPTH, err, errlen) != 0)
          return -1;
        break;
      case DMT_FIELD_STRARR:
        if (*LENF(msg, f) > f->max_items) goto too_long;
        for (size_t k = 0; k < *LENF(msg, f); k++)
          if (strlen((*FIELD(msg, f, char **))[k]) > f->max_len) goto too_long;
        break;
      case DMT_FIELD_INT: {
        int64_t v = *FIELD(msg, f, int64_t);
        if (v < f->min || v > f->max) {
          snprintf(err, errlen, "%s: `%s` = %lld out of range", d->name, f->name, (long long)v);
          return -1;
        }
        break;
      }
      case DMT_FIELD_BOOL: break;
    }
    continue;
  too_long:
    snprintf(err, errlen, "%s: `%s` exceeds its schema limit", d->name, f->name);
    return -1;
  }

  msgpack_packer pk;
  msgpack_packer_init(&pk, out, msgpack_sbuffer_write);
  msgpack_pack_map(&pk, count);
  for (size_t i = 0; i < d->nfields; i++) {
    const struct dmt_field_desc *f = &d->fields[i];
    if (!field_set(d, f, msg)) continue;
    pack_str(&pk, f->name, strlen(f->name));
    switch (f->type) {
      case DMT_FIELD_STR: {
        const char *s = *FIELD(msg, f, char *);
        pack_str(&pk, s, strlen(s));
        break;
      }
      case DMT_FIELD_INT: msgpack_pack_int64(&pk, *FIELD(msg, f, int64_t)); break;
      case DMT_FIELD_BOOL:
        if (*FIELD(msg, f, bool)) msgpack_pack_true(&pk);
        else msgpack_pack_false(&pk);
        break;
      case DMT_FIELD_BIN:
        msgpack_pack_bin(&pk, *LENF(msg, f));
        msgpack_pack_bin_body(&pk, *FIELD(msg, f, uint8_t *), *LENF(msg, f));
        break;
      case DMT_FIELD_STRARR: {
        size_t n = *LENF(msg, f);
        char **items = *FIELD(msg, f, char **);
        msgpack_pack_array(&pk, n);
        for (size_t k = 0; k < n; k++) pack_str(&pk, items[k], strlen(items[k]));
        break;
      }
      case DMT_FIELD_ANY:
        msgpack_sbuffer_write(out, (const char *)*FIELD(msg, f, uint8_t *), *LENF(msg, f));
        break;
    }
  }
  return 0;
}

/* ---- decode ---- */

static char *copy_str(const msgpack_object *o) {
  char *s = malloc(o->via.str.size + 1);
  if (!s) return NULL;
  memcpy(s, o->via.str.ptr, o->via.str.size);
  s[o->via.str.size] = '\0';
  return s;
}

static int check_str(const struct dmt_msg_desc *d, const struct dmt_field_desc *f,
                     const msgpack_object *o, char *err, size_t errlen) {
  if (o->type != MSGPACK_OBJECT_STR) {
    snprintf(err, errlen, "%s: `%s` must be a string", d->name, f->name);
    return -1;
  }
  if (o->via.str.size > f->max_len) {
    snprintf(err, errlen, "%s: `%s` is longer than %zu bytes", d->name, f->name, f->max_len);
    return -1;
  }
  if (memchr(o->via.str.ptr, '\0', o->via.str.size) || !utf8_valid(o->via.str.ptr, o->via.str.size)) {
    snprintf(err, errlen, "%s: `%s` is not valid UTF-8 text", d->name, f->name);
    return -1;
  }
  return 0;
}

static int decode_field(const struct dmt_msg_desc *d, const struct dmt_field_desc *f,
                        const msgpack_object *o, void *msg, char *err, size_t errlen) {
  switch (f->type) {
    case DMT_FIELD_STR:
      if (check_str(d, f, o, err, errlen) != 0) return -1;
      if (!(*FIELD(msg, f, char *) = copy_str(o))) goto oom;
      return 0;
    case DMT_FIELD_INT: {
      int64_t v;
      if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER && o->via.u64 <= (uint64_t)INT64_MAX)
        v = (int64_t)o->via.u64;
      else if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER)
        v = o->via.i64;
      else {
        snprintf(err, errlen, "%s: `%s` must be an integer", d->name, f->name);
        return -1;
      }
      if (v < f->min || v > f->max) {
        snprintf(err, errlen, "%s: `%s` = %lld out of range", d->name, f->name, (long long)v);
        return -1;
      }
      *FIELD(msg, f, int64_t) = v;
      return 0;
    }
    case DMT_FIELD_BOOL:
      if (o->type != MSGPACK_OBJECT_BOOLEAN) {
        snprintf(err, errlen, "%s: `%s` must be a boolean", d->name, f->name);
        return -1;
      }
      *FIELD(msg, f, bool) = o->via.boolean;
      return 0;
    case DMT_FIELD_BIN: {
      if (o->type != MSGPACK_OBJECT_BIN || o->via.bin.size > f->max_len) {
        snprintf(err, errlen, "%s: `%s` must be binary of at most %zu bytes", d->name, f->name,
                 f->max_len);
        return -1;
      }
      uint8_t *p = malloc(o->via.bin.size ? o->via.bin.size : 1);
      if (!p) goto oom;
      memcpy(p, o->via.bin.ptr, o->via.bin.size);
      *FIELD(msg, f, uint8_t *) = p;
      *LENF(msg, f) = o->via.bin.size;
      return 0;
    }
    case DMT_FIELD_STRARR: {
      if (o->type != MSGPACK_OBJECT_ARRAY || o->via.array.size > f->max_items) {
        snprintf(err, errlen, "%s: `%s` must be an array of at most %zu strings", d->name, f->name,
                 f->max_items);
        return -1;
      }
      size_t n = o->via.array.size;
      char **items = calloc(n ? n : 1, sizeof *items);
      if (!items) goto oom;
      *FIELD(msg, f, char **) = items;
      for (size_t k = 0; k < n; k++) {
        if (check_str(d, f, &o->via.array.ptr[k], err, errlen) != 0) return -1;
        if (!(items[k] = copy_str(&o->via.array.ptr[k]))) goto oom;
        *LENF(msg, f) = k + 1;
      }
      return 0;
    }
    case DMT_FIELD_ANY: {
      msgpack_sbuffer sb;
      msgpack_sbuffer_init(&sb);
      msgpack_packer pk;
      msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
      msgpack_pack_object(&pk, *o);
      if (sb.size > f->max_len) {
        msgpack_sbuffer_destroy(&sb);
        snprintf(err, errlen, "%s: `%s` is larger than %zu bytes", d->name, f->name, f->max_len);
        return -1;
      }
      size_t packed = sb.size; /* release() resets the size */
      *FIELD(msg, f, uint8_t *) = (uint8_t *)msgpack_sbuffer_release(&sb);
      *LENF(msg, f) = packed;
      if (!*FIELD(msg, f, uint8_t *)) goto oom;
      return 0;
    }
  }
  return -1;
oom:
  snprintf(err, errlen, "%s: out of memory", d->name);
  return -1;
}

int dmt_payload_decode(const struct dmt_msg_desc *d, const void *buf, size_t len, void *msg,
                       char *err, size_t errlen) {
  /* Zero only what the table describes: the caller's struct is sized by the generator. */
  for (size_t i = 0; i < d->nfields; i++) {
    const struct dmt_field_desc *f = &d->fields[i];
    switch (f->type) {
      case DMT_FIELD_STR: *FIELD(msg, f, char *) = NULL; break;
      case DMT_FIELD_INT: *FIELD(msg, f, int64_t) = 0; break;
      case DMT_FIELD_BOOL: *FIELD(msg, f, bool) = false; break;
      case DMT_FIELD_STRARR: *FIELD(msg, f, char **) = NULL; *LENF(msg, f) = 0; break;
      case DMT_FIELD_BIN:
      case DMT_FIELD_ANY: *FIELD(msg, f, uint8_t *) = NULL; *LENF(msg, f) = 0; break;
    }
  }
  *PRESENT(msg, d) = 0;
  if (!buf || len == 0) {
    snprintf(err, errlen, "%s: empty payload", d->name);
    return -1;
  }
  if (dmt_msgpack_check(buf, len, MAX_DEPTH, err, errlen) != 0) return -1;

  msgpack_unpacked up;
  msgpack_unpacked_init(&up);
  size_t off = 0;
  int rc = -1;
  if (msgpack_unpack_next(&up, buf, len, &off) != MSGPACK_UNPACK_SUCCESS || off != len) {
    snprintf(err, errlen, "%s: malformed msgpack", d->name);
    goto out;
  }
  const msgpack_object *root = &up.data;
  if (root->type != MSGPACK_OBJECT_MAP) {
    snprintf(err, errlen, "%s: payload must be a map", d->name);
    goto out;
  }
  uint64_t seen = 0;
  for (uint32_t i = 0; i < root->via.map.size; i++) {
    const msgpack_object *k = &root->via.map.ptr[i].key, *v = &root->via.map.ptr[i].val;
    if (k->type != MSGPACK_OBJECT_STR) {
      snprintf(err, errlen, "%s: map keys must be strings", d->name);
      goto out;
    }
    for (size_t fi = 0; fi < d->nfields; fi++) {
      const struct dmt_field_desc *f = &d->fields[fi];
      if (strlen(f->name) != k->via.str.size || memcmp(f->name, k->via.str.ptr, k->via.str.size)) continue;
      if (seen & (1ull << fi)) {
        snprintf(err, errlen, "%s: duplicate key `%s`", d->name, f->name);
        goto out;
      }
      seen |= 1ull << fi;
      if (decode_field(d, f, v, msg, err, errlen) != 0) goto out;
      *PRESENT(msg, d) |= f->bit;
      break;
    }
  }
  for (size_t fi = 0; fi < d->nfields; fi++) {
    if (d->fields[fi].required && !(seen & (1ull << fi))) {
      snprintf(err, errlen, "%s: required field `%s` is missing", d->name, d->fields[fi].name);
      goto out;
    }
  }
  rc = 0;
out:
  msgpack_unpacked_destroy(&up);
  if (rc != 0) dmt_payload_free(d, msg);
  return rc;
}

void dmt_payload_free(const struct dmt_msg_desc *d, void *msg) {
  for (size_t i = 0; i < d->nfields; i++) {
    const struct dmt_field_desc *f = &d->fields[i];
    switch (f->type) {
      case DMT_FIELD_STR:
        free(*FIELD(msg, f, char *));
        *FIELD(msg, f, char *) = NULL;
        break;
      case DMT_FIELD_STRARR: {
        char **items = *FIELD(msg, f, char **);
        for (size_t k = 0; items && k < *LENF(msg, f); k++) free(items[k]);
        free(items);
        *FIELD(msg, f, char **) = NULL;
        *LENF(msg, f) = 0;
        break;
      }
      case DMT_FIELD_BIN:
      case DMT_FIELD_ANY:
        free(*FIELD(msg, f, uint8_t *));
        *FIELD(msg, f, uint8_t *) = NULL;
        *LENF(msg, f) = 0;
        break;
      default: break;
    }
  }
  *PRESENT(msg, d) = 0;
}

int dmt_payload_set_any(uint8_t **field, size_t *len, const void *packed, size_t packed_len) {
  uint8_t *p = malloc(packed_len ? packed_len : 1);
  if (!p) return -1;
  memcpy(p, packed, packed_len);
  free(*field);
  *field = p;
  *len = packed_len;
  return 0;
}
