/* Growable byte buffer with a hard cap (see dmt/buf.h). */
#include "dmt/buf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void dmt_buf_init(struct dmt_buf *b, size_t max) {
  b->data = NULL;
  b->off = b->len = b->cap = 0;
  b->max = max;
}

void dmt_buf_free(struct dmt_buf *b) {
  free(b->data);
  dmt_buf_init(b, b->max);
}

void dmt_buf_reset(struct dmt_buf *b) { dmt_buf_free(b); }

uint8_t *dmt_buf_reserve(struct dmt_buf *b, size_t n) {
  size_t used = b->len - b->off;
  if (b->max && (n > b->max || used > b->max - n)) return NULL;
  if (b->len + n <= b->cap) return b->data + b->len;
  if (b->off > 0) { /* compact before growing */
    memmove(b->data, b->data + b->off, used);
    b->off = 0;
    b->len = used;
    if (b->len + n <= b->cap) return b->data + b->len;
  }
  size_t cap = b->cap ? b->cap : 256;
  while (cap < used + n) cap *= 2;
  if (b->max && cap > b->max) cap = b->max;
  uint8_t *p = realloc(b->data, cap);
  if (!p) return NULL;
  b->data = p;
  b->cap = cap;
  return b->data + b->len;
}

int dmt_buf_append(struct dmt_buf *b, const void *p, size_t n) {
  uint8_t *w = dmt_buf_reserve(b, n);
  if (!w) return -1;
  if (n) memcpy(w, p, n);
  b->len += n;
  return 0;
}

int dmt_buf_append_u8(struct dmt_buf *b, uint8_t v) { return dmt_buf_append(b, &v, 1); }

int dmt_buf_append_u32be(struct dmt_buf *b, uint32_t v) {
  uint8_t be[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};
  return dmt_buf_append(b, be, 4);
}

int dmt_buf_append_str(struct dmt_buf *b, const void *p, size_t n) {
  if (n > UINT32_MAX) return -1;
  return dmt_buf_append_u32be(b, (uint32_t)n) || dmt_buf_append(b, p, n) ? -1 : 0;
}

int dmt_buf_printf(struct dmt_buf *b, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  if (n < 0) return -1;
  uint8_t *w = dmt_buf_reserve(b, (size_t)n + 1);
  if (!w) return -1;
  va_start(ap, fmt);
  vsnprintf((char *)w, (size_t)n + 1, fmt, ap);
  va_end(ap);
  b->len += (size_t)n; /* the NUL stays outside the content */
  return 0;
}

void dmt_buf_consume(struct dmt_buf *b, size_t n) {
  size_t used = b->len - b->off;
  if (n >= used) {
    b->off = b->len = 0;
    return;
  }
  b->off += n;
}
