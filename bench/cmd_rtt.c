/*
 * cmd_rtt: command round-trip latency through broker + terminator + device.
 * Sends `count` power_state commands to devices of a fleet file, `inflight`
 * at a time, and prints p50/p90/p99/max in milliseconds and the rate.
 *   cmd_rtt MQTT_URL TENANT FLEET_FILE COUNT INFLIGHT [VERB]
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "dmt/mqtt.h"
#include "dmt/payloads.h"
#include "dmt/workq.h"

static double now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

static int cmp(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

struct state {
  double *sent;  /* per request id: send time, 0 when answered */
  double *rtt;
  size_t done, errors;
};

static void on_message(void *ud, const struct dmt_mqtt_msg *m) {
  struct state *st = ud;
  if (!m->correlation || m->correlation_len != sizeof(unsigned)) return;
  unsigned id;
  memcpy(&id, m->correlation, sizeof id);
  if (st->sent[id] == 0) return;
  struct dmt_command_reply r;
  char err[64];
  if (dmt_command_reply_decode(m->payload, m->len, &r, err, sizeof err) != 0 || r.code != 200) st->errors++;
  else dmt_command_reply_free(&r);
  st->rtt[st->done++] = now_ms() - st->sent[id];
  st->sent[id] = 0;
}

int main(int argc, char **argv) {
  if (argc < 6) {
    fprintf(stderr, "usage: cmd_rtt MQTT_URL TENANT FLEET_FILE COUNT INFLIGHT [VERB]\n");
    return 2;
  }
  const char *url = argv[1], *tenant = *argv[2] ? argv[2] : "_default", *verb = argc > 6 ? argv[6] : "power_state";
  size_t count = strtoul(argv[4], NULL, 10), inflight = strtoul(argv[5], NULL, 10);
  json_t *fleet = json_load_file(argv[3], 0, NULL);
  json_t *devs = json_object_get(fleet, "devices");
  size_t ndev = json_array_size(devs);
  if (!ndev) return 1;
  struct dmt_workq q;
  dmt_workq_init(&q, NULL, NULL);
  struct state st = {calloc(count, sizeof(double)), calloc(count, sizeof(double)), 0, 0};
  char id[64];
  snprintf(id, sizeof id, "bench-rtt-%d", (int)getpid());
  struct dmt_mqtt_opts o = {.url = url, .client_id = id, .owner = &q, .on_message = on_message, .ud = &st};
  char err[256], reply[160];
  struct dmt_mqtt *m = dmt_mqtt_new(&o, err, sizeof err);
  dmt_mqtt_start(m);
  snprintf(reply, sizeof reply, "dmt/v1/%s/replies/%s", tenant, id);
  dmt_mqtt_subscribe(m, reply, 1);
  while (!dmt_mqtt_is_connected(m)) usleep(10000);
  usleep(300000);
  double t0 = now_ms();
  size_t next = 0;
  while (st.done < count && now_ms() - t0 < 600000) {
    while (next < count && next - st.done < inflight) {
      const char *guid = json_string_value(json_object_get(json_array_get(devs, (next * 7919) % ndev), "guid"));
      char topic[256];
      snprintf(topic, sizeof topic, "dmt/v1/%s/devices/%s/cmd/%s", tenant, guid, verb);
      struct timespec wall;
      clock_gettime(CLOCK_REALTIME, &wall);
      struct dmt_command_request req = {.verb = (char *)verb,
                                        .deadline_ms = (int64_t)wall.tv_sec * 1000 + wall.tv_nsec / 1000000 + 30000,
                                        .present = DMT_COMMAND_REQUEST_DEADLINE_MS};
      msgpack_sbuffer sb;
      msgpack_sbuffer_init(&sb);
      dmt_command_request_encode(&req, &sb, err, sizeof err);
      unsigned rid = (unsigned)next;
      st.sent[next] = now_ms();
      struct dmt_mqtt_publish p = {.topic = topic, .payload = sb.data, .len = sb.size, .qos = 1,
                                   .response_topic = reply, .correlation = &rid, .correlation_len = sizeof rid,
                                   .expiry_s = 30};
      dmt_mqtt_publish(m, &p);
      msgpack_sbuffer_destroy(&sb);
      next++;
    }
    dmt_workq_run(&q);
    usleep(200);
  }
  double elapsed = now_ms() - t0;
  qsort(st.rtt, st.done, sizeof(double), cmp);
#define PCT(p) (st.done ? st.rtt[(size_t)((st.done - 1) * (p))] : 0)
  printf("commands %zu errors %zu inflight %zu rate_per_s %.0f p50_ms %.2f p90_ms %.2f p99_ms %.2f max_ms %.2f\n",
         st.done, st.errors, inflight, st.done / (elapsed / 1000.0), PCT(0.50), PCT(0.90), PCT(0.99), PCT(1.0));
  dmt_mqtt_free(m);
  json_decref(fleet);
  return st.done == count ? 0 : 1;
}
