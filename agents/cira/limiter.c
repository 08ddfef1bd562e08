/*
 * Failed-login throttling, keyed by source ("ip:<addr>", IPv6 by /64) and by
 * GUID ("guid:<guid>"). The first few failures inside the window are free;
 * each further one blocks the key for twice as long as the previous, up to a
 * ceiling. Entries whose window passed are dropped by limiter_expire(), and
 * the table never holds more than max_entries keys, so an attacker rotating
 * sources or GUIDs cannot grow it without bound. Pure: the caller passes the
 * time, which keeps it unit-testable.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cira.h"

struct limiter_entry {
  unsigned failures;
  uint64_t last_failure_ms;
  uint64_t blocked_until_ms;
};

void limiter_init(struct cira_limiter *l, const struct limiter_policy *p) {
  memset(l, 0, sizeof *l);
  l->policy = *p;
  dmt_strmap_init(&l->map);
}

static void free_entry(const char *key, void *value, void *ud) { free(value); }

void limiter_free(struct cira_limiter *l) {
  dmt_strmap_foreach(&l->map, free_entry, NULL);
  dmt_strmap_free(&l->map);
}

uint64_t limiter_blocked_for(const struct cira_limiter *l, const char *key, uint64_t now) {
  const struct limiter_entry *e = dmt_strmap_get(&l->map, key);
  return e && e->blocked_until_ms > now ? e->blocked_until_ms - now : 0;
}

uint64_t limiter_fail(struct cira_limiter *l, const char *key, uint64_t now) {
  struct limiter_entry *e = dmt_strmap_get(&l->map, key);
  if (!e) {
    if (l->map.len >= l->policy.max_entries) limiter_expire(l, now);
    if (l->map.len >= l->policy.max_entries) {
      l->untracked++; /* full of live entries: this key goes untracked (the other key still counts) */
      return 0;
    }
    e = calloc(1, sizeof *e);
    if (!e || dmt_strmap_put(&l->map, key, e, NULL) != 0) {
      free(e);
      return 0;
    }
  }
  if (e->failures && now - e->last_failure_ms > l->policy.window_ms) e->failures = 0;
  e->failures++;
  e->last_failure_ms = now;
  if (e->failures <= l->policy.free_failures) return 0;
  unsigned shift = e->failures - l->policy.free_failures - 1;
  uint64_t block = shift >= 32 ? l->policy.max_block_ms : l->policy.base_block_ms << shift;
  if (block > l->policy.max_block_ms) block = l->policy.max_block_ms;
  e->blocked_until_ms = now + block;
  return block;
}

void limiter_reset(struct cira_limiter *l, const char *key) { free(dmt_strmap_del(&l->map, key)); }

struct expire_ctx {
  const struct cira_limiter *l;
  uint64_t now;
  char **dead;
  size_t n, cap;
};

static void collect_expired(const char *key, void *value, void *ud) {
  struct expire_ctx *x = ud;
  const struct limiter_entry *e = value;
  if (e->blocked_until_ms > x->now || x->now - e->last_failure_ms <= x->l->policy.window_ms) return;
  if (x->n == x->cap) {
    size_t cap = x->cap ? x->cap * 2 : 64;
    char **d = realloc(x->dead, cap * sizeof *d);
    if (!d) return;
    x->dead = d;
    x->cap = cap;
  }
  if ((x->dead[x->n] = strdup(key))) x->n++;
}

size_t limiter_expire(struct cira_limiter *l, uint64_t now) {
  struct expire_ctx x = {l, now, NULL, 0, 0};
  dmt_strmap_foreach(&l->map, collect_expired, &x);
  for (size_t i = 0; i < x.n; i++) {
    free(dmt_strmap_del(&l->map, x.dead[i]));
    free(x.dead[i]);
  }
  free(x.dead);
  return x.n;
}

void limiter_source_key(const char *peer, char out[LIMITER_KEY_LEN]) {
  /* An IPv6 host controls its whole /64: count it as one source. */
  struct in6_addr a6;
  if (strchr(peer, ':') && inet_pton(AF_INET6, peer, &a6) == 1) {
    memset(a6.s6_addr + 8, 0, 8);
    char p[INET6_ADDRSTRLEN];
    inet_ntop(AF_INET6, &a6, p, sizeof p);
    snprintf(out, LIMITER_KEY_LEN, "ip:%s/64", p);
    return;
  }
  snprintf(out, LIMITER_KEY_LEN, "ip:%s", peer);
}

void limiter_guid_key(const char *guid, char out[LIMITER_KEY_LEN]) { snprintf(out, LIMITER_KEY_LEN, "guid:%s", guid); }
