/*
 * The bridge's HTTP surface against hostile or unusual clients, over real
 * sockets: unknown routes (Express's HTML 404), bodies over the limit (413,
 * declared or streamed), malformed JSON, bad UTF-8, absurd nesting and path
 * traversal (400/404, never a file, never a crash), oversized headers, slow
 * clients cut off by the timeout, HEAD and CORS preflight, raw garbage on the
 * socket; HTTP/2 over TLS (ALPN) with a body; and health turning 503 while
 * the broker or the database is unreachable and 200 again once it is back.
 * After each scenario the bridge still answers, and it exits cleanly (no
 * sanitizer report) at the end.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>
#include <curl/curl.h>

#include "bridge_fixture.h"
#include "dmt/tls.h"
#include "harness.h"

static struct bt_bridge br;
static char *dsn, *dir, *token;

#define LIMIT 65536

static int setup(void **state) {
  dsn = dmt_test_pg_create_db("bridge_http");
  dir = dmt_test_tmpdir("bridge-http");
  static const char *const extra[] = {"--bridge.max_body_bytes=65536", "--bridge.client_timeout_s=2",
                                      "--bridge.max_header_bytes=4096", NULL};
  if (bt_bridge_start(&br, dsn, dmt_test_secrets_key(), dir, extra) != 0) return -1;
  /* DMT's login, for the authenticated routes */
  struct bt_response r;
  const char *login = "{\"username\":\"standalone\",\"password\":\"G@ppm0ym\"}";
  if (bt_http(br.mps_port, "POST", "/api/v1/authorize", "Content-Type: application/json\r\n", login, strlen(login),
              &r) != 0 || r.status != 200)
    return -1;
  json_t *j = bt_json(&r);
  token = strdup(json_string_value(json_object_get(j, "token")));
  json_decref(j);
  bt_response_free(&r);
  curl_global_init(CURL_GLOBAL_DEFAULT);
  return 0;
}

static int teardown(void **state) {
  int rc = bt_bridge_stop(&br);
  curl_global_cleanup();
  free(token);
  free(dsn);
  free(dir);
  return rc == 0 ? 0 : -1;
}

static const char *auth(void) {
  static char h[1024];
  snprintf(h, sizeof h, "Authorization: Bearer %s\r\nContent-Type: application/json\r\n", token);
  return h;
}

static int req(int port, const char *method, const char *path, const char *body, size_t len, struct bt_response *r) {
  return bt_http(port, method, path, auth(), body, len, r);
}

/* The bridge is alive and answers a plain request. */
static void assert_alive(void) {
  struct bt_response r;
  assert_int_equal(req(br.mps_port, "GET", "/api/v1/admin/version", NULL, 0, &r), 0);
  assert_int_equal(r.status, 200);
  bt_response_free(&r);
  assert_true(dmt_test_alive(br.pid));
}

static void expect(const char *method, const char *path, const char *body, size_t len, int status, const char *json) {
  struct bt_response r;
  assert_int_equal(req(br.rps_port, method, path, body, len, &r), 0);
  if (r.status != status || (json && strcmp(r.body, json) != 0)) {
    char got[512];
    snprintf(got, sizeof got, "%d %.400s", r.status, r.body);
    bt_response_free(&r);
    fail_msg("%s %.80s: got %s, want %d %s", method, path, got, status, json ? json : "");
  }
  bt_response_free(&r);
}

#define BAD_REQUEST "{\"error\":\"Incorrect URI or Bad Request\"}"

/* ---- raw sockets ---- */

static int raw_connect(int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
  assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
  return fd;
}

/* Reads until the peer closes or timeout_ms passes; returns bytes read into buf (NUL-terminated), -1 on timeout. */
static long raw_read_until_close(int fd, char *buf, size_t cap, int timeout_ms) {
  size_t n = 0;
  uint64_t end = dmt_test_now_ms() + (uint64_t)timeout_ms;
  for (;;) {
    int left = (int)(end - dmt_test_now_ms());
    if (left <= 0) return -1;
    struct pollfd p = {.fd = fd, .events = POLLIN};
    if (poll(&p, 1, left) <= 0) continue;
    char tmp[4096];
    ssize_t r = recv(fd, tmp, sizeof tmp, 0);
    if (r <= 0) break;
    size_t take = (size_t)r < cap - 1 - n ? (size_t)r : cap - 1 - n;
    memcpy(buf + n, tmp, take);
    n += take;
  }
  buf[n] = '\0';
  return (long)n;
}

