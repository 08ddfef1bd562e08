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
#include <sys/prctl.h>
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

/* Every process a test starts is killed when the test exits, even after a failed assertion. */
static pid_t spawned[64];
static size_t nspawned;

static void kill_spawned(void) {
  for (size_t i = 0; i < nspawned; i++)
    if (spawned[i] > 0 && kill(spawned[i], 0) == 0) kill(spawned[i], SIGKILL);
}

pid_t dmt_test_spawn(char *const argv[], char *const extra_env[], const char *logfile) {
  pid_t pid = fork();
  if (pid > 0) {
    if (nspawned == 0) atexit(kill_spawned);
    if (nspawned < sizeof spawned / sizeof spawned[0]) spawned[nspawned++] = pid;
    return pid;
  }
  if (pid < 0) return pid;
  prctl(PR_SET_PDEATHSIG, SIGKILL); /* also when the test aborts (sanitizers skip atexit) */
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
             "persistence_location %s/\nmax_queued_messages 100000\nmax_inflight_messages 1000\nset_tcp_nodelay true\n", b->port, dir);
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

#include <openssl/rand.h>
#include <sys/un.h>

#include "dmt/pg.h"

const char *dmt_test_secrets_key(void) {
  static char hex[65];
  unsigned char k[32];
  RAND_bytes(k, sizeof k);
  for (int i = 0; i < 32; i++) snprintf(hex + 2 * i, 3, "%02x", k[i]);
  return hex;
}

const char *dmt_test_sim_control(const char *socket_path, const char *command) {
  static char reply[8192];
  struct sockaddr_un a = {.sun_family = AF_UNIX};
  snprintf(a.sun_path, sizeof a.sun_path, "%s", socket_path);
  int fd = socket(AF_UNIX, SOCK_STREAM, 0);
  if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
    if (fd >= 0) close(fd);
    return NULL;
  }
  char line[512];
  snprintf(line, sizeof line, "%s\n", command);
  if (write(fd, line, strlen(line)) < 0) {
    close(fd);
    return NULL;
  }
  size_t n = 0;
  while (n < sizeof reply - 1) {
    ssize_t r = read(fd, reply + n, sizeof reply - 1 - n);
    if (r <= 0) break;
    n += (size_t)r;
    reply[n] = '\0';
    if (reply[n - 1] != '\n') continue;
    /* Done once the last complete line is the verdict. */
    char *last = reply + n - 1;
    while (last > reply && last[-1] != '\n') last--;
    if (!strncmp(last, "ok", 2) || !strncmp(last, "error", 5)) break;
  }
  close(fd);
  reply[n] = '\0';
  return reply;
}

long dmt_test_pg_count(const char *dsn, const char *sql) {
  char err[256];
  PGconn *c = dmt_pg_connect(dsn, err, sizeof err);
  if (!c) return -1;
  PGresult *r;
  long v = -1;
  if (dmt_pg_exec(c, sql, 0, NULL, &r, err, sizeof err) == DMT_PG_OK) {
    if (PQntuples(r) > 0) v = atol(PQgetvalue(r, 0, 0));
    PQclear(r);
  }
  PQfinish(c);
  return v;
}

#include "dmt/mptree.h"
#include "dmt/mqtt.h"
#include "dmt/payloads.h"
#include "dmt/strmap.h"
#include "dmt/workq.h"

struct dmt_test_mqtt {
  struct dmt_mqtt *c;
  struct dmt_workq q;
  bool up;
  struct dmt_strmap states; /* guid -> (intptr_t) (connected + 1) | power << 8 */
  struct dmt_strmap suffixes; /* topic -> count */
  char client_id[64];
  /* the pending request */
  char corr[32];
  bool replied;
  int code;
  char *error;
  json_t *result;
};

static void test_on_message(void *ud, const struct dmt_mqtt_msg *msg) {
  struct dmt_test_mqtt *m = ud;
  intptr_t n = (intptr_t)dmt_strmap_get(&m->suffixes, msg->topic);
  dmt_strmap_put(&m->suffixes, msg->topic, (void *)(n + 1), NULL);
  const char *st = strstr(msg->topic, "/state");
  if (st && !st[6] && msg->len) {
    struct dmt_device_state s;
    char err[128];
    if (dmt_device_state_decode(msg->payload, msg->len, &s, err, sizeof err) == 0) {
      dmt_strmap_put(&m->states, s.guid, (void *)(intptr_t)((s.connected ? 2 : 1) | (s.power_state << 8)), NULL);
      dmt_device_state_free(&s);
    }
  }
  if (msg->correlation && msg->correlation_len == strlen(m->corr) && !memcmp(msg->correlation, m->corr, msg->correlation_len)) {
    struct dmt_command_reply r;
    char err[128];
    if (dmt_command_reply_decode(msg->payload, msg->len, &r, err, sizeof err) == 0) {
      m->replied = true;
      m->code = (int)r.code;
      free(m->error);
      m->error = r.error ? strdup(r.error) : NULL;
      json_decref(m->result);
      m->result = r.result ? dmt_mp_buf_to_json(r.result, r.result_len) : NULL;
      dmt_command_reply_free(&r);
    }
  }
}

