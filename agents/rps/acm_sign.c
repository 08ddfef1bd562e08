/*
 * Admin control mode material (rps-activation.md §1.9, §2.2, §2.4): the
 * domain's provisioning certificate (PKCS#12 from the secret store,
 * decrypted with OpenSSL 3 including the legacy provider for RC2/3DES
 * files), the chain in AddNextCertInChain order, the root fingerprints the
 * device's trusted hashes are matched against, and the AdminSetup signature
 * (RSASSA-PKCS1-v1_5 / SHA-256 over ConfigurationNonce || McNonce).
 *
 * CPU-heavy work (PKCS#12 key derivation and decryption, RSA signing) runs on
 * a small pool of threads of our own (work_pool), never on the lws loop: a
 * burst of ACM activations uses every core while other devices' round trips
 * keep flowing. Decrypted chains are cached per (tenant, domain, PKCS#12
 * digest) for a short time so 200 devices of one domain decrypt it once; the
 * key lives only in memory and is never logged or written.
 */
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/pkcs12.h>
#include <openssl/provider.h>
#include <openssl/x509v3.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "rps.h"

/* ---- providers ---- */

static int providers_rc;
static OSSL_PROVIDER *prov_default, *prov_legacy;

static void providers_load(void) {
  /* Loading "legacy" explicitly unloads the implicit default: load both, once, for the process. */
  prov_default = OSSL_PROVIDER_load(NULL, "default");
  prov_legacy = OSSL_PROVIDER_load(NULL, "legacy");
  providers_rc = prov_default && prov_legacy ? 0 : -1;
  ERR_clear_error();
}

void acm_release_providers(void) {
  if (prov_legacy) OSSL_PROVIDER_unload(prov_legacy);
  if (prov_default) OSSL_PROVIDER_unload(prov_default);
  prov_legacy = prov_default = NULL;
}

int acm_init_providers(void) {
  static pthread_once_t once = PTHREAD_ONCE_INIT;
  pthread_once(&once, providers_load);
  return providers_rc;
}

/* ---- chain ---- */

static char *cert_b64(X509 *x) {
  unsigned char *der = NULL;
  int n = i2d_X509(x, &der);
  if (n <= 0) return NULL;
  char *s = rps_b64_encode(der, (size_t)n);
  OPENSSL_free(der);
  return s;
}

static int64_t asn1_unix(const ASN1_TIME *t) {
  struct tm tm;
  if (!t || ASN1_TIME_to_tm(t, &tm) != 1) return 0;
  return (int64_t)timegm(&tm);
}

struct acm_chain *acm_chain_ref(struct acm_chain *c) {
  if (c) __atomic_add_fetch(&c->refs, 1, __ATOMIC_SEQ_CST);
  return c;
}

void acm_chain_unref(struct acm_chain *c) {
  if (!c || __atomic_sub_fetch(&c->refs, 1, __ATOMIC_SEQ_CST) > 0) return;
  EVP_PKEY_free(c->key);
  for (size_t i = 0; i < c->ncerts; i++) free(c->certs_b64[i]);
  free(c->certs_b64);
  free(c);
}

