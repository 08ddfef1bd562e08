/*
 * APF codec against the byte layouts of ../shared/reference/mps-cira.md §1:
 * the real AMT capture, gwm's vectors, every message split at every offset,
 * several messages in one buffer, and every error path.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "dmt/apf.h"
#include "dmt/amt_guid.h"

/* AMT 9.1.42 capture (MeshCentral issue #103): PROTOCOLVERSION, SERVICE_REQUEST(auth), USERAUTH. */
static const uint8_t capture_pv[93] = {
    0xc0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 3,
    0x80, 0xb3, 0x62, 0xd1, 0x30, 0xc3, 0xe3, 0x11, 0x82, 0xa5, 0x40, 0xa8, 0xf0, 0xa2, 0xa5, 0x36};
static const uint8_t capture_auth[] = {0x05, 0, 0, 0, 0x12, 'a', 'u', 't', 'h', '@', 'a', 'm', 't', '.',
                                       'i', 'n', 't', 'e', 'l', '.', 'c', 'o', 'm'};
static const uint8_t capture_userauth[] = {
    0x32, 0, 0, 0, 0x10, '4', 'b', 'p', 'i', 'J', 'j', 'g', '1', '1', '4', 'z', 'S', 'w', 'm', 'u', 'a',
    0, 0, 0, 0x12, 'p', 'f', 'w', 'd', '@', 'a', 'm', 't', '.', 'i', 'n', 't', 'e', 'l', '.', 'c', 'o', 'm',
    0, 0, 0, 8, 'p', 'a', 's', 's', 'w', 'o', 'r', 'd',
    0,
    0, 0, 0, 8, 'A', '@', 'x', 'e', 'w', '9', 'r', 't'};

static void test_capture_protocol_version(void **state) {
  struct dmt_apf_msg m;
  size_t used;
  assert_int_equal(dmt_apf_decode(capture_pv, sizeof capture_pv, 0, &m, &used), DMT_APF_OK);
  assert_int_equal(used, 93);
  assert_int_equal(m.type, DMT_APF_PROTOCOLVERSION);
  assert_int_equal(m.u.protocol_version.major, 1);
  assert_int_equal(m.u.protocol_version.minor, 0);
  assert_int_equal(m.u.protocol_version.trigger, DMT_APF_TRIGGER_HIT_PROVISIONING);
  char guid[37];
  dmt_amt_uuid_to_guid(m.u.protocol_version.uuid, guid);
  assert_string_equal(guid, "d162b380-c330-11e3-82a5-40a8f0a2a536");
  /* The encoder produces the same 93 bytes. */
  struct dmt_buf b;
  dmt_buf_init(&b, 0);
  assert_int_equal(dmt_apf_put_protocol_version(&b, 1, 0, 3, capture_pv + 13), 0);
  assert_int_equal(dmt_buf_size(&b), 93);
  assert_memory_equal(dmt_buf_ptr(&b), capture_pv, 93);
  dmt_buf_free(&b);
}

static void test_capture_userauth(void **state) {
  struct dmt_apf_msg m;
  size_t used;
  assert_int_equal(sizeof capture_userauth, 68);
  assert_int_equal(dmt_apf_decode(capture_userauth, sizeof capture_userauth, 0, &m, &used), DMT_APF_OK);
  assert_int_equal(used, 68);
  assert_true(dmt_apf_str_eq(m.u.userauth.username, "4bpiJjg114zSwmua"));
  assert_true(dmt_apf_str_eq(m.u.userauth.service, DMT_APF_SERVICE_PFWD));
  assert_true(dmt_apf_str_eq(m.u.userauth.method, "password"));
  assert_true(dmt_apf_str_eq(m.u.userauth.password, "A@xew9rt"));
  struct dmt_buf b;
  dmt_buf_init(&b, 0);
  assert_int_equal(dmt_apf_put_userauth_password(&b, "4bpiJjg114zSwmua", DMT_APF_SERVICE_PFWD, "A@xew9rt"), 0);
  assert_int_equal(dmt_buf_size(&b), 68);
  assert_memory_equal(dmt_buf_ptr(&b), capture_userauth, 68);
  dmt_buf_free(&b);
}

