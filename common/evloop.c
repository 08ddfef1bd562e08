/*
 * epoll event loop (see dmt/evloop.h). Level-triggered on purpose: a handler
 * that reads only part of what is available is called again, which keeps
 * per-connection code simple and fair between connections.
 */
#include "dmt/evloop.h"

#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

struct watch {
  dmt_io_fn fn;
  void *ud;
  unsigned events; /* 0 = not watched */
};

struct dmt_loop {
  int epfd;
  int wakefd;
  int sigfd;
  dmt_signal_fn sig_fn;
  void *sig_ud;
  struct watch *watches; /* indexed by fd */
  size_t nwatches;
  struct dmt_timer **heap;
  size_t heap_len, heap_cap;
  uint64_t now_ms;
  atomic_bool stopping;
  struct dmt_workq tasks;
};

static uint64_t mono_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

uint64_t dmt_wall_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void wake_loop(void *arg) {
  struct dmt_loop *loop = arg;
  uint64_t one = 1;
  ssize_t w = write(loop->wakefd, &one, sizeof one);
  (void)w; /* EAGAIN means the counter is already non-zero: the loop will wake */
}

static int epoll_set(struct dmt_loop *loop, int op, int fd, unsigned events) {
  struct epoll_event ev = {.data.fd = fd};
  if (events & DMT_EV_READ) ev.events |= EPOLLIN;
  if (events & DMT_EV_WRITE) ev.events |= EPOLLOUT;
  return epoll_ctl(loop->epfd, op, fd, &ev);
}

struct dmt_loop *dmt_loop_new(void) {
  struct dmt_loop *loop = calloc(1, sizeof *loop);
  if (!loop) return NULL;
  loop->sigfd = -1;
  loop->epfd = epoll_create1(EPOLL_CLOEXEC);
  loop->wakefd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (loop->epfd < 0 || loop->wakefd < 0 || epoll_set(loop, EPOLL_CTL_ADD, loop->wakefd, DMT_EV_READ)) {
    if (loop->epfd >= 0) close(loop->epfd);
    if (loop->wakefd >= 0) close(loop->wakefd);
    free(loop);
    return NULL;
  }
  dmt_workq_init(&loop->tasks, wake_loop, loop);
  loop->now_ms = mono_ms();
  return loop;
}

void dmt_loop_free(struct dmt_loop *loop) {
  if (!loop) return;
  dmt_workq_destroy(&loop->tasks);
  if (loop->sigfd >= 0) close(loop->sigfd);
  close(loop->wakefd);
  close(loop->epfd);
  free(loop->watches);
  free(loop->heap);
  free(loop);
}

int dmt_loop_watch(struct dmt_loop *loop, int fd, unsigned events, dmt_io_fn fn, void *ud) {
  if (fd < 0) return -1;
  if ((size_t)fd >= loop->nwatches) {
    size_t n = loop->nwatches ? loop->nwatches : 64;
    while (n <= (size_t)fd) n *= 2;
    struct watch *w = realloc(loop->watches, n * sizeof *w);
    if (!w) return -1;
    memset(w + loop->nwatches, 0, (n - loop->nwatches) * sizeof *w);
    loop->watches = w;
    loop->nwatches = n;
  }
  struct watch *w = &loop->watches[fd];
  int op = w->events ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
  unsigned mask = events & (DMT_EV_READ | DMT_EV_WRITE);
  if (op == EPOLL_CTL_ADD || mask != w->events) {
    if (epoll_set(loop, op, fd, mask) != 0) return -1;
  }
  w->fn = fn;
  w->ud = ud;
  w->events = mask ? mask : DMT_EV_ERROR; /* keep "watched" even with no interest */
  return 0;
}

void dmt_loop_unwatch(struct dmt_loop *loop, int fd) {
  if (fd < 0 || (size_t)fd >= loop->nwatches || !loop->watches[fd].events) return;
  epoll_ctl(loop->epfd, EPOLL_CTL_DEL, fd, NULL);
  memset(&loop->watches[fd], 0, sizeof loop->watches[fd]);
}

/* ---- timers: binary min-heap on due_ms ---- */

static void heap_place(struct dmt_loop *loop, size_t i, struct dmt_timer *t) {
  loop->heap[i] = t;
  t->heap_idx = i;
}

static void heap_up(struct dmt_loop *loop, size_t i) {
  struct dmt_timer *t = loop->heap[i];
  while (i > 0) {
    size_t parent = (i - 1) / 2;
    if (loop->heap[parent]->due_ms <= t->due_ms) break;
    heap_place(loop, i, loop->heap[parent]);
    i = parent;
  }
  heap_place(loop, i, t);
}

static void heap_down(struct dmt_loop *loop, size_t i) {
  struct dmt_timer *t = loop->heap[i];
  for (;;) {
    size_t l = 2 * i + 1, r = l + 1, m = i;
    uint64_t best = t->due_ms;
    if (l < loop->heap_len && loop->heap[l]->due_ms < best) {
      m = l;
      best = loop->heap[l]->due_ms;
    }
    if (r < loop->heap_len && loop->heap[r]->due_ms < best) m = r;
    if (m == i) break;
    heap_place(loop, i, loop->heap[m]);
    i = m;
  }
  heap_place(loop, i, t);
}

