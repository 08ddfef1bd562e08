/*
 * Certificates in the simulated AMT: the fleet-wide interned certificate and
 * trust-set tables (a device's trusted roots become one shared X509_STORE
 * that verifies its MPS, as firmware verifies the MPS against the root RPS
 * installed), the ACM provisioning checks firmware makes (certificate chain
 * from AddNextCertInChain, root hash against the trusted hash table, the AMT
 * activation EKU, DNS suffix, validity, and the RSA PKCS#1 v1.5 signature
 * over ConfigurationNonce || McNonce with the leaf's public key), and the
 * AMT_PublicKeyManagementService / AMT_PublicKeyCertificate classes.
 * All cryptography is OpenSSL's.
 */
#include <errno.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "sim.h"

/* ---- base64 (OpenSSL EVP) ---- */

int sim_base64_decode(const char *in, uint8_t **out) {
  *out = NULL;
  if (!in) return -1;
  size_t len = strlen(in);
  char *clean = malloc(len + 1);
  if (!clean) return -1;
  size_t n = 0;
  for (size_t i = 0; i < len; i++)
    if (in[i] != '\n' && in[i] != '\r' && in[i] != ' ' && in[i] != '\t') clean[n++] = in[i];
  clean[n] = '\0';
  if (n % 4) {
    free(clean);
    return -1;
  }
  uint8_t *buf = malloc(n / 4 * 3 + 1);
  int r = buf ? EVP_DecodeBlock(buf, (const unsigned char *)clean, (int)n) : -1;
  if (r >= 0) {
    if (n >= 1 && clean[n - 1] == '=') r--;
    if (n >= 2 && clean[n - 2] == '=') r--;
  }
  free(clean);
  if (r < 0) {
    free(buf);
    return -1;
  }
  *out = buf;
  return r;
}

char *sim_base64_encode(const uint8_t *in, size_t len) {
  char *out = malloc(4 * ((len + 2) / 3) + 1);
  if (out) EVP_EncodeBlock((unsigned char *)out, in, (int)len);
  return out;
}

/* ---- interned certificates and trust sets ---- */

static void hex(const uint8_t *p, size_t n, char *out) {
  for (size_t i = 0; i < n; i++) snprintf(out + 2 * i, 3, "%02x", p[i]);
}

const struct sim_cert *sim_cert_find(struct sim *s, const char *sha256_hex) {
  return dmt_strmap_get(&s->certs, sha256_hex);
}

const struct sim_cert *sim_cert_intern(struct sim *s, const uint8_t *der, size_t len) {
  const unsigned char *p = der;
  X509 *x = d2i_X509(NULL, &p, (long)len);
  if (!x || p != der + len) {
    X509_free(x);
    return NULL;
  }
  uint8_t md[32];
  unsigned mdlen = 0;
  EVP_Digest(der, len, md, &mdlen, EVP_sha256(), NULL);
  char h[65];
  hex(md, 32, h);
  struct sim_cert *c = dmt_strmap_get(&s->certs, h);
  if (c) {
    X509_free(x);
    return c;
  }
  c = calloc(1, sizeof *c);
  if (!c || !(c->der = malloc(len))) {
    free(c);
    X509_free(x);
    return NULL;
  }
  memcpy(c->der, der, len);
  c->der_len = len;
  memcpy(c->sha256, md, 32);
  memcpy(c->sha256_hex, h, sizeof h);
  c->x509 = x;
  dmt_strmap_put(&s->certs, h, c, NULL);
  return c;
}

const struct sim_cert *sim_cert_intern_pem_file(struct sim *s, const char *path, char *err, size_t errlen) {
  FILE *f = fopen(path, "r");
  X509 *x = f ? PEM_read_X509(f, NULL, NULL, NULL) : NULL;
  if (f) fclose(f);
  if (!x) {
    snprintf(err, errlen, "cannot read a PEM certificate from %s", path);
    return NULL;
  }
  unsigned char *der = NULL;
  int len = i2d_X509(x, &der);
  X509_free(x);
  const struct sim_cert *c = len > 0 ? sim_cert_intern(s, der, (size_t)len) : NULL;
  OPENSSL_free(der);
  if (!c) snprintf(err, errlen, "cannot use the certificate in %s", path);
  return c;
}

