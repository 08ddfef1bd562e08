/*
 * String-keyed hash map (open addressing, linear probing, tombstone-free
 * backward-shift deletion). Keys are copied; values are the caller's. Used for
 * GUID -> connection tables and subscription sets that hold 100k entries, so
 * lookups must not allocate and the table must stay compact.
 */
#ifndef DMT_STRMAP_H
#define DMT_STRMAP_H

#include <stdbool.h>
#include <stddef.h>

struct dmt_strmap_slot {
  char *key; /* NULL = empty */
  size_t hash;
  void *value;
};

struct dmt_strmap {
  struct dmt_strmap_slot *slots;
  size_t cap; /* power of two, or 0 */
  size_t len;
};

void dmt_strmap_init(struct dmt_strmap *m);
/* Frees keys and the table; values are left to the caller (see dmt_strmap_foreach). */
void dmt_strmap_free(struct dmt_strmap *m);

void *dmt_strmap_get(const struct dmt_strmap *m, const char *key);
bool dmt_strmap_has(const struct dmt_strmap *m, const char *key);
/* Inserts or replaces; *old (if non-NULL) receives the replaced value. Returns 0 or -1 (OOM). */
int dmt_strmap_put(struct dmt_strmap *m, const char *key, void *value, void **old);
/* Removes key; returns its value or NULL. */
void *dmt_strmap_del(struct dmt_strmap *m, const char *key);

/* Calls fn for every entry; fn must not modify the map. */
void dmt_strmap_foreach(const struct dmt_strmap *m, void (*fn)(const char *key, void *value, void *ud),
                        void *ud);

#endif