int acm_chain_load(const uint8_t *p12buf, size_t len, const char *password, struct acm_chain **out, char *err,
                   size_t errlen) {
  *out = NULL;
  acm_init_providers();
  BIO *bio = BIO_new_mem_buf(p12buf, (int)len);
  PKCS12 *p12 = bio ? d2i_PKCS12_bio(bio, NULL) : NULL;
  BIO_free(bio);
  EVP_PKEY *key = NULL;
  X509 *leaf = NULL;
  STACK_OF(X509) *ca = NULL;
  struct acm_chain *c = NULL;
  X509 *order[8];
  size_t n = 0;
  if (!p12) {
    snprintf(err, errlen, "Failed to extract domain certificate: not a PKCS#12 file");
    goto out;
  }
  if (!PKCS12_parse(p12, password ? password : "", &key, &leaf, &ca) || !key || !leaf) {
    snprintf(err, errlen, "Failed to extract domain certificate: wrong password or no key and certificate");
    goto out;
  }
  if (EVP_PKEY_get_base_id(key) != EVP_PKEY_RSA) {
    snprintf(err, errlen, "Failed to extract domain certificate: the key is not RSA");
    goto out;
  }
  if (X509_check_private_key(leaf, key) != 1) {
    snprintf(err, errlen, "Failed to extract domain certificate: the key does not match the certificate");
    goto out;
  }
  /* leaf, then each certificate's issuer among the others, up to a self-signed root */
  order[n++] = leaf;
  for (;;) {
    X509 *last = order[n - 1];
    if (X509_check_issued(last, last) == X509_V_OK) break;
    X509 *issuer = NULL;
    for (int i = 0; ca && i < sk_X509_num(ca); i++) {
      X509 *cand = sk_X509_value(ca, i);
      bool used = false;
      for (size_t k = 0; k < n; k++) used |= order[k] == cand;
      if (!used && X509_check_issued(cand, last) == X509_V_OK) {
        issuer = cand;
        break;
      }
    }
    if (!issuer || n == sizeof order / sizeof order[0]) {
      snprintf(err, errlen, "Failed to extract domain certificate: the chain does not end in a self-signed root");
      goto out;
    }
    order[n++] = issuer;
  }
  c = calloc(1, sizeof *c);
  if (!c || !(c->certs_b64 = calloc(n, sizeof *c->certs_b64))) {
    snprintf(err, errlen, "out of memory");
    goto out;
  }
  c->refs = 1;
  c->not_after_min = INT64_MAX;
  for (size_t i = 0; i < n; i++) {
    if (!(c->certs_b64[i] = cert_b64(order[i]))) {
      snprintf(err, errlen, "Failed to extract domain certificate");
      goto out;
    }
    c->ncerts++;
    int64_t nb = asn1_unix(X509_get0_notBefore(order[i])), na = asn1_unix(X509_get0_notAfter(order[i]));
    if (nb > c->not_before_max) c->not_before_max = nb;
    if (na < c->not_after_min) c->not_after_min = na;
  }
  X509 *root = order[n - 1];
  unsigned int dl;
  X509_digest(root, EVP_sha1(), c->root_sha1, &dl);
  X509_digest(root, EVP_sha256(), c->root_sha256, &dl);
  X509_digest(root, EVP_sha384(), c->root_sha384, &dl);
  X509_NAME_get_text_by_NID(X509_get_subject_name(leaf), NID_commonName, c->leaf_cn, sizeof c->leaf_cn);
  c->key = key;
  key = NULL;
  *out = c;
  c = NULL;
out:
  ERR_clear_error();
  if (c) {
    c->refs = 1;
    acm_chain_unref(c);
  }
  EVP_PKEY_free(key);
  X509_free(leaf);
  sk_X509_pop_free(ca, X509_free);
  PKCS12_free(p12);
  return *out ? 0 : -1;
}

static void hex(const uint8_t *b, size_t n, char *out) {
  static const char d[] = "0123456789abcdef";
  for (size_t i = 0; i < n; i++) {
    out[2 * i] = d[b[i] >> 4];
    out[2 * i + 1] = d[b[i] & 15];
  }
  out[2 * n] = '\0';
}

bool acm_root_trusted(const struct acm_chain *c, char *const *hashes, size_t n) {
  char h1[41], h256[65], h384[97];
  hex(c->root_sha1, 20, h1);
  hex(c->root_sha256, 32, h256);
  hex(c->root_sha384, 48, h384);
  for (size_t i = 0; i < n; i++) {
    const char *h = hashes[i];
    size_t l = strlen(h);
    const char *want = l == 40 ? h1 : l == 64 ? h256 : l == 96 ? h384 : NULL;
    if (want && !strcasecmp(h, want)) return true;
  }
  return false;
}

/* The last two labels of a DNS name ("a.b.vprodemo.com" -> "vprodemo.com"). */
static const char *last_two_labels(const char *s) {
  const char *end = s + strlen(s);
  while (end > s && end[-1] == '.') end--; /* a trailing dot */
  int dots = 0;
  for (const char *p = end; p > s; p--)
    if (p[-1] == '.' && ++dots == 2) return p;
  return dots == 1 ? s : NULL;
}