static void test_on_conn(void *ud, bool up) { ((struct dmt_test_mqtt *)ud)->up = up; }

struct dmt_test_mqtt *dmt_test_mqtt_open(const char *url, const char *client_id) {
  struct dmt_test_mqtt *m = calloc(1, sizeof *m);
  dmt_workq_init(&m->q, NULL, NULL);
  dmt_strmap_init(&m->states);
  dmt_strmap_init(&m->suffixes);
  snprintf(m->client_id, sizeof m->client_id, "%s", client_id);
  struct dmt_mqtt_opts o = {.url = url, .client_id = client_id, .owner = &m->q, .on_message = test_on_message,
                            .on_connection = test_on_conn, .ud = m};
  char err[256];
  m->c = dmt_mqtt_new(&o, err, sizeof err);
  if (!m->c) {
    free(m);
    return NULL;
  }
  dmt_mqtt_start(m->c);
  char reply[128];
  snprintf(reply, sizeof reply, "dmt/v1/+/replies/%s/#", client_id);
  dmt_mqtt_subscribe(m->c, reply, 1);
  for (int i = 0; i < 500 && !m->up; i++) {
    dmt_workq_run(&m->q);
    usleep(10000);
  }
  return m;
}

void dmt_test_mqtt_close(struct dmt_test_mqtt *m) {
  if (!m) return;
  dmt_mqtt_free(m->c);
  dmt_workq_run(&m->q);
  dmt_workq_destroy(&m->q);
  dmt_strmap_free(&m->states);
  dmt_strmap_free(&m->suffixes);
  free(m->error);
  json_decref(m->result);
  free(m);
}

void dmt_test_mqtt_subscribe(struct dmt_test_mqtt *m, const char *filter) {
  dmt_mqtt_subscribe(m->c, filter, 1);
  usleep(100000);
}

void dmt_test_mqtt_pump(struct dmt_test_mqtt *m) { dmt_workq_run(&m->q); }

bool dmt_test_mqtt_connected(struct dmt_test_mqtt *m) { return m->up; }

struct state_count {
  size_t connected, disconnected;
};

static void count_state(const char *k, void *v, void *ud) {
  struct state_count *sc = ud;
  if (((intptr_t)v & 0xff) == 2) sc->connected++;
  else sc->disconnected++;
}

void dmt_test_mqtt_states(struct dmt_test_mqtt *m, size_t *connected, size_t *disconnected) {
  dmt_workq_run(&m->q);
  struct state_count sc = {0, 0};
  dmt_strmap_foreach(&m->states, count_state, &sc);
  *connected = sc.connected;
  *disconnected = sc.disconnected;
}

int dmt_test_mqtt_state_of(struct dmt_test_mqtt *m, const char *guid, int *power) {
  dmt_workq_run(&m->q);
  intptr_t v = (intptr_t)dmt_strmap_get(&m->states, guid);
  if (!v) return -1;
  if (power) *power = (int)(v >> 8);
  return (v & 0xff) == 2;
}

struct suffix_count {
  const char *suffix;
  size_t n;
};

static void count_suffix(const char *topic, void *v, void *ud) {
  struct suffix_count *sc = ud;
  size_t tl = strlen(topic), sl = strlen(sc->suffix);
  if (tl >= sl && !strcmp(topic + tl - sl, sc->suffix)) sc->n += (size_t)(intptr_t)v;
}

size_t dmt_test_mqtt_count_suffix(struct dmt_test_mqtt *m, const char *suffix) {
  dmt_workq_run(&m->q);
  struct suffix_count sc = {suffix, 0};
  dmt_strmap_foreach(&m->suffixes, count_suffix, &sc);
  return sc.n;
}

