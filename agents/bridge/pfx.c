/*
 * Provisioning-certificate (PKCS#12) checks for domain profiles, in the order
 * and with the messages of DMT's RPS (rps-activation.md §3.4): decrypt,
 * suffix, validity, root, key size, private key, chain, AMT activation EKU.
 * OpenSSL 3 needs its legacy provider for the RC2/3DES files DMT accepts
 * (node-forge reads them natively). Bags are walked in file order so that
 * "certificate 0" is the same certificate node-forge would call the leaf.
 *
 * Also the X.509 check of the MPS certificate-upload route. Both take base64
 * decoded as Node's Buffer.from(s, 'base64') does (lenient).
 */
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/pkcs12.h>
#include <openssl/provider.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bridge.h"

#define DECRYPT_MSG                                                                                         \
  "Unable to decrypt provisioning certificate. Please check that the password is correct, and that the " \
  "certificate is a valid certificate."
#define AMT_ACTIVATION_OID "2.16.840.1.113741.1.2.3"

static OSSL_PROVIDER *legacy_provider, *default_provider;

void br_pfx_init(void) {
  if (!legacy_provider) legacy_provider = OSSL_PROVIDER_load(NULL, "legacy");
  if (!default_provider) default_provider = OSSL_PROVIDER_load(NULL, "default");
}

void br_pfx_cleanup(void) {
  if (legacy_provider) OSSL_PROVIDER_unload(legacy_provider);
  if (default_provider) OSSL_PROVIDER_unload(default_provider);
  legacy_provider = default_provider = NULL;
}

static int b64v(int c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+' || c == '-') return 62;
  if (c == '/' || c == '_') return 63;
  return -1;
}

/* Node's Buffer.from(s, 'base64'): skips characters outside the alphabet, stops at '='. */
static unsigned char *b64_lenient(const char *s, size_t *outlen) {
  size_t n = strlen(s);
  unsigned char *out = malloc(n * 3 / 4 + 3);
  if (!out) return NULL;
  size_t o = 0;
  unsigned acc = 0;
  int bits = 0;
  for (const char *p = s; *p && *p != '='; p++) {
    int v = b64v((unsigned char)*p);
    if (v < 0) continue;
    acc = (acc << 6) | (unsigned)v;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out[o++] = (unsigned char)(acc >> bits);
      acc &= (1u << bits) - 1;
    }
  }
  *outlen = o;
  return out;
}

static int64_t asn1_to_unix(const ASN1_TIME *t) {
  struct tm tm;
  if (!t || ASN1_TIME_to_tm(t, &tm) != 1) return 0;
  return (int64_t)timegm(&tm);
}

static void iso_time(int64_t secs, char *out, size_t outlen) {
  time_t tt = (time_t)secs;
  struct tm tm;
  gmtime_r(&tt, &tm);
  strftime(out, outlen, "%Y-%m-%dT%H:%M:%S.000Z", &tm);
}

struct bagset {
  STACK_OF(X509) *certs;
  EVP_PKEY *key; /* the first shrouded key (node-forge's keys[0]) */
  int nkeys;
};

static void bagset_free(struct bagset *b) {
  sk_X509_pop_free(b->certs, X509_free);
  EVP_PKEY_free(b->key);
}

static int take_bags(STACK_OF(PKCS12_SAFEBAG) *bags, const char *pass, struct bagset *b) {
  for (int i = 0; i < sk_PKCS12_SAFEBAG_num(bags); i++) {
    PKCS12_SAFEBAG *bag = sk_PKCS12_SAFEBAG_value(bags, i);
    int nid = PKCS12_SAFEBAG_get_nid(bag);
    if (nid == NID_certBag && PKCS12_SAFEBAG_get_bag_nid(bag) == NID_x509Certificate) {
      X509 *x = PKCS12_SAFEBAG_get1_cert(bag);
      if (!x) return -1;
      sk_X509_push(b->certs, x);
    } else if (nid == NID_pkcs8ShroudedKeyBag) {
      PKCS8_PRIV_KEY_INFO *p8 = PKCS12_decrypt_skey(bag, pass, -1);
      if (!p8) return -1;
      EVP_PKEY *k = EVP_PKCS82PKEY(p8);
      PKCS8_PRIV_KEY_INFO_free(p8);
      if (!k) return -1;
      if (b->nkeys++ == 0) b->key = k;
      else EVP_PKEY_free(k);
    }
  }
  return 0;
}