/* ------------------------------------------------------------------ tests */

static void test_unknown_route_is_express_html_404(void **state) {
  struct bt_response r;
  assert_int_equal(req(br.mps_port, "GET", "/api/v1/nope", NULL, 0, &r), 0);
  assert_int_equal(r.status, 404);
  char ct[128];
  assert_true(bt_header(&r, "Content-Type", ct, sizeof ct));
  assert_non_null(strstr(ct, "text/html"));
  assert_non_null(strstr(r.body, "<pre>Cannot GET /api/v1/nope</pre>"));
  bt_response_free(&r);
  /* a known path with a method it does not have */
  assert_int_equal(req(br.mps_port, "PUT", "/api/v1/admin/profiles", "{}", 2, &r), 0);
  assert_int_equal(r.status, 404);
  assert_non_null(strstr(r.body, "Cannot PUT /api/v1/admin/profiles"));
  bt_response_free(&r);
}

static void test_body_limits_413(void **state) {
  size_t n = LIMIT + 1;
  char *big = malloc(n + 1);
  memset(big, ' ', n);
  big[0] = '{';
  big[n - 1] = '}';
  big[n] = '\0';
  /* declared by Content-Length: refused before reading, and the connection closes */
  struct bt_response r;
  assert_int_equal(req(br.rps_port, "POST", "/api/v1/admin/proxyconfigs", big, n, &r), 0);
  assert_int_equal(r.status, 413);
  assert_string_equal(r.body, "{\"error\":\"Payload Too Large\",\"message\":\"request entity too large\"}");
  bt_response_free(&r);
  /* exactly at the limit: parsed (and validated) */
  big[LIMIT - 1] = '}';
  big[LIMIT] = '\0';
  assert_int_equal(req(br.rps_port, "POST", "/api/v1/admin/proxyconfigs", big, LIMIT, &r), 0);
  assert_int_equal(r.status, 400);
  assert_non_null(strstr(r.body, "\"errors\""));
  bt_response_free(&r);
  free(big);

  /* streamed with chunked encoding past the limit: 413 as well (or the connection is dropped), never 2xx */
  int fd = raw_connect(br.rps_port);
  const char *head = "POST /api/v1/admin/proxyconfigs HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     "Transfer-Encoding: chunked\r\n\r\n";
  assert_true(send(fd, head, strlen(head), MSG_NOSIGNAL) > 0);
  char chunk[8192 + 16];
  int hl = snprintf(chunk, sizeof chunk, "%x\r\n", 8192);
  memset(chunk + hl, ' ', 8192);
  memcpy(chunk + hl + 8192, "\r\n", 2);
  for (int i = 0; i < 12; i++)
    if (send(fd, chunk, (size_t)hl + 8192 + 2, MSG_NOSIGNAL) <= 0) break;
  send(fd, "0\r\n\r\n", 5, MSG_NOSIGNAL);
  static char resp[65536];
  long got = raw_read_until_close(fd, resp, sizeof resp, 8000);
  close(fd);
  assert_true(got >= 0);
  if (got > 0 && strncmp(resp, "HTTP/1.1 413", 12) != 0 && strncmp(resp, "HTTP/1.1 400", 12) != 0)
    fail_msg("chunked oversize answered: %.200s", resp);
  assert_alive();
}

