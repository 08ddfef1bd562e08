/*
 * Working with msgpack trees (WS-Man results, command arguments): look up a
 * value by a dotted path, read scalars leniently (numbers from text and back,
 * as DMT's JSON does), and convert to and from JSON (jansson) with a depth
 * limit. The trees come from msgpack_unpack_next(); keep the msgpack_unpacked
 * alive while using pointers into it.
 */
#ifndef DMT_MPTREE_H
#define DMT_MPTREE_H

#include <jansson.h>
#include <msgpack.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* "Body.PullResponse.Items.CIM_Processor" — map keys separated by '.'; "[n]" after a key indexes an array. */
const msgpack_object *dmt_mp_path(const msgpack_object *root, const char *path);
/* Map member by exact key; NULL if absent or root is not a map. */
const msgpack_object *dmt_mp_get(const msgpack_object *map, const char *key);
/* Text of a string, or the decimal rendering of a number/boolean; false otherwise. */
bool dmt_mp_text(const msgpack_object *o, char *out, size_t outlen);
/* Integer from an integer, an integral double or a decimal string. */
bool dmt_mp_int(const msgpack_object *o, int64_t *out);
/* Number of elements as a list: an array's size, 1 for any other present value, 0 for NULL. */
size_t dmt_mp_list_len(const msgpack_object *o);
/* The i-th element treating a single value as a one-element list (xml2js explicitArray:false). */
const msgpack_object *dmt_mp_list_at(const msgpack_object *o, size_t i);

/* msgpack -> JSON (NULL if nested deeper than 64 or not representable). */
json_t *dmt_mp_to_json(const msgpack_object *o);
/* JSON -> msgpack; -1 if nested deeper than 64. */
int dmt_json_to_mp(const json_t *j, msgpack_packer *pk);
/* Unpacks buf (checked by dmt_msgpack_check first) and converts it to JSON; NULL on error. */
json_t *dmt_mp_buf_to_json(const void *buf, size_t len);

#endif
