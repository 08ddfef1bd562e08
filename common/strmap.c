/* String-keyed open-addressing hash map (see dmt/strmap.h). FNV-1a hashing. */
#include "dmt/strmap.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static size_t hash_str(const char *s) {
  uint64_t h = 1469598103934665603ull;
  for (; *s; s++) {
    h ^= (unsigned char)*s;
    h *= 1099511628211ull;
  }
  return (size_t)h;
}

void dmt_strmap_init(struct dmt_strmap *m) {
  m->slots = NULL;
  m->cap = m->len = 0;
}

void dmt_strmap_free(struct dmt_strmap *m) {
  for (size_t i = 0; i < m->cap; i++) free(m->slots[i].key);
  free(m->slots);
  dmt_strmap_init(m);
}

static struct dmt_strmap_slot *find(const struct dmt_strmap *m, const char *key, size_t h) {
  if (m->cap == 0) return NULL;
  for (size_t i = h & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
    struct dmt_strmap_slot *s = &m->slots[i];
    if (!s->key) return NULL;
    if (s->hash == h && strcmp(s->key, key) == 0) return s;
  }
}

void *dmt_strmap_get(const struct dmt_strmap *m, const char *key) {
  struct dmt_strmap_slot *s = find(m, key, hash_str(key));
  return s ? s->value : NULL;
}

bool dmt_strmap_has(const struct dmt_strmap *m, const char *key) {
  return find(m, key, hash_str(key)) != NULL;
}

static void insert_slot(struct dmt_strmap_slot *slots, size_t cap, struct dmt_strmap_slot e) {
  size_t i = e.hash & (cap - 1);
  while (slots[i].key) i = (i + 1) & (cap - 1);
  slots[i] = e;
}

static int grow(struct dmt_strmap *m) {
  size_t cap = m->cap ? m->cap * 2 : 16;
  struct dmt_strmap_slot *slots = calloc(cap, sizeof *slots);
  if (!slots) return -1;
  for (size_t i = 0; i < m->cap; i++)
    if (m->slots[i].key) insert_slot(slots, cap, m->slots[i]);
  free(m->slots);
  m->slots = slots;
  m->cap = cap;
  return 0;
}

int dmt_strmap_put(struct dmt_strmap *m, const char *key, void *value, void **old) {
  size_t h = hash_str(key);
  struct dmt_strmap_slot *s = find(m, key, h);
  if (s) {
    if (old) *old = s->value;
    s->value = value;
    return 0;
  }
  if (old) *old = NULL;
  if ((m->len + 1) * 4 > m->cap * 3 && grow(m) != 0) return -1; /* load factor <= 0.75 */
  char *k = strdup(key);
  if (!k) return -1;
  insert_slot(m->slots, m->cap, (struct dmt_strmap_slot){.key = k, .hash = h, .value = value});
  m->len++;
  return 0;
}

void *dmt_strmap_del(struct dmt_strmap *m, const char *key) {
  struct dmt_strmap_slot *s = find(m, key, hash_str(key));
  if (!s) return NULL;
  void *value = s->value;
  free(s->key);
  size_t mask = m->cap - 1, hole = (size_t)(s - m->slots);
  s->key = NULL;
  /* Backward-shift: pull later entries of the same probe run into the hole. */
  for (size_t i = (hole + 1) & mask; m->slots[i].key; i = (i + 1) & mask) {
    size_t home = m->slots[i].hash & mask;
    /* Move if the hole lies cyclically within [home, i). */
    if (((i - home) & mask) >= ((i - hole) & mask)) {
      m->slots[hole] = m->slots[i];
      m->slots[i].key = NULL;
      hole = i;
    }
  }
  m->len--;
  return value;
}

void dmt_strmap_foreach(const struct dmt_strmap *m, void (*fn)(const char *, void *, void *),
                        void *ud) {
  for (size_t i = 0; i < m->cap; i++)
    if (m->slots[i].key) fn(m->slots[i].key, m->slots[i].value, ud);
}
