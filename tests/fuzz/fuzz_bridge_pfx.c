/*
 * Fuzz target: the bridge's certificate checks (pfx.c) - DMT's PKCS#12
 * provisioning-certificate validation in full and PATCH modes, and the
 * X.509 upload check. Input: <password>\n<domain suffix>\n<DER bytes>; the
 * DER is base64-encoded as clients send it, and the raw tail is also tried
 * as base64 text. Properties: a failure always comes with a message, a
 * success always with a certificate expiry; no leak, no out-of-bounds read.
 */
#include <openssl/evp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bridge.h"

static char *field(const uint8_t **p, const uint8_t *end) {
  const uint8_t *nl = memchr(*p, '\n', (size_t)(end - *p));
  const uint8_t *stop = nl ? nl : end;
  size_t n = (size_t)(stop - *p);
  char *s = malloc(n + 1);
  memcpy(s, *p, n);
  s[n] = '\0';
  *p = nl ? nl + 1 : end;
  return s;
}

static void check(const char *b64, const char *pw, const char *suffix) {
  for (int full = 0; full < 2; full++) {
    struct br_pfx_info info;
    char msg[512] = "";
    int rc = br_pfx_check(b64, pw, suffix, full, &info, msg, sizeof msg);
    if (rc != 0 && !msg[0]) abort();
    if (rc == 0 && info.not_after_min == 0) abort();
  }
  char msg[512] = "";
  if (br_x509_check_b64(b64, msg, sizeof msg) != 0 && !msg[0]) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static bool init;
  if (!init) {
    br_pfx_init();
    init = true;
  }
  const uint8_t *p = data, *end = data + size;
  char *pw = field(&p, end);
  char *suffix = field(&p, end);
  size_t n = (size_t)(end - p);
  char *b64 = malloc(4 * ((n + 2) / 3) + 1);
  EVP_EncodeBlock((unsigned char *)b64, p, (int)n);
  check(b64, pw, suffix);
  char *raw = malloc(n + 1);
  memcpy(raw, p, n);
  raw[n] = '\0';
  check(raw, pw, suffix);
  free(raw);
  free(b64);
  free(pw);
  free(suffix);
  return 0;
}
