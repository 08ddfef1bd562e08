/* base64url without padding (see dmt/b64url.h). */
#include "dmt/b64url.h"

static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static int value(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '-') return 62;
  if (c == '_') return 63;
  return -1;
}

long dmt_b64url_decode(const char *in, size_t len, uint8_t *out, size_t cap) {
  if (len % 4 == 1) return -1; /* one leftover symbol carries less than a byte */
  size_t o = 0;
  uint32_t acc = 0;
  unsigned bits = 0;
  for (size_t i = 0; i < len; i++) {
    int v = value(in[i]);
    if (v < 0) return -1;
    acc = (acc << 6) | (uint32_t)v;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      if (o >= cap) return -1;
      out[o++] = (uint8_t)(acc >> bits);
      acc &= (1u << bits) - 1;
    }
  }
  if (acc != 0) return -1; /* non-canonical trailing bits */
  return (long)o;
}

long dmt_b64url_encode(const uint8_t *in, size_t len, char *out, size_t cap) {
  size_t o = 0;
  uint32_t acc = 0;
  unsigned bits = 0;
  for (size_t i = 0; i < len; i++) {
    acc = (acc << 8) | in[i];
    bits += 8;
    while (bits >= 6) {
      bits -= 6;
      if (o + 1 >= cap) return -1;
      out[o++] = alphabet[(acc >> bits) & 63];
    }
    acc &= (1u << bits) - 1;
  }
  if (bits) {
    if (o + 1 >= cap) return -1;
    out[o++] = alphabet[(acc << (6 - bits)) & 63];
  }
  if (o >= cap) return -1;
  out[o] = '\0';
  return (long)o;
}
