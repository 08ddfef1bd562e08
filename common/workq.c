/*
 * Cross-thread task queue (see dmt/workq.h). The owner swaps the whole list
 * out under the lock and runs it unlocked, so a task may post more tasks.
 */
#include "dmt/workq.h"

#include <stdbool.h>
#include <stdlib.h>

struct dmt_task {
  dmt_task_fn fn;
  void *arg;
  bool owned; /* arg is malloc'd: free it if the task is dropped */
  struct dmt_task *next;
};

void dmt_workq_init(struct dmt_workq *q, void (*wake)(void *), void *wake_arg) {
  pthread_mutex_init(&q->mu, NULL);
  q->head = q->tail = NULL;
  q->wake = wake;
  q->wake_arg = wake_arg;
}

void dmt_workq_destroy(struct dmt_workq *q) {
  struct dmt_task *t = q->head;
  while (t) {
    struct dmt_task *next = t->next;
    if (t->owned) free(t->arg);
    free(t);
    t = next;
  }
  q->head = q->tail = NULL;
  pthread_mutex_destroy(&q->mu);
}

static int post(struct dmt_workq *q, dmt_task_fn fn, void *arg, bool owned) {
  struct dmt_task *t = malloc(sizeof *t);
  if (!t) return -1;
  t->fn = fn;
  t->arg = arg;
  t->owned = owned;
  t->next = NULL;
  pthread_mutex_lock(&q->mu);
  int was_empty = q->head == NULL;
  if (q->tail) q->tail->next = t;
  else q->head = t;
  q->tail = t;
  pthread_mutex_unlock(&q->mu);
  if (was_empty && q->wake) q->wake(q->wake_arg);
  return 0;
}

int dmt_workq_post(struct dmt_workq *q, dmt_task_fn fn, void *arg) { return post(q, fn, arg, false); }

int dmt_workq_post_owned(struct dmt_workq *q, dmt_task_fn fn, void *arg) {
  return post(q, fn, arg, true);
}

size_t dmt_workq_run(struct dmt_workq *q) {
  pthread_mutex_lock(&q->mu);
  struct dmt_task *t = q->head;
  q->head = q->tail = NULL;
  pthread_mutex_unlock(&q->mu);
  size_t n = 0;
  while (t) {
    struct dmt_task *next = t->next;
    t->fn(t->arg);
    free(t);
    t = next;
    n++;
  }
  return n;
}
