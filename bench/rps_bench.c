/*
 * RPS agent benchmark: activations per second with N devices activating at
 * once, and where the time goes. The agent (a release build of dmt-rps)
 * runs against a real PostgreSQL and Mosquitto; the devices are the test
 * stand-in (tests/harness/rps_standin.c) in this process, answering each
 * WS-Man request at once, so the figures are the server's and the loopback's.
 *
 *   rps_bench [ccm|acm] [devices] [rounds]      (env: DMT_TEST_PG_DSN, DMT_TEST_MQTT_URL)
 *
 * Reports: wall time per round, activations/s, client-side latency p50/p95,
 * and from the agent's own job_done accounting (averaged over every job):
 * server-side time per activation split into database, signing and the rest
 * (XML, HTTP, digest, JSON, flow), the time spent waiting for the client,
 * round trips per activation, and the agent's CPU time per activation
 * (/proc). Also one-core RSA-2048 signing throughput, the ceiling for ACM.
 * Numbers only: nothing is asserted. See bench/rps_bench.sh and docs/rps.md.
 */
#include <openssl/evp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "dmt/tls.h"
#include "harness.h"
#include "rps.h"
#include "rps_fixture.h"
#include "rps_standin.h"

static double now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec * 1000.0 + (double)t.tv_nsec / 1e6;
}

static int cmp(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

/* user+system CPU of pid in ms */
static double cpu_ms(pid_t pid) {
  char path[64], buf[1024];
  snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
  FILE *f = fopen(path, "r");
  if (!f) return -1;
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[n] = '\0';
  char *p = strrchr(buf, ')');
  unsigned long ut = 0, st = 0;
  /* fields after ") ": state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime */
  if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2) return -1;
  return (double)(ut + st) * 1000.0 / (double)sysconf(_SC_CLK_TCK);
}

static double sign_rate(void) {
  EVP_PKEY *k = dmt_tls_rsa_key(2048);
  uint8_t a[20] = {1}, b[20] = {2};
  double t0 = now_ms();
  int n = 0;
  while (now_ms() - t0 < 1000) {
    char *sig = NULL;
    acm_sign(k, a, 20, b, 20, &sig);
    free(sig);
    n++;
  }
  EVP_PKEY_free(k);
  return n * 1000.0 / (now_ms() - t0);
}

struct agent_stats {
  size_t jobs;
  double server, wait, db, sign, total, rtt;
};

/* Averages the agent's job_done lines for successful jobs. */
static void parse_log(const char *path, struct agent_stats *s) {
  memset(s, 0, sizeof *s);
  FILE *f = fopen(path, "r");
  if (!f) return;
  char line[2048];
  while (fgets(line, sizeof line, f)) {
    if (!strstr(line, "event=job_done") || !strstr(line, "outcome=success")) continue;
    const char *keys[] = {"server_ms=", "wait_ms=", "db_ms=", "sign_ms=", "total_ms=", "round_trips="};
    double *vals[] = {&s->server, &s->wait, &s->db, &s->sign, &s->total, &s->rtt};
    for (int i = 0; i < 6; i++) {
      const char *p = strstr(line, keys[i]);
      if (p) *vals[i] += atof(p + strlen(keys[i]));
    }
    s->jobs++;
  }
  fclose(f);
}

