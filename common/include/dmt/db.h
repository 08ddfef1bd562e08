/*
 * Database worker: a thread (or a few) owning PostgreSQL connections, running
 * jobs submitted from an agent's event loop and posting completions back to
 * it, so the loop never blocks on the database.
 *
 * A job returning DMT_PG_CONN_LOST stays at the head of the queue: the worker
 * reconnects with back-off and runs it again. Writes that must not be lost
 * (connection state, events) therefore survive a PostgreSQL restart and catch
 * up when it returns, while the agent keeps serving. The queue is bounded so
 * a long outage cannot exhaust memory: dmt_db_submit() fails when it is full.
 */
#ifndef DMT_DB_H
#define DMT_DB_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>

struct dmt_log;
struct dmt_workq;
struct dmt_db;

/* Runs on a worker thread. Return DMT_PG_OK, DMT_PG_ERROR or DMT_PG_CONN_LOST (retry). */
typedef int (*dmt_db_work_fn)(PGconn *c, void *arg);
/* Runs on the owner thread with the work function's final result. */
typedef void (*dmt_db_done_fn)(void *arg, int rc);

struct dmt_db_opts {
  const char *dsn;
  const struct dmt_log *log;
  struct dmt_workq *owner;
  int workers;          /* default 1; jobs may run out of order when > 1 */
  size_t max_queue;     /* default 100000 */
  bool migrate;         /* apply migrations on first connect */
};

struct dmt_db *dmt_db_new(const struct dmt_db_opts *opts, char *err, size_t errlen);
int dmt_db_start(struct dmt_db *db);
/* Waits for queued jobs (up to drain_ms); jobs still queued complete with DMT_PG_CONN_LOST on the calling thread. */
void dmt_db_free(struct dmt_db *db, int drain_ms);

/* Any thread. done may be NULL. Returns 0, or -1 when the queue is full. */
int dmt_db_submit(struct dmt_db *db, dmt_db_work_fn work, dmt_db_done_fn done, void *arg);

/* True while at least one worker holds a healthy connection. */
bool dmt_db_connected(struct dmt_db *db);
size_t dmt_db_queued(struct dmt_db *db);

#endif