static int load_bags(PKCS12 *p12, const char *pass, struct bagset *b) {
  STACK_OF(PKCS7) *safes = PKCS12_unpack_authsafes(p12);
  if (!safes) return -1;
  int rc = 0;
  for (int i = 0; i < sk_PKCS7_num(safes) && rc == 0; i++) {
    PKCS7 *p7 = sk_PKCS7_value(safes, i);
    int nid = OBJ_obj2nid(p7->type);
    STACK_OF(PKCS12_SAFEBAG) *bags = NULL;
    if (nid == NID_pkcs7_data) bags = PKCS12_unpack_p7data(p7);
    else if (nid == NID_pkcs7_encrypted) bags = PKCS12_unpack_p7encdata(p7, pass, -1);
    else continue;
    if (!bags) rc = -1;
    else rc = take_bags(bags, pass, b);
    sk_PKCS12_SAFEBAG_pop_free(bags, PKCS12_SAFEBAG_free);
  }
  sk_PKCS7_pop_free(safes, PKCS7_free);
  return rc;
}

/* The last two labels, as `a[a.length-2] + '.' + a[a.length-1]` in JavaScript (missing -> "undefined"). */
static void last_two(const char *s, char *out, size_t outlen) {
  const char *last = strrchr(s, '.');
  if (!last) {
    snprintf(out, outlen, "undefined.%s", s);
  } else {
    const char *prev = last;
    while (prev > s && prev[-1] != '.') prev--;
    snprintf(out, outlen, "%.*s", (int)(strlen(prev)), prev);
  }
  /* .trim() */
  size_t n = strlen(out);
  while (n && (out[n - 1] == ' ' || out[n - 1] == '\t' || out[n - 1] == '\n' || out[n - 1] == '\r')) out[--n] = '\0';
  size_t lead = strspn(out, " \t\r\n");
  if (lead) memmove(out, out + lead, strlen(out + lead) + 1);
}

static bool has_eku(X509 *x, const char *oid) {
  EXTENDED_KEY_USAGE *eku = X509_get_ext_d2i(x, NID_ext_key_usage, NULL, NULL);
  bool found = false;
  for (int i = 0; eku && i < sk_ASN1_OBJECT_num(eku) && !found; i++) {
    char buf[80];
    OBJ_obj2txt(buf, sizeof buf, sk_ASN1_OBJECT_value(eku, i), 1);
    found = !strcmp(buf, oid);
  }
  EXTENDED_KEY_USAGE_free(eku);
  return found;
}

static bool is_self_issued(X509 *x) { return X509_NAME_cmp(X509_get_subject_name(x), X509_get_issuer_name(x)) == 0; }

static int check_chain(STACK_OF(X509) *certs, char *msg, size_t msglen) {
  int n = sk_X509_num(certs);
  if (n <= 1) return 0;
  X509 **pool = calloc((size_t)n, sizeof *pool), **chain = calloc((size_t)n, sizeof *chain);
  int rc = -1, np = n - 1, nc = 0;
  for (int i = 1; i < n; i++) pool[i - 1] = sk_X509_value(certs, i);
  X509 *cur = sk_X509_value(certs, 0);
  while (cur) {
    chain[nc++] = cur;
    if (is_self_issued(cur)) break;
    int found = -1;
    for (int i = 0; i < np && found < 0; i++)
      if (X509_NAME_cmp(X509_get_subject_name(pool[i]), X509_get_issuer_name(cur)) == 0) found = i;
    if (found < 0) {
      snprintf(msg, msglen, "Certificate chain is broken: cannot find issuer for a certificate in the chain");
      goto out;
    }
    cur = pool[found];
    pool[found] = pool[--np];
  }
  for (int i = 0; i < nc; i++) {
    X509 *issuer = i + 1 < nc ? chain[i + 1] : chain[i];
    if (i + 1 < nc || is_self_issued(chain[i])) {
      if (i + 1 < nc && X509_get_extension_flags(issuer) & EXFLAG_BCONS && !(X509_get_extension_flags(issuer) & EXFLAG_CA)) {
        snprintf(msg, msglen,
                 "Certificate chain signature verification failed: Certificate keyUsage or basicConstraints "
                 "conflict or indicate that the certificate is not a CA.");
        goto out;
      }
      if (X509_verify(chain[i], X509_get0_pubkey(issuer)) != 1) {
        ERR_clear_error();
        snprintf(msg, msglen, "Certificate chain signature verification failed: Certificate signature is invalid.");
        goto out;
      }
    }
  }
  rc = 0;
out:
  free(pool);
  free(chain);
  return rc;
}