bool acm_domain_matches(const char *cn, const char *fqdn) {
  const char *a = cn ? last_two_labels(cn) : NULL, *b = fqdn ? last_two_labels(fqdn) : NULL;
  if (!a || !b) return false;
  size_t la = strlen(a), lb = strlen(b);
  while (la && a[la - 1] == '.') la--;
  while (lb && b[lb - 1] == '.') lb--;
  return la == lb && !strncasecmp(a, b, la);
}

int acm_sign(EVP_PKEY *key, const uint8_t *config_nonce, size_t cn_len, const uint8_t *mc_nonce, size_t mc_len,
             char **sig_b64) {
  *sig_b64 = NULL;
  uint8_t data[128], sig[1024];
  if (cn_len + mc_len > sizeof data || (size_t)EVP_PKEY_get_size(key) > sizeof sig) return -1;
  memcpy(data, config_nonce, cn_len);
  memcpy(data + cn_len, mc_nonce, mc_len);
  size_t siglen = sizeof sig;
  EVP_MD_CTX *md = EVP_MD_CTX_new();
  int ok = md && EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, key) == 1 &&
           EVP_DigestSign(md, sig, &siglen, data, cn_len + mc_len) == 1;
  EVP_MD_CTX_free(md);
  ERR_clear_error();
  if (ok) *sig_b64 = rps_b64_encode(sig, siglen);
  return *sig_b64 ? 0 : -1;
}

/* ---- work pool ---- */

struct work_item {
  void (*work)(void *arg);
  void (*done)(void *arg);
  void *arg;
  struct work_item *next;
};

struct work_pool {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  struct work_item *head, *tail;
  bool stop;
  struct dmt_workq *owner;
  pthread_t *threads;
  unsigned nthreads;
};

static void *worker(void *arg) {
  struct work_pool *p = arg;
  for (;;) {
    pthread_mutex_lock(&p->mu);
    while (!p->head && !p->stop) pthread_cond_wait(&p->cv, &p->mu);
    struct work_item *it = p->head;
    if (it) {
      p->head = it->next;
      if (!p->head) p->tail = NULL;
    }
    pthread_mutex_unlock(&p->mu);
    if (!it) return NULL; /* stopping and drained */
    it->work(it->arg);
    if (dmt_workq_post(p->owner, it->done, it->arg) != 0) it->done(it->arg); /* OOM: degrade, never lose it */
    free(it);
  }
}

struct work_pool *work_pool_new(unsigned threads, struct dmt_workq *owner) {
  struct work_pool *p = calloc(1, sizeof *p);
  if (!p) return NULL;
  pthread_mutex_init(&p->mu, NULL);
  pthread_cond_init(&p->cv, NULL);
  p->owner = owner;
  p->threads = calloc(threads ? threads : 1, sizeof *p->threads);
  for (unsigned i = 0; p->threads && i < (threads ? threads : 1); i++)
    if (pthread_create(&p->threads[i], NULL, worker, p) == 0) p->nthreads++;
  if (!p->nthreads) {
    work_pool_free(p);
    return NULL;
  }
  return p;
}

void work_pool_free(struct work_pool *p) {
  if (!p) return;
  pthread_mutex_lock(&p->mu);
  p->stop = true;
  pthread_cond_broadcast(&p->cv);
  pthread_mutex_unlock(&p->mu);
  for (unsigned i = 0; i < p->nthreads; i++) pthread_join(p->threads[i], NULL);
  free(p->threads);
  pthread_mutex_destroy(&p->mu);
  pthread_cond_destroy(&p->cv);
  free(p);
}

int work_pool_submit(struct work_pool *p, void (*work)(void *arg), void (*done)(void *arg), void *arg) {
  struct work_item *it = calloc(1, sizeof *it);
  if (!it) return -1;
  *it = (struct work_item){work, done, arg, NULL};
  pthread_mutex_lock(&p->mu);
  if (p->tail) p->tail->next = it;
  else p->head = it;
  p->tail = it;
  pthread_cond_signal(&p->cv);
  pthread_mutex_unlock(&p->mu);
  return 0;
}
