/*
 * See bridge_fixture.h: dmt-bridge as a child process, and a deliberately
 * simple HTTP/1.1 client (one request per connection, Content-Length bodies).
 */
#include "bridge_fixture.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pkcs12.h>

#include "dmt/pg.h"
#include "dmt/tls.h"
#include "harness.h"
#include "jwtkit.h"

int bt_bridge_start(struct bt_bridge *b, const char *dsn, const char *secrets_key, const char *dir,
                    const char *const *extra) {
  b->mps_port = dmt_test_free_port();
  b->rps_port = dmt_test_free_port();
  while (b->rps_port == b->mps_port) b->rps_port = dmt_test_free_port();
  snprintf(b->instance, sizeof b->instance, "bridge-test-%d-%d", (int)getpid(), b->mps_port);
  static char a[16][800];
  snprintf(a[0], sizeof a[0], "%s", dmt_test_bin("agents/bridge/dmt-bridge"));
  snprintf(a[1], sizeof a[1], "--db.dsn=%s", dsn);
  snprintf(a[2], sizeof a[2], "--mqtt.url=%s", dmt_test_mqtt_url());
  snprintf(a[3], sizeof a[3], "--secrets.key=%s", secrets_key);
  snprintf(a[4], sizeof a[4], "--secrets.key_id=test");
  snprintf(a[5], sizeof a[5], "--bridge.mps_port=%d", b->mps_port);
  snprintf(a[6], sizeof a[6], "--bridge.rps_port=%d", b->rps_port);
  snprintf(a[7], sizeof a[7], "--instance.id=%s", b->instance);
  snprintf(a[8], sizeof a[8], "--bridge.listen_address=127.0.0.1");
  char *argv[40] = {a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7], a[8], "--auth.admin_user=standalone",
                    "--auth.admin_password=G@ppm0ym", "--auth.jwt_secret=mpssecret", "--log.level=info"};
  size_t n = 13;
  for (size_t i = 0; extra && extra[i] && n < 39; i++) argv[n++] = (char *)extra[i];
  argv[n] = NULL;
  snprintf(b->log, sizeof b->log, "%s/%s.log", dir, b->instance);
  b->pid = dmt_test_spawn(argv, NULL, b->log);
  if (b->pid <= 0) return -1;
  if (!dmt_test_wait_port(b->mps_port, 20000) || !dmt_test_wait_port(b->rps_port, 5000)) return -1;
  if (b->tls) return 0;
  /* ready once health is green: database migrated and reachable, broker connected */
  for (int i = 0; i < 200; i++) {
    struct bt_response r;
    int rc = bt_http(b->mps_port, "GET", "/api/v1/health", NULL, NULL, 0, &r);
    int status = r.status;
    bt_response_free(&r);
    if (rc == 0 && status == 200) return 0;
    usleep(100000);
  }
  return -1;
}

int bt_bridge_stop(struct bt_bridge *b) {
  int st = b->pid > 0 ? dmt_test_stop(b->pid, SIGTERM, 10000) : -1;
  b->pid = 0;
  return st >= 0 && WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static int send_all(int fd, const char *p, size_t n) {
  while (n) {
    ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
    if (w <= 0) return -1;
    p += w;
    n -= (size_t)w;
  }
  return 0;
}

int bt_http(int port, const char *method, const char *path, const char *headers, const char *body, size_t body_len,
            struct bt_response *r) {
  memset(r, 0, sizeof *r);
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
  if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
    if (fd >= 0) close(fd);
    return -1;
  }
  char head[16384];
  int hn = snprintf(head, sizeof head,
                    "%s %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nConnection: close\r\n%s%s%s", method, path, port,
                    headers ? headers : "", body ? "Content-Type: application/json\r\n" : "", "");
  if (body) hn += snprintf(head + hn, sizeof head - (size_t)hn, "Content-Length: %zu\r\n", body_len);
  hn += snprintf(head + hn, sizeof head - (size_t)hn, "\r\n");
  if (send_all(fd, head, (size_t)hn) != 0 || (body && send_all(fd, body, body_len) != 0)) {
    close(fd);
    return -1;
  }
  size_t cap = 65536, len = 0;
  char *buf = malloc(cap);
  for (;;) {
    struct pollfd pfd = {fd, POLLIN, 0};
    if (poll(&pfd, 1, 120000) <= 0) break;
    if (len + 4096 > cap) buf = realloc(buf, cap *= 2);
    ssize_t got = recv(fd, buf + len, cap - len - 1, 0);
    if (got <= 0) break;
    len += (size_t)got;
  }
  close(fd);
  buf[len] = '\0';
  char *end = strstr(buf, "\r\n\r\n");
  if (!end || sscanf(buf, "HTTP/1.1 %d", &r->status) != 1) {
    free(buf);
    return -1;
  }
  size_t hl = (size_t)(end - buf);
  snprintf(r->headers, sizeof r->headers, "%.*s", (int)(hl < sizeof r->headers - 1 ? hl : sizeof r->headers - 1), buf);
  r->len = len - hl - 4;
  r->body = malloc(r->len + 1);
  memcpy(r->body, end + 4, r->len);
  r->body[r->len] = '\0';
  free(buf);
  return 0;
}

