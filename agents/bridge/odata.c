/*
 * OData-style paging shared by every list route: $top (default 25), $skip
 * (default 0) and $count, with DMT's exact validation messages (MPS
 * deviceValidator.ts odataValidator and RPS odataValidator.ts are the same).
 * With $count=true a list answers {"data":[...],"totalCount":N}, else a bare
 * array.
 */
#include <stdlib.h>
#include <string.h>

#include "bridge.h"

#define MSG_TOP "The number of items to return should be a positive integer"
#define MSG_SKIP "The number of items to skip before starting to collect the result set should be a positive integer"
#define MSG_COUNT "To return total number of records in result set should be boolean"

BR_CHAIN(br_odata_chain,
         V_FIELD_AT(BR_LOC_QUERY, "$top", BR_OPTIONAL, V_INT(0, BR_LL_MAX, MSG_TOP)),
         V_FIELD_AT(BR_LOC_QUERY, "$skip", BR_OPTIONAL, V_INT(0, BR_LL_MAX, MSG_SKIP)),
         V_FIELD_AT(BR_LOC_QUERY, "$count", BR_OPTIONAL, V_BOOL(MSG_COUNT)));

size_t br_odata_parse(struct br_vctx *v, struct br_page *p, long long default_top, long long max_top,
                      json_t *errors) {
  size_t n = br_validate(&br_odata_chain, v, errors);
  p->top = default_top;
  p->skip = 0;
  p->count = false;
  if (n) return n;
  const json_t *top = json_object_get(v->query, "$top");
  const json_t *skip = json_object_get(v->query, "$skip");
  const json_t *count = json_object_get(v->query, "$count");
  if (json_is_string(top)) br_fmt_int(json_string_value(top), &p->top);
  if (json_is_string(skip)) br_fmt_int(json_string_value(skip), &p->skip);
  if (json_is_string(count)) {
    const char *c = json_string_value(count);
    p->count = !strcmp(c, "true") || !strcmp(c, "1");
  }
  if (max_top > 0 && p->top > max_top) p->top = max_top;
  return 0;
}
