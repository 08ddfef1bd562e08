/* Helpers for the dmtctl and event-stream integration tests (see dmtctl_stack.h). */
#include "dmtctl_stack.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

const char *dmtctl_bin(void) {
  static char p[1024];
  snprintf(p, sizeof p, "%s", dmt_test_bin("agents/cli/dmtctl"));
  return p;
}

const char *consumer_bin(void) {
  static char p[1024];
  snprintf(p, sizeof p, "%s", dmt_test_bin("docs/examples/dmt-consumer"));
  return p;
}

void ctl_env_add(struct ctl_env *e, const char *kv) {
  if (e->n < sizeof e->vars / sizeof e->vars[0]) snprintf(e->vars[e->n++], sizeof e->vars[0], "%s", kv);
}

void ctl_env_init(struct ctl_env *e, const char *broker, const char *tenant) {
  memset(e, 0, sizeof *e);
  char kv[700];
  snprintf(kv, sizeof kv, "DMTCTL_BROKER=%s", broker);
  ctl_env_add(e, kv);
  snprintf(kv, sizeof kv, "DMTCTL_TENANT=%s", tenant);
  ctl_env_add(e, kv);
  /* never pick up a developer's ~/.config/dmtctl/config */
  char *dir = dmt_test_tmpdir("xdg");
  snprintf(kv, sizeof kv, "XDG_CONFIG_HOME=%s", dir);
  free(dir);
  ctl_env_add(e, kv);
}

/* environ without DMTCTL_* (the test decides), plus e's entries */
static char **child_env(const struct ctl_env *e) {
  size_t n = 0;
  while (environ[n]) n++;
  char **env = calloc(n + (e ? e->n : 0) + 1, sizeof *env);
  size_t k = 0;
  for (size_t i = 0; i < n; i++)
    if (strncmp(environ[i], "DMTCTL_", 7) != 0) env[k++] = environ[i];
  for (size_t i = 0; e && i < e->n; i++) env[k++] = (char *)e->vars[i];
  return env;
}

static pid_t spawn_to(const struct ctl_env *e, const char *bin, const char *const *args, const char *out,
                      const char *err) {
  const char *argv[64] = {bin};
  size_t n = 1;
  for (size_t i = 0; args && args[i] && n < 63; i++) argv[n++] = args[i];
  argv[n] = NULL;
  char **env = child_env(e);
  pid_t pid = fork();
  if (pid == 0) {
    int fo = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0600), fe = open(err, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    int devnull = open("/dev/null", O_RDONLY);
    dup2(devnull, 0);
    dup2(fo, 1);
    dup2(fe, 2);
    execve(bin, (char *const *)argv, env);
    fprintf(stderr, "exec %s: %s\n", bin, strerror(errno));
    _exit(127);
  }
  free(env);
  return pid;
}

char *read_text(const char *path) {
  FILE *f = fopen(path, "r");
  if (!f) return strdup("");
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *s = malloc((size_t)n + 1);
  size_t got = fread(s, 1, (size_t)n, f);
  s[got] = '\0';
  fclose(f);
  return s;
}

static int wait_exit(pid_t pid, int timeout_ms) {
  uint64_t deadline = dmt_test_now_ms() + (uint64_t)timeout_ms;
  int st;
  for (;;) {
    pid_t r = waitpid(pid, &st, WNOHANG);
    if (r == pid) return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    if (r < 0) return -1;
    if (dmt_test_now_ms() > deadline) break;
    usleep(5000);
  }
  kill(pid, SIGKILL);
  waitpid(pid, &st, 0);
  return -1;
}

int run_prog(struct run *r, const struct ctl_env *e, int timeout_ms, const char *bin, const char *const *args) {
  char *dir = dmt_test_tmpdir("run");
  char out[700], err[700];
  snprintf(out, sizeof out, "%s/out", dir);
  snprintf(err, sizeof err, "%s/err", dir);
  pid_t pid = spawn_to(e, bin, args, out, err);
  r->status = wait_exit(pid, timeout_ms);
  r->out = read_text(out);
  r->err = read_text(err);
  free(dir);
  return r->status;
}

int run_ctl(struct run *r, const struct ctl_env *e, int timeout_ms, ...) {
  const char *args[64];
  size_t n = 0;
  va_list ap;
  va_start(ap, timeout_ms);
  for (const char *s; (s = va_arg(ap, const char *)) && n < 63;) args[n++] = s;
  va_end(ap);
  args[n] = NULL;
  return run_prog(r, e, timeout_ms, dmtctl_bin(), args);
}

void run_free(struct run *r) {
  free(r->out);
  free(r->err);
  r->out = r->err = NULL;
}

size_t count_lines(const char *s) {
  size_t n = 0;
  for (const char *p = s; p && *p;) {
    const char *nl = strchr(p, '\n');
    if ((nl ? nl : p + strlen(p)) > p) n++;
    p = nl ? nl + 1 : p + strlen(p);
  }
  return n;
}