void sim_cert_persist(struct sim *s, const struct sim_cert *c) {
  if (!s->state_dir) return;
  char *dir = NULL, *path = NULL, *tmp = NULL;
  if (asprintf(&dir, "%s/certs", s->state_dir) > 0 && asprintf(&path, "%s/%s.der", dir, c->sha256_hex) > 0 &&
      asprintf(&tmp, "%s.tmp", path) > 0) {
    struct stat st;
    if (stat(path, &st) != 0) {
      mkdir(dir, 0700);
      FILE *f = fopen(tmp, "wb");
      bool ok = f && fwrite(c->der, 1, c->der_len, f) == c->der_len;
      if (f && fclose(f) != 0) ok = false;
      if (!ok || rename(tmp, path) != 0)
        DMT_WARN(&s->log, "cert_save_failed", "sha256=%s error=\"%s\"", c->sha256_hex, strerror(errno));
    }
  }
  free(dir);
  free(path);
  free(tmp);
}

static const struct sim_trust *trust_intern(struct sim *s, const struct sim_cert **certs, size_t n) {
  if (n == 0) return NULL;
  char *key = malloc(n * 65 + 1);
  if (!key) return NULL;
  key[0] = '\0';
  for (size_t i = 0; i < n; i++) strcat(key, certs[i]->sha256_hex);
  struct sim_trust *t = dmt_strmap_get(&s->trusts, key);
  if (!t && (t = calloc(1, sizeof *t))) {
    t->n = n;
    t->certs = malloc(n * sizeof *t->certs);
    t->store = X509_STORE_new();
    for (size_t i = 0; i < n; i++) {
      t->certs[i] = certs[i];
      X509_STORE_add_cert(t->store, certs[i]->x509);
    }
    dmt_strmap_put(&s->trusts, key, t, NULL);
  }
  free(key);
  return t;
}

const struct sim_trust *sim_trust_with(struct sim *s, const struct sim_trust *base, const struct sim_cert *add) {
  size_t n = base ? base->n : 0;
  for (size_t i = 0; i < n; i++)
    if (base->certs[i] == add) return base;
  const struct sim_cert **v = malloc((n + 1) * sizeof *v);
  if (!v) return base;
  for (size_t i = 0; i < n; i++) v[i] = base->certs[i];
  v[n] = add;
  const struct sim_trust *t = trust_intern(s, v, n + 1);
  free(v);
  return t;
}

const struct sim_trust *sim_trust_without(struct sim *s, const struct sim_trust *base, const struct sim_cert *remove) {
  if (!base) return NULL;
  const struct sim_cert **v = malloc(base->n * sizeof *v);
  size_t n = 0;
  for (size_t i = 0; v && i < base->n; i++)
    if (base->certs[i] != remove) v[n++] = base->certs[i];
  const struct sim_trust *t = trust_intern(s, v, n);
  free(v);
  return t;
}

/* ---- ACM: provisioning certificate chain and AdminSetup checks ---- */

void amt_chain_free(struct sim_acm_chain *ch) {
  for (size_t i = 0; i < ch->n; i++) X509_free(ch->certs[i]);
  ch->n = 0;
  ch->complete = false;
}

static bool issued_and_signed_by(X509 *subject, X509 *issuer) {
  EVP_PKEY *key = X509_get0_pubkey(issuer);
  return key && X509_check_issued(issuer, subject) == X509_V_OK && X509_verify(subject, key) == 1;
}

