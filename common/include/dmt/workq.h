/*
 * A thread-safe queue of tasks to run on one owner thread. Library threads
 * (Paho's callbacks, the database worker) never touch agent state: they post
 * a task here and the owner's event loop runs it. The wake function tells the
 * loop there is work (an eventfd write for dmt_loop, lws_cancel_service for
 * libwebsockets agents).
 */
#ifndef DMT_WORKQ_H
#define DMT_WORKQ_H

#include <pthread.h>
#include <stddef.h>

typedef void (*dmt_task_fn)(void *arg);

struct dmt_task;

struct dmt_workq {
  pthread_mutex_t mu;
  struct dmt_task *head, *tail;
  void (*wake)(void *wake_arg);
  void *wake_arg;
};

void dmt_workq_init(struct dmt_workq *q, void (*wake)(void *), void *wake_arg);
/* Drops queued tasks without running them, freeing the args of dmt_workq_post_owned(). */
void dmt_workq_destroy(struct dmt_workq *q);
/* Any thread. Returns 0, or -1 when out of memory. */
int dmt_workq_post(struct dmt_workq *q, dmt_task_fn fn, void *arg);
/* Same, for a malloc'd arg that fn frees when it runs; destroy frees it if it never runs. */
int dmt_workq_post_owned(struct dmt_workq *q, dmt_task_fn fn, void *arg);
/* Owner thread: runs every task queued so far; returns how many ran. */
size_t dmt_workq_run(struct dmt_workq *q);

#endif