void dmt_timer_init(struct dmt_timer *t, dmt_timer_fn fn, void *ud) {
  t->due_ms = 0;
  t->heap_idx = SIZE_MAX;
  t->fn = fn;
  t->ud = ud;
}

void dmt_timer_stop(struct dmt_loop *loop, struct dmt_timer *t) {
  if (t->heap_idx == SIZE_MAX) return;
  size_t i = t->heap_idx;
  struct dmt_timer *last = loop->heap[--loop->heap_len];
  t->heap_idx = SIZE_MAX;
  if (last == t) return;
  heap_place(loop, i, last);
  if (i > 0 && loop->heap[(i - 1) / 2]->due_ms > last->due_ms) heap_up(loop, i);
  else heap_down(loop, i);
}

void dmt_timer_start(struct dmt_loop *loop, struct dmt_timer *t, uint64_t delay_ms) {
  dmt_timer_stop(loop, t);
  if (loop->heap_len == loop->heap_cap) {
    size_t cap = loop->heap_cap ? loop->heap_cap * 2 : 64;
    struct dmt_timer **h = realloc(loop->heap, cap * sizeof *h);
    if (!h) abort(); /* a timer that silently never fires is worse than dying */
    loop->heap = h;
    loop->heap_cap = cap;
  }
  t->due_ms = mono_ms() + delay_ms;
  heap_place(loop, loop->heap_len++, t);
  heap_up(loop, t->heap_idx);
}

uint64_t dmt_loop_now(const struct dmt_loop *loop) { return loop->now_ms; }

struct dmt_workq *dmt_loop_workq(struct dmt_loop *loop) { return &loop->tasks; }

int dmt_loop_on_signals(struct dmt_loop *loop, const int *signals, size_t n, dmt_signal_fn fn,
                        void *ud) {
  sigset_t set;
  sigemptyset(&set);
  for (size_t i = 0; i < n; i++) sigaddset(&set, signals[i]);
  if (pthread_sigmask(SIG_BLOCK, &set, NULL) != 0) return -1;
  loop->sigfd = signalfd(loop->sigfd, &set, SFD_NONBLOCK | SFD_CLOEXEC);
  if (loop->sigfd < 0) return -1;
  loop->sig_fn = fn;
  loop->sig_ud = ud;
  return epoll_set(loop, EPOLL_CTL_ADD, loop->sigfd, DMT_EV_READ) == 0 || errno == EEXIST ? 0 : -1;
}

static void stop_task(void *arg) { atomic_store(&((struct dmt_loop *)arg)->stopping, true); }

void dmt_loop_stop(struct dmt_loop *loop) { dmt_workq_post(&loop->tasks, stop_task, loop); }

static void run_due_timers(struct dmt_loop *loop) {
  while (loop->heap_len > 0 && loop->heap[0]->due_ms <= loop->now_ms) {
    struct dmt_timer *t = loop->heap[0];
    dmt_timer_stop(loop, t);
    t->fn(loop, t);
  }
}

static void drain_signals(struct dmt_loop *loop) {
  struct signalfd_siginfo si;
  while (read(loop->sigfd, &si, sizeof si) == (ssize_t)sizeof si)
    if (loop->sig_fn) loop->sig_fn(loop, (int)si.ssi_signo, loop->sig_ud);
}

int dmt_loop_run(struct dmt_loop *loop) {
  struct epoll_event events[256];
  atomic_store(&loop->stopping, false);
  while (!atomic_load(&loop->stopping)) {
    loop->now_ms = mono_ms();
    int timeout = -1;
    if (loop->heap_len > 0) {
      uint64_t due = loop->heap[0]->due_ms;
      timeout = due <= loop->now_ms ? 0 : (int)(due - loop->now_ms < 60000 ? due - loop->now_ms : 60000);
    }
    int n = epoll_wait(loop->epfd, events, 256, timeout);
    if (n < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    loop->now_ms = mono_ms();
    for (int i = 0; i < n; i++) {
      int fd = events[i].data.fd;
      if (fd == loop->wakefd) {
        uint64_t v;
        ssize_t r = read(loop->wakefd, &v, sizeof v);
        (void)r;
        dmt_workq_run(&loop->tasks);
        continue;
      }
      if (fd == loop->sigfd) {
        drain_signals(loop);
        continue;
      }
      if ((size_t)fd >= loop->nwatches || !loop->watches[fd].events) continue;
      struct watch *w = &loop->watches[fd];
      unsigned ev = 0;
      if (events[i].events & EPOLLIN) ev |= DMT_EV_READ;
      if (events[i].events & EPOLLOUT) ev |= DMT_EV_WRITE;
      if (events[i].events & (EPOLLERR | EPOLLHUP)) ev |= DMT_EV_ERROR | DMT_EV_READ;
      w->fn(loop, fd, ev, w->ud);
    }
    run_due_timers(loop);
  }
  return 0;
}