int amt_chain_add(struct sim_acm_chain *ch, const uint8_t *der, size_t len, bool is_leaf, bool is_root) {
  const unsigned char *p = der;
  X509 *x = der && len ? d2i_X509(NULL, &p, (long)len) : NULL;
  if (!x || p != der + len) {
    X509_free(x);
    return AMT_CHAIN_INVALID_PARAM;
  }
  if (is_leaf) amt_chain_free(ch); /* a leaf starts a new chain */
  int rv = AMT_CHAIN_SUCCESS;
  if (ch->n == 0 && !is_leaf) rv = AMT_CHAIN_INVALID_STATE;
  else if (ch->complete) rv = AMT_CHAIN_INVALID_STATE;
  else if (ch->n == AMT_CHAIN_MAX) rv = AMT_CHAIN_LENGTH_EXCEEDED;
  else if (ch->n > 0 && !issued_and_signed_by(ch->certs[ch->n - 1], x)) rv = AMT_CHAIN_CERT_VERIFY_FAILED;
  else if (is_root && !issued_and_signed_by(x, x)) rv = AMT_CHAIN_CERT_VERIFY_FAILED;
  if (rv != AMT_CHAIN_SUCCESS) {
    X509_free(x);
    if (rv == AMT_CHAIN_CERT_VERIFY_FAILED) amt_chain_free(ch); /* firmware discards a broken chain */
    return rv;
  }
  ch->certs[ch->n++] = x;
  ch->complete = is_root;
  return AMT_CHAIN_SUCCESS;
}

bool amt_hash_trusted(X509 *cert, const struct sim_hash *trusted, size_t ntrusted) {
  const EVP_MD *mds[] = {EVP_sha1(), EVP_sha256(), EVP_sha384()};
  uint8_t digests[3][48];
  unsigned lens[3];
  for (int i = 0; i < 3; i++)
    if (X509_digest(cert, mds[i], digests[i], &lens[i]) != 1) lens[i] = 0;
  for (size_t t = 0; t < ntrusted; t++)
    for (int i = 0; i < 3; i++)
      if (lens[i] && lens[i] == trusted[t].len && !memcmp(digests[i], trusted[t].md, lens[i])) return true;
  return false;
}

static bool has_activation_eku(X509 *leaf) {
  bool found = false;
  EXTENDED_KEY_USAGE *eku = X509_get_ext_d2i(leaf, NID_ext_key_usage, NULL, NULL);
  for (int i = 0; eku && i < sk_ASN1_OBJECT_num(eku) && !found; i++) {
    char oid[64];
    OBJ_obj2txt(oid, sizeof oid, sk_ASN1_OBJECT_value(eku, i), 1);
    found = !strcmp(oid, AMT_ACM_EKU_OID);
  }
  EXTENDED_KEY_USAGE_free(eku);
  if (found) return true;
  /* Older provisioning certificates mark themselves with this OU instead of the EKU. */
  char ou[128];
  return X509_NAME_get_text_by_NID(X509_get_subject_name(leaf), NID_organizationalUnitName, ou, sizeof ou) > 0 &&
         !strcmp(ou, "Intel(R) Client Setup Certificate");
}

/* The leaf's CN minus its first label must be the device's DNS suffix or a parent domain of it. */
static bool suffix_matches(X509 *leaf, const char *dns_suffix) {
  char cn[256];
  if (!dns_suffix || X509_NAME_get_text_by_NID(X509_get_subject_name(leaf), NID_commonName, cn, sizeof cn) <= 0)
    return false;
  const char *domain = strchr(cn, '.');
  if (!domain || !domain[1]) return false;
  domain++;
  size_t dl = strlen(domain), sl = strlen(dns_suffix);
  if (sl == dl) return !strcasecmp(domain, dns_suffix);
  return sl > dl && dns_suffix[sl - dl - 1] == '.' && !strcasecmp(dns_suffix + sl - dl, domain);
}

static bool currently_valid(X509 *x) {
  return X509_cmp_current_time(X509_get0_notBefore(x)) < 0 && X509_cmp_current_time(X509_get0_notAfter(x)) > 0;
}

