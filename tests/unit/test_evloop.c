/* Unit tests for the event loop: timers, fd watches, cross-thread tasks, signals. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "dmt/evloop.h"

struct order {
  int seen[16];
  int n;
};

struct tagged {
  struct dmt_timer t;
  int tag;
  struct order *o;
};

static void tagged_fire(struct dmt_loop *loop, struct dmt_timer *t) {
  struct tagged *tg = t->ud;
  tg->o->seen[tg->o->n++] = tg->tag;
  if (tg->o->n == 3) dmt_loop_stop(loop);
}

static void test_timers_fire_in_order(void **state) {
  struct dmt_loop *loop = dmt_loop_new();
  struct order o = {{0}, 0};
  struct tagged a = {.tag = 1, .o = &o}, b = {.tag = 2, .o = &o}, c = {.tag = 3, .o = &o}, d = {.tag = 9, .o = &o};
  dmt_timer_init(&a.t, tagged_fire, &a);
  dmt_timer_init(&b.t, tagged_fire, &b);
  dmt_timer_init(&c.t, tagged_fire, &c);
  dmt_timer_init(&d.t, tagged_fire, &d);
  dmt_timer_start(loop, &c.t, 60);
  dmt_timer_start(loop, &a.t, 10);
  dmt_timer_start(loop, &d.t, 20);
  dmt_timer_start(loop, &b.t, 30);
  dmt_timer_stop(loop, &d.t); /* a stopped timer never fires */
  assert_false(dmt_timer_armed(&d.t));
  dmt_timer_start(loop, &a.t, 15); /* re-arming moves it, it does not duplicate it */
  assert_int_equal(dmt_loop_run(loop), 0);
  assert_int_equal(o.n, 3);
  assert_int_equal(o.seen[0], 1);
  assert_int_equal(o.seen[1], 2);
  assert_int_equal(o.seen[2], 3);
  dmt_loop_free(loop);
}

/* Many timers with pseudo-random delays come out sorted (heap property under churn). */
static int last_due;
static int fired;
static int disorder;
static void heap_fire(struct dmt_loop *loop, struct dmt_timer *t) {
  if ((int)t->due_ms < last_due) disorder++;
  last_due = (int)t->due_ms;
  if (++fired == 400) dmt_loop_stop(loop);
}

static void test_timer_heap_churn(void **state) {
  struct dmt_loop *loop = dmt_loop_new();
  static struct dmt_timer ts[500];
  unsigned seed = 7;
  for (int i = 0; i < 500; i++) {
    dmt_timer_init(&ts[i], heap_fire, NULL);
    dmt_timer_start(loop, &ts[i], (rand_r(&seed) % 50) + 1);
  }
  for (int i = 0; i < 500; i += 5) dmt_timer_stop(loop, &ts[i]); /* 100 stopped */
  last_due = 0;
  fired = 0;
  disorder = 0;
  assert_int_equal(dmt_loop_run(loop), 0);
  assert_int_equal(fired, 400);
  assert_int_equal(disorder, 0);
  dmt_loop_free(loop);
}

struct pipe_ctx {
  int fds[2];
  char got[16];
  size_t n;
};

static void on_readable(struct dmt_loop *loop, int fd, unsigned ev, void *ud) {
  struct pipe_ctx *p = ud;
  assert_true(ev & DMT_EV_READ);
  ssize_t r = read(fd, p->got + p->n, sizeof p->got - p->n - 1);
  if (r > 0) p->n += (size_t)r;
  if (p->n >= 5) {
    dmt_loop_unwatch(loop, fd);
    dmt_loop_stop(loop);
  }
}

static void *writer(void *arg) {
  struct pipe_ctx *p = arg;
  usleep(20000);
  assert_int_equal(write(p->fds[1], "hel", 3), 3);
  usleep(20000);
  assert_int_equal(write(p->fds[1], "lo", 2), 2);
  return NULL;
}

static void test_fd_watch(void **state) {
  struct dmt_loop *loop = dmt_loop_new();
  struct pipe_ctx p = {.n = 0};
  assert_int_equal(pipe(p.fds), 0);
  assert_int_equal(dmt_loop_watch(loop, p.fds[0], DMT_EV_READ, on_readable, &p), 0);
  pthread_t th;
  pthread_create(&th, NULL, writer, &p);
  assert_int_equal(dmt_loop_run(loop), 0);
  pthread_join(th, NULL);
  assert_memory_equal(p.got, "hello", 5);
  close(p.fds[0]);
  close(p.fds[1]);
  dmt_loop_free(loop);
}

struct post_ctx {
  struct dmt_loop *loop;
  pthread_t owner;
  int ran;
  int wrong_thread;
};

static void count_task(void *arg) {
  struct post_ctx *c = arg;
  if (!pthread_equal(pthread_self(), c->owner)) c->wrong_thread++;
  if (++c->ran == 1000) dmt_loop_stop(c->loop);
}

static void *poster(void *arg) {
  struct post_ctx *c = arg;
  for (int i = 0; i < 500; i++) dmt_workq_post(dmt_loop_workq(c->loop), count_task, c);
  return NULL;
}

static void test_cross_thread_tasks(void **state) {
  struct post_ctx c = {.loop = dmt_loop_new(), .owner = pthread_self()};
  pthread_t a, b;
  pthread_create(&a, NULL, poster, &c);
  pthread_create(&b, NULL, poster, &c);
  assert_int_equal(dmt_loop_run(c.loop), 0);
  pthread_join(a, NULL);
  pthread_join(b, NULL);
  assert_int_equal(c.ran, 1000);
  assert_int_equal(c.wrong_thread, 0);
  dmt_loop_free(c.loop);
}

static void on_signal(struct dmt_loop *loop, int signo, void *ud) {
  *(int *)ud = signo;
  dmt_loop_stop(loop);
}

static void test_signals(void **state) {
  struct dmt_loop *loop = dmt_loop_new();
  int got = 0;
  int sigs[] = {SIGUSR1};
  assert_int_equal(dmt_loop_on_signals(loop, sigs, 1, on_signal, &got), 0);
  kill(getpid(), SIGUSR1);
  assert_int_equal(dmt_loop_run(loop), 0);
  assert_int_equal(got, SIGUSR1);
  dmt_loop_free(loop);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_timers_fire_in_order),
      cmocka_unit_test(test_timer_heap_churn),
      cmocka_unit_test(test_fd_watch),
      cmocka_unit_test(test_cross_thread_tasks),
      cmocka_unit_test(test_signals),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
