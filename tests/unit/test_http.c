/*
 * HTTP framing: AMT's real 401 and chunked 200 (mps-cira.md §2.3-2.4), DMT's
 * requests (both MPS's Content-Length and RPS's chunked form), every split of
 * the input, pipelined messages and the limits.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "dmt/http.h"

static const char amt_200[] =
    "HTTP/1.1 200 OK\r\n"
    "Content-Type: application/soap+xml; charset=UTF-8\r\n"
    "X-Frame-Options: DENY\r\n"
    "Server: Intel(R) Active Management Technology 15.0.23.1706\r\n"
    "Transfer-Encoding: chunked\r\n\r\n"
    "0005\r\nhello\r\n"
    "0007;ext=1\r\n world!\r\n"
    "0\r\n\r\n";

static int parse_all(struct dmt_http_parser *p, const char *msg, size_t len, size_t *used) {
  return dmt_http_parse(p, (const uint8_t *)msg, len, used);
}

static void test_amt_chunked_200(void **state) {
  struct dmt_http_parser p;
  dmt_http_parser_init(&p, false, 1 << 20);
  size_t used;
  assert_int_equal(parse_all(&p, amt_200, strlen(amt_200), &used), DMT_HTTP_DONE);
  assert_int_equal(used, strlen(amt_200));
  assert_int_equal(p.status, 200);
  assert_true(p.keep_alive);
  assert_string_equal(dmt_http_header(&p, "content-type"), "application/soap+xml; charset=UTF-8");
  assert_int_equal(dmt_buf_size(&p.body), 12);
  assert_memory_equal(dmt_buf_ptr(&p.body), "hello world!", 12);
  dmt_http_parser_free(&p);
}

/* Every way of splitting the input in two gives the same message. */
static void test_every_split(void **state) {
  size_t len = strlen(amt_200);
  for (size_t cut = 0; cut <= len; cut++) {
    struct dmt_http_parser p;
    dmt_http_parser_init(&p, false, 1 << 20);
    size_t used = 0, used2 = 0;
    int rc = parse_all(&p, amt_200, cut, &used);
    if (cut < len) {
      assert_int_equal(rc, DMT_HTTP_MORE);
      assert_int_equal(used, cut);
      rc = parse_all(&p, amt_200 + cut, len - cut, &used2);
    }
    assert_int_equal(rc, DMT_HTTP_DONE);
    assert_memory_equal(dmt_buf_ptr(&p.body), "hello world!", 12);
    dmt_http_parser_free(&p);
  }
}

static void test_amt_401_builder_round_trip(void **state) {
  struct dmt_buf b;
  dmt_buf_init(&b, 0);
  assert_int_equal(dmt_http_build_amt_401(&b, "Digest:34BF4B5A0561F95248F58509A406E046",
                                          "bQali2IAAAAAAAAAn0xaWCOcxNsRcEHX", "15.0.23.1706"), 0);
  struct dmt_http_parser p;
  dmt_http_parser_init(&p, false, 1 << 20);
  size_t used;
  assert_int_equal(dmt_http_parse(&p, dmt_buf_ptr(&b), dmt_buf_size(&b), &used), DMT_HTTP_DONE);
  assert_int_equal(used, dmt_buf_size(&b));
  assert_int_equal(p.status, 401);
  assert_false(p.keep_alive); /* Connection: close */
  assert_string_equal(dmt_http_header(&p, "WWW-Authenticate"),
                      "Digest realm=\"Digest:34BF4B5A0561F95248F58509A406E046\", "
                      "nonce=\"bQali2IAAAAAAAAAn0xaWCOcxNsRcEHX\",stale=\"false\",qop=\"auth\"");
  assert_non_null(memmem(dmt_buf_ptr(&p.body), dmt_buf_size(&p.body), "Log on failed", 13));
  assert_non_null(memmem(dmt_buf_ptr(&p.body), dmt_buf_size(&p.body), "</html>", 7));
  dmt_http_parser_free(&p);
  dmt_buf_free(&b);
}

static void test_amt_soap_builder_uses_4_hex_chunks(void **state) {
  struct dmt_buf b;
  dmt_buf_init(&b, 0);
  char body[1500];
  memset(body, 'x', sizeof body);
  assert_int_equal(dmt_http_build_amt_soap(&b, 200, "16.1.25.2124", body, sizeof body, 0x220), 0);
  assert_non_null(memmem(dmt_buf_ptr(&b), dmt_buf_size(&b), "\r\n\r\n0220\r\n", 10));
  assert_non_null(memmem(dmt_buf_ptr(&b), dmt_buf_size(&b), "X-Frame-Options: DENY\r\n", 23));
  struct dmt_http_parser p;
  dmt_http_parser_init(&p, false, 1 << 20);
  size_t used;
  assert_int_equal(dmt_http_parse(&p, dmt_buf_ptr(&b), dmt_buf_size(&b), &used), DMT_HTTP_DONE);
  assert_int_equal(dmt_buf_size(&p.body), sizeof body);
  dmt_http_parser_free(&p);
  dmt_buf_free(&b);
}