int dmt_test_command(struct dmt_test_mqtt *m, const char *tenant, const char *guid, const char *verb,
                     const char *args_json, int timeout_ms, char **error, json_t **result) {
  static unsigned seq;
  snprintf(m->corr, sizeof m->corr, "c-%d-%u", (int)getpid(), ++seq);
  m->replied = false;
  msgpack_sbuffer args;
  msgpack_sbuffer_init(&args);
  if (args_json) {
    json_t *j = json_loads(args_json, 0, NULL);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &args, msgpack_sbuffer_write);
    dmt_json_to_mp(j, &pk);
    json_decref(j);
  }
  struct dmt_command_request req = {.verb = (char *)verb,
                                    .present = DMT_COMMAND_REQUEST_DEADLINE_MS};
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  req.deadline_ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000 + timeout_ms;
  if (args.size) {
    req.args = (uint8_t *)args.data;
    req.args_len = args.size;
  }
  msgpack_sbuffer sb;
  msgpack_sbuffer_init(&sb);
  char err[128], topic[256], reply[160];
  dmt_command_request_encode(&req, &sb, err, sizeof err);
  snprintf(topic, sizeof topic, "dmt/v1/%s/devices/%s/cmd/%s", *tenant ? tenant : "_default", guid, verb);
  snprintf(reply, sizeof reply, "dmt/v1/%s/replies/%s/r", *tenant ? tenant : "_default", m->client_id);
  struct dmt_mqtt_publish p = {.topic = topic, .payload = sb.data, .len = sb.size, .qos = 1, .response_topic = reply,
                               .correlation = m->corr, .correlation_len = strlen(m->corr),
                               .expiry_s = (uint32_t)(timeout_ms / 1000 + 1)};
  dmt_mqtt_publish(m->c, &p);
  msgpack_sbuffer_destroy(&sb);
  msgpack_sbuffer_destroy(&args);
  uint64_t deadline = dmt_test_now_ms() + (uint64_t)timeout_ms + 2000;
  while (!m->replied && dmt_test_now_ms() < deadline) {
    dmt_workq_run(&m->q);
    usleep(5000);
  }
  if (!m->replied) return -1;
  if (error) *error = m->error ? strdup(m->error) : NULL;
  if (result) {
    *result = m->result;
    m->result = NULL;
  }
  return m->code;
}

int dmt_test_cira_start(struct dmt_test_cira *c) {
  char e[12][800];
  snprintf(e[0], sizeof e[0], "DMT_DB_DSN=%s", c->dsn);
  snprintf(e[1], sizeof e[1], "DMT_MQTT_URL=%s", dmt_test_mqtt_url());
  snprintf(e[2], sizeof e[2], "DMT_SECRETS_KEY=%s", c->secrets_key);
  snprintf(e[3], sizeof e[3], "DMT_SECRETS_KEY_ID=test");
  snprintf(e[4], sizeof e[4], "DMT_CIRA_PORT=%d", c->port);
  snprintf(e[5], sizeof e[5], "DMT_HEALTH_PORT=%d", c->health_port);
  snprintf(e[6], sizeof e[6], "DMT_INSTANCE_ID=%s", c->instance);
  snprintf(e[7], sizeof e[7], "DMT_CIRA_RUNTIME_DIR=%s", c->runtime_dir);
  snprintf(e[8], sizeof e[8], "DMT_CIRA_COMMON_NAME=127.0.0.1");
  snprintf(e[9], sizeof e[9], "DMT_CIRA_LASTSEEN_FLUSH_MS=1000");
  snprintf(e[10], sizeof e[10], "DMT_LOG_LEVEL=info");
  char *env[32] = {e[0], e[1], e[2], e[3], e[4], e[5], e[6], e[7], e[8], e[9], e[10], NULL};
  for (size_t i = 0, n = 11; c->extra_env && c->extra_env[i] && n < 31; i++) env[n++] = (char *)c->extra_env[i];
  char bin[1024];
  snprintf(bin, sizeof bin, "%s", dmt_test_bin("agents/cira/dmt-cira"));
  char *argv[] = {bin, NULL};
  snprintf(c->log, sizeof c->log, "%s/%s.log", c->runtime_dir, c->instance);
  snprintf(c->root_pem, sizeof c->root_pem, "%s/dmt-cira-%s/root.pem", c->runtime_dir, c->instance);
  c->pid = dmt_test_spawn(argv, env, c->log);
  return c->pid > 0 && dmt_test_wait_port(c->port, 60000) ? 0 : -1;
}

pid_t dmt_test_sim_start(const char *fleet, const char *root_pem, const char *control, const char *log) {
  char bin[1024], fl[800], ca[800], ctl[800];
  snprintf(bin, sizeof bin, "%s", dmt_test_bin("agents/sim/dmt-sim"));
  snprintf(fl, sizeof fl, "--sim.fleet=%s", fleet);
  snprintf(ca, sizeof ca, "--sim.mps_ca=%s", root_pem);
  snprintf(ctl, sizeof ctl, "--sim.control=%s", control);
  char *argv[] = {bin, fl, ca, ctl, "--sim.connect_rate=400", "--sim.reconnect_min_ms=500",
                  "--sim.reconnect_max_ms=2000", "--log.level=warn", NULL};
  pid_t pid = dmt_test_spawn(argv, NULL, log);
  for (int i = 0; i < 250 && access(control, F_OK) != 0; i++) usleep(20000);
  return pid;
}

size_t dmt_test_sim_connected(const char *control) {
  const char *r = dmt_test_sim_control(control, "connected");
  return r && !strncmp(r, "ok ", 3) ? strtoul(r + 3, NULL, 10) : 0;
}
