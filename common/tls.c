/*
 * TLS contexts and certificate generation over OpenSSL 3 (see dmt/tls.h).
 * Ciphers follow DMT's MPS: modern AEAD suites at TLS 1.2+, and when legacy is
 * asked for, the broad list at SECLEVEL 0 that AMT 11/12 need.
 */
#include "dmt/tls.h"

#include <fcntl.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MODERN_CIPHERS                                                                   \
  "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-AES128-GCM-SHA256:" \
  "ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:"  \
  "DHE-RSA-AES256-GCM-SHA384"
#define LEGACY_CIPHERS "HIGH:!aNULL:!eNULL:!EXPORT:!DES:!RC4:!MD5:!PSK:!SRP:!CAMELLIA:@SECLEVEL=0"

const char *dmt_tls_error(char *buf, size_t len) {
  unsigned long e;
  size_t off = 0;
  buf[0] = '\0';
  while ((e = ERR_get_error()) && off + 2 < len) {
    char one[256];
    ERR_error_string_n(e, one, sizeof one);
    int n = snprintf(buf + off, len - off, "%s%s", off ? "; " : "", one);
    if (n < 0) break;
    off += (size_t)n;
  }
  if (!buf[0]) snprintf(buf, len, "unknown TLS error");
  return buf;
}

static void fail(char *err, size_t errlen, const char *what) {
  char detail[512];
  snprintf(err, errlen, "%s: %s", what, dmt_tls_error(detail, sizeof detail));
}

static int accept_any_client_cert(int preverify, X509_STORE_CTX *ctx) { return 1; }

SSL_CTX *dmt_tls_server_ctx(const struct dmt_tls_server_opts *o, char *err, size_t errlen) {
  SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
  if (!ctx) {
    fail(err, errlen, "SSL_CTX_new");
    return NULL;
  }
  SSL_CTX_set_min_proto_version(ctx, o->legacy ? TLS1_VERSION : TLS1_2_VERSION);
  if (!SSL_CTX_set_cipher_list(ctx, o->legacy ? LEGACY_CIPHERS : MODERN_CIPHERS)) {
    fail(err, errlen, "cipher list");
    goto bad;
  }
  SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE |
                               SSL_OP_NO_COMPRESSION);
  /* Small per-connection buffers matter at 100k connections. */
  SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS | SSL_MODE_ENABLE_PARTIAL_WRITE |
                            SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  /* Session resumption is rare for CIRA (devices hold one long connection): keep the cache small,
   * and send no TLS 1.3 tickets, whose per-connection state would dominate memory at 100k devices. */
  SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER);
  SSL_CTX_sess_set_cache_size(ctx, 1024);
  SSL_CTX_set_num_tickets(ctx, 0);
  if (SSL_CTX_use_certificate_chain_file(ctx, o->cert_file) != 1) {
    fail(err, errlen, o->cert_file);
    goto bad;
  }
  if (SSL_CTX_use_PrivateKey_file(ctx, o->key_file, SSL_FILETYPE_PEM) != 1 ||
      SSL_CTX_check_private_key(ctx) != 1) {
    fail(err, errlen, o->key_file);
    goto bad;
  }
  if (o->request_client_cert) SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, accept_any_client_cert);
  return ctx;
bad:
  SSL_CTX_free(ctx);
  return NULL;
}

SSL_CTX *dmt_tls_client_ctx(const char *ca_file, bool verify, char *err, size_t errlen) {
  SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
  if (!ctx) {
    fail(err, errlen, "SSL_CTX_new");
    return NULL;
  }
  SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS | SSL_MODE_ENABLE_PARTIAL_WRITE |
                            SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  if (ca_file && SSL_CTX_load_verify_locations(ctx, ca_file, NULL) != 1) {
    fail(err, errlen, ca_file);
    SSL_CTX_free(ctx);
    return NULL;
  }
  SSL_CTX_set_verify(ctx, verify ? SSL_VERIFY_PEER : SSL_VERIFY_NONE, NULL);
  return ctx;
}

EVP_PKEY *dmt_tls_rsa_key(int bits) { return EVP_RSA_gen((unsigned)bits); }

static int add_ext(X509 *cert, X509 *issuer, int nid, const char *value) {
  X509V3_CTX v3;
  X509V3_set_ctx_nodb(&v3);
  X509V3_set_ctx(&v3, issuer ? issuer : cert, cert, NULL, NULL, 0);
  X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &v3, nid, value);
  if (!ext) return -1;
  int ok = X509_add_ext(cert, ext, -1);
  X509_EXTENSION_free(ext);
  return ok ? 0 : -1;
}

static void append_san(char *san, size_t n, const char *prefix, const char *const *items) {
  for (size_t i = 0; items && items[i]; i++) {
    size_t used = strlen(san);
    snprintf(san + used, n - used, "%s%s:%s", used ? "," : "", prefix, items[i]);
  }
}

