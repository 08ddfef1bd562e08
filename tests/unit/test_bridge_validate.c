/*
 * The bridge's pure parts: the express-validator re-implementation (error
 * shape, order, optional/nullable/default/if/bail, wildcard, locations), the
 * DMT formats with their regular-expression quirks, OData paging messages,
 * routing (case-insensitive, trailing slash, parameters, precedence), query
 * decoding, ETags and secret-path escaping. No sockets, no database.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "bridge.h"

static json_t *body, *params, *query;
static struct br_vctx v;

static int setup(void **state) {
  body = json_object();
  params = json_object();
  query = json_object();
  v = (struct br_vctx){.body = body, .params = params, .query = query, .tenant = ""};
  return 0;
}

static int teardown(void **state) {
  json_decref(body);
  json_decref(params);
  json_decref(query);
  return 0;
}

static void js(const char *json, const char *expect) {
  json_t *j = json_loads(json, JSON_DECODE_ANY, NULL);
  char out[256];
  br_js_string(j, out, sizeof out);
  assert_string_equal(out, expect);
  json_decref(j);
}

static void test_js_string(void **state) {
  js("[]", "");
  js("[1, 2]", "1");
  js("[[1, 2], 3]", "1,2");
  js("{}", "[object Object]");
  js("4433.0", "4433");
  js("1.5", "1.5");
  js("true", "true");
  js("null", "");
  js("\"x\"", "x");
  json_t *empty = json_string(""), *word = json_string("false");
  assert_false(br_js_truthy(empty));
  assert_true(br_js_truthy(word)); /* JavaScript: a non-empty string is truthy */
  json_decref(empty);
  json_decref(word);
}

static const char *const three[] = {"3", "4", "201", NULL};
static bool upper_only(const char *s) {
  for (; *s; s++)
    if (*s < 'A' || *s > 'Z') return false;
  return true;
}
static bool flag_set(struct br_vctx *c, const json_t *value) { return json_is_true(br_body_get(c, "flag")); }
static bool sees_default(struct br_vctx *c, const json_t *value, char *msg, size_t msglen) {
  /* a later chain sees what default() wrote */
  if (!json_is_false(br_body_get(c, "d"))) {
    snprintf(msg, msglen, "default not visible");
    return false;
  }
  return true;
}

BR_CHAIN(chain, V_FIELD("fmt", BR_REQUIRED, V_NOT_EMPTY("fmt is required"), V_IN(three, "fmt must be 3, 4 or 201")),
         V_FIELD("opt", BR_OPTIONAL, V_MATCH(upper_only, "opt must be upper case")),
         V_FIELD("nul", BR_NULLABLE, V_STRING("nul must be a string")),
         V_FIELD("d", BR_REQUIRED, V_DEFAULT("false"), V_BOOL("d must be a boolean")),
         V_FIELD("later", BR_REQUIRED, V_CUSTOM(sees_default, NULL)),
         V_FIELD("cond", BR_REQUIRED, V_IF(flag_set), V_NOT_EMPTY("cond is required when flag is set")),
         V_FIELD("bailed", BR_REQUIRED, V_EXISTS("bailed is required"), V_BAIL, V_STRING("never reported")),
         V_FIELD("tags.*", BR_OPTIONAL, V_STRING("tags must be strings")),
         V_FIELD("guid", BR_REQUIRED, V_UUID(NULL)));

static const char *err_at(json_t *errors, size_t i, const char *key) {
  return json_string_value(json_object_get(json_array_get(errors, i), key));
}

static void test_chain(void **state) {
  json_object_set_new(body, "opt", json_string("abc"));
  json_object_set_new(body, "nul", json_null());
  json_object_set_new(body, "tags", json_pack("[s,i,s]", "a", 7, "b"));
  json_object_set_new(params, "guid", json_string("not-a-guid"));
  json_t *errors = json_array();
  size_t n = br_validate(&chain, &v, errors);
  /* fmt: two failures on the missing field, in chain order, reported against the body */
  assert_int_equal(n, 6);
  assert_string_equal(err_at(errors, 0, "msg"), "fmt is required");
  assert_string_equal(err_at(errors, 0, "path"), "fmt");
  assert_string_equal(err_at(errors, 0, "location"), "body");
  assert_string_equal(err_at(errors, 0, "type"), "field");
  assert_null(json_object_get(json_array_get(errors, 0), "value")); /* undefined: no "value" key */
  assert_string_equal(err_at(errors, 1, "msg"), "fmt must be 3, 4 or 201");
  assert_string_equal(err_at(errors, 2, "msg"), "opt must be upper case");
  assert_string_equal(err_at(errors, 2, "value"), "abc");
  /* nullable null skipped; default(false) written back and seen by the next chain; if() false skipped */
  assert_true(json_is_false(json_object_get(body, "d")));
  assert_string_equal(err_at(errors, 3, "msg"), "bailed is required"); /* bail(): the string check never ran */
  assert_string_equal(err_at(errors, 4, "path"), "tags[1]");
  assert_string_equal(err_at(errors, 4, "msg"), "tags must be strings");
  /* guid found in the route parameters (express-validator's check() searches every location) */
  assert_string_equal(err_at(errors, 5, "path"), "guid");
  assert_string_equal(err_at(errors, 5, "location"), "params");
  assert_string_equal(err_at(errors, 5, "msg"), "Invalid value");
  json_decref(errors);

  json_object_set_new(body, "flag", json_true());
  errors = json_array();
  br_validate(&chain, &v, errors);
  bool cond_reported = false;
  for (size_t i = 0; i < json_array_size(errors); i++)
    cond_reported |= !strcmp(err_at(errors, i, "path"), "cond");
  assert_true(cond_reported);
  json_decref(errors);
}