size_t count_matching(const char *s, const char *needle) {
  size_t n = 0;
  for (const char *p = s; p && *p;) {
    const char *nl = strchr(p, '\n');
    size_t len = nl ? (size_t)(nl - p) : strlen(p);
    char *line = strndup(p, len);
    if (strstr(line, needle)) n++;
    free(line);
    p = nl ? nl + 1 : p + len;
  }
  return n;
}

int bg_start(struct bg *b, const struct ctl_env *e, const char *dir, const char *name, const char *bin,
             const char *const *args) {
  snprintf(b->out_path, sizeof b->out_path, "%s/%s.out", dir, name);
  snprintf(b->err_path, sizeof b->err_path, "%s/%s.err", dir, name);
  b->pid = spawn_to(e, bin, args, b->out_path, b->err_path);
  return b->pid > 0 ? 0 : -1;
}

int bg_wait(struct bg *b, int timeout_ms) {
  int st = b->pid > 0 ? wait_exit(b->pid, timeout_ms) : -1;
  b->pid = 0;
  return st;
}

int bg_stop(struct bg *b, int sig) {
  if (b->pid <= 0) return -1;
  kill(b->pid, sig);
  return bg_wait(b, 10000);
}

char *bg_out(const struct bg *b) { return read_text(b->out_path); }

/* ---- the stack ---- */

int stack_start(struct stack *s, const char *name, size_t n, const char *guid_prefix, const char *sql) {
  memset(s, 0, sizeof *s);
  s->n = n;
  s->dsn = dmt_test_pg_create_db(name);
  s->dir = dmt_test_tmpdir(name);
  if (!s->dsn || !s->dir) return -1;
  snprintf(s->key, sizeof s->key, "%s", dmt_test_secrets_key());
  snprintf(s->tenant, sizeof s->tenant, "%s-%d", name, (int)getpid());
  for (char *p = s->tenant; *p; p++)
    if (*p == '_') *p = '-';
  snprintf(s->instance, sizeof s->instance, "cira-%s-%d", name, (int)getpid());
  s->cira = (struct dmt_test_cira){.dsn = s->dsn, .secrets_key = s->key, .instance = s->instance,
                                   .runtime_dir = s->dir, .port = dmt_test_free_port(),
                                   .health_port = dmt_test_free_port()};
  snprintf(s->fleet, sizeof s->fleet, "%s/fleet.json", s->dir);
  snprintf(s->control, sizeof s->control, "%s/sim.sock", s->dir);
  snprintf(s->sim_log, sizeof s->sim_log, "%s/sim.log", s->dir);
  char err[256];
  s->devs = dmt_fleet_provision(s->dsn, s->key, "test", s->tenant, guid_prefix, n, err, sizeof err);
  if (!s->devs) {
    fprintf(stderr, "provision: %s\n", err);
    return -1;
  }
  if (sql) stack_sql(s, "%s", sql);
  dmt_fleet_write(s->fleet, s->devs, n, "127.0.0.1", s->cira.port);
  char id[96], filter[160];
  snprintf(id, sizeof id, "observer-%s-%d", name, (int)getpid());
  s->mq = dmt_test_mqtt_open(dmt_test_mqtt_url(), id);
  snprintf(filter, sizeof filter, "dmt/v1/%s/devices/+/state", s->tenant);
  dmt_test_mqtt_subscribe(s->mq, filter);
  if (dmt_test_cira_start(&s->cira) != 0) return -1;
  s->sim = dmt_test_sim_start(s->fleet, s->cira.root_pem, s->control, s->sim_log);
  return s->sim > 0 ? 0 : -1;
}

static bool all_connected(void *arg) {
  struct stack *s = arg;
  size_t c, d;
  dmt_test_mqtt_states(s->mq, &c, &d);
  return c == s->n;
}

bool stack_wait_connected(struct stack *s, int timeout_ms) { return dmt_test_wait_until(all_connected, s, timeout_ms); }

void stack_stop(struct stack *s) {
  if (s->sim > 0) dmt_test_stop(s->sim, SIGTERM, 5000);
  if (s->cira.pid > 0) dmt_test_stop(s->cira.pid, SIGTERM, 10000);
  dmt_test_mqtt_close(s->mq);
  free(s->devs);
  free(s->dsn);
  free(s->dir);
  memset(s, 0, sizeof *s);
}

const char *stack_sim(struct stack *s, const char *fmt, ...) {
  char cmd[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(cmd, sizeof cmd, fmt, ap);
  va_end(ap);
  return dmt_test_sim_control(s->control, cmd);
}

int stack_sim_power(struct stack *s, const char *guid) {
  const char *r = stack_sim(s, "state %s", guid);
  char st[32];
  int power;
  if (!r || sscanf(r, "ok %31s %d", st, &power) != 2) return -1;
  return power;
}

long stack_sql(struct stack *s, const char *fmt, ...) {
  char sql[4096];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(sql, sizeof sql, fmt, ap);
  va_end(ap);
  return dmt_test_pg_count(s->dsn, sql);
}
