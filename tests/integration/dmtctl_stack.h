/*
 * Helpers for the dmtctl and event-stream integration tests: run dmtctl (or
 * the consumer example) as a real process and capture its stdout, stderr
 * and exit code; and bring up a running stack (PostgreSQL database, the CIRA
 * terminator, the fleet simulator with N provisioned devices) on the shared
 * test broker.
 */
#ifndef DMTCTL_STACK_H
#define DMTCTL_STACK_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "harness.h"

struct run {
  int status; /* exit code; 128 + signal if killed; -1 if it had to be killed at the timeout */
  char *out, *err;
};

/* Environment entries ("K=V") every dmtctl run gets: broker, tenant, an empty config dir. */
struct ctl_env {
  char vars[8][700];
  size_t n;
};
void ctl_env_init(struct ctl_env *e, const char *broker, const char *tenant);
void ctl_env_add(struct ctl_env *e, const char *kv);

/* Runs bin with args (NULL-terminated) and waits up to timeout_ms. */
int run_prog(struct run *r, const struct ctl_env *e, int timeout_ms, const char *bin, const char *const *args);
/* Runs dmtctl with the given args (NULL-terminated list). */
int run_ctl(struct run *r, const struct ctl_env *e, int timeout_ms, ...);
void run_free(struct run *r);
/* Lines in s (non-empty) and lines containing needle. */
size_t count_lines(const char *s);
size_t count_matching(const char *s, const char *needle);

/* A process in the background with its stdout and stderr in files. */
struct bg {
  pid_t pid;
  char out_path[600], err_path[600];
};
int bg_start(struct bg *b, const struct ctl_env *e, const char *dir, const char *name, const char *bin,
             const char *const *args);
/* Waits up to timeout_ms for it to exit (then SIGKILL); returns its exit code or -1. */
int bg_wait(struct bg *b, int timeout_ms);
/* Sends sig and waits. */
int bg_stop(struct bg *b, int sig);
/* Current contents of its stdout (malloc'd). */
char *bg_out(const struct bg *b);
char *read_text(const char *path);

const char *dmtctl_bin(void);
const char *consumer_bin(void);

/* A terminator and a simulated fleet of n devices in a fresh tenant and database. */
struct stack {
  char *dsn, *dir;
  char key[65];
  char tenant[48], instance[64], fleet[600], control[600], sim_log[600];
  struct dmt_test_cira cira;
  pid_t sim;
  struct dmt_fleet_device *devs;
  size_t n;
  struct dmt_test_mqtt *mq;
};
/* sql (may be NULL) runs after provisioning, before devices connect (e.g. to set tags). */
int stack_start(struct stack *s, const char *name, size_t n, const char *guid_prefix, const char *sql);
/* Waits until every device's retained state says connected. */
bool stack_wait_connected(struct stack *s, int timeout_ms);
void stack_stop(struct stack *s);
/* One sim control command; returns the reply (static buffer) or NULL. */
const char *stack_sim(struct stack *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Power state the simulator holds for a device (-1 unknown). */
int stack_sim_power(struct stack *s, const char *guid);
/* Runs SQL on the stack's database returning one number (-1 on error or no row). */
long stack_sql(struct stack *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
