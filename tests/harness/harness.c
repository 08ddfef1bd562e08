/* Integration-test harness: services from the environment, processes, waits. */
#include "harness.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <libpq-fe.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

const char *dmt_test_need_env(const char *name) {
  const char *v = getenv(name);
  if (!v || !*v) {
    fprintf(stderr, "SKIP: %s is not set (run the suite with ./dmt test)\n", name);
    exit(DMT_TEST_SKIP);
  }
  return v;
}

const char *dmt_test_mqtt_url(void) { return dmt_test_need_env("DMT_TEST_MQTT_URL"); }

uint64_t dmt_test_now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

char *dmt_test_pg_create_db(const char *prefix) {
  const char *admin = dmt_test_need_env("DMT_TEST_PG_DSN");
  PGconn *c = PQconnectdb(admin);
  if (PQstatus(c) != CONNECTION_OK) {
    fprintf(stderr, "cannot connect to test PostgreSQL: %s", PQerrorMessage(c));
    PQfinish(c);
    return NULL;
  }
  char name[64], sql[160];
  static unsigned seq;
  snprintf(name, sizeof name, "t_%s_%d_%u_%lu", prefix, (int)getpid(), seq++,
           (unsigned long)(dmt_test_now_ms() % 100000));
  for (char *p = name; *p; p++)
    if (*p == '-') *p = '_';
  snprintf(sql, sizeof sql, "CREATE DATABASE \"%s\"", name);
  PGresult *r = PQexec(c, sql);
  int ok = PQresultStatus(r) == PGRES_COMMAND_OK;
  if (!ok) fprintf(stderr, "CREATE DATABASE failed: %s", PQerrorMessage(c));
  PQclear(r);
  PQfinish(c);
  if (!ok) return NULL;
  /* Replace (or append) dbname= in the admin DSN. */
  size_t n = strlen(admin) + strlen(name) + 16;
  char *dsn = malloc(n);
  const char *db = strstr(admin, "dbname=");
  if (db) {
    const char *end = strchr(db, ' ');
    snprintf(dsn, n, "%.*sdbname=%s%s", (int)(db - admin), admin, name, end ? end : "");
  } else {
    snprintf(dsn, n, "%s dbname=%s", admin, name);
  }
  return dsn;
}

static int pg_ctl(const char *action) {
  const char *bin = dmt_test_need_env("DMT_TEST_PG_BIN");
  const char *data = dmt_test_need_env("DMT_TEST_PGDATA");
  char cmd[1024];
  /* PostgreSQL refuses root; ./dmt runs it as the postgres account in that case. */
  char opts[600];
  if (!strcmp(action, "stop")) snprintf(opts, sizeof opts, "-m fast");
  else snprintf(opts, sizeof opts, "-l '%s/../postgres.log'", data);
  snprintf(cmd, sizeof cmd, "%s%s/pg_ctl -D '%s' -w -t 60 %s %s >/dev/null 2>&1",
           geteuid() == 0 ? "runuser -u postgres -- " : "", bin, data, opts, action);
  return system(cmd) == 0 ? 0 : -1;
}

int dmt_test_pg_stop(void) { return pg_ctl("stop"); }
int dmt_test_pg_start(void) { return pg_ctl("start"); }

int dmt_test_free_port(void) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t len = sizeof a;
  if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) != 0 ||
      getsockname(fd, (struct sockaddr *)&a, &len) != 0) {
    if (fd >= 0) close(fd);
    return -1;
  }
  int port = ntohs(a.sin_port);
  close(fd);
  return port;
}

char *dmt_test_tmpdir(const char *prefix) {
  char base[512];
  snprintf(base, sizeof base, "%s/test-scratch", DMT_BUILD_DIR);
  mkdir(base, 0700);
  char *path = malloc(640);
  snprintf(path, 640, "%s/%s-XXXXXX", base, prefix);
  if (!mkdtemp(path)) {
    free(path);
    return NULL;
  }
  return path;
}

const char *dmt_test_bin(const char *relpath) {
  static char path[1024];
  snprintf(path, sizeof path, "%s/%s", DMT_BUILD_DIR, relpath);
  return path;
}

pid_t dmt_test_spawn(char *const argv[], char *const extra_env[], const char *logfile) {
  pid_t pid = fork();
  if (pid != 0) return pid;
  if (logfile) {
    int fd = open(logfile, O_WRONLY | O_CREAT | O_APPEND, 0600);
    if (fd >= 0) {
      dup2(fd, 1);
      dup2(fd, 2);
      close(fd);
    }
  }
  for (size_t i = 0; extra_env && extra_env[i]; i++) putenv(extra_env[i]);
  execve(argv[0], argv, environ);
  fprintf(stderr, "exec %s: %s\n", argv[0], strerror(errno));
  _exit(127);
}

bool dmt_test_alive(pid_t pid) {
  int st;
  return pid > 0 && waitpid(pid, &st, WNOHANG) == 0;
}

int dmt_test_stop(pid_t pid, int sig, int timeout_ms) {
  if (pid <= 0) return -1;
  kill(pid, sig);
  uint64_t deadline = dmt_test_now_ms() + (uint64_t)timeout_ms;
  int st;
  for (;;) {
    pid_t r = waitpid(pid, &st, WNOHANG);
    if (r == pid) return st;
    if (r < 0) return -1;
    if (dmt_test_now_ms() > deadline) break;
    usleep(10000);
  }
  kill(pid, SIGKILL);
  return waitpid(pid, &st, 0) == pid ? st : -1;
}

bool dmt_test_wait_until(bool (*cond)(void *arg), void *arg, int timeout_ms) {
  uint64_t deadline = dmt_test_now_ms() + (uint64_t)timeout_ms;
  do {
    if (cond(arg)) return true;
    usleep(20000);
  } while (dmt_test_now_ms() < deadline);
  return cond(arg);
}

static bool port_open(void *arg) {
  int port = *(int *)arg;
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                          .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  bool ok = connect(fd, (struct sockaddr *)&a, sizeof a) == 0;
  close(fd);
  return ok;
}

bool dmt_test_wait_port(int port, int timeout_ms) {
  return dmt_test_wait_until(port_open, &port, timeout_ms);
}

int dmt_test_broker_start(struct dmt_test_broker *b, int port) {
  if (port == 0 && b->port == 0) b->port = dmt_test_free_port();
  if (port) b->port = port;
  char *dir = dmt_test_tmpdir("broker");
  if (!dir) return -1;
  snprintf(b->conf, sizeof b->conf, "%s/mosquitto.conf", dir);
  snprintf(b->log, sizeof b->log, "%s/mosquitto.log", dir);
  FILE *f = fopen(b->conf, "w");
  if (!f) {
    free(dir);
    return -1;
  }
  fprintf(f, "listener %d 127.0.0.1\nallow_anonymous true\npersistence true\n"
             "persistence_location %s/\nmax_queued_messages 100000\n", b->port, dir);
  fclose(f);
  free(dir);
  const char *bin = getenv("DMT_TEST_MOSQUITTO_BIN");
  char *argv[] = {(char *)(bin ? bin : "/usr/sbin/mosquitto"), "-c", b->conf, NULL};
  b->pid = dmt_test_spawn(argv, NULL, b->log);
  if (b->pid < 0 || !dmt_test_wait_port(b->port, 5000)) return -1;
  return 0;
}

void dmt_test_broker_stop(struct dmt_test_broker *b) {
  if (b->pid > 0) dmt_test_stop(b->pid, SIGTERM, 5000);
  b->pid = 0;
}