static void test_malformed_bodies_400(void **state) {
  expect("POST", "/api/v1/admin/proxyconfigs", "{\"name\":", 8, 400, BAD_REQUEST);
  expect("POST", "/api/v1/admin/proxyconfigs", "not json", 8, 400, BAD_REQUEST);
  expect("POST", "/api/v1/admin/proxyconfigs", "{}x", 3, 400, BAD_REQUEST);
  /* bad UTF-8 inside a string, an overlong encoding, a lone surrogate escape */
  expect("POST", "/api/v1/admin/proxyconfigs", "{\"name\":\"a\xff\"}", 12, 400, BAD_REQUEST);
  expect("POST", "/api/v1/admin/proxyconfigs", "{\"name\":\"\xc0\xaf\"}", 13, 400, BAD_REQUEST);
  const char *nul = "{\"name\":\"a\\u0000b\",\"address\":\"proxy.example.com\",\"port\":1,\"networkDnsSuffix\":\"e.com\"}";
  expect("POST", "/api/v1/admin/proxyconfigs", nul, strlen(nul), 400, BAD_REQUEST);
  /* deep nesting: refused by the parser's depth limit, no stack exhaustion */
  size_t depth = 30000; /* 60 000 bytes: under the body limit */
  char *deep = malloc(depth * 2 + 1);
  for (size_t i = 0; i < depth; i++) {
    deep[i] = '[';
    deep[depth * 2 - 1 - i] = ']';
  }
  deep[depth * 2] = '\0';
  expect("POST", "/api/v1/admin/proxyconfigs", deep, depth * 2, 400, BAD_REQUEST);
  free(deep);
  /* a JSON body of the wrong type for the route: DMT's validation errors, not a crash */
  struct bt_response r;
  assert_int_equal(req(br.rps_port, "POST", "/api/v1/admin/proxyconfigs", "[1,2]", 5, &r), 0);
  assert_int_equal(r.status, 400);
  bt_response_free(&r);
  assert_int_equal(req(br.rps_port, "PATCH", "/api/v1/admin/profiles", "\"s\"", 3, &r), 0);
  assert_int_equal(r.status, 400);
  bt_response_free(&r);
  /* bad UTF-8 and bad escapes in the URL */
  expect("GET", "/api/v1/admin/profiles/%ff%fe", NULL, 0, 400, BAD_REQUEST);
  expect("GET", "/api/v1/devices?hostname=%c0%af", NULL, 0, 400, BAD_REQUEST);
  assert_alive();
}

static void test_path_traversal(void **state) {
  /* lws resolves dot segments (decoded or not) inside the URL space before routing: a path can only
   * name another route, never a file; encoded slashes stay inside one parameter */
  static const struct {
    const char *path;
    int status;
  } paths[] = {
      {"/api/v1/admin/../../../etc/passwd", 404},
      {"/api/v1/admin/profiles/..%2f..%2f..%2fetc%2fpasswd", 404},
      {"/api/v1/admin/profiles/%2e%2e", 200},         /* = /api/v1/admin, the RPS root message */
      {"/api/v1/admin/profiles/%2e%2e/%2e%2e/version", 200}, /* = /api/v1/version */
      {"/api/v1/admin/domains/..", 200},
      {"/..%2f..%2fetc/passwd", 404},
      {"/api/v1/devices/..%5c..%5cwindows", 400}, /* DMT's guid validator */
      {"//etc/passwd", 404},
      {"/api/v1/admin/profiles/a%00b", 0}, /* lws drops the connection on an encoded NUL */
  };
  for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
    struct bt_response r;
    if (req(br.rps_port, "GET", paths[i].path, NULL, 0, &r) != 0 && paths[i].status != 0)
      fail_msg("GET %s: no answer", paths[i].path);
    const char *body = r.body ? r.body : "";
    if (r.status != paths[i].status || strstr(body, "root:"))
      fail_msg("GET %s: %d %s, want %d", paths[i].path, r.status, body, paths[i].status);
    bt_response_free(&r);
  }
  /* a name that would climb out of a secret path is refused by the name validators */
  const char *body = "{\"name\":\"../x\",\"address\":\"proxy.example.com\",\"port\":8080,\"networkDnsSuffix\":\"e.com\"}";
  struct bt_response r;
  assert_int_equal(req(br.rps_port, "POST", "/api/v1/admin/proxyconfigs", body, strlen(body), &r), 0);
  assert_int_equal(r.status, 400);
  bt_response_free(&r);
  assert_alive();
}

static void test_head_and_cors_preflight(void **state) {
  struct bt_response get, head;
  assert_int_equal(req(br.mps_port, "GET", "/api/v1/admin/version", NULL, 0, &get), 0);
  assert_int_equal(req(br.mps_port, "HEAD", "/api/v1/admin/version", NULL, 0, &head), 0);
  assert_int_equal(head.status, 200);
  assert_int_equal(head.len, 0);
  char l1[32], l2[32];
  assert_true(bt_header(&get, "Content-Length", l1, sizeof l1));
  assert_true(bt_header(&head, "Content-Length", l2, sizeof l2));
  assert_string_equal(l1, l2);
  bt_response_free(&get);
  bt_response_free(&head);

  struct bt_response r;
  assert_int_equal(bt_http(br.mps_port, "OPTIONS", "/api/v1/devices",
                           "Origin: https://ui.example\r\nAccess-Control-Request-Method: PATCH\r\n", NULL, 0, &r), 0);
  assert_int_equal(r.status, 204);
  char v[256];
  assert_true(bt_header(&r, "Access-Control-Allow-Origin", v, sizeof v));
  assert_string_equal(v, "*");
  assert_true(bt_header(&r, "Access-Control-Allow-Methods", v, sizeof v));
  assert_non_null(strstr(v, "PATCH"));
  assert_true(bt_header(&r, "Access-Control-Allow-Headers", v, sizeof v));
  assert_non_null(strstr(v, "ActiveProjectID"));
  bt_response_free(&r);
}

