/*
 * AMT password material (rps-activation.md §2.4, §8): the NetworkAdminPassword
 * of Setup/AdminSetup (the digest HA1 of user admin, lowercase hex), the
 * SetAdminAclEntryEx DigestPassword (the same 16 bytes, base64), DMT's random
 * password rule and the digest realm check. MD5 comes from dmt/digest.h
 * (OpenSSL); randomness from OpenSSL's CSPRNG with rejection sampling, so
 * every character of the alphabet is equally likely.
 */
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <string.h>

#include "rps.h"

void amt_network_admin_password(const char *realm, const char *password, char out[DMT_DIGEST_HEX]) {
  dmt_digest_ha1(RPS_ADMIN_USER, realm, password, out);
}

void amt_acl_digest_password(const char *realm, const char *password, char out[32]) {
  uint8_t raw[16];
  dmt_digest_ha1_raw(RPS_ADMIN_USER, realm, password, raw);
  EVP_EncodeBlock((unsigned char *)out, raw, sizeof raw);
  OPENSSL_cleanse(raw, sizeof raw);
}

/* DMT's PasswordHelper: 16 characters of this alphabet, kept only when it has an upper, a lower,
 * a digit and one of $@!%*#? (of which the alphabet holds !@#$%*). */
static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789!@#$%^*()";

static bool acceptable(const char *p) {
  bool up = false, lo = false, dig = false, sp = false;
  for (; *p; p++) {
    up |= *p >= 'A' && *p <= 'Z';
    lo |= *p >= 'a' && *p <= 'z';
    dig |= *p >= '0' && *p <= '9';
    sp |= strchr("$@!%*#?", *p) != NULL;
  }
  return up && lo && dig && sp;
}

int amt_random_password(char *out, size_t outlen) {
  const size_t len = 16, n = sizeof alphabet - 1, limit = 256 - 256 % (sizeof alphabet - 1);
  if (outlen < len + 1) return -1;
  for (int tries = 0; tries < 1000; tries++) {
    size_t k = 0;
    while (k < len) {
      uint8_t r[32];
      if (RAND_bytes(r, sizeof r) != 1) return -1;
      for (size_t i = 0; i < sizeof r && k < len; i++)
        if (r[i] < limit) out[k++] = alphabet[r[i] % n];
      OPENSSL_cleanse(r, sizeof r);
    }
    out[len] = '\0';
    if (acceptable(out)) return 0;
  }
  return -1;
}

bool amt_realm_valid(const char *realm) { return realm && dmt_digest_realm_valid(realm); }
