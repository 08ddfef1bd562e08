/*
 * The RPC side's WebSocket framing (RFC 6455): the upgrade request, the
 * Sec-WebSocket-Accept check with the RFC's own example, masked client frames
 * of every length class decoded back, fragmented and control frames, and
 * malformed input refused.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "sim.h"

static void test_handshake(void **state) {
  struct dmt_buf b;
  dmt_buf_init(&b, 0);
  char key[32];
  assert_int_equal(sim_ws_handshake_request(&b, "rps.example.com", 8080, "/activate", key), 0);
  dmt_buf_append_u8(&b, 0);
  const char *req = (const char *)dmt_buf_ptr(&b);
  assert_int_equal(strncmp(req, "GET /activate HTTP/1.1\r\nHost: rps.example.com:8080\r\n", 52), 0);
  assert_non_null(strstr(req, "Upgrade: websocket\r\n"));
  assert_non_null(strstr(req, "Sec-WebSocket-Version: 13\r\n"));
  assert_int_equal(strlen(key), 24);
  dmt_buf_free(&b);

  /* RFC 6455 §1.3: key dGhlIHNhbXBsZSBub25jZQ== -> accept s3pPLMBiTxaQ9kYGzzhZRbK+xOo= */
  const char *ok = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                   "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n";
  uint8_t with_frame[256];
  memcpy(with_frame, ok, strlen(ok));
  with_frame[strlen(ok)] = 0x81; /* a frame right behind the headers */
  with_frame[strlen(ok) + 1] = 0x00;
  size_t used = 0;
  assert_int_equal(sim_ws_handshake_response(with_frame, strlen(ok) + 2, "dGhlIHNhbXBsZSBub25jZQ==", &used), 1);
  assert_int_equal(used, strlen(ok)); /* the frame is left for the frame parser */
  assert_int_equal(sim_ws_handshake_response((const uint8_t *)ok, 40, "dGhlIHNhbXBsZSBub25jZQ==", &used), 0);
  assert_int_equal(sim_ws_handshake_response((const uint8_t *)ok, strlen(ok), "AAAAAAAAAAAAAAAAAAAAAA==", &used), -1);
  const char *refused = "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n";
  assert_int_equal(sim_ws_handshake_response((const uint8_t *)refused, strlen(refused), "x", &used), -1);
}

static void round_trip(size_t len) {
  uint8_t *payload = malloc(len + 1);
  for (size_t i = 0; i < len; i++) payload[i] = (uint8_t)(i * 31 + 7);
  struct dmt_buf b;
  dmt_buf_init(&b, 0);
  assert_int_equal(sim_ws_frame(&b, SIM_WS_TEXT, payload, len), 0);
  size_t hdr = len < 126 ? 2 : len <= 0xFFFF ? 4 : 10;
  assert_int_equal(dmt_buf_size(&b), hdr + 4 + len);
  assert_true(dmt_buf_ptr(&b)[1] & 0x80); /* client frames are masked */
  struct sim_ws_frame f;
  size_t used = 0;
  /* every proper prefix needs more */
  for (size_t cut = 0; cut < dmt_buf_size(&b); cut += 1 + cut / 3)
    assert_int_equal(sim_ws_parse((uint8_t *)b.data, cut, 1u << 20, &f, &used), 0);
  assert_int_equal(sim_ws_parse((uint8_t *)b.data, dmt_buf_size(&b), 1u << 20, &f, &used), 1);
  assert_int_equal(used, dmt_buf_size(&b));
  assert_true(f.fin);
  assert_int_equal(f.opcode, SIM_WS_TEXT);
  assert_int_equal(f.len, len);
  if (len) assert_memory_equal(f.data, payload, len);
  dmt_buf_free(&b);
  free(payload);
}

static void test_frames(void **state) {
  round_trip(0);
  round_trip(125);
  round_trip(126);
  round_trip(65535);
  round_trip(65536);
  round_trip(200000);
}

static void test_server_frames_and_errors(void **state) {
  struct sim_ws_frame f;
  size_t used;
  /* unmasked server text frame "Hel" (not final) + continuation "lo" */
  uint8_t frag[] = {0x01, 0x03, 'H', 'e', 'l', 0x80, 0x02, 'l', 'o'};
  assert_int_equal(sim_ws_parse(frag, sizeof frag, 100, &f, &used), 1);
  assert_false(f.fin);
  assert_int_equal(used, 5);
  assert_int_equal(sim_ws_parse(frag + 5, 4, 100, &f, &used), 1);
  assert_true(f.fin);
  assert_int_equal(f.opcode, 0);
  /* a ping with payload */
  uint8_t ping[] = {0x89, 0x02, 'h', 'i'};
  assert_int_equal(sim_ws_parse(ping, sizeof ping, 100, &f, &used), 1);
  assert_int_equal(f.opcode, SIM_WS_PING);
  /* fragmented control frame, reserved bits, unknown opcode, oversize: protocol errors */
  uint8_t bad_ctrl[] = {0x09, 0x00};
  uint8_t rsv[] = {0xC1, 0x00};
  uint8_t opcode[] = {0x83, 0x00};
  uint8_t big[] = {0x81, 0x7E, 0x01, 0x00};
  assert_int_equal(sim_ws_parse(bad_ctrl, 2, 100, &f, &used), -1);
  assert_int_equal(sim_ws_parse(rsv, 2, 100, &f, &used), -1);
  assert_int_equal(sim_ws_parse(opcode, 2, 100, &f, &used), -1);
  assert_int_equal(sim_ws_parse(big, 4, 100, &f, &used), -1);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_handshake),
      cmocka_unit_test(test_frames),
      cmocka_unit_test(test_server_frames_and_errors),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