static void test_oversized_headers_and_slow_clients(void **state) {
  /* 8 KiB of header against a 4 KiB budget: refused or cut, never processed */
  size_t n = 8192;
  char *h = malloc(n + 64);
  int k = snprintf(h, n + 64, "X-Big: ");
  memset(h + k, 'a', n);
  memcpy(h + k + n, "\r\n", 3);
  struct bt_response r;
  int rc = bt_http(br.mps_port, "GET", "/api/v1/admin/version", h, NULL, 0, &r);
  assert_true(rc != 0 || r.status == 431 || r.status == 400 || r.status == 0);
  bt_response_free(&r);
  free(h);
  assert_alive();

  /* a client that never finishes its headers is disconnected after bridge.client_timeout_s (2 s) */
  int fd = raw_connect(br.mps_port);
  const char *part = "GET /api/v1/admin/version HTTP/1.1\r\nHost: x\r\n";
  assert_true(send(fd, part, strlen(part), MSG_NOSIGNAL) > 0);
  uint64_t t0 = dmt_test_now_ms();
  char buf[4096];
  long got = raw_read_until_close(fd, buf, sizeof buf, 10000);
  close(fd);
  assert_true(got >= 0); /* closed, not left hanging */
  assert_true(dmt_test_now_ms() - t0 < 8000);
  assert_null(strstr(buf, "200 OK"));

  /* a client that announces a body and never sends it is cut off too */
  fd = raw_connect(br.rps_port);
  const char *post = "POST /api/v1/admin/proxyconfigs HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     "Content-Length: 100\r\n\r\n{\"na";
  assert_true(send(fd, post, strlen(post), MSG_NOSIGNAL) > 0);
  t0 = dmt_test_now_ms();
  got = raw_read_until_close(fd, buf, sizeof buf, 10000);
  close(fd);
  assert_true(got >= 0);
  assert_true(dmt_test_now_ms() - t0 < 8000);
  assert_null(strstr(buf, "201"));
  assert_alive();
}

static void test_garbage_on_the_socket(void **state) {
#define J(s) {s, sizeof s - 1}
  static const struct {
    const char *p;
    size_t n;
  } junk[] = {
      J("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"), /* a TLS hello on the plain port */
      J("GARBAGE\r\n\r\n"),
      J("GET / HTTP/9.9\r\n\r\n"),
      J("GET /api/v1/health HTTP/1.1\r\nContent-Length: -5\r\n\r\n"),
      J("POST /api/v1/authorize HTTP/1.1\r\nContent-Length: 99999999999999999999\r\n\r\n"),
      J("GET /api/v1/health HTTP/1.1\r\nHost: a\r\nHost: b\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\nzz"),
      J("\r\n\r\n\r\n\r\n"),
      J("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00"), /* h2 preface in clear */
      J("GET /api/v1/health HTTP/1.1\r\nX: \x00\x01\x02\xff\r\n\r\n"),
  };
#undef J
  for (size_t i = 0; i < sizeof junk / sizeof junk[0]; i++) {
    int fd = raw_connect(br.mps_port);
    send(fd, junk[i].p, junk[i].n, MSG_NOSIGNAL);
    char buf[4096];
    raw_read_until_close(fd, buf, sizeof buf, 5000);
    close(fd);
    assert_true(dmt_test_alive(br.pid));
  }
  assert_alive();
}

/* ---- HTTP/2 over TLS ---- */

struct sink {
  char buf[65536];
  size_t n;
};

static size_t sink_write(char *p, size_t size, size_t nmemb, void *ud) {
  struct sink *s = ud;
  size_t n = size * nmemb;
  if (s->n + n >= sizeof s->buf) return 0;
  memcpy(s->buf + s->n, p, n);
  s->n += n;
  s->buf[s->n] = '\0';
  return n;
}

static long h2(int port, const char *method, const char *path, const char *body, struct sink *out, long *version) {
  CURL *c = curl_easy_init();
  char url[512];
  snprintf(url, sizeof url, "https://127.0.0.1:%d%s", port, path);
  curl_easy_setopt(c, CURLOPT_URL, url);
  curl_easy_setopt(c, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
  curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 0L);
  curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 0L);
  curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
  curl_easy_setopt(c, CURLOPT_TIMEOUT, 10L);
  struct curl_slist *hl = curl_slist_append(NULL, "Content-Type: application/json");
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, hl);
  if (body) curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
  out->n = 0;
  out->buf[0] = '\0';
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, sink_write);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, out);
  long status = 0;
  CURLcode rc = curl_easy_perform(c);
  if (rc == CURLE_OK) {
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_getinfo(c, CURLINFO_HTTP_VERSION, version);
  } else {
    fprintf(stderr, "curl %s: %s\n", url, curl_easy_strerror(rc));
  }
  curl_slist_free_all(hl);
  curl_easy_cleanup(c);
  return status;
}