X509 *dmt_tls_issue(const struct dmt_cert_spec *s, EVP_PKEY *key, X509 *issuer, EVP_PKEY *issuer_key,
                    char *err, size_t errlen) {
  X509 *cert = X509_new();
  if (!cert) return NULL;
  unsigned char serial[16];
  RAND_bytes(serial, sizeof serial);
  serial[0] &= 0x7f; /* positive */
  BIGNUM *bn = BN_bin2bn(serial, sizeof serial, NULL);
  BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(cert));
  BN_free(bn);
  X509_set_version(cert, 2);
  X509_gmtime_adj(X509_getm_notBefore(cert), -(long)s->days_before * 86400L);
  X509_gmtime_adj(X509_getm_notAfter(cert), (long)s->days_valid * 86400L);
  X509_set_pubkey(cert, key);
  X509_NAME *name = X509_get_subject_name(cert);
  if (s->org) X509_NAME_add_entry_by_txt(name, "O", MBSTRING_UTF8, (const unsigned char *)s->org, -1, -1, 0);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *)s->common_name, -1, -1, 0);
  X509_set_issuer_name(cert, issuer ? X509_get_subject_name(issuer) : name);

  char san[2048] = "";
  append_san(san, sizeof san, "DNS", s->dns_names);
  append_san(san, sizeof san, "IP", s->ip_addrs);
  append_san(san, sizeof san, "URI", s->uris);
  if (add_ext(cert, issuer, NID_basic_constraints, s->is_ca ? "critical,CA:TRUE" : "critical,CA:FALSE") ||
      add_ext(cert, issuer, NID_key_usage,
              s->is_ca ? "critical,keyCertSign,cRLSign,digitalSignature"
                       : "critical,digitalSignature,keyEncipherment") ||
      add_ext(cert, issuer, NID_subject_key_identifier, "hash") ||
      (issuer && add_ext(cert, issuer, NID_authority_key_identifier, "keyid:always")) ||
      (san[0] && add_ext(cert, issuer, NID_subject_alt_name, san)) ||
      (s->ext_key_usage && add_ext(cert, issuer, NID_ext_key_usage, s->ext_key_usage)) ||
      (s->ns_cert_type && add_ext(cert, issuer, NID_netscape_cert_type, s->ns_cert_type))) {
    fail(err, errlen, "certificate extensions");
    X509_free(cert);
    return NULL;
  }
  if (!X509_sign(cert, issuer_key ? issuer_key : key, s->md ? s->md : EVP_sha256())) {
    fail(err, errlen, "X509_sign");
    X509_free(cert);
    return NULL;
  }
  return cert;
}

static FILE *open_private(const char *path, mode_t mode, char *err, size_t errlen) {
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
  if (!f) {
    if (fd >= 0) close(fd);
    snprintf(err, errlen, "cannot write %s", path);
  }
  return f;
}

int dmt_tls_write_cert(const char *path, X509 *const *certs, size_t ncerts, char *err, size_t errlen) {
  FILE *f = open_private(path, 0644, err, errlen);
  if (!f) return -1;
  int ok = 1;
  for (size_t i = 0; i < ncerts && ok; i++) ok = PEM_write_X509(f, certs[i]);
  return (fclose(f) == 0 && ok) ? 0 : -1;
}

int dmt_tls_write_key(const char *path, EVP_PKEY *key, char *err, size_t errlen) {
  FILE *f = open_private(path, 0600, err, errlen);
  if (!f) return -1;
  int ok = PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL);
  return (fclose(f) == 0 && ok) ? 0 : -1;
}

X509 *dmt_tls_read_cert(const char *path, char *err, size_t errlen) {
  FILE *f = fopen(path, "r");
  X509 *c = f ? PEM_read_X509(f, NULL, NULL, NULL) : NULL;
  if (f) fclose(f);
  if (!c) snprintf(err, errlen, "cannot read certificate %s", path);
  return c;
}

EVP_PKEY *dmt_tls_read_key(const char *path, char *err, size_t errlen) {
  FILE *f = fopen(path, "r");
  EVP_PKEY *k = f ? PEM_read_PrivateKey(f, NULL, NULL, NULL) : NULL;
  if (f) fclose(f);
  if (!k) snprintf(err, errlen, "cannot read private key %s", path);
  return k;
}

/* The PEM text a BIO collected (malloc'd), or NULL when writing failed. */
static char *bio_text(BIO *b, int written) {
  char *out = NULL, *data;
  if (b && written) {
    long n = BIO_get_mem_data(b, &data);
    out = strndup(data, (size_t)n);
  }
  BIO_free(b);
  return out;
}

char *dmt_tls_cert_pem(X509 *cert) {
  BIO *b = BIO_new(BIO_s_mem());
  return bio_text(b, b && PEM_write_bio_X509(b, cert));
}

char *dmt_tls_key_pem(EVP_PKEY *key) {
  BIO *b = BIO_new(BIO_s_mem());
  return bio_text(b, b && PEM_write_bio_PrivateKey(b, key, NULL, NULL, 0, NULL, NULL));
}