static void test_requests_both_framings_pipelined(void **state) {
  struct dmt_buf b;
  dmt_buf_init(&b, 0);
  const char *env = "<Envelope>\xc3\xa9</Envelope>"; /* non-ASCII: Content-Length counts bytes */
  assert_int_equal(dmt_http_build_wsman_request(&b, NULL, "4c4c4544-004b-4210-8033-b6c04f504633", 16992,
                                                env, strlen(env)), 0);
  assert_non_null(memmem(dmt_buf_ptr(&b), dmt_buf_size(&b), "Content-Length: 23\r\n", 20));
  assert_int_equal(dmt_http_build_wsman_request_chunked(&b, "Digest x=\"1\"", "guid", 16992, env, strlen(env)), 0);
  struct dmt_http_parser p;
  dmt_http_parser_init(&p, true, 1 << 20);
  const uint8_t *in = dmt_buf_ptr(&b);
  size_t len = dmt_buf_size(&b), used;
  assert_int_equal(dmt_http_parse(&p, in, len, &used), DMT_HTTP_DONE);
  assert_true(used < len); /* the second request is left for the next round */
  assert_string_equal(p.method, "POST");
  assert_string_equal(p.target, "/wsman");
  assert_string_equal(dmt_http_header(&p, "Host"), "4c4c4544-004b-4210-8033-b6c04f504633:16992");
  assert_null(dmt_http_header(&p, "Authorization"));
  assert_memory_equal(dmt_buf_ptr(&p.body), env, strlen(env));
  dmt_http_parser_reset(&p);
  size_t used2;
  assert_int_equal(dmt_http_parse(&p, in + used, len - used, &used2), DMT_HTTP_DONE);
  assert_int_equal(used + used2, len);
  assert_string_equal(dmt_http_header(&p, "authorization"), "Digest x=\"1\"");
  assert_false(p.keep_alive);
  assert_memory_equal(dmt_buf_ptr(&p.body), env, strlen(env));
  dmt_http_parser_free(&p);
  dmt_buf_free(&b);
}

static int parse_string(bool request, const char *s, size_t max_body) {
  struct dmt_http_parser p;
  dmt_http_parser_init(&p, request, max_body);
  size_t used;
  int rc = dmt_http_parse(&p, (const uint8_t *)s, strlen(s), &used);
  dmt_http_parser_free(&p);
  return rc;
}

static void test_rejects(void **state) {
  assert_int_equal(parse_string(false, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 100),
                   DMT_HTTP_ERR_CHUNK);
  assert_int_equal(parse_string(false, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1FFFFFFFF\r\n", 1 << 20),
                   DMT_HTTP_ERR_CHUNK);
  assert_int_equal(parse_string(false, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabX\r\n", 100),
                   DMT_HTTP_ERR_CHUNK);
  assert_int_equal(parse_string(false, "HTTP/1.1 200 OK\r\nContent-Length: 101\r\n\r\n", 100),
                   DMT_HTTP_ERR_TOO_LARGE);
  assert_int_equal(parse_string(false, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n65\r\n", 100),
                   DMT_HTTP_ERR_TOO_LARGE);
  assert_int_equal(parse_string(false, "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", 100), DMT_HTTP_ERR_SYNTAX);
  assert_int_equal(parse_string(false, "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", 100),
                   DMT_HTTP_ERR_SYNTAX);
  assert_int_equal(parse_string(true, "POST /wsman HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", 100),
                   DMT_HTTP_ERR_SYNTAX);
  assert_int_equal(parse_string(true, "POST /wsman HTTP/1.1\r\nBad Header: x\r\n\r\n", 100), DMT_HTTP_ERR_SYNTAX);
  assert_int_equal(parse_string(true, "post /wsman HTTP/1.1\r\n\r\n", 100), DMT_HTTP_ERR_SYNTAX);
  assert_int_equal(parse_string(false, "HTTP/2 200 OK\r\n\r\n", 100), DMT_HTTP_ERR_SYNTAX);
  assert_int_equal(parse_string(false, "HTTP/1.1 20 OK\r\n\r\n", 100), DMT_HTTP_ERR_SYNTAX);
  /* a header section over 16 KiB */
  size_t n = 20000;
  char *big = malloc(n + 64);
  strcpy(big, "HTTP/1.1 200 OK\r\nX: ");
  memset(big + strlen(big), 'a', n);
  big[20 + n] = '\0';
  assert_int_equal(parse_string(false, big, 100), DMT_HTTP_ERR_TOO_LARGE);
  free(big);
  /* too many headers */
  char many[4096] = "HTTP/1.1 200 OK\r\n";
  for (int i = 0; i < 60; i++) sprintf(many + strlen(many), "H%d: v\r\n", i);
  strcat(many, "\r\n");
  assert_int_equal(parse_string(false, many, 100), DMT_HTTP_ERR_TOO_LARGE);
}

static void test_body_until_close_and_no_body(void **state) {
  struct dmt_http_parser p;
  dmt_http_parser_init(&p, false, 100);
  size_t used;
  const char *s = "HTTP/1.0 200 OK\r\n\r\nabc";
  assert_int_equal(dmt_http_parse(&p, (const uint8_t *)s, strlen(s), &used), DMT_HTTP_MORE);
  assert_int_equal(dmt_http_parse_eof(&p), DMT_HTTP_DONE);
  assert_int_equal(dmt_buf_size(&p.body), 3);
  dmt_http_parser_free(&p);
  assert_int_equal(parse_string(false, "HTTP/1.1 204 No Content\r\n\r\n", 100), DMT_HTTP_DONE);
  assert_int_equal(parse_string(true, "GET /x HTTP/1.1\r\nHost: a\r\n\r\n", 100), DMT_HTTP_DONE);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_amt_chunked_200),
      cmocka_unit_test(test_every_split),
      cmocka_unit_test(test_amt_401_builder_round_trip),
      cmocka_unit_test(test_amt_soap_builder_uses_4_hex_chunks),
      cmocka_unit_test(test_requests_both_framings_pipelined),
      cmocka_unit_test(test_rejects),
      cmocka_unit_test(test_body_until_close_and_no_body),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
