/*
 * schemagen: turns the payload schemas in schemas/payloads/ (one JSON file per message) into C.
 * For each schema it emits a struct, presence bits, a field table for the
 * table-driven codec in common/payload.c and typed encode/decode/free
 * wrappers. The schemas use a small, documented subset of JSON Schema
 * (type string/integer/boolean/array-of-string, plus "binary" and "any"),
 * so they stay readable by people and other languages.
 *
 *   schemagen OUT.h OUT.c SCHEMA.json...
 */
#include <ctype.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void die(const char *file, const char *msg) {
  fprintf(stderr, "schemagen: %s: %s\n", file, msg);
  exit(1);
}

static void upper(const char *in, char *out, size_t n) {
  size_t i = 0;
  for (; in[i] && i + 1 < n; i++) out[i] = (char)toupper((unsigned char)in[i]);
  out[i] = '\0';
}

static const char *ftype(const char *file, json_t *prop) {
  const char *t = json_string_value(json_object_get(prop, "type"));
  if (!t) die(file, "property without type");
  if (!strcmp(t, "string")) return "DMT_FIELD_STR";
  if (!strcmp(t, "integer")) return "DMT_FIELD_INT";
  if (!strcmp(t, "boolean")) return "DMT_FIELD_BOOL";
  if (!strcmp(t, "binary")) return "DMT_FIELD_BIN";
  if (!strcmp(t, "any")) return "DMT_FIELD_ANY";
  if (!strcmp(t, "array")) {
    const char *it = json_string_value(json_object_get(json_object_get(prop, "items"), "type"));
    if (!it || strcmp(it, "string")) die(file, "only arrays of strings are supported");
    return "DMT_FIELD_STRARR";
  }
  die(file, "unsupported property type");
  return NULL;
}

static long long num(json_t *o, const char *key, long long def) {
  json_t *v = json_object_get(o, key);
  return json_is_integer(v) ? json_integer_value(v) : def;
}

static int is_required(json_t *schema, const char *name) {
  size_t i;
  json_t *v;
  json_array_foreach(json_object_get(schema, "required"), i, v) {
    if (json_is_string(v) && !strcmp(json_string_value(v), name)) return 1;
  }
  return 0;
}