int main(int argc, char **argv) {
  const char *mode = argc > 1 ? argv[1] : "ccm";
  int devices = argc > 2 ? atoi(argv[2]) : 100;
  int rounds = argc > 3 ? atoi(argv[3]) : 3;
  bool acm = !strcmp(mode, "acm");
  struct rps_world w;
  if (rps_world_init(&w, "rps_bench") != 0) return 2;
  char tenant[] = "bench";
  char pem[4096], b64[4096];
  struct rps_pki pki;
  if (rps_make_root(pem, sizeof pem, b64, sizeof b64) || rps_put_mpscerts(&w, pem) ||
      rps_add_cira(&w, tenant, "cira", "127.0.0.1", 4433, "benchUser", NULL, b64) ||
      rps_add_profile(&w, tenant, "p", acm ? "acmactivate" : "ccmactivate", NULL, NULL, "cira", NULL) ||
      rps_make_pki(&pki, "amt.bench.test", 365, "pw") ||
      rps_add_domain(&w, tenant, "bench", "bench.test", pki.pfx, pki.pfx_len, "pw"))
    return 2;
  w.env[0] = "DMT_LOG_LEVEL=info";
  w.env[1] = getenv("RPS_BENCH_SIGN_WORKERS") ? getenv("RPS_BENCH_SIGN_WORKERS") : "DMT_RPS_SIGN_WORKERS=0";
  w.env[2] = "DMT_RPS_DB_WORKERS=8";
  if (rps_world_start(&w) != 0) return 2;
  struct standin *s = standin_new();
  char *hashes[] = {pki.root_sha256};
  /* warm-up: one activation (connections, caches, the PKCS#12 decryption) */
  struct sdev_spec warm = {.guid = "b0b0b0b0-ffff-4000-8000-000000000000", .fqdn = "bench.test",
                           .trusted_hashes = hashes, .ntrusted = 1};
  struct sdev *wd = standin_device(s, &warm);
  standin_run(s, wd, w.url, "activate --profile p", tenant, NULL);
  standin_wait(s, &wd, 1, 60000);
  double cpu0 = cpu_ms(w.pid);
  struct sdev **devs = calloc((size_t)devices, sizeof *devs);
  double *lat = calloc((size_t)(devices * rounds), sizeof *lat);
  size_t nlat = 0, failed = 0;
  double total_wall = 0;
  printf("rps_bench %s: %d devices at once x %d rounds, %ld CPUs\n", mode, devices, rounds,
         sysconf(_SC_NPROCESSORS_ONLN));
  for (int r = 0; r < rounds; r++) {
    for (int i = 0; i < devices; i++) {
      char g[37];
      snprintf(g, sizeof g, "b0b0b0b0-%04x-4000-8000-%012d", (unsigned)r & 0xffff, i % 1000000);
      struct sdev_spec sp = {.guid = g, .fqdn = "bench.test", .trusted_hashes = hashes, .ntrusted = 1};
      devs[i] = standin_device(s, &sp);
    }
    double t0 = now_ms();
    for (int i = 0; i < devices; i++) standin_run(s, devs[i], w.url, "activate --profile p", tenant, NULL);
    if (!standin_wait(s, devs, (size_t)devices, 600000)) fprintf(stderr, "round %d did not finish\n", r);
    double wall = now_ms() - t0;
    total_wall += wall;
    for (int i = 0; i < devices; i++) {
      const struct sresult *res = standin_result(devs[i]);
      if (strcmp(res->method, "success")) failed++;
      else lat[nlat++] = res->ms;
    }
    printf("  round %d: %.0f ms, %.1f activations/s\n", r + 1, wall, devices * 1000.0 / wall);
  }
  double cpu1 = cpu_ms(w.pid);
  qsort(lat, nlat, sizeof *lat, cmp);
  int st = rps_world_stop(&w);
  struct agent_stats a;
  parse_log(w.log, &a);
  size_t n = a.jobs ? a.jobs : 1;
  printf("  activations: %zu ok, %zu failed; %.1f activations/s overall\n", nlat, failed,
         nlat * 1000.0 / total_wall);
  if (nlat)
    printf("  client-side latency: p50 %.0f ms, p95 %.0f ms, max %.0f ms\n", lat[nlat / 2], lat[nlat * 95 / 100],
           lat[nlat - 1]);
  printf("  agent, per activation (mean of %zu jobs):\n", a.jobs);
  printf("    server-side  %7.2f ms  (database %.2f ms, signing %.2f ms, rest %.2f ms: XML/HTTP/digest/JSON/flow)\n",
         a.server / n, a.db / n, a.sign / n, (a.server - a.db - a.sign) / n);
  printf("    waiting for the RPC client %7.2f ms over %.1f round trips\n", a.wait / n, a.rtt / n);
  printf("    wall time    %7.2f ms\n", a.total / n);
  if (cpu0 >= 0 && cpu1 >= 0 && nlat)
    printf("    agent CPU    %7.2f ms  (user+system, all threads)\n", (cpu1 - cpu0) / (double)nlat);
  double rate = sign_rate();
  printf("  RSA-2048 PKCS#1 signing on one core: %.0f signatures/s -> ACM ceiling ~%.0f activations/s on %ld CPUs\n",
         rate, rate * (double)sysconf(_SC_NPROCESSORS_ONLN), sysconf(_SC_NPROCESSORS_ONLN));
  printf("  agent exit status %d, log %s\n", st, w.log);
  standin_free(s);
  free(devs);
  free(lat);
  rps_pki_free(&pki);
  return failed ? 1 : 0;
}