int br_pfx_check(const char *b64, const char *password, const char *suffix, bool full, struct br_pfx_info *info,
                 char *msg, size_t msglen) {
  memset(info, 0, sizeof *info);
  size_t derlen = 0;
  unsigned char *der = b64_lenient(b64 ? b64 : "", &derlen);
  const unsigned char *pp = der;
  PKCS12 *p12 = der ? d2i_PKCS12(NULL, &pp, (long)derlen) : NULL;
  struct bagset b = {sk_X509_new_null(), NULL, 0};
  int rc = -1;
  const char *pass = password ? password : "";
  if (!p12 || (PKCS12_mac_present(p12) && PKCS12_verify_mac(p12, pass, -1) != 1) || load_bags(p12, pass, &b) != 0 ||
      sk_X509_num(b.certs) == 0 || b.nkeys == 0) {
    snprintf(msg, msglen, DECRYPT_MSG);
    goto out;
  }
  int n = sk_X509_num(b.certs);
  for (int i = 0; i < n; i++) {
    if (EVP_PKEY_get_base_id(X509_get0_pubkey(sk_X509_value(b.certs, i))) != EVP_PKEY_RSA) {
      snprintf(msg, msglen, "Unsupported provisioning certificate: an RSA-keyed certificate is required");
      goto out;
    }
  }
  X509 *leaf = sk_X509_value(b.certs, 0);
  X509_NAME_get_text_by_NID(X509_get_subject_name(leaf), NID_commonName, info->cn, sizeof info->cn);
  info->not_after_min = INT64_MAX;
  for (int i = 0; i < n; i++) {
    int64_t na = asn1_to_unix(X509_get0_notAfter(sk_X509_value(b.certs, i)));
    if (na < info->not_after_min) info->not_after_min = na;
  }
  if (!full) {
    rc = 0;
    goto out;
  }
  if (suffix) {
    if (!info->cn[0]) {
      snprintf(msg, msglen, "Provisioning certificate does not contain a Common Name (CN) in the subject");
      goto out;
    }
    char a[300], c[300];
    last_two(info->cn, a, sizeof a);
    last_two(suffix, c, sizeof c);
    if (strcmp(a, c) != 0) {
      snprintf(msg, msglen, "FQDN not associated with provisioning certificate");
      goto out;
    }
  }
  int64_t now = (int64_t)time(NULL);
  for (int i = 0; i < n; i++) {
    X509 *x = sk_X509_value(b.certs, i);
    int64_t nb = asn1_to_unix(X509_get0_notBefore(x)), na = asn1_to_unix(X509_get0_notAfter(x));
    if (nb > now) {
      char iso[40];
      iso_time(nb, iso, sizeof iso);
      snprintf(msg, msglen, "Uploaded certificate is not yet valid: notBefore date %s is in the future", iso);
      goto out;
    }
    if (na < now) {
      snprintf(msg, msglen, "Uploaded certificate has expired");
      goto out;
    }
  }
  bool root = false;
  for (int i = 0; i < n && !root; i++) root = is_self_issued(sk_X509_value(b.certs, i));
  if (!root) {
    snprintf(msg, msglen, "Provisioning certificate does not contain a root certificate");
    goto out;
  }
  for (int i = 0; i < n; i++) {
    int bits = EVP_PKEY_get_bits(X509_get0_pubkey(sk_X509_value(b.certs, i)));
    if (bits < 2048) {
      snprintf(msg, msglen, "Certificate key size %d bits is below the minimum required 2048 bits for AMT", bits);
      goto out;
    }
  }
  if (EVP_PKEY_eq(b.key, X509_get0_pubkey(leaf)) != 1) {
    snprintf(msg, msglen, "Private key in the PFX does not match the leaf certificate public key");
    goto out;
  }
  if (check_chain(b.certs, msg, msglen) != 0) goto out;
  if (!has_eku(leaf, AMT_ACTIVATION_OID)) {
    snprintf(msg, msglen, "Leaf certificate is missing the Intel AMT Activation EKU OID (%s)", AMT_ACTIVATION_OID);
    goto out;
  }
  rc = 0;
out:
  ERR_clear_error();
  bagset_free(&b);
  PKCS12_free(p12);
  free(der);
  return rc;
}

int br_x509_check_b64(const char *b64, char *msg, size_t msglen) {
  size_t len = 0;
  unsigned char *der = b64_lenient(b64 ? b64 : "", &len);
  const unsigned char *p = der;
  X509 *x = der && len ? d2i_X509(NULL, &p, (long)len) : NULL;
  if (!x && der && len) {
    BIO *bio = BIO_new_mem_buf(der, (int)len);
    x = bio ? PEM_read_bio_X509(bio, NULL, NULL, NULL) : NULL;
    BIO_free(bio);
  }
  free(der);
  ERR_clear_error();
  if (!x) {
    snprintf(msg, msglen, "Invalid certificate format (not valid DER or PEM)");
    return -1;
  }
  int64_t na = asn1_to_unix(X509_get0_notAfter(x));
  X509_free(x);
  if (na < (int64_t)time(NULL)) {
    snprintf(msg, msglen, "Certificate has expired");
    return -1;
  }
  return 0;
}
