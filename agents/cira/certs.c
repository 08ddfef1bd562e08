/*
 * The terminator's TLS identity. Configured files win; otherwise the root CA
 * and server certificate live in the secret MPSCerts (tenant ""), shaped as
 * DMT's MPS makes them (root RSA-3072 "MPSRoot-xxxxxx" SHA-384 sslCA; server
 * RSA-2048 with the common name, serverAuth and nsCertType server, which old
 * AMT firmware checks) and generated on first start under a PostgreSQL
 * advisory lock, so instances starting together share one identity. The RPS
 * agent installs ROOT_CERTIFICATE into AMT; the bridge serves it as
 * /api/v1/ciracert, and so does this agent on its health port. With
 * cira.generate_certs=false (DMT's MPS_GENERATE_CERTS) nothing is generated:
 * the files or an existing MPSCerts must be there.
 */
#include <arpa/inet.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dmt/config.h"
#include "dmt/pg.h"
#include "dmt/tls.h"
#include "cira.h"

#define CERTS_LOCK "7236567914712229747" /* one more than the migration lock */

static json_t *generate(const char *cn, char *err, size_t errlen) {
  EVP_PKEY *rk = dmt_tls_rsa_key(3072), *sk = dmt_tls_rsa_key(2048);
  unsigned char fp[32];
  unsigned int fplen = 0;
  unsigned char *der = NULL;
  int derlen = i2d_PUBKEY(rk, &der);
  EVP_Digest(der, (size_t)derlen, fp, &fplen, EVP_sha256(), NULL);
  OPENSSL_free(der);
  char root_cn[32];
  snprintf(root_cn, sizeof root_cn, "MPSRoot-%02x%02x%02x", fp[0], fp[1], fp[2]);
  struct dmt_cert_spec root = {.common_name = root_cn, .org = "unknown", .is_ca = true, .ns_cert_type = "sslCA",
                               .days_before = 365, .days_valid = 30 * 365, .md = EVP_sha384()};
  struct in6_addr a6;
  bool is_ip = inet_pton(AF_INET, cn, &a6) == 1 || inet_pton(AF_INET6, cn, &a6) == 1;
  const char *dns[] = {is_ip ? "localhost" : cn, "localhost", NULL};
  const char *ips[] = {is_ip ? cn : "127.0.0.1", "127.0.0.1", NULL};
  char uri1[300];
  snprintf(uri1, sizeof uri1, "http://%s/", cn);
  const char *uris[] = {uri1, "http://localhost/", NULL};
  struct dmt_cert_spec server = {.common_name = cn, .org = "unknown", .dns_names = dns, .ip_addrs = ips,
                                 .uris = uris, .ext_key_usage = "serverAuth", .ns_cert_type = "server",
                                 .days_before = 1, .days_valid = 2 * 365};
  X509 *rc = dmt_tls_issue(&root, rk, NULL, NULL, err, errlen);
  X509 *sc = rc ? dmt_tls_issue(&server, sk, rc, rk, err, errlen) : NULL;
  json_t *obj = NULL;
  if (rc && sc) {
    char *rp = dmt_tls_cert_pem(rc), *sp = dmt_tls_cert_pem(sc), *rkp = dmt_tls_key_pem(rk), *skp = dmt_tls_key_pem(sk);
    char *chain = NULL;
    if (sp && rp && asprintf(&chain, "%s%s", sp, rp) < 0) chain = NULL;
    obj = json_pack("{s:s, s:s, s:s, s:s, s:s}", "ROOT_CERTIFICATE", rp, "ROOT_KEY", rkp, "SERVER_CERTIFICATE",
                    chain, "SERVER_KEY", skp, "COMMON_NAME", cn);
    if (rkp) OPENSSL_cleanse(rkp, strlen(rkp));
    if (skp) OPENSSL_cleanse(skp, strlen(skp));
    free(rp), free(sp), free(rkp), free(skp), free(chain);
  }
  X509_free(rc);
  X509_free(sc);
  EVP_PKEY_free(rk);
  EVP_PKEY_free(sk);
  return obj;
}

/* Written with its final mode from the start (a key is never world-readable, not even briefly). */
static int write_file(const char *path, const char *text, mode_t mode) {
  if (!text) return -1;
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  if (fd < 0 || fchmod(fd, mode) != 0) {
    if (fd >= 0) close(fd);
    return -1;
  }
  FILE *f = fdopen(fd, "w");
  if (!f) {
    close(fd);
    return -1;
  }
  int ok = fputs(text, f) >= 0;
  return (fclose(f) == 0 && ok) ? 0 : -1;
}

