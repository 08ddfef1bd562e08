/* Unit tests for certificate generation and a real TLS handshake over a socketpair. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <fcntl.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "dmt/tls.h"

struct pki {
  EVP_PKEY *root_key, *leaf_key;
  X509 *root, *leaf;
  char dir[64], root_pem[128], leaf_pem[128], leaf_key_pem[128];
};

static int setup(void **state) {
  struct pki *p = calloc(1, sizeof *p);
  char err[512];
  p->root_key = dmt_tls_rsa_key(2048);
  p->leaf_key = dmt_tls_rsa_key(2048);
  struct dmt_cert_spec root = {.common_name = "Test Root", .is_ca = true, .ns_cert_type = "sslCA",
                               .days_before = 1, .days_valid = 30, .md = EVP_sha384()};
  p->root = dmt_tls_issue(&root, p->root_key, NULL, NULL, err, sizeof err);
  const char *dns[] = {"mps.example.test", NULL};
  const char *ips[] = {"127.0.0.1", NULL};
  struct dmt_cert_spec leaf = {.common_name = "mps.example.test", .dns_names = dns, .ip_addrs = ips,
                               .ext_key_usage = "serverAuth", .ns_cert_type = "server",
                               .days_before = 1, .days_valid = 30};
  p->leaf = dmt_tls_issue(&leaf, p->leaf_key, p->root, p->root_key, err, sizeof err);
  if (!p->root || !p->leaf) return -1;
  snprintf(p->dir, sizeof p->dir, "/tmp/dmt-tls-XXXXXX");
  if (!mkdtemp(p->dir)) return -1;
  snprintf(p->root_pem, sizeof p->root_pem, "%s/root.pem", p->dir);
  snprintf(p->leaf_pem, sizeof p->leaf_pem, "%s/leaf.pem", p->dir);
  snprintf(p->leaf_key_pem, sizeof p->leaf_key_pem, "%s/leaf.key", p->dir);
  X509 *chain[] = {p->leaf, p->root};
  if (dmt_tls_write_cert(p->root_pem, &p->root, 1, err, sizeof err) ||
      dmt_tls_write_cert(p->leaf_pem, chain, 2, err, sizeof err) ||
      dmt_tls_write_key(p->leaf_key_pem, p->leaf_key, err, sizeof err))
    return -1;
  *state = p;
  return 0;
}

static int teardown(void **state) {
  struct pki *p = *state;
  unlink(p->root_pem);
  unlink(p->leaf_pem);
  unlink(p->leaf_key_pem);
  rmdir(p->dir);
  X509_free(p->root);
  X509_free(p->leaf);
  EVP_PKEY_free(p->root_key);
  EVP_PKEY_free(p->leaf_key);
  free(p);
  return 0;
}

static void test_chain_verifies(void **state) {
  struct pki *p = *state;
  X509_STORE *store = X509_STORE_new();
  X509_STORE_add_cert(store, p->root);
  X509_STORE_CTX *ctx = X509_STORE_CTX_new();
  X509_STORE_CTX_init(ctx, store, p->leaf, NULL);
  assert_int_equal(X509_verify_cert(ctx), 1);
  X509_STORE_CTX_free(ctx);
  X509_STORE_free(store);
  assert_int_equal(X509_check_host(p->leaf, "mps.example.test", 0, 0, NULL), 1);
  assert_int_equal(X509_check_ip_asc(p->leaf, "127.0.0.1", 0), 1);
  assert_true(X509_get_extension_flags(p->root) & EXFLAG_CA);
  assert_false(X509_get_extension_flags(p->leaf) & EXFLAG_CA);
  /* key file is private */
  struct stat st;
  assert_int_equal(stat(p->leaf_key_pem, &st), 0);
  assert_int_equal(st.st_mode & 077, 0);
  char *pem = dmt_tls_cert_pem(p->root);
  assert_non_null(strstr(pem, "-----BEGIN CERTIFICATE-----"));
  free(pem);
}

struct side {
  SSL_CTX *ctx;
  int fd;
  int ok;
  char version[32];
};

