/*
 * Fuzz target: WS-Man parsing from both sides. A response that parses must
 * yield a msgpack tree that passes the structural check and converts to
 * JSON; a request that parses must be answerable.
 */
#include <stdint.h>
#include <stdlib.h>

#include "dmt/mptree.h"
#include "dmt/payload.h"
#include "dmt/wsman.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static int init;
  if (!init) {
    dmt_wsman_init();
    init = 1;
  }
  char err[256];
  struct dmt_wsman_response r;
  if (dmt_wsman_parse_response((const char *)data, size, &r, err, sizeof err) == 0) {
    if (dmt_msgpack_check(r.tree.data, r.tree.size, 64, err, sizeof err) != 0) abort();
    json_t *j = dmt_mp_buf_to_json(r.tree.data, r.tree.size);
    json_decref(j);
  }
  dmt_wsman_response_free(&r);
  struct dmt_wsman_request q;
  if (dmt_wsman_parse_request((const char *)data, size, &q, err, sizeof err) == 0) {
    struct dmt_buf out;
    dmt_buf_init(&out, 0);
    if (dmt_wsman_build_response(&out, &q, 1, "<g:X/>") != 0) abort();
    dmt_buf_free(&out);
    dmt_wsman_request_free(&q);
  }
  return 0;
}
