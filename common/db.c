/*
 * Database worker threads (see dmt/db.h). Jobs live in a FIFO guarded by one
 * mutex; each worker keeps its own connection and reconnects with back-off
 * (250 ms doubling to 5 s) whenever a job reports the connection lost.
 */
#include "dmt/db.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dmt/log.h"
#include "dmt/pg.h"
#include "dmt/workq.h"

struct job {
  dmt_db_work_fn work;
  dmt_db_done_fn done;
  void *arg;
  int rc;
  struct job *next;
};

struct dmt_db {
  char *dsn;
  const struct dmt_log *log;
  struct dmt_workq *owner;
  size_t max_queue;
  bool migrate;
  int nworkers;
  pthread_t *threads;

  pthread_mutex_t mu;
  pthread_cond_t cv, idle_cv;
  struct job *head, *tail;
  size_t queued, running;
  bool stopping, migrated;
  atomic_int healthy;
};

struct dmt_db *dmt_db_new(const struct dmt_db_opts *o, char *err, size_t errlen) {
  if (!o->dsn) {
    snprintf(err, errlen, "db: no DSN configured");
    return NULL;
  }
  struct dmt_db *db = calloc(1, sizeof *db);
  if (!db) return NULL;
  db->dsn = strdup(o->dsn);
  db->log = o->log;
  db->owner = o->owner;
  db->max_queue = o->max_queue ? o->max_queue : 100000;
  db->migrate = o->migrate;
  db->nworkers = o->workers > 0 ? o->workers : 1;
  pthread_mutex_init(&db->mu, NULL);
  pthread_cond_init(&db->cv, NULL);
  pthread_cond_init(&db->idle_cv, NULL);
  return db;
}

static void finish_job(void *arg) {
  struct job *j = arg;
  if (j->done) j->done(j->arg, j->rc);
  free(j);
}

static void sleep_ms(unsigned ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

/* Connects (and migrates once per process) unless stopping; NULL only when stopping. */
static PGconn *ensure_connection(struct dmt_db *db, PGconn *c) {
  unsigned backoff = 250;
  while (!c || PQstatus(c) != CONNECTION_OK) {
    if (c) {
      PQfinish(c);
      c = NULL;
      atomic_fetch_sub(&db->healthy, 1);
    }
    pthread_mutex_lock(&db->mu);
    bool stopping = db->stopping; /* shutting down: give up rather than retry forever */
    pthread_mutex_unlock(&db->mu);
    if (stopping) return NULL;
    char err[512];
    c = dmt_pg_connect(db->dsn, err, sizeof err);
    if (c) {
      pthread_mutex_lock(&db->mu);
      bool need_migrate = db->migrate && !db->migrated;
      pthread_mutex_unlock(&db->mu);
      if (need_migrate && dmt_pg_migrate(c, db->log, err, sizeof err) < 0) {
        DMT_ERROR(db->log, "db_migrate_failed", "error=\"%s\"", err);
        PQfinish(c);
        c = NULL;
      } else {
        pthread_mutex_lock(&db->mu);
        db->migrated = true;
        pthread_mutex_unlock(&db->mu);
        atomic_fetch_add(&db->healthy, 1);
        DMT_INFO(db->log, "db_connected", NULL);
        return c;
      }
    } else {
      DMT_WARN(db->log, "db_connect_failed", "error=\"%s\" retry_ms=%u", err, backoff);
    }
    sleep_ms(backoff);
    backoff = backoff * 2 > 5000 ? 5000 : backoff * 2;
  }
  return c;
}

static void *worker_main(void *arg) {
  struct dmt_db *db = arg;
  PGconn *c = NULL;
  for (;;) {
    pthread_mutex_lock(&db->mu);
    while (!db->head && !db->stopping) pthread_cond_wait(&db->cv, &db->mu);
    if (!db->head && db->stopping) {
      pthread_mutex_unlock(&db->mu);
      break;
    }
    struct job *j = db->head;
    db->head = j->next;
    if (!db->head) db->tail = NULL;
    db->running++;
    pthread_mutex_unlock(&db->mu);

    for (;;) {
      c = ensure_connection(db, c);
      if (!c) {
        j->rc = DMT_PG_CONN_LOST;
        break;
      }
      j->rc = j->work(c, j->arg);
      if (j->rc != DMT_PG_CONN_LOST) break;
      DMT_WARN(db->log, "db_connection_lost", "action=retry_job");
      PQreset(c); /* if reset fails, ensure_connection reconnects with back-off */
    }
    if (!db->owner || dmt_workq_post_owned(db->owner, finish_job, j) != 0) free(j);

    pthread_mutex_lock(&db->mu);
    db->queued--;
    db->running--;
    if (db->queued == 0) pthread_cond_broadcast(&db->idle_cv);
    pthread_mutex_unlock(&db->mu);
  }
  if (c) {
    PQfinish(c);
    atomic_fetch_sub(&db->healthy, 1);
  }
  return NULL;
}

int dmt_db_start(struct dmt_db *db) {
  db->threads = calloc((size_t)db->nworkers, sizeof *db->threads);
  if (!db->threads) return -1;
  for (int i = 0; i < db->nworkers; i++)
    if (pthread_create(&db->threads[i], NULL, worker_main, db) != 0) return -1;
  return 0;
}

int dmt_db_submit(struct dmt_db *db, dmt_db_work_fn work, dmt_db_done_fn done, void *arg) {
  struct job *j = calloc(1, sizeof *j);
  if (!j) return -1;
  j->work = work;
  j->done = done;
  j->arg = arg;
  pthread_mutex_lock(&db->mu);
  if (db->queued >= db->max_queue || db->stopping) {
    pthread_mutex_unlock(&db->mu);
    free(j);
    return -1;
  }
  if (db->tail) db->tail->next = j;
  else db->head = j;
  db->tail = j;
  db->queued++;
  pthread_cond_signal(&db->cv);
  pthread_mutex_unlock(&db->mu);
  return 0;
}

bool dmt_db_connected(struct dmt_db *db) { return atomic_load(&db->healthy) > 0; }

size_t dmt_db_queued(struct dmt_db *db) {
  pthread_mutex_lock(&db->mu);
  size_t n = db->queued;
  pthread_mutex_unlock(&db->mu);
  return n;
}

void dmt_db_free(struct dmt_db *db, int drain_ms) {
  if (!db) return;
  pthread_mutex_lock(&db->mu);
  if (db->threads && drain_ms > 0 && db->queued > 0) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += drain_ms / 1000;
    ts.tv_nsec += (long)(drain_ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
      ts.tv_sec++;
      ts.tv_nsec -= 1000000000L;
    }
    while (db->queued > 0 && pthread_cond_timedwait(&db->idle_cv, &db->mu, &ts) != ETIMEDOUT) {
    }
  }
  db->stopping = true;
  /* Whatever is still queued is dropped (its completion sees CONN_LOST); workers exit once idle. */
  struct job *j = db->head;
  db->head = db->tail = NULL;
  while (j) {
    struct job *next = j->next;
    if (j->done) j->done(j->arg, DMT_PG_CONN_LOST);
    free(j);
    db->queued--;
    j = next;
  }
  pthread_cond_broadcast(&db->cv);
  pthread_mutex_unlock(&db->mu);
  if (db->threads)
    for (int i = 0; i < db->nworkers; i++) pthread_join(db->threads[i], NULL);
  free(db->threads);
  pthread_cond_destroy(&db->cv);
  pthread_cond_destroy(&db->idle_cv);
  pthread_mutex_destroy(&db->mu);
  free(db->dsn);
  free(db);
}
