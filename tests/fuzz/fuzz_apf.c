/*
 * Fuzz target: the APF decoder as a server runs it, over an arbitrary byte
 * stream fed in pieces whose sizes come from the input itself. Checks the
 * reassembly invariant: a stream decodes to the same messages however it is
 * split, and every decoded string lies inside the input.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dmt/apf.h"

static void check_str(struct dmt_apf_str s, const uint8_t *buf, size_t len) {
  if (s.len && (s.p < buf || s.p + s.len > buf + len)) abort();
}

/* Decodes the whole of buf; returns the number of messages and a checksum of their types/sizes. */
static size_t decode_all(const uint8_t *buf, size_t len, uint64_t *sum, int *last) {
  size_t off = 0, n = 0;
  for (;;) {
    struct dmt_apf_msg m;
    size_t used = 0;
    int rc = dmt_apf_decode(buf + off, len - off, 0, &m, &used);
    *last = rc;
    if (rc != DMT_APF_OK) break;
    if (used == 0 || used > len - off) abort();
    if (m.type == DMT_APF_CHANNEL_DATA) check_str(m.u.channel_data.data, buf + off, used);
    if (m.type == DMT_APF_USERAUTH_REQUEST) {
      check_str(m.u.userauth.username, buf + off, used);
      check_str(m.u.userauth.password, buf + off, used);
    }
    *sum = *sum * 31 + m.type * 1000003u + used;
    off += used;
    n++;
  }
  return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  uint64_t whole_sum = 0;
  int whole_last;
  size_t whole = decode_all(data, size, &whole_sum, &whole_last);

  /* Feed the same stream through an accumulating buffer in input-chosen pieces. */
  struct dmt_buf acc;
  dmt_buf_init(&acc, 4u << 20);
  uint64_t sum = 0;
  size_t n = 0, off = 0, step = 1;
  int last = DMT_APF_NEED_MORE;
  while (off < size && last >= 0) {
    size_t piece = step < size - off ? step : size - off;
    step = (data[off] % 17) + 1;
    if (dmt_buf_append(&acc, data + off, piece) != 0) break;
    off += piece;
    for (;;) {
      struct dmt_apf_msg m;
      size_t used = 0;
      last = dmt_apf_decode(dmt_buf_ptr(&acc), dmt_buf_size(&acc), 0, &m, &used);
      if (last != DMT_APF_OK) break;
      sum = sum * 31 + m.type * 1000003u + used;
      dmt_buf_consume(&acc, used);
      n++;
    }
  }
  dmt_buf_free(&acc);
  /* Same messages, same ending, however split. (USERAUTH_FAILURE's optional
   * trailing zero byte legitimately depends on the split: skip such streams.) */
  if (!memchr(data, DMT_APF_USERAUTH_FAILURE, size) &&
      (n != whole || sum != whole_sum || (last < 0) != (whole_last < 0)))
    abort();
  return 0;
}
