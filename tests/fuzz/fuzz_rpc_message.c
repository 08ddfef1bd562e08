/*
 * Fuzz target: the RPS agent's WebSocket message decoder, as the server runs
 * it on every text frame: the envelope (strict JSON object, 100 KiB cap), the
 * protocol version check, the method command line (minimist emulation) and,
 * for job-starting methods, the base64 payload and the device JSON in it.
 * Invariants: a decoded envelope has a non-empty method; an encoded server
 * message is valid JSON that the decoder accepts; a decoded device has a
 * 36-character lowercase GUID and at most 64 certificate hashes.
 */
#include <ctype.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "rps.h"

static void check_device(const uint8_t *json, size_t len) {
  struct rpc_device d;
  char err[256];
  if (rpc_device_decode(json, len, "fuzz", &d, err, sizeof err) != 0) return;
  if (strlen(d.uuid) != 36 || d.ncert_hashes > 64) abort();
  for (const char *p = d.uuid; *p; p++)
    if (isupper((unsigned char)*p)) abort();
  rpc_device_free(&d);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size > RPS_MAX_MESSAGE + 16) return 0;
  /* the first byte picks: 0 = the device payload alone, otherwise a whole message */
  if (size > 0 && data[0] == 0) {
    check_device(data + 1, size - 1);
    return 0;
  }
  char *text = malloc(size + 1);
  if (!text) return 0;
  memcpy(text, data, size);
  text[size] = '\0';
  struct rpc_msg m;
  char err[512];
  if (rpc_msg_decode(text, size, &m, err, sizeof err) == 0) {
    if (!m.method || !*m.method) abort();
    if (m.protocol_version) rpc_version_check(m.protocol_version, RPS_PROTOCOL_VERSION, err, sizeof err);
    struct rpc_command c;
    rpc_command_parse(m.method, &c);
    if (!c.method) abort();
    if (m.payload) {
      uint8_t *raw = NULL;
      size_t rawlen = 0;
      if (rps_b64_decode(m.payload, strlen(m.payload), &raw, &rawlen) == 0) {
        check_device(raw, rawlen);
        free(raw);
      }
    }
    /* whatever the client sent, our answer about it is a message we accept ourselves */
    char *reply = rpc_msg_encode("error", "failed", m.method, m.payload);
    struct rpc_msg back;
    if (!reply || rpc_msg_decode(reply, strlen(reply), &back, err, sizeof err) != 0) abort();
    if (strcmp(back.message, m.method) || (m.payload && strcmp(back.payload, m.payload))) abort();
    rpc_msg_free(&back);
    free(reply);
    rpc_command_free(&c);
    rpc_msg_free(&m);
  }
  free(text);
  return 0;
}