static void test_http2_over_tls(void **state) {
  char err[256], cert[600], keyf[600];
  EVP_PKEY *k = dmt_tls_rsa_key(2048);
  static const char *const ips[] = {"127.0.0.1", NULL};
  struct dmt_cert_spec cs = {.common_name = "bridge", .ip_addrs = ips, .ext_key_usage = "serverAuth",
                             .days_before = 1, .days_valid = 30};
  X509 *x = dmt_tls_issue(&cs, k, NULL, NULL, err, sizeof err);
  assert_non_null(x);
  snprintf(cert, sizeof cert, "%s/bridge.crt", dir);
  snprintf(keyf, sizeof keyf, "%s/bridge.key", dir);
  assert_int_equal(dmt_tls_write_cert(cert, &x, 1, err, sizeof err), 0);
  assert_int_equal(dmt_tls_write_key(keyf, k, err, sizeof err), 0);
  X509_free(x);
  EVP_PKEY_free(k);

  static char a1[700], a2[700];
  snprintf(a1, sizeof a1, "--bridge.tls_cert_file=%s", cert);
  snprintf(a2, sizeof a2, "--bridge.tls_key_file=%s", keyf);
  const char *const extra[] = {a1, a2, NULL};
  struct bt_bridge tb = {.tls = true};
  assert_int_equal(bt_bridge_start(&tb, dsn, dmt_test_secrets_key(), dir, extra), 0);

  struct sink s;
  long version = 0, status = 0;
  for (int i = 0; i < 100 && status != 200; i++) { /* until health is green */
    status = h2(tb.mps_port, "GET", "/api/v1/health", NULL, &s, &version);
    if (status != 200) usleep(100000);
  }
  assert_int_equal(status, 200);
  assert_int_equal(version, CURL_HTTP_VERSION_2_0);
  json_t *j = json_loads(s.buf, 0, NULL);
  assert_string_equal(json_string_value(json_object_get(json_object_get(j, "db"), "status")), "OK");
  json_decref(j);

  /* a request with a body, over h2, on the RPS port */
  const char *body = "{\"name\":\"h2proxy\",\"address\":\"proxy.example.com\",\"port\":8080,\"networkDnsSuffix\":\"e.com\"}";
  status = h2(tb.rps_port, "POST", "/api/v1/admin/proxyconfigs", body, &s, &version);
  assert_int_equal(status, 201);
  assert_int_equal(version, CURL_HTTP_VERSION_2_0);
  assert_non_null(strstr(s.buf, "\"h2proxy\""));
  status = h2(tb.rps_port, "GET", "/api/v1/admin/proxyconfigs/h2proxy", NULL, &s, &version);
  assert_int_equal(status, 200);
  status = h2(tb.rps_port, "GET", "/api/v1/nope", NULL, &s, &version);
  assert_int_equal(status, 404);
  status = h2(tb.rps_port, "DELETE", "/api/v1/admin/proxyconfigs/h2proxy", NULL, &s, &version);
  assert_int_equal(status, 204);
  assert_int_equal(bt_bridge_stop(&tb), 0);
}

/* ---- health: 503 while a dependency is unreachable ---- */

static long health_status(int port, json_t **body) {
  struct bt_response r;
  if (bt_http(port, "GET", "/api/v1/health", NULL, NULL, 0, &r) != 0) return -1;
  long st = r.status;
  if (body) *body = bt_json(&r);
  bt_response_free(&r);
  return st;
}

struct wait_health {
  int port;
  long want;
};