static void test_formats(void **state) {
  assert_true(br_fmt_uuid("143e4567-e89b-12d3-a456-426614174000"));
  assert_false(br_fmt_uuid("143e4567-e89b-12d3-a456-426614174"));
  assert_true(br_fmt_profile_name("profile-(1)")); /* "&-_" is a range in DMT's class */
  assert_false(br_fmt_profile_name("with space"));
  assert_true(br_fmt_strong_password("P@ssw0rd"));
  assert_false(br_fmt_strong_password("Intel123"));  /* no special character */
  assert_false(br_fmt_strong_password("P@ss0rd"));   /* 7 characters */
  assert_true(br_fmt_ipv4_dmt("192.168.8.50"));
  assert_true(br_fmt_ipv4_dmt("01.002.3.4"));        /* leading zeros accepted by DMT's expression */
  assert_false(br_fmt_ipv4_dmt("256.1.1.1"));
  assert_false(br_fmt_ipv6_dmt("192.168.8.50"));
  assert_true(br_fmt_ipv6_dmt("fe80::1"));
  assert_true(br_fmt_ipv6_dmt("1:2:3:4:5:6:7:8"));
  assert_true(br_fmt_ipv6_dmt("1::1garbage"));       /* DMT's first alternative is not anchored at the end */
  assert_true(br_fmt_fqdn_dmt("www.vprodemo.com"));
  assert_true(br_fmt_fqdn_dmt("xn--bcher-kva.example"));
  assert_false(br_fmt_fqdn_dmt("Www.vprodemo.com")); /* lowercase only */
  assert_false(br_fmt_fqdn_dmt("localhost"));
  assert_true(br_fmt_proxy_address("www.proxy-abc.com"));
  assert_true(br_fmt_proxy_address("192.168.9.58"));
  assert_true(br_fmt_proxy_address("::ffff:10.0.0.1"));
  assert_false(br_fmt_proxy_address("invalid@address!format"));
  assert_int_equal(br_fmt_address_format("10.1.2.3"), 3);
  assert_int_equal(br_fmt_address_format("2001:db8::1"), 4);
  assert_int_equal(br_fmt_address_format("proxy.example.com"), 201);
  assert_true(br_fmt_fqdn_validatorjs("intel.com", true, false));
  assert_false(br_fmt_fqdn_validatorjs("-intel.com", true, false));
  assert_false(br_fmt_fqdn_validatorjs("intel", true, false));
  assert_true(br_fmt_dns_suffix(""));
  assert_true(br_fmt_dns_suffix("os.suffix.com."));
  assert_true(br_fmt_dns_suffix("localdomain"));
  assert_false(br_fmt_dns_suffix("None?injected_query_string=123"));
  assert_true(br_fmt_iso8601("2024-02-29T10:00:00.123Z"));
  assert_false(br_fmt_iso8601("yesterday"));
  assert_true(br_fmt_tenant("7f9a2c1e-0000-4000-8000-000000000001"));
  assert_false(br_fmt_tenant("a/b"));
  assert_false(br_fmt_tenant(""));
}

