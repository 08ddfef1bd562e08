/*
 * Fuzz target: the HTTP request and response parsers fed the input in
 * input-chosen pieces, and the Digest header parsers on its text. Whatever
 * happens, bodies stay within their caps and nothing reads out of bounds.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dmt/digest.h"
#include "dmt/http.h"

static void feed(bool request, const uint8_t *data, size_t size) {
  struct dmt_http_parser p;
  dmt_http_parser_init(&p, request, 64 * 1024);
  size_t off = 0;
  while (off < size) {
    size_t piece = (data[off] % 23) + 1;
    if (piece > size - off) piece = size - off;
    size_t used = 0;
    int rc = dmt_http_parse(&p, data + off, piece, &used);
    if (rc < 0) break;
    if (used > piece) abort();
    off += used;
    if (rc == DMT_HTTP_DONE) {
      if (dmt_buf_size(&p.body) > 64 * 1024) abort();
      (void)dmt_http_header(&p, "WWW-Authenticate");
      dmt_http_parser_reset(&p);
    }
  }
  dmt_http_parse_eof(&p);
  dmt_http_parser_free(&p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  feed(true, data, size);
  feed(false, data, size);
  char *text = malloc(size + 1);
  memcpy(text, data, size);
  text[size] = '\0';
  struct dmt_digest_challenge c;
  if (dmt_digest_parse_challenge(text, &c) == 0) {
    char out[1024];
    dmt_digest_authorization("admin", "P@ssw0rd", &c, "POST", "/wsman", 1, "abc", out, sizeof out);
  }
  struct dmt_digest_credentials cr;
  if (dmt_digest_parse_authorization(text, &cr) == 0)
    dmt_digest_verify(&cr, "POST", "admin", "Digest:00000000000000000000000000000000", "n",
                      "00000000000000000000000000000000");
  free(text);
  return 0;
}