void bt_response_free(struct bt_response *r) {
  free(r->body);
  r->body = NULL;
}

bool bt_header(const struct bt_response *r, const char *name, char *out, size_t outlen) {
  size_t nl = strlen(name);
  for (const char *p = strstr(r->headers, "\r\n"); p; p = strstr(p + 2, "\r\n")) {
    const char *line = p + 2;
    if (!strncasecmp(line, name, nl) && line[nl] == ':') {
      const char *v = line + nl + 1;
      while (*v == ' ') v++;
      const char *e = strstr(v, "\r\n");
      size_t n = e ? (size_t)(e - v) : strlen(v);
      snprintf(out, outlen, "%.*s", (int)n, v);
      return true;
    }
  }
  return false;
}

json_t *bt_json(const struct bt_response *r) { return r->body ? json_loadb(r->body, r->len, JSON_DECODE_ANY, NULL) : NULL; }

int bt_sql(const char *dsn, const char *sql) {
  char err[256];
  PGconn *c = dmt_pg_connect(dsn, err, sizeof err);
  if (!c) return -1;
  int rc = dmt_pg_exec(c, sql, 0, NULL, NULL, err, sizeof err);
  if (rc != DMT_PG_OK) fprintf(stderr, "bt_sql: %s\n", err);
  PQfinish(c);
  return rc == DMT_PG_OK ? 0 : -1;
}

char *bt_sql_value(const char *dsn, const char *sql) {
  char err[256];
  PGconn *c = dmt_pg_connect(dsn, err, sizeof err);
  if (!c) return NULL;
  PGresult *r = NULL;
  char *out = NULL;
  if (dmt_pg_exec(c, sql, 0, NULL, &r, err, sizeof err) == DMT_PG_OK && PQntuples(r) > 0 && !PQgetisnull(r, 0, 0))
    out = strdup(PQgetvalue(r, 0, 0));
  PQclear(r);
  PQfinish(c);
  return out;
}

char *bt_make_pfx(const char *cn, const char *password) {
  char err[256];
  EVP_PKEY *rk = dmt_tls_rsa_key(2048), *lk = dmt_tls_rsa_key(2048);
  struct dmt_cert_spec rs = {.common_name = "Test Provisioning Root", .is_ca = true, .days_before = 1, .days_valid = 3650};
  struct dmt_cert_spec ls = {.common_name = cn, .ext_key_usage = "serverAuth,2.16.840.1.113741.1.2.3", .days_before = 1,
                             .days_valid = 365};
  X509 *root = dmt_tls_issue(&rs, rk, NULL, NULL, err, sizeof err);
  X509 *leaf = root ? dmt_tls_issue(&ls, lk, root, rk, err, sizeof err) : NULL;
  char *b64 = NULL;
  if (leaf) {
    STACK_OF(X509) *ca = sk_X509_new_null();
    sk_X509_push(ca, root);
    PKCS12 *p12 = PKCS12_create(password, "test", lk, leaf, ca, NID_aes_256_cbc, NID_aes_256_cbc, 2048, 1, 0);
    sk_X509_free(ca);
    unsigned char *der = NULL;
    int n = p12 ? i2d_PKCS12(p12, &der) : 0;
    if (n > 0) {
      b64 = malloc((size_t)n * 2 + 4);
      EVP_EncodeBlock((unsigned char *)b64, der, n);
    }
    OPENSSL_free(der);
    PKCS12_free(p12);
  }
  X509_free(root);
  X509_free(leaf);
  EVP_PKEY_free(rk);
  EVP_PKEY_free(lk);
  return b64;
}

const char *const *bt_emf_args(const struct jwtkit_key *key, const char *dir) {
  static char file[700], a_file[760];
  static const char *args[8];
  const struct jwtkit_key *keys[] = {key};
  char *jwks = jwtkit_jwks(keys, 1);
  snprintf(file, sizeof file, "%s/jwks.json", dir);
  jwtkit_write_file(file, jwks);
  free(jwks);
  snprintf(a_file, sizeof a_file, "--auth.jwks_file=%s", file);
  args[0] = "--auth.mode=emf";
  args[1] = a_file;
  args[2] = "--auth.issuer=" BT_ISSUER;
  args[3] = "--auth.audience=" BT_AUDIENCE;
  args[4] = "--auth.clock_skew_s=5";
  args[5] = NULL;
  return args;
}

char *bt_token(const struct jwtkit_key *key, const char *roles, long exp_in) {
  char *claims = jwtkit_claims(BT_ISSUER, "\"" BT_AUDIENCE "\"", (long long)time(NULL) + exp_in, "user", roles);
  char *tok = jwtkit_sign(key, key->kid, claims);
  free(claims);
  return tok;
}

const char *bt_auth_headers(const char *token, const char *project) {
  static char h[20000];
  int n = snprintf(h, sizeof h, "Authorization: Bearer %s\r\n", token);
  if (project) snprintf(h + n, sizeof h - (size_t)n, "ActiveProjectID: %s\r\n", project);
  return h;
}
