/* msgpack tree helpers and msgpack <-> JSON conversion (see dmt/mptree.h). */
#include "dmt/mptree.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dmt/payload.h"

#define MAX_DEPTH 64

const msgpack_object *dmt_mp_get(const msgpack_object *map, const char *key) {
  if (!map || map->type != MSGPACK_OBJECT_MAP) return NULL;
  size_t kl = strlen(key);
  for (uint32_t i = 0; i < map->via.map.size; i++) {
    const msgpack_object *k = &map->via.map.ptr[i].key;
    if (k->type == MSGPACK_OBJECT_STR && k->via.str.size == kl && !memcmp(k->via.str.ptr, key, kl))
      return &map->via.map.ptr[i].val;
  }
  return NULL;
}

const msgpack_object *dmt_mp_path(const msgpack_object *root, const char *path) {
  char seg[128];
  const msgpack_object *o = root;
  while (o && *path) {
    size_t n = strcspn(path, ".[");
    if (n >= sizeof seg) return NULL;
    memcpy(seg, path, n);
    seg[n] = '\0';
    path += n;
    if (n) o = dmt_mp_get(o, seg);
    while (o && *path == '[') {
      char *end;
      unsigned long idx = strtoul(path + 1, &end, 10);
      if (*end != ']') return NULL;
      o = dmt_mp_list_at(o, idx);
      path = end + 1;
    }
    if (*path == '.') path++;
  }
  return o;
}

size_t dmt_mp_list_len(const msgpack_object *o) {
  if (!o) return 0;
  return o->type == MSGPACK_OBJECT_ARRAY ? o->via.array.size : 1;
}

const msgpack_object *dmt_mp_list_at(const msgpack_object *o, size_t i) {
  if (!o) return NULL;
  if (o->type == MSGPACK_OBJECT_ARRAY) return i < o->via.array.size ? &o->via.array.ptr[i] : NULL;
  return i == 0 ? o : NULL;
}

bool dmt_mp_text(const msgpack_object *o, char *out, size_t outlen) {
  if (!o || outlen == 0) return false;
  switch (o->type) {
    case MSGPACK_OBJECT_STR: snprintf(out, outlen, "%.*s", (int)o->via.str.size, o->via.str.ptr); return true;
    case MSGPACK_OBJECT_POSITIVE_INTEGER: snprintf(out, outlen, "%" PRIu64, o->via.u64); return true;
    case MSGPACK_OBJECT_NEGATIVE_INTEGER: snprintf(out, outlen, "%" PRId64, o->via.i64); return true;
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64: snprintf(out, outlen, "%.17g", o->via.f64); return true;
    case MSGPACK_OBJECT_BOOLEAN: snprintf(out, outlen, "%s", o->via.boolean ? "true" : "false"); return true;
    default: return false;
  }
}

bool dmt_mp_int(const msgpack_object *o, int64_t *out) {
  if (!o) return false;
  switch (o->type) {
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
      if (o->via.u64 > INT64_MAX) return false;
      *out = (int64_t)o->via.u64;
      return true;
    case MSGPACK_OBJECT_NEGATIVE_INTEGER: *out = o->via.i64; return true;
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64:
      if (!isfinite(o->via.f64) || o->via.f64 != floor(o->via.f64) || fabs(o->via.f64) > 9e15) return false;
      *out = (int64_t)o->via.f64;
      return true;
    case MSGPACK_OBJECT_STR: {
      char buf[32], *end;
      if (o->via.str.size == 0 || o->via.str.size >= sizeof buf) return false;
      memcpy(buf, o->via.str.ptr, o->via.str.size);
      buf[o->via.str.size] = '\0';
      errno = 0;
      long long v = strtoll(buf, &end, 10);
      if (errno || *end) return false;
      *out = v;
      return true;
    }
    default: return false;
  }
}

static json_t *to_json(const msgpack_object *o, int depth) {
  if (depth > MAX_DEPTH) return NULL;
  switch (o->type) {
    case MSGPACK_OBJECT_NIL: return json_null();
    case MSGPACK_OBJECT_BOOLEAN: return json_boolean(o->via.boolean);
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
      return o->via.u64 <= INT64_MAX ? json_integer((json_int_t)o->via.u64) : json_real((double)o->via.u64);
    case MSGPACK_OBJECT_NEGATIVE_INTEGER: return json_integer(o->via.i64);
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64: return isfinite(o->via.f64) ? json_real(o->via.f64) : json_null();
    case MSGPACK_OBJECT_STR: return json_stringn_nocheck(o->via.str.ptr, o->via.str.size);
    case MSGPACK_OBJECT_BIN: return json_stringn_nocheck(o->via.bin.ptr, o->via.bin.size);
    case MSGPACK_OBJECT_ARRAY: {
      json_t *a = json_array();
      for (uint32_t i = 0; i < o->via.array.size; i++) {
        json_t *v = to_json(&o->via.array.ptr[i], depth + 1);
        if (!v) {
          json_decref(a);
          return NULL;
        }
        json_array_append_new(a, v);
      }
      return a;
    }
    case MSGPACK_OBJECT_MAP: {
      json_t *m = json_object();
      for (uint32_t i = 0; i < o->via.map.size; i++) {
        const msgpack_object *k = &o->via.map.ptr[i].key;
        if (k->type != MSGPACK_OBJECT_STR) continue;
        json_t *v = to_json(&o->via.map.ptr[i].val, depth + 1);
        if (!v) {
          json_decref(m);
          return NULL;
        }
        json_object_setn_new_nocheck(m, k->via.str.ptr, k->via.str.size, v);
      }
      return m;
    }
    default: return json_null();
  }
}

json_t *dmt_mp_to_json(const msgpack_object *o) { return o ? to_json(o, 0) : NULL; }

static int from_json(const json_t *j, msgpack_packer *pk, int depth) {
  if (depth > MAX_DEPTH) return -1;
  switch (json_typeof(j)) {
    case JSON_OBJECT: {
      msgpack_pack_map(pk, json_object_size(j));
      const char *k;
      json_t *v;
      json_object_foreach((json_t *)j, k, v) {
        msgpack_pack_str_with_body(pk, k, strlen(k));
        if (from_json(v, pk, depth + 1)) return -1;
      }
      return 0;
    }
    case JSON_ARRAY: {
      msgpack_pack_array(pk, json_array_size(j));
      size_t i;
      json_t *v;
      json_array_foreach(j, i, v) {
        if (from_json(v, pk, depth + 1)) return -1;
      }
      return 0;
    }
    case JSON_STRING: return msgpack_pack_str_with_body(pk, json_string_value(j), json_string_length(j));
    case JSON_INTEGER: return msgpack_pack_int64(pk, json_integer_value(j));
    case JSON_REAL: return msgpack_pack_double(pk, json_real_value(j));
    case JSON_TRUE: return msgpack_pack_true(pk);
    case JSON_FALSE: return msgpack_pack_false(pk);
    default: return msgpack_pack_nil(pk);
  }
}

int dmt_json_to_mp(const json_t *j, msgpack_packer *pk) { return from_json(j, pk, 0); }

json_t *dmt_mp_buf_to_json(const void *buf, size_t len) {
  char err[128];
  if (dmt_msgpack_check(buf, len, 32, err, sizeof err) != 0) return NULL;
  msgpack_unpacked up;
  msgpack_unpacked_init(&up);
  size_t off = 0;
  json_t *j = NULL;
  if (msgpack_unpack_next(&up, buf, len, &off) == MSGPACK_UNPACK_SUCCESS) j = dmt_mp_to_json(&up.data);
  msgpack_unpacked_destroy(&up);
  return j;
}
