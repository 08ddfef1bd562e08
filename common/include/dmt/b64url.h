/*
 * base64url (RFC 4648 §5) without padding, as JWTs and JWKS use it. The
 * decoder is strict: only the url alphabet, no padding, no whitespace, and
 * the unused low bits of the last symbol must be zero, so one byte string has
 * exactly one encoding.
 */
#ifndef DMT_B64URL_H
#define DMT_B64URL_H

#include <stddef.h>
#include <stdint.h>

/* Bytes needed to decode len symbols (an upper bound). */
#define DMT_B64URL_DECODED_MAX(len) (((len) / 4) * 3 + 3)
/* Characters produced by encoding len bytes, plus the terminating NUL. */
#define DMT_B64URL_ENCODED_SIZE(len) ((((len) + 2) / 3) * 4 + 1)

/* Decodes in[0..len) into out (capacity cap). Returns the byte count or -1. */
long dmt_b64url_decode(const char *in, size_t len, uint8_t *out, size_t cap);
/* Encodes into out (capacity cap, NUL-terminated). Returns the length or -1 if it does not fit. */
long dmt_b64url_encode(const uint8_t *in, size_t len, char *out, size_t cap);

#endif