int amt_acm_verify(const struct sim_acm_chain *ch, const struct sim_hash *trusted, size_t ntrusted,
                   const char *dns_suffix, const uint8_t config_nonce[20], const uint8_t *mc_nonce, size_t mc_len,
                   int signing_algorithm, const uint8_t *sig, size_t sig_len, const char **why) {
  const char *dummy;
  if (!why) why = &dummy;
  *why = NULL;
  const EVP_MD *md = signing_algorithm == 2 ? EVP_sha256() : signing_algorithm == 1 ? EVP_sha1() : NULL;
  if (!md || mc_len != 20 || !sig || sig_len == 0) {
    *why = "invalid signing algorithm, McNonce or signature";
    return AMT_HBS_INVALID_PARAM;
  }
  if (!ch || !ch->complete || ch->n == 0) {
    *why = "no complete provisioning certificate chain";
    return AMT_HBS_INVALID_STATE;
  }
  X509 *leaf = ch->certs[0], *root = ch->certs[ch->n - 1];
  if (!amt_hash_trusted(root, trusted, ntrusted)) {
    *why = "root certificate hash is not in the trusted hash table";
    return AMT_HBS_AUTH_FAILED;
  }
  for (size_t i = 0; i < ch->n; i++)
    if (!currently_valid(ch->certs[i])) {
      *why = "a provisioning certificate is expired or not yet valid";
      return AMT_HBS_AUTH_FAILED;
    }
  if (!has_activation_eku(leaf)) {
    *why = "leaf certificate lacks the AMT activation EKU " AMT_ACM_EKU_OID;
    return AMT_HBS_AUTH_FAILED;
  }
  if (!suffix_matches(leaf, dns_suffix)) {
    *why = "leaf certificate domain does not match the DNS suffix";
    return AMT_HBS_AUTH_FAILED;
  }
  uint8_t data[40];
  memcpy(data, config_nonce, 20);
  memcpy(data + 20, mc_nonce, 20);
  EVP_MD_CTX *ctx = EVP_MD_CTX_new();
  EVP_PKEY_CTX *pctx = NULL;
  int ok = ctx && EVP_DigestVerifyInit(ctx, &pctx, md, NULL, X509_get0_pubkey(leaf)) == 1 &&
           EVP_PKEY_base_id(X509_get0_pubkey(leaf)) == EVP_PKEY_RSA &&
           EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PADDING) == 1 &&
           EVP_DigestVerify(ctx, sig, sig_len, data, sizeof data) == 1;
  EVP_MD_CTX_free(ctx);
  ERR_clear_error();
  if (!ok) {
    *why = "signature over ConfigurationNonce||McNonce does not verify with the leaf key";
    return AMT_HBS_AUTH_FAILED;
  }
  return AMT_HBS_SUCCESS;
}

/* ---- WS-Man: AMT_PublicKeyManagementService, AMT_PublicKeyCertificate ---- */

static void pkms_instances(struct sim_device *d, struct amt_emit *e) {
  const struct amt_prop p[] = {{"CreationClassName", "AMT_PublicKeyManagementService"},
                               {"ElementName", "Intel(r) AMT Public Key Management Service"},
                               {"EnabledDefault", "5"}, {"EnabledState", "5"},
                               {"Name", "Intel(r) AMT Public Key Management Service"}, {"RequestedState", "12"},
                               {"SystemCreationClassName", "CIM_ComputerSystem"}, {"SystemName", "Intel(r) AMT"}};
  amt_emit_instance(e, "AMT_PublicKeyManagementService", p, sizeof p / sizeof p[0]);
}

static void cert_handle(const struct sim_device *d, const struct sim_cert *c, char *out, size_t n) {
  size_t idx = 0;
  for (size_t i = 0; d->trust && i < d->trust->n; i++)
    if (d->trust->certs[i] == c) idx = i;
  snprintf(out, n, "Intel(r) AMT Certificate: Handle: %zu", idx);
}

/* AMT writes names as "C=..,O=..,CN=.." (RFC 2253 order reversed, comma-separated). */
static void name_text(X509_NAME *name, char *out, size_t n) {
  BIO *b = BIO_new(BIO_s_mem());
  X509_NAME_print_ex(b, name, 0, (XN_FLAG_RFC2253 & ~XN_FLAG_DN_REV & ~ASN1_STRFLGS_ESC_MSB) | XN_FLAG_SEP_COMMA_PLUS);
  int len = BIO_read(b, out, (int)n - 1);
  out[len > 0 ? len : 0] = '\0';
  BIO_free(b);
}

