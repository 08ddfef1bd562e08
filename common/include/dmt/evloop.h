/*
 * A tiny epoll event loop in the spirit of Redis's ae.c: file-descriptor
 * watchers, one-shot timers on a binary heap, a cross-thread task queue and
 * signals through signalfd. It is what the CIRA terminator and the simulator
 * run on: one thread, no allocation per event, O(1) fd dispatch through a
 * table indexed by fd, O(log n) timers, so 100k connections each with an idle
 * timer stay cheap.
 */
#ifndef DMT_EVLOOP_H
#define DMT_EVLOOP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dmt/workq.h"

#define DMT_EV_READ 0x1u
#define DMT_EV_WRITE 0x2u
#define DMT_EV_ERROR 0x4u /* reported only: hang-up or error on the fd */

struct dmt_loop;
struct dmt_timer;

typedef void (*dmt_io_fn)(struct dmt_loop *loop, int fd, unsigned events, void *ud);
typedef void (*dmt_timer_fn)(struct dmt_loop *loop, struct dmt_timer *t);
typedef void (*dmt_signal_fn)(struct dmt_loop *loop, int signo, void *ud);

/* Embed in your own struct; recover it with container_of-style arithmetic or ud. */
struct dmt_timer {
  uint64_t due_ms;
  size_t heap_idx; /* SIZE_MAX when not armed */
  dmt_timer_fn fn;
  void *ud;
};

struct dmt_loop *dmt_loop_new(void);
void dmt_loop_free(struct dmt_loop *loop);

/*
 * Adds or changes the watch on fd (events = DMT_EV_READ|DMT_EV_WRITE).
 * Handlers must tolerate spurious calls (read/write returning EAGAIN): an fd
 * closed and reused within one batch of events can see a stale readiness.
 */
int dmt_loop_watch(struct dmt_loop *loop, int fd, unsigned events, dmt_io_fn fn, void *ud);
/* Stops watching fd; safe to call from that fd's own callback, before close(fd). */
void dmt_loop_unwatch(struct dmt_loop *loop, int fd);

void dmt_timer_init(struct dmt_timer *t, dmt_timer_fn fn, void *ud);
/* (Re)arms t to fire once after delay_ms. */
void dmt_timer_start(struct dmt_loop *loop, struct dmt_timer *t, uint64_t delay_ms);
void dmt_timer_stop(struct dmt_loop *loop, struct dmt_timer *t);
static inline bool dmt_timer_armed(const struct dmt_timer *t) { return t->heap_idx != SIZE_MAX; }

/* Monotonic milliseconds, refreshed once per loop iteration. */
uint64_t dmt_loop_now(const struct dmt_loop *loop);
/* Wall-clock unix epoch milliseconds (not cached). */
uint64_t dmt_wall_ms(void);

/* Tasks posted here (from any thread) run on the loop thread. */
struct dmt_workq *dmt_loop_workq(struct dmt_loop *loop);

/*
 * Blocks the given signals and delivers them through the loop. Call it before
 * starting any thread: threads inherit the mask, and a thread that does not
 * block the signal would take it with the default action instead.
 */
int dmt_loop_on_signals(struct dmt_loop *loop, const int *signals, size_t n, dmt_signal_fn fn,
                        void *ud);

/* Runs until dmt_loop_stop(); returns 0 or -1 on an epoll failure. */
int dmt_loop_run(struct dmt_loop *loop);
/* Any thread. */
void dmt_loop_stop(struct dmt_loop *loop);

#endif
