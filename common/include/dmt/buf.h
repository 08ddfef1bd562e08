/*
 * Growable byte buffer with an optional hard cap, so a peer can never make a
 * connection's buffer grow without bound. Data is consumed from the front by
 * advancing an offset and compacting lazily, so a stream parser can eat
 * messages one at a time without memmove per message.
 */
#ifndef DMT_BUF_H
#define DMT_BUF_H

#include <stddef.h>
#include <stdint.h>

struct dmt_buf {
  uint8_t *data;
  size_t off;  /* start of unread data */
  size_t len;  /* end of data (data[off..len) is the content) */
  size_t cap;
  size_t max;  /* 0 = unlimited */
};

void dmt_buf_init(struct dmt_buf *b, size_t max);
void dmt_buf_free(struct dmt_buf *b);
/* Drops the content and releases memory (for idle connections). */
void dmt_buf_reset(struct dmt_buf *b);

static inline size_t dmt_buf_size(const struct dmt_buf *b) { return b->len - b->off; }
static inline const uint8_t *dmt_buf_ptr(const struct dmt_buf *b) { return b->data + b->off; }

/* Makes room for n more bytes; returns a pointer to write them, or NULL (cap/OOM). */
uint8_t *dmt_buf_reserve(struct dmt_buf *b, size_t n);
/* Marks n bytes written after dmt_buf_reserve(). */
static inline void dmt_buf_commit(struct dmt_buf *b, size_t n) { b->len += n; }

int dmt_buf_append(struct dmt_buf *b, const void *p, size_t n);
int dmt_buf_append_u8(struct dmt_buf *b, uint8_t v);
int dmt_buf_append_u32be(struct dmt_buf *b, uint32_t v);
/* u32 big-endian length + bytes (SSH/APF string). */
int dmt_buf_append_str(struct dmt_buf *b, const void *p, size_t n);
int dmt_buf_printf(struct dmt_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Removes n bytes from the front. */
void dmt_buf_consume(struct dmt_buf *b, size_t n);

#endif
