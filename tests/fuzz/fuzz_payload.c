/*
 * Fuzz target: every generated payload decoder over arbitrary bytes. A decode
 * that succeeds must re-encode, and the re-encoding must decode to the same
 * bytes again (the codec is a fixed point after one round).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dmt/payloads.h"

static const struct dmt_msg_desc *const descs[] = {
    &dmt_device_state_desc, &dmt_event_desc, &dmt_command_request_desc,
    &dmt_command_reply_desc, &dmt_instance_status_desc,
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  /* Large enough for any generated struct. */
  union {
    struct dmt_device_state a;
    struct dmt_event b;
    struct dmt_command_request c;
    struct dmt_command_reply d;
    struct dmt_instance_status e;
  } msg, again;
  char err[256];
  for (size_t i = 0; i < sizeof descs / sizeof descs[0]; i++) {
    if (dmt_payload_decode(descs[i], data, size, &msg, err, sizeof err) != 0) continue;
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    if (dmt_payload_encode(descs[i], &msg, &sb, err, sizeof err) != 0) abort();
    if (dmt_payload_decode(descs[i], sb.data, sb.size, &again, err, sizeof err) != 0) abort();
    msgpack_sbuffer sb2;
    msgpack_sbuffer_init(&sb2);
    if (dmt_payload_encode(descs[i], &again, &sb2, err, sizeof err) != 0) abort();
    if (sb.size != sb2.size || memcmp(sb.data, sb2.data, sb.size) != 0) abort();
    msgpack_sbuffer_destroy(&sb);
    msgpack_sbuffer_destroy(&sb2);
    dmt_payload_free(descs[i], &msg);
    dmt_payload_free(descs[i], &again);
  }
  return 0;
}
