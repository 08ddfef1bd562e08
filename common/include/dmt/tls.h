/*
 * TLS helpers over OpenSSL 3: server and client contexts with our policy
 * (TLS 1.2+ by default; an explicit legacy switch for old AMT firmware that
 * only speaks TLS 1.0/1.1 or RSA key exchange), certificate generation for
 * first starts and tests (a root CA and leaves it signs), and PEM I/O.
 */
#ifndef DMT_TLS_H
#define DMT_TLS_H

#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <stdbool.h>
#include <stddef.h>

struct dmt_tls_server_opts {
  const char *cert_file;      /* leaf first, then intermediates (PEM) */
  const char *key_file;
  bool legacy;                /* allow TLS 1.0/1.1 and RSA key-exchange suites at SECLEVEL 0 */
  bool request_client_cert;   /* ask for one, never require or verify it (AMT behaviour) */
};

SSL_CTX *dmt_tls_server_ctx(const struct dmt_tls_server_opts *o, char *err, size_t errlen);

/* ca_file NULL with verify=false accepts any server (tests only). */
SSL_CTX *dmt_tls_client_ctx(const char *ca_file, bool verify, char *err, size_t errlen);

/* Formats and clears OpenSSL's error queue into buf. Returns buf. */
const char *dmt_tls_error(char *buf, size_t len);

/* An RSA key of `bits` bits. */
EVP_PKEY *dmt_tls_rsa_key(int bits);

struct dmt_cert_spec {
  const char *common_name;
  const char *org;              /* O=, optional */
  bool is_ca;
  const char *const *dns_names; /* subjectAltName DNS entries, NULL-terminated, optional */
  const char *const *ip_addrs;  /* subjectAltName IP entries, NULL-terminated, optional */
  const char *const *uris;      /* subjectAltName URI entries, NULL-terminated, optional */
  const char *ext_key_usage;    /* e.g. "serverAuth", "clientAuth", or an OID list; optional */
  const char *ns_cert_type;     /* e.g. "server" or "sslCA"; optional (old AMT firmware checks it) */
  int days_before;              /* notBefore = now - days_before */
  int days_valid;               /* notAfter = now + days_valid */
  const EVP_MD *md;             /* signature digest; NULL = SHA-256 */
};

/* Issues a certificate for key, signed by issuer/issuer_key (both NULL = self-signed). */
X509 *dmt_tls_issue(const struct dmt_cert_spec *spec, EVP_PKEY *key, X509 *issuer, EVP_PKEY *issuer_key,
                    char *err, size_t errlen);

/* Writes certificate(s) and/or key as PEM; key files are created 0600. */
int dmt_tls_write_cert(const char *path, X509 *const *certs, size_t ncerts, char *err, size_t errlen);
int dmt_tls_write_key(const char *path, EVP_PKEY *key, char *err, size_t errlen);
X509 *dmt_tls_read_cert(const char *path, char *err, size_t errlen);
EVP_PKEY *dmt_tls_read_key(const char *path, char *err, size_t errlen);

/* PEM text of a certificate (malloc'd), e.g. for /api/v1/ciracert. */
char *dmt_tls_cert_pem(X509 *cert);
/* PEM text of a private key (malloc'd, unencrypted: for the secret store only). */
char *dmt_tls_key_pem(EVP_PKEY *key);

#endif