static void test_service_messages_are_23_bytes(void **state) {
  struct dmt_buf b;
  dmt_buf_init(&b, 0);
  dmt_apf_put_service_request(&b, DMT_APF_SERVICE_AUTH);
  assert_int_equal(dmt_buf_size(&b), 23);
  assert_memory_equal(dmt_buf_ptr(&b), capture_auth, 23);
  dmt_buf_consume(&b, 23);
  dmt_apf_put_service_accept(&b, DMT_APF_SERVICE_PFWD);
  assert_int_equal(dmt_buf_size(&b), 23);
  assert_int_equal(dmt_buf_ptr(&b)[0], DMT_APF_SERVICE_ACCEPT);
  dmt_buf_free(&b);
}

static void test_gwm_vectors(void **state) {
  /* tcpip-forward (gwm's vector, with the real type byte 0x50) */
  const uint8_t fwd[] = {0x50, 0, 0, 0, 0x0d, 't', 'c', 'p', 'i', 'p', '-', 'f', 'o', 'r', 'w', 'a', 'r', 'd',
                         0x00, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0x42, 0x60};
  struct dmt_apf_msg m;
  size_t used;
  assert_int_equal(dmt_apf_decode(fwd, sizeof fwd, 0, &m, &used), DMT_APF_OK);
  assert_int_equal(used, sizeof fwd);
  assert_int_equal(m.u.global.kind, DMT_APF_GLOBAL_TCPIP_FORWARD);
  assert_int_equal(m.u.global.port, 16992);
  assert_int_equal(m.u.global.address.len, 3);
  const uint8_t ka[] = {0xd0, 0, 0, 0, 0x42};
  assert_int_equal(dmt_apf_decode(ka, sizeof ka, 0, &m, &used), DMT_APF_OK);
  assert_int_equal(m.u.keepalive.cookie, 0x42);
  const uint8_t kao[] = {0xd3, 0, 0, 0, 0x1e, 0, 0, 0, 0x0a};
  assert_int_equal(dmt_apf_decode(kao, sizeof kao, 0, &m, &used), DMT_APF_OK);
  assert_int_equal(m.u.keepalive_options.interval, 30);
  assert_int_equal(m.u.keepalive_options.timeout, 10);
  struct dmt_buf b;
  dmt_buf_init(&b, 0);
  dmt_apf_put_keepalive_options_reply(&b, 30, 10);
  assert_memory_equal(dmt_buf_ptr(&b), kao, sizeof kao);
  dmt_buf_free(&b);
}

/* Encodes one of everything, in both directions. */
static void encode_all(struct dmt_buf *b) {
  uint8_t uuid[16] = {0x44, 0x45, 0x4c, 0x4c, 0x4b, 0, 0x10, 0x42, 0x80, 0x33, 0xb6, 0xc0, 0x4f, 0x50, 0x46, 0x33};
  assert_int_equal(dmt_apf_put_protocol_version(b, 1, 0, 4, uuid), 0);
  dmt_apf_put_service_request(b, DMT_APF_SERVICE_AUTH);
  dmt_apf_put_service_accept(b, DMT_APF_SERVICE_AUTH);
  dmt_apf_put_userauth_password(b, "admin12345", DMT_APF_SERVICE_PFWD, "P@ssw0rd");
  dmt_apf_put_userauth_success(b);
  dmt_apf_put_userauth_failure(b, false);
  dmt_apf_put_tcpip_forward(b, false, "host", 16993);
  dmt_apf_put_tcpip_forward(b, true, "", 5900);
  dmt_apf_put_channel_open(b, "forwarded-tcpip", 4, 81920, "", 16992, "1.2.3.4", 1028);
  dmt_apf_put_channel_open_confirmation(b, 4, 77, 4096);
  dmt_apf_put_channel_open_failure(b, 9, DMT_APF_OPEN_UNKNOWN_CHANNEL_TYPE);
  dmt_apf_put_window_adjust(b, 77, 2048);
  dmt_apf_put_channel_data(b, 77, "POST /wsman", 11);
  dmt_apf_put_channel_close(b, 77);
  dmt_apf_put_keepalive_request(b, 7);
  dmt_apf_put_keepalive_reply(b, 7);
  dmt_apf_put_keepalive_options_request(b, 30, 90);
  dmt_apf_put_keepalive_options_reply(b, 30, 90);
  dmt_apf_put_disconnect(b, DMT_APF_DISC_BY_APPLICATION);
}

