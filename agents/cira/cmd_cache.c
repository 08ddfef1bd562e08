/*
 * The duplicate-correlation cache behind "a command is executed at most
 * once": every accepted request's key (tenant, GUID, correlation data) is
 * remembered as pending, then with its encoded reply once done. A QoS 1
 * redelivery of a pending request is dropped (the reply is on its way), one
 * of a finished request gets the cached reply again. Entries live ttl_ms;
 * they sit in a FIFO in insertion order (which, with one TTL, is expiry
 * order), so expiry and eviction at the size cap are O(1) per entry and the
 * cache never grows without bound. Pure apart from malloc.
 */
#include <stdlib.h>
#include <string.h>

#include "cira.h"

struct cmd_cache_entry {
  char *key;
  uint64_t expires_ms;
  bool done;
  uint8_t *reply;
  size_t reply_len;
};

void cmd_cache_init(struct cmd_cache *c, size_t max_entries, uint64_t ttl_ms) {
  memset(c, 0, sizeof *c);
  dmt_strmap_init(&c->map);
  c->max = max_entries ? max_entries : 1;
  c->ttl_ms = ttl_ms;
}

static void entry_free(struct cmd_cache_entry *e) {
  if (!e) return;
  free(e->key);
  free(e->reply);
  free(e);
}

/* Removes the oldest entry (FIFO head). */
static void drop_head(struct cmd_cache *c) {
  struct cmd_cache_entry *e = c->ring[c->head];
  c->ring[c->head] = NULL;
  c->head = (c->head + 1) % c->cap;
  c->count--;
  if (e) {
    dmt_strmap_del(&c->map, e->key);
    entry_free(e);
  }
}

static int ring_push(struct cmd_cache *c, struct cmd_cache_entry *e) {
  if (c->count == c->cap) {
    size_t cap = c->cap ? c->cap * 2 : 64;
    struct cmd_cache_entry **r = calloc(cap, sizeof *r);
    if (!r) return -1;
    for (size_t i = 0; i < c->count; i++) r[i] = c->ring[(c->head + i) % c->cap];
    free(c->ring);
    c->ring = r;
    c->cap = cap;
    c->head = 0;
  }
  c->ring[(c->head + c->count) % c->cap] = e;
  c->count++;
  return 0;
}

enum cmd_cache_state cmd_cache_begin(struct cmd_cache *c, const char *key, uint64_t now, const uint8_t **reply,
                                     size_t *reply_len) {
  cmd_cache_expire(c, now);
  struct cmd_cache_entry *e = dmt_strmap_get(&c->map, key);
  if (e) {
    if (!e->done) return CMD_CACHE_PENDING;
    *reply = e->reply;
    *reply_len = e->reply_len;
    return CMD_CACHE_DONE;
  }
  while (c->count >= c->max) drop_head(c); /* at the cap the oldest request is forgotten first */
  e = calloc(1, sizeof *e);
  if (!e || !(e->key = strdup(key))) {
    entry_free(e);
    return CMD_CACHE_NEW; /* cannot remember it: execute anyway (at-most-once is best effort under OOM) */
  }
  e->expires_ms = now + c->ttl_ms;
  if (ring_push(c, e) != 0 || dmt_strmap_put(&c->map, key, e, NULL) != 0) {
    /* ring_push may have succeeded: make sure the entry is reachable from at most one place */
    if (c->count && c->ring[(c->head + c->count - 1) % c->cap] == e) {
      c->ring[(c->head + c->count - 1) % c->cap] = NULL;
      c->count--;
    }
    entry_free(e);
  }
  return CMD_CACHE_NEW;
}

void cmd_cache_finish(struct cmd_cache *c, const char *key, const void *reply, size_t len) {
  struct cmd_cache_entry *e = dmt_strmap_get(&c->map, key);
  if (!e || e->done) return;
  e->done = true;
  if (len && (e->reply = malloc(len))) {
    memcpy(e->reply, reply, len);
    e->reply_len = len;
  }
}

void cmd_cache_expire(struct cmd_cache *c, uint64_t now) {
  while (c->count) {
    struct cmd_cache_entry *e = c->ring[c->head];
    if (e && e->expires_ms > now) break;
    drop_head(c);
  }
}

size_t cmd_cache_size(const struct cmd_cache *c) { return c->map.len; }

void cmd_cache_free(struct cmd_cache *c) {
  while (c->count) drop_head(c);
  free(c->ring);
  dmt_strmap_free(&c->map);
  memset(c, 0, sizeof *c);
}
