/*
 * The decrypted provisioning certificates, per (tenant, domain, SHA-256 of
 * the PKCS#12 and its password): the first job of a domain decrypts it on
 * the signing pool, jobs arriving meanwhile wait for that one decryption, and
 * later jobs find it ready. Entries expire after rps.chain_cache_ms, and a
 * changed certificate has another digest, so an edit through the REST bridge
 * takes effect at once. A failed decryption is not cached.
 */
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rps.h"

struct waiter {
  struct rps_job *j;
  void (*done)(struct rps_job *j, const char *err);
  struct waiter *next;
};

struct chain_entry {
  struct rps *srv;
  char key[256];
  struct acm_chain *chain; /* NULL while loading */
  bool loading;
  uint64_t expires_us;
  struct waiter *waiters;
  /* loading */
  uint8_t *p12;
  size_t p12_len;
  char *password;
  char err[256];
  struct acm_chain *result;
  uint64_t us;
};

static void load_work(void *arg) {
  struct chain_entry *e = arg;
  uint64_t t = rps_now_us();
  acm_chain_load(e->p12, e->p12_len, e->password, &e->result, e->err, sizeof e->err);
  e->us = rps_now_us() - t;
}

static void entry_wipe_input(struct chain_entry *e) {
  if (e->p12) OPENSSL_cleanse(e->p12, e->p12_len);
  free(e->p12);
  if (e->password) OPENSSL_cleanse(e->password, strlen(e->password));
  free(e->password);
  e->p12 = NULL;
  e->password = NULL;
}

static void load_done(void *arg) {
  struct chain_entry *e = arg;
  struct rps *s = e->srv;
  entry_wipe_input(e);
  e->loading = false;
  e->chain = e->result;
  e->expires_us = rps_now_us() + (uint64_t)s->set.chain_cache_ms * 1000u;
  struct waiter *w = e->waiters;
  e->waiters = NULL;
  DMT_INFO(&s->log, "provisioning_cert_loaded", "ok=%d ms=%.2f certs=%zu", e->chain != NULL, (double)e->us / 1000.0,
           e->chain ? e->chain->ncerts : 0);
  char err[256];
  snprintf(err, sizeof err, "%s", e->err);
  bool failed = !e->chain;
  if (failed) {
    dmt_strmap_del(&s->chains, e->key);
    free(e);
    e = NULL;
  }
  while (w) {
    struct waiter *next = w->next;
    w->j->t_sign += e ? e->us : 0;
    if (!failed) w->j->chain = acm_chain_ref(e->chain);
    w->done(w->j, failed ? err : NULL);
    free(w);
    w = next;
  }
}

static void key_of(const struct rps_job *j, char out[256]) {
  uint8_t md[32];
  unsigned int mdlen = 0;
  EVP_MD_CTX *c = EVP_MD_CTX_new();
  const char *pw = j->lk.domain.p12_password ? j->lk.domain.p12_password : "";
  if (c && EVP_DigestInit_ex(c, EVP_sha256(), NULL) && EVP_DigestUpdate(c, j->lk.domain.p12, j->lk.domain.p12_len) &&
      EVP_DigestUpdate(c, "\0", 1) && EVP_DigestUpdate(c, pw, strlen(pw)))
    EVP_DigestFinal_ex(c, md, &mdlen);
  EVP_MD_CTX_free(c);
  char hex[65] = "";
  for (unsigned i = 0; i < mdlen && i < 32; i++) snprintf(hex + 2 * i, 3, "%02x", md[i]);
  snprintf(out, 256, "%.64s\x1f%.100s\x1f%s", j->tenant, j->lk.domain.name, hex);
}

int chain_get(struct rps_job *j, void (*done)(struct rps_job *j, const char *err)) {
  struct rps *s = j->srv;
  if (!j->lk.domain.p12) return -1;
  char key[256];
  key_of(j, key);
  struct chain_entry *e = dmt_strmap_get(&s->chains, key);
  if (e && !e->loading && e->chain) {
    j->chain = acm_chain_ref(e->chain);
    done(j, NULL);
    return 0;
  }
  struct waiter *w = calloc(1, sizeof *w);
  if (!w) return -1;
  w->j = j;
  w->done = done;
  if (e) { /* being decrypted: wait for it */
    w->next = e->waiters;
    e->waiters = w;
    return 0;
  }
  e = calloc(1, sizeof *e);
  if (!e) {
    free(w);
    return -1;
  }
  e->srv = s;
  snprintf(e->key, sizeof e->key, "%s", key);
  e->loading = true;
  e->waiters = w;
  e->p12 = malloc(j->lk.domain.p12_len);
  e->password = strdup(j->lk.domain.p12_password ? j->lk.domain.p12_password : "");
  if (!e->p12 || !e->password || dmt_strmap_put(&s->chains, e->key, e, NULL) != 0) {
    entry_wipe_input(e);
    free(e);
    free(w);
    return -1;
  }
  memcpy(e->p12, j->lk.domain.p12, j->lk.domain.p12_len);
  e->p12_len = j->lk.domain.p12_len;
  if (work_pool_submit(s->pool, load_work, load_done, e) != 0) {
    dmt_strmap_del(&s->chains, e->key);
    entry_wipe_input(e);
    free(e);
    free(w);
    return -1;
  }
  return 0;
}

struct expire_ctx {
  uint64_t now;
  bool all;
  struct chain_entry *victims[256];
  size_t n;
};

static void pick(const char *k, void *v, void *ud) {
  struct expire_ctx *x = ud;
  struct chain_entry *e = v;
  if (e->loading || x->n == sizeof x->victims / sizeof x->victims[0]) return;
  if (x->all || e->expires_us <= x->now) x->victims[x->n++] = e;
}

void chain_cache_expire(struct rps *s, bool all) {
  struct expire_ctx x = {.now = rps_now_us(), .all = all};
  dmt_strmap_foreach(&s->chains, pick, &x);
  for (size_t i = 0; i < x.n; i++) {
    dmt_strmap_del(&s->chains, x.victims[i]->key);
    acm_chain_unref(x.victims[i]->chain);
    free(x.victims[i]);
  }
}