static void add_trusted_root(struct sim_device *d, const struct dmt_wsman_request *w, struct dmt_buf *b,
                             struct amt_fault *f) {
  uint8_t *der = NULL;
  int len = sim_base64_decode(dmt_wsman_request_param(w, "CertificateBlob"), &der);
  const struct sim_cert *c = len > 0 ? sim_cert_intern(d->sim, der, (size_t)len) : NULL;
  free(der);
  if (!c) {
    amt_return(b, "AddTrustedRootCertificate", AMT_RV_INVALID_PARAMETER, NULL);
    return;
  }
  /* Adding a root that is already trusted answers with the existing handle (RPS re-sends on timeouts). */
  d->trust = sim_trust_with(d->sim, d->trust, c);
  sim_device_save(d);
  char handle[64];
  cert_handle(d, c, handle, sizeof handle);
  struct dmt_buf extra;
  dmt_buf_init(&extra, 0);
  dmt_buf_printf(&extra, "<g:CreatedCertificate>");
  const struct dmt_wsman_selector sel[] = {{"InstanceID", handle}};
  amt_epr(&extra, "AMT_PublicKeyCertificate", sel, 1);
  dmt_buf_printf(&extra, "</g:CreatedCertificate>");
  dmt_buf_append_u8(&extra, 0);
  amt_return(b, "AddTrustedRootCertificate", AMT_RV_SUCCESS, (const char *)dmt_buf_ptr(&extra));
  dmt_buf_free(&extra);
  sim_cira_reconsider(d);
}

static void pkms_invoke(struct sim_device *d, const struct dmt_wsman_request *w, struct dmt_buf *b,
                        struct amt_fault *f) {
  if (!strcmp(w->method, "AddTrustedRootCertificate")) add_trusted_root(d, w, b, f);
  else amt_fault_not_supported(f); /* key generation and TLS certificates are not simulated */
}

static void cert_instances(struct sim_device *d, struct amt_emit *e) {
  for (size_t i = 0; d->trust && i < d->trust->n; i++) {
    const struct sim_cert *c = d->trust->certs[i];
    char handle[64], subject[256], issuer[256];
    cert_handle(d, c, handle, sizeof handle);
    name_text(X509_get_subject_name(c->x509), subject, sizeof subject);
    name_text(X509_get_issuer_name(c->x509), issuer, sizeof issuer);
    char *b64 = sim_base64_encode(c->der, c->der_len);
    const struct amt_prop p[] = {{"ElementName", "Intel(r) AMT Certificate"}, {"InstanceID", handle},
                                 {"Issuer", issuer}, {"ReadOnlyCertificate", "false"}, {"Subject", subject},
                                 {"TrustedRootCertficate", "true"}, /* sic: AMT's property name */
                                 {"X509Certificate", b64}};
    amt_emit_instance(e, "AMT_PublicKeyCertificate", p, sizeof p / sizeof p[0]);
    free(b64);
  }
}

static void cert_delete(struct sim_device *d, const struct dmt_wsman_request *w, struct dmt_buf *b,
                        struct amt_fault *f) {
  const char *id = dmt_wsman_request_selector(w, "InstanceID");
  for (size_t i = 0; id && d->trust && i < d->trust->n; i++) {
    char handle[64];
    cert_handle(d, d->trust->certs[i], handle, sizeof handle);
    if (strcmp(handle, id)) continue;
    d->trust = sim_trust_without(d->sim, d->trust, d->trust->certs[i]);
    sim_device_save(d);
    return;
  }
  amt_fault_invalid_selectors(f);
}

const struct amt_class amt_cert_classes[] = {
    {"AMT_PublicKeyManagementService", pkms_instances, NULL, pkms_invoke, NULL},
    {"AMT_PublicKeyCertificate", cert_instances, NULL, NULL, cert_delete},
    {NULL, NULL, NULL, NULL, NULL},
};