int main(int argc, char **argv) {
  if (argc < 4) {
    fprintf(stderr, "usage: schemagen OUT.h OUT.c SCHEMA.json...\n");
    return 2;
  }
  FILE *h = fopen(argv[1], "w"), *c = fopen(argv[2], "w");
  if (!h || !c) die(argv[1], "cannot write output");
  fprintf(h, "/* Generated from schemas/payloads by tools/schemagen. Do not edit. */\n"
             "#ifndef DMT_PAYLOADS_H\n#define DMT_PAYLOADS_H\n\n#include <stdbool.h>\n#include <stddef.h>\n"
             "#include <stdint.h>\n\n#include \"dmt/payload.h\"\n\n");
  fprintf(c, "/* Generated from schemas/payloads by tools/schemagen. Do not edit. */\n"
             "#include \"dmt/payloads.h\"\n\n#include <stdint.h>\n\n");
  for (int a = 3; a < argc; a++) {
    const char *file = argv[a];
    json_error_t jerr;
    json_t *s = json_load_file(file, 0, &jerr);
    if (!s) die(file, jerr.text);
    const char *id = json_string_value(json_object_get(s, "$id"));
    json_t *props = json_object_get(s, "properties");
    if (!id || !json_is_object(props)) die(file, "needs $id and properties");
    if (json_object_size(props) > 32) die(file, "at most 32 properties per message");
    char ID[128];
    upper(id, ID, sizeof ID);
    const char *title = json_string_value(json_object_get(s, "title"));
    const char *topic = json_string_value(json_object_get(s, "topic"));

    fprintf(h, "/* %s\n * topic: %s */\nstruct dmt_%s {\n  uint32_t present; /* DMT_%s_* bits */\n",
            title ? title : id, topic ? topic : "-", id, ID);
    const char *key;
    json_t *p;
    unsigned bit = 0;
    json_object_foreach(props, key, p) {
      const char *t = ftype(file, p);
      const char *doc = json_string_value(json_object_get(p, "description"));
      char comment[1024] = "";
      if (doc) snprintf(comment, sizeof comment, " /* %s */", doc);
      if (!strcmp(t, "DMT_FIELD_STR")) fprintf(h, "  char *%s;%s\n", key, comment);
      else if (!strcmp(t, "DMT_FIELD_INT")) fprintf(h, "  int64_t %s;%s\n", key, comment);
      else if (!strcmp(t, "DMT_FIELD_BOOL")) fprintf(h, "  bool %s;%s\n", key, comment);
      else if (!strcmp(t, "DMT_FIELD_STRARR")) fprintf(h, "  char **%s;%s\n  size_t %s_count;\n", key, comment, key);
      else fprintf(h, "  uint8_t *%s;%s\n  size_t %s_len;\n", key, comment, key);
      bit++;
    }
    fprintf(h, "};\n");
    bit = 0;
    json_object_foreach(props, key, p) {
      char K[128];
      upper(key, K, sizeof K);
      fprintf(h, "#define DMT_%s_%s (1u << %u)\n", ID, K, bit++);
    }
    fprintf(h,
            "extern const struct dmt_msg_desc dmt_%s_desc;\n"
            "static inline int dmt_%s_encode(const struct dmt_%s *m, msgpack_sbuffer *out, char *err, size_t errlen) {\n"
            "  return dmt_payload_encode(&dmt_%s_desc, m, out, err, errlen);\n}\n"
            "static inline int dmt_%s_decode(const void *buf, size_t len, struct dmt_%s *m, char *err, size_t errlen) {\n"
            "  return dmt_payload_decode(&dmt_%s_desc, buf, len, m, err, errlen);\n}\n"
            "static inline void dmt_%s_free(struct dmt_%s *m) { dmt_payload_free(&dmt_%s_desc, m); }\n\n",
            id, id, id, id, id, id, id, id, id, id);

    fprintf(c, "static const struct dmt_field_desc %s_fields[] = {\n", id);
    bit = 0;
    json_object_foreach(props, key, p) {
      const char *t = ftype(file, p);
      int has_len = !strcmp(t, "DMT_FIELD_STRARR") ? 1 : (!strcmp(t, "DMT_FIELD_BIN") || !strcmp(t, "DMT_FIELD_ANY")) ? 2 : 0;
      long long maxlen = !strcmp(t, "DMT_FIELD_ANY") ? num(p, "maxBytes", 1048576)
                         : has_len == 1 ? num(json_object_get(p, "items"), "maxLength", 256)
                                        : num(p, "maxLength", 4096);
      fprintf(c, "  {\"%s\", %s, offsetof(struct dmt_%s, %s), ", key, t, id, key);
      if (has_len == 1) fprintf(c, "offsetof(struct dmt_%s, %s_count), ", id, key);
      else if (has_len == 2) fprintf(c, "offsetof(struct dmt_%s, %s_len), ", id, key);
      else fprintf(c, "0, ");
      fprintf(c, "1u << %u, %s, %lld, %lld, %lldLL, %lldLL},\n", bit++, is_required(s, key) ? "true" : "false",
              maxlen, num(p, "maxItems", 1024), num(p, "minimum", -9223372036854775807LL),
              num(p, "maximum", 9223372036854775807LL));
    }
    fprintf(c, "};\nconst struct dmt_msg_desc dmt_%s_desc = {\"%s\", %s_fields, %zu, offsetof(struct dmt_%s, present)};\n\n",
            id, id, id, json_object_size(props), id);
    json_decref(s);
  }
  fprintf(h, "#endif\n");
  if (fclose(h) || fclose(c)) die(argv[1], "write failed");
  return 0;
}