static bool health_is(void *arg) {
  struct wait_health *w = arg;
  return health_status(w->port, NULL) == w->want;
}

static const char *dep_status(json_t *h, const char *dep) {
  return json_string_value(json_object_get(json_object_get(h, dep), "status"));
}

static void test_health_503_when_broker_or_database_unreachable(void **state) {
  struct dmt_test_broker mq = {0};
  assert_int_equal(dmt_test_broker_start(&mq, 0), 0);
  char *hdsn = dmt_test_pg_create_db("bridge_health");
  char *dbname = bt_sql_value(hdsn, "SELECT current_database()");
  static char url[128];
  snprintf(url, sizeof url, "--mqtt.url=tcp://127.0.0.1:%d", mq.port);
  const char *const extra[] = {url, "--bridge.health_timeout_ms=1000", NULL};
  struct bt_bridge hb = {0};
  assert_int_equal(bt_bridge_start(&hb, hdsn, dmt_test_secrets_key(), dir, extra), 0);

  /* the broker goes away */
  dmt_test_broker_stop(&mq);
  struct wait_health w = {hb.mps_port, 503};
  assert_true(dmt_test_wait_until(health_is, &w, 10000));
  json_t *h = NULL;
  assert_int_equal(health_status(hb.rps_port, &h), 503);
  assert_string_equal(dep_status(h, "broker"), "UNREACHABLE");
  assert_string_equal(dep_status(h, "db"), "OK");
  json_decref(h);
  struct bt_response r;
  assert_int_equal(bt_http(hb.rps_port, "GET", "/api/v1/admin/health", NULL, NULL, 0, &r), 0);
  assert_int_equal(r.status, 503);
  bt_response_free(&r);
  /* and comes back on the same port */
  assert_int_equal(dmt_test_broker_start(&mq, mq.port), 0);
  w.want = 200;
  assert_true(dmt_test_wait_until(health_is, &w, 20000));

  /* the database refuses connections and drops the bridge's */
  char sql[512];
  snprintf(sql, sizeof sql, "ALTER DATABASE \"%s\" ALLOW_CONNECTIONS false", dbname);
  assert_int_equal(bt_sql(dsn, sql), 0);
  snprintf(sql, sizeof sql, "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = '%s'",
           dbname);
  char *killed = bt_sql_value(dsn, sql);
  free(killed);
  w.want = 503;
  assert_true(dmt_test_wait_until(health_is, &w, 10000));
  assert_int_equal(health_status(hb.mps_port, &h), 503);
  assert_string_equal(dep_status(h, "db"), "UNREACHABLE");
  assert_string_equal(dep_status(h, "broker"), "OK");
  json_decref(h);
  /* a data route answers promptly with an error instead of hanging */
  uint64_t t0 = dmt_test_now_ms();
  assert_int_equal(bt_http(hb.rps_port, "GET", "/api/v1/admin/profiles", NULL, NULL, 0, &r), 0);
  assert_true(r.status >= 500);
  bt_response_free(&r);
  assert_true(dmt_test_now_ms() - t0 < 20000);
  /* back */
  snprintf(sql, sizeof sql, "ALTER DATABASE \"%s\" ALLOW_CONNECTIONS true", dbname);
  assert_int_equal(bt_sql(dsn, sql), 0);
  w.want = 200;
  assert_true(dmt_test_wait_until(health_is, &w, 30000));
  assert_int_equal(bt_http(hb.rps_port, "GET", "/api/v1/admin/profiles", NULL, NULL, 0, &r), 0);
  assert_int_equal(r.status, 200);
  bt_response_free(&r);

  assert_int_equal(bt_bridge_stop(&hb), 0);
  dmt_test_broker_stop(&mq);
  free(dbname);
  free(hdsn);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_unknown_route_is_express_html_404),
      cmocka_unit_test(test_body_limits_413),
      cmocka_unit_test(test_malformed_bodies_400),
      cmocka_unit_test(test_path_traversal),
      cmocka_unit_test(test_head_and_cors_preflight),
      cmocka_unit_test(test_oversized_headers_and_slow_clients),
      cmocka_unit_test(test_garbage_on_the_socket),
      cmocka_unit_test(test_http2_over_tls),
      cmocka_unit_test(test_health_503_when_broker_or_database_unreachable),
  };
  dmt_test_need_env("DMT_TEST_PG_DSN");
  dmt_test_need_env("DMT_TEST_MQTT_URL");
  return cmocka_run_group_tests(tests, setup, teardown);
}
