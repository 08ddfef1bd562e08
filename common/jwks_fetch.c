/*
 * JWKS over HTTP(S) (see dmt/jwks.h): one blocking GET through libcurl, the
 * document capped at DMT_JWKS_MAX_BYTES, then dmt_jwks_parse. Shared by the
 * broker plugin and the REST bridge, which both refresh Keycloak's keys from a
 * background thread and keep their previous keys whatever happens here.
 */
#include <curl/curl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "dmt/jwks.h"

struct body {
  char *data;
  size_t len;
  bool too_big;
};

static size_t collect(char *ptr, size_t size, size_t nmemb, void *ud) {
  struct body *b = ud;
  size_t n = size * nmemb;
  if (b->len + n > DMT_JWKS_MAX_BYTES) {
    b->too_big = true;
    return 0;
  }
  char *nd = realloc(b->data, b->len + n + 1);
  if (!nd) return 0;
  memcpy(nd + b->len, ptr, n);
  b->data = nd;
  b->len += n;
  nd[b->len] = '\0';
  return n;
}

int dmt_jwks_fetch(const char *url, const char *ca_file, long timeout_s, struct dmt_jwks **out, char *err,
                   size_t errlen) {
  *out = NULL;
  CURL *c = curl_easy_init();
  if (!c) {
    snprintf(err, errlen, "curl_easy_init failed");
    return DMT_JWKS_UNREACHABLE;
  }
  struct body b = {0};
  char cerr[CURL_ERROR_SIZE] = "";
  curl_easy_setopt(c, CURLOPT_URL, url);
  curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(c, CURLOPT_TIMEOUT, timeout_s);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, cerr);
  if (ca_file) curl_easy_setopt(c, CURLOPT_CAINFO, ca_file);
  CURLcode rc = curl_easy_perform(c);
  long status = 0;
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
  curl_easy_cleanup(c);
  int ret;
  if (rc != CURLE_OK || status != 200) {
    snprintf(err, errlen, "status %ld: %s", status,
             b.too_big ? "document too large" : cerr[0] ? cerr : curl_easy_strerror(rc));
    ret = DMT_JWKS_UNREACHABLE;
  } else {
    *out = dmt_jwks_parse(b.data ? b.data : "", b.len, err, errlen);
    ret = *out ? DMT_JWKS_FETCHED : DMT_JWKS_REFUSED;
  }
  free(b.data);
  return ret;
}