static const uint8_t expected_types[] = {
    DMT_APF_PROTOCOLVERSION, DMT_APF_SERVICE_REQUEST, DMT_APF_SERVICE_ACCEPT, DMT_APF_USERAUTH_REQUEST,
    DMT_APF_USERAUTH_SUCCESS, DMT_APF_USERAUTH_FAILURE, DMT_APF_GLOBAL_REQUEST, DMT_APF_GLOBAL_REQUEST,
    DMT_APF_CHANNEL_OPEN, DMT_APF_CHANNEL_OPEN_CONFIRMATION, DMT_APF_CHANNEL_OPEN_FAILURE,
    DMT_APF_CHANNEL_WINDOW_ADJUST, DMT_APF_CHANNEL_DATA, DMT_APF_CHANNEL_CLOSE, DMT_APF_KEEPALIVE_REQUEST,
    DMT_APF_KEEPALIVE_REPLY, DMT_APF_KEEPALIVE_OPTIONS_REQUEST, DMT_APF_KEEPALIVE_OPTIONS_REPLY,
    DMT_APF_DISCONNECT};

static void test_stream_of_everything(void **state) {
  struct dmt_buf b;
  dmt_buf_init(&b, 0);
  encode_all(&b);
  const uint8_t *p = dmt_buf_ptr(&b);
  size_t len = dmt_buf_size(&b), off = 0;
  for (size_t i = 0; i < sizeof expected_types; i++) {
    struct dmt_apf_msg m;
    size_t used;
    assert_int_equal(dmt_apf_decode(p + off, len - off, 0, &m, &used), DMT_APF_OK);
    assert_int_equal(m.type, expected_types[i]);
    if (m.type == DMT_APF_CHANNEL_OPEN) {
      assert_true(dmt_apf_str_eq(m.u.channel_open.channel_type, "forwarded-tcpip"));
      assert_int_equal(m.u.channel_open.sender, 4);
      assert_int_equal(m.u.channel_open.window, 81920);
      assert_int_equal(m.u.channel_open.reserved, 0xFFFFFFFFu);
      assert_int_equal(m.u.channel_open.target_port, 16992);
      assert_true(dmt_apf_str_eq(m.u.channel_open.originator, "1.2.3.4"));
      assert_int_equal(m.u.channel_open.originator_port, 1028);
    }
    if (m.type == DMT_APF_CHANNEL_DATA) assert_true(dmt_apf_str_eq(m.u.channel_data.data, "POST /wsman"));
    if (m.type == DMT_APF_DISCONNECT) {
      assert_int_equal(used, 7);
      assert_int_equal(m.u.disconnect.reason, DMT_APF_DISC_BY_APPLICATION);
    }
    off += used;
  }
  assert_int_equal(off, len);
  dmt_buf_free(&b);
}

/* Every proper prefix of every message is NEED_MORE, never an error. */
static void test_every_split_needs_more(void **state) {
  struct dmt_buf b;
  dmt_buf_init(&b, 0);
  encode_all(&b);
  const uint8_t *p = dmt_buf_ptr(&b);
  size_t len = dmt_buf_size(&b), off = 0;
  while (off < len) {
    struct dmt_apf_msg m;
    size_t used;
    assert_int_equal(dmt_apf_decode(p + off, len - off, 0, &m, &used), DMT_APF_OK);
    for (size_t cut = 0; cut < used; cut++) {
      /* USERAUTH_FAILURE's optional 15th byte: its 14-byte prefix is already a message. */
      int rc = dmt_apf_decode(p + off, cut, 0, &m, &(size_t){0});
      if (rc == DMT_APF_OK && m.type == DMT_APF_USERAUTH_FAILURE) continue;
      assert_int_equal(rc, DMT_APF_NEED_MORE);
    }
    off += used;
  }
  dmt_buf_free(&b);
}

static void test_userauth_failure_both_forms(void **state) {
  struct dmt_buf b;
  dmt_buf_init(&b, 0);
  dmt_apf_put_userauth_failure(&b, true);
  assert_int_equal(dmt_buf_size(&b), 15);
  struct dmt_apf_msg m;
  size_t used;
  assert_int_equal(dmt_apf_decode(dmt_buf_ptr(&b), 15, 0, &m, &used), DMT_APF_OK);
  assert_int_equal(used, 15);
  assert_int_equal(dmt_apf_decode(dmt_buf_ptr(&b), 14, 0, &m, &used), DMT_APF_OK);
  assert_int_equal(used, 14);
  assert_true(dmt_apf_str_eq(m.u.userauth_failure.methods, "password"));
  dmt_buf_free(&b);
}