static json_t *load_or_create(struct cira_server *s, const char *cn, char *err, size_t errlen) {
  PGconn *db = dmt_pg_connect(dmt_config_str(s->cfg, "db.dsn"), err, errlen);
  if (!db) return NULL;
  json_t *obj = NULL;
  if (dmt_pg_migrate(db, &s->log, err, errlen) < 0 ||
      dmt_pg_exec(db, "SELECT pg_advisory_lock(" CERTS_LOCK ")", 0, NULL, NULL, err, errlen) != DMT_PG_OK) {
    PQfinish(db);
    return NULL;
  }
  int rc = dmt_secrets_get(s->secrets, db, "", "MPSCerts", &obj, err, errlen);
  if (rc == DMT_SECRETS_NOT_FOUND && !dmt_config_bool(s->cfg, "cira.generate_certs", true)) {
    snprintf(err, errlen, "no MPSCerts secret and cira.generate_certs is false");
  } else if (rc == DMT_SECRETS_NOT_FOUND) {
    DMT_INFO(&s->log, "certs_generating", "common_name=%s", cn);
    obj = generate(cn, err, errlen);
    if (obj && dmt_secrets_put(s->secrets, db, "", "MPSCerts", obj, err, errlen) != DMT_SECRETS_OK) {
      dmt_secrets_wipe(obj);
      obj = NULL;
    }
  } else if (rc != DMT_SECRETS_OK) {
    obj = NULL;
  }
  char ignored[64];
  dmt_pg_exec(db, "SELECT pg_advisory_unlock(" CERTS_LOCK ")", 0, NULL, NULL, ignored, sizeof ignored);
  PQfinish(db);
  return obj;
}

int certs_prepare(struct cira_server *s, char *cert, size_t certlen, char *key, size_t keylen, char *err,
                  size_t errlen) {
  const char *cf = dmt_config_str(s->cfg, "cira.cert_file"), *kf = dmt_config_str(s->cfg, "cira.key_file");
  if (cf && kf) {
    snprintf(cert, certlen, "%s", cf);
    snprintf(key, keylen, "%s", kf);
    const char *root = dmt_config_str(s->cfg, "cira.root_file");
    snprintf(s->root_pem_path, sizeof s->root_pem_path, "%s", root ? root : "");
    X509 *rc = root ? dmt_tls_read_cert(root, err, errlen) : NULL;
    if (root && !rc) return -1;
    if (rc) s->root_pem = dmt_tls_cert_pem(rc);
    X509_free(rc);
    return 0;
  }
  if (!s->secrets) {
    snprintf(err, errlen, "no certificate files configured and no secret store to keep generated ones");
    return -1;
  }
  const char *cn = dmt_config_str(s->cfg, "cira.common_name");
  json_t *obj = load_or_create(s, cn ? cn : "localhost", err, errlen);
  if (!obj) return -1;
  const char *dir = dmt_config_str(s->cfg, "cira.runtime_dir");
  char d[300];
  if (snprintf(d, sizeof d, "%s/dmt-cira-%s", dir ? dir : "/tmp", s->instance) >= (int)sizeof d) {
    snprintf(err, errlen, "cira.runtime_dir is too long");
    dmt_secrets_wipe(obj);
    return -1;
  }
  mkdir(d, 0700);
  snprintf(cert, certlen, "%s/server.pem", d);
  snprintf(key, keylen, "%s/server.key", d);
  snprintf(s->root_pem_path, sizeof s->root_pem_path, "%s/root.pem", d);
  int rc = write_file(cert, json_string_value(json_object_get(obj, "SERVER_CERTIFICATE")), 0644) ||
                   write_file(key, json_string_value(json_object_get(obj, "SERVER_KEY")), 0600) ||
                   write_file(s->root_pem_path, json_string_value(json_object_get(obj, "ROOT_CERTIFICATE")), 0644)
               ? -1
               : 0;
  if (rc) snprintf(err, errlen, "cannot write certificates under %s", d);
  else s->root_pem = strdup(json_string_value(json_object_get(obj, "ROOT_CERTIFICATE")));  /* checked above */
  dmt_secrets_wipe(obj);
  return rc;
}