static void test_odata(void **state) {
  json_object_set_new(query, "$top", json_string("ten"));
  json_object_set_new(query, "$skip", json_string("zero"));
  json_object_set_new(query, "$count", json_string("notboolean"));
  struct br_page p;
  json_t *errors = json_array();
  assert_int_equal(br_odata_parse(&v, &p, 25, 0, errors), 3);
  assert_string_equal(err_at(errors, 0, "path"), "$top");
  assert_string_equal(err_at(errors, 0, "msg"), "The number of items to return should be a positive integer");
  assert_string_equal(err_at(errors, 1, "path"), "$skip");
  assert_string_equal(err_at(errors, 1, "msg"),
                      "The number of items to skip before starting to collect the result set should be a positive integer");
  assert_string_equal(err_at(errors, 2, "msg"), "To return total number of records in result set should be boolean");
  assert_string_equal(err_at(errors, 2, "location"), "query");
  json_decref(errors);
  json_object_set_new(query, "$top", json_string("10"));
  json_object_set_new(query, "$skip", json_string("5"));
  json_object_set_new(query, "$count", json_string("true"));
  errors = json_array();
  assert_int_equal(br_odata_parse(&v, &p, 25, 0, errors), 0);
  assert_int_equal(p.top, 10);
  assert_int_equal(p.skip, 5);
  assert_true(p.count);
  json_object_clear(query);
  assert_int_equal(br_odata_parse(&v, &p, 25, 0, errors), 0);
  assert_int_equal(p.top, 25);
  assert_false(p.count);
  json_decref(errors);
}

static const struct br_route *route(unsigned m, const char *path, char *params_out[4], size_t *n) {
  static char scratch[512];
  bool known;
  return br_route_match(m, path, scratch, sizeof scratch, params_out, n, &known);
}

static void test_routing(void **state) {
  char *p[4];
  size_t n;
  const struct br_route *r = route(BR_M_GET, "/api/v1/devices/stats", p, &n);
  assert_non_null(r);
  assert_string_equal(r->pattern, "/api/v1/devices/stats"); /* not taken as a guid */
  r = route(BR_M_GET, "/api/v1/admin/domains/", p, &n);        /* Express: trailing slash ignored */
  assert_non_null(r);
  assert_string_equal(r->pattern, "/api/v1/admin/domains");
  r = route(BR_M_POST, "/api/v1/AMT/power/bootoptions/1", p, &n); /* Express: case-insensitive */
  assert_non_null(r);
  assert_int_equal(n, 1);
  assert_string_equal(p[0], "1");
  r = route(BR_M_DELETE, "/api/v1/amt/certificates/g/inst-1", p, &n);
  assert_non_null(r);
  assert_int_equal(n, 2);
  assert_string_equal(p[1], "inst-1");
  bool known;
  char scratch[512];
  assert_null(br_route_match(BR_M_PUT, "/api/v1/authorize", scratch, sizeof scratch, p, &n, &known));
  assert_true(known); /* the path exists for another method: still 404, as Express answers */
  assert_null(br_route_match(BR_M_GET, "/api/v1//devices", scratch, sizeof scratch, p, &n, &known));
  assert_null(br_route_match(BR_M_GET, "/nope", scratch, sizeof scratch, p, &n, &known));
  assert_false(known);
  /* HEAD is served by GET routes */
  assert_non_null(route(BR_M_HEAD, "/api/v1/version", p, &n));
}

static void test_query_and_helpers(void **state) {
  struct br_request r = {0};
  assert_int_equal(br_query_parse(&r, "a=1&b=x%20y&c=%24top&empty=&flag", 32), 0);
  assert_int_equal(r.nquery, 5);
  assert_string_equal(r.query[1].value, "x y");
  assert_string_equal(r.query[2].value, "$top");
  assert_string_equal(r.query[4].key, "flag");
  br_request_clear(&r);
  assert_int_equal(br_query_parse(&r, "a=%zz", 5), -1);   /* bad escape */
  br_request_clear(&r);
  assert_int_equal(br_query_parse(&r, "a=%ff%fe", 8), -1); /* not UTF-8 */
  br_request_clear(&r);
  assert_false(br_utf8_valid("\xc0\xaf", 2));             /* overlong */
  assert_false(br_utf8_valid("\xed\xa0\x80", 3));         /* surrogate */
  assert_true(br_utf8_valid("h\xc3\xa9", 3));
  char etag[64], etag2[64];
  br_etag("[]", 2, etag);
  br_etag("[]", 2, etag2);
  assert_string_equal(etag, etag2);
  assert_true(!strncmp(etag, "W/\"2-", 5));
  br_etag("[1]", 3, etag2);
  assert_string_not_equal(etag, etag2);
  char path[128];
  br_secret_path(path, sizeof path, "profiles/", "p$1");
  assert_string_equal(path, "profiles/p@241");
  br_secret_path(path, sizeof path, "profiles/", "../x");
  assert_string_equal(path, "profiles/@2E@2E@2Fx");
  br_secret_path(path, sizeof path, "certs/", "vprodemo");
  assert_string_equal(path, "certs/vprodemo");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_js_string),
      cmocka_unit_test_setup_teardown(test_chain, setup, teardown),
      cmocka_unit_test(test_formats),
      cmocka_unit_test_setup_teardown(test_odata, setup, teardown),
      cmocka_unit_test(test_routing),
      cmocka_unit_test(test_query_and_helpers),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