static void test_request_success_forms(void **state) {
  const uint8_t with_port[] = {0x51, 0, 0, 0x42, 0x60};
  struct dmt_apf_msg m;
  size_t used;
  assert_int_equal(dmt_apf_decode(with_port, 5, DMT_APF_DECODE_REQUEST_SUCCESS_PORT, &m, &used), DMT_APF_OK);
  assert_int_equal(used, 5);
  assert_int_equal(m.u.request_success.port, 16992);
  assert_int_equal(dmt_apf_decode(with_port, 5, 0, &m, &used), DMT_APF_OK);
  assert_int_equal(used, 1);
}

static void test_errors(void **state) {
  struct dmt_apf_msg m;
  size_t used;
  const uint8_t unknown[] = {0x07, 0, 0};
  assert_int_equal(dmt_apf_decode(unknown, sizeof unknown, 0, &m, &used), DMT_APF_ERR_UNKNOWN_TYPE);
  /* string length over 2048, reported before the bytes arrive */
  const uint8_t long_name[] = {0x05, 0, 0, 0x08, 0x01};
  assert_int_equal(dmt_apf_decode(long_name, sizeof long_name, 0, &m, &used), DMT_APF_ERR_STRING_TOO_LONG);
  /* channel data over 1 MiB */
  const uint8_t big_data[] = {0x5e, 0, 0, 0, 1, 0, 0x10, 0, 1};
  assert_int_equal(dmt_apf_decode(big_data, sizeof big_data, 0, &m, &used), DMT_APF_ERR_DATA_TOO_LONG);
  /* a 4 GiB length is an error, not a wait */
  const uint8_t huge[] = {0x5e, 0, 0, 0, 1, 0xff, 0xff, 0xff, 0xff};
  assert_int_equal(dmt_apf_decode(huge, sizeof huge, 0, &m, &used), DMT_APF_ERR_DATA_TOO_LONG);
  /* change-password flag set */
  uint8_t bad_flag[sizeof capture_userauth];
  memcpy(bad_flag, capture_userauth, sizeof bad_flag);
  bad_flag[55] = 1;
  assert_int_equal(dmt_apf_decode(bad_flag, sizeof bad_flag, 0, &m, &used), DMT_APF_ERR_BAD_FLAG);
  /* unknown global request: never skipped */
  const uint8_t unknown_req[] = {0x50, 0, 0, 0, 3, 'f', 'o', 'o', 1, 0, 0, 0, 0};
  assert_int_equal(dmt_apf_decode(unknown_req, sizeof unknown_req, 0, &m, &used), DMT_APF_ERR_UNKNOWN_REQUEST);
  /* unknown auth method */
  const uint8_t kbd[] = {0x32, 0, 0, 0, 1, 'u', 0, 0, 0, 1, 's', 0, 0, 0, 3, 'k', 'b', 'd'};
  assert_int_equal(dmt_apf_decode(kbd, sizeof kbd, 0, &m, &used), DMT_APF_ERR_UNKNOWN_AUTH_METHOD);
  assert_int_equal(dmt_apf_decode(kbd, 0, 0, &m, &used), DMT_APF_NEED_MORE);
  assert_string_equal(dmt_apf_strerror(DMT_APF_ERR_UNKNOWN_REQUEST), "unknown global request");
  assert_string_equal(dmt_apf_type_name(DMT_APF_KEEPALIVE_OPTIONS_REPLY), "KEEPALIVE_OPTIONS_REPLY");
}

static void test_buffer_cap(void **state) {
  struct dmt_buf b;
  dmt_buf_init(&b, 20);
  assert_int_equal(dmt_apf_put_channel_data(&b, 1, "0123456789abcdef", 16), -1); /* 25 bytes > cap */
  assert_int_equal(dmt_buf_size(&b), 0); /* never half a message */
  assert_int_equal(dmt_apf_put_keepalive_request(&b, 1), 0);
  dmt_buf_free(&b);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_capture_protocol_version),
      cmocka_unit_test(test_capture_userauth),
      cmocka_unit_test(test_service_messages_are_23_bytes),
      cmocka_unit_test(test_gwm_vectors),
      cmocka_unit_test(test_stream_of_everything),
      cmocka_unit_test(test_every_split_needs_more),
      cmocka_unit_test(test_userauth_failure_both_forms),
      cmocka_unit_test(test_request_success_forms),
      cmocka_unit_test(test_errors),
      cmocka_unit_test(test_buffer_cap),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
