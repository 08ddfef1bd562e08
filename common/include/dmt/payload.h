/*
 * Table-driven msgpack codec for the payload schemas in schemas/payloads/.
 * tools/schemagen turns each schema into a C struct plus a field table
 * (generated dmt/payloads.h); this file encodes and decodes any such struct
 * by walking its table, so there is one audited decoder, not one per message.
 *
 * Wire form: a msgpack map with string keys. Decoding rejects, with a clear
 * message: a non-map, duplicate keys, wrong types, strings/arrays/binaries
 * over their schema limits, integers out of range, missing required fields,
 * trailing bytes, nesting deeper than 32 and any length field that claims
 * more bytes than the input holds (checked before msgpack-c allocates).
 * Unknown keys are skipped so fields can be added compatibly.
 */
#ifndef DMT_PAYLOAD_H
#define DMT_PAYLOAD_H

#include <msgpack.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum dmt_field_type {
  DMT_FIELD_STR,    /* char *            (NUL-terminated UTF-8, no embedded NUL) */
  DMT_FIELD_INT,    /* int64_t */
  DMT_FIELD_BOOL,   /* bool */
  DMT_FIELD_BIN,    /* uint8_t * + size_t len */
  DMT_FIELD_STRARR, /* char ** + size_t count */
  DMT_FIELD_ANY,    /* uint8_t * + size_t len: one raw msgpack value */
};

struct dmt_field_desc {
  const char *name;
  enum dmt_field_type type;
  size_t offset;     /* of the value (pointer, int, bool) */
  size_t len_offset; /* of the companion length/count (BIN, STRARR, ANY) */
  uint32_t bit;      /* presence bit in the struct's `present` */
  bool required;
  size_t max_len;    /* bytes for STR/BIN/ANY and per item for STRARR */
  size_t max_items;  /* STRARR */
  int64_t min, max;  /* INT */
};

struct dmt_msg_desc {
  const char *name;
  const struct dmt_field_desc *fields;
  size_t nfields;
  size_t present_offset;
};

/* Appends the encoded message to out. Fails if a required field is missing or a limit is exceeded. */
int dmt_payload_encode(const struct dmt_msg_desc *d, const void *msg, msgpack_sbuffer *out,
                       char *err, size_t errlen);
/* Fills msg (zeroed first). On failure msg holds nothing to free. */
int dmt_payload_decode(const struct dmt_msg_desc *d, const void *buf, size_t len, void *msg,
                       char *err, size_t errlen);
void dmt_payload_free(const struct dmt_msg_desc *d, void *msg);

/*
 * Checks that buf[0..len) is exactly one well-formed msgpack value with
 * nesting <= max_depth and no length claiming more than the remaining input.
 */
int dmt_msgpack_check(const void *buf, size_t len, int max_depth, char *err, size_t errlen);

/* Sets an ANY field from a packed value (copied). */
int dmt_payload_set_any(uint8_t **field, size_t *len, const void *packed, size_t packed_len);

#endif