static void *server_side(void *arg) {
  struct side *s = arg;
  SSL *ssl = SSL_new(s->ctx);
  SSL_set_fd(ssl, s->fd);
  s->ok = SSL_accept(ssl) == 1;
  if (s->ok) {
    char buf[8];
    s->ok = SSL_read(ssl, buf, 4) == 4 && !memcmp(buf, "ping", 4) && SSL_write(ssl, "pong", 4) == 4;
    snprintf(s->version, sizeof s->version, "%s", SSL_get_version(ssl));
  }
  SSL_shutdown(ssl);
  SSL_free(ssl);
  return NULL;
}

static int client_connect(SSL_CTX *cctx, int fd, const char *host) {
  SSL *ssl = SSL_new(cctx);
  SSL_set_fd(ssl, fd);
  SSL_set1_host(ssl, host);
  int ok = SSL_connect(ssl) == 1;
  if (ok) {
    char buf[8];
    ok = SSL_write(ssl, "ping", 4) == 4 && SSL_read(ssl, buf, 4) == 4 && !memcmp(buf, "pong", 4);
  }
  SSL_free(ssl);
  return ok;
}

static void test_handshake_verified(void **state) {
  struct pki *p = *state;
  char err[512];
  struct dmt_tls_server_opts so = {.cert_file = p->leaf_pem, .key_file = p->leaf_key_pem,
                                   .request_client_cert = true};
  SSL_CTX *sctx = dmt_tls_server_ctx(&so, err, sizeof err);
  assert_non_null(sctx);
  SSL_CTX *cctx = dmt_tls_client_ctx(p->root_pem, true, err, sizeof err);
  assert_non_null(cctx);
  int sv[2];
  assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
  struct side s = {.ctx = sctx, .fd = sv[0]};
  pthread_t th;
  pthread_create(&th, NULL, server_side, &s);
  assert_true(client_connect(cctx, sv[1], "mps.example.test"));
  pthread_join(th, NULL);
  assert_true(s.ok);
  assert_true(!strcmp(s.version, "TLSv1.3") || !strcmp(s.version, "TLSv1.2"));
  close(sv[0]);
  close(sv[1]);
  SSL_CTX_free(sctx);
  SSL_CTX_free(cctx);
}

static void test_wrong_root_or_name_rejected(void **state) {
  struct pki *p = *state;
  char err[512];
  struct dmt_tls_server_opts so = {.cert_file = p->leaf_pem, .key_file = p->leaf_key_pem};
  SSL_CTX *sctx = dmt_tls_server_ctx(&so, err, sizeof err);
  SSL_CTX *cctx = dmt_tls_client_ctx(p->root_pem, true, err, sizeof err);
  int sv[2];
  assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
  struct side s = {.ctx = sctx, .fd = sv[0]};
  pthread_t th;
  pthread_create(&th, NULL, server_side, &s);
  assert_false(client_connect(cctx, sv[1], "other.example.test"));
  close(sv[1]);
  pthread_join(th, NULL);
  close(sv[0]);
  ERR_clear_error();
  SSL_CTX_free(sctx);
  SSL_CTX_free(cctx);
}

static void test_legacy_switch(void **state) {
  struct pki *p = *state;
  char err[512];
  struct dmt_tls_server_opts modern = {.cert_file = p->leaf_pem, .key_file = p->leaf_key_pem};
  struct dmt_tls_server_opts legacy = modern;
  legacy.legacy = true;
  SSL_CTX *m = dmt_tls_server_ctx(&modern, err, sizeof err);
  SSL_CTX *l = dmt_tls_server_ctx(&legacy, err, sizeof err);
  assert_int_equal(SSL_CTX_get_min_proto_version(m), TLS1_2_VERSION);
  assert_int_equal(SSL_CTX_get_min_proto_version(l), TLS1_VERSION);
  SSL_CTX_free(m);
  SSL_CTX_free(l);
  /* A missing key file is a clear error, not a crash. */
  struct dmt_tls_server_opts bad = {.cert_file = p->leaf_pem, .key_file = "/nonexistent.key"};
  assert_null(dmt_tls_server_ctx(&bad, err, sizeof err));
  assert_non_null(strstr(err, "/nonexistent.key"));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_chain_verifies),
      cmocka_unit_test(test_handshake_verified),
      cmocka_unit_test(test_wrong_root_or_name_rejected),
      cmocka_unit_test(test_legacy_switch),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
