/*
 * APF channels on the device side. The MPS opens one per REST call (DMT's
 * MPS) or per round trip (Console); each carries HTTP/1.1 to the device's
 * WS-Man responder. Flow control both ways (mps-cira.md §1.10): the device
 * never sends more CHANNEL_DATA than the server's credits (the window from
 * CHANNEL_OPEN plus WINDOW_ADJUSTs) and queues the rest, and it returns its
 * own credits with WINDOW_ADJUST once half of its advertised window has been
 * consumed. After a response with Connection: close (AMT's 401) the device
 * closes the channel; CHANNEL_CLOSE is sent exactly once. Channel state
 * (parser, pending bytes) is allocated only while the channel is open.
 */
#include <stdlib.h>
#include <string.h>

#include "dmt/apf.h"
#include "sim.h"

#define DEVICE_WINDOW 32768u
#define MAX_REQUEST_BODY (1u << 20)
#define MAX_SEGMENT 16384u
#define MAX_CHANNELS 32u

struct sim_channel {
  uint32_t id, peer_id;
  uint32_t send_window; /* bytes we may still send (the server's credits) */
  uint32_t unacked;     /* bytes received and not yet returned with WINDOW_ADJUST */
  struct dmt_http_parser http;
  struct dmt_buf pending; /* response bytes waiting for window (or for the slow fault) */
  bool close_after_send, close_sent;
  struct dmt_timer slow;
  struct sim_device *dev;
  struct sim_channel *next;
};

static struct sim_channel *find(struct sim_device *d, uint32_t id) {
  for (struct sim_channel *c = d->channels; c; c = c->next)
    if (c->id == id) return c;
  return NULL;
}

static void free_channel(struct sim_device *d, struct sim_channel *c) {
  for (struct sim_channel **pp = &d->channels; *pp; pp = &(*pp)->next)
    if (*pp == c) {
      *pp = c->next;
      break;
    }
  dmt_timer_stop(d->sim->loop, &c->slow);
  dmt_http_parser_free(&c->http);
  dmt_buf_free(&c->pending);
  free(c);
}

void sim_channels_free(struct sim_device *d) {
  while (d->channels) free_channel(d, d->channels);
}

/* Sends what the server's window allows; closes the channel once a Connection: close response is out. */
static void flush(struct sim_device *d, struct sim_channel *c) {
  if (dmt_timer_armed(&c->slow)) return; /* held back by the slow-response fault */
  struct dmt_buf *out = &d->conn.out;
  while (dmt_buf_size(&c->pending) > 0 && c->send_window > 0) {
    uint32_t n = (uint32_t)dmt_buf_size(&c->pending);
    if (n > c->send_window) n = c->send_window;
    if (n > MAX_SEGMENT) n = MAX_SEGMENT;
    dmt_apf_put_channel_data(out, c->peer_id, dmt_buf_ptr(&c->pending), n);
    dmt_buf_consume(&c->pending, n);
    c->send_window -= n;
  }
  if (dmt_buf_size(&c->pending) == 0) {
    dmt_buf_free(&c->pending);
    if (c->close_after_send && !c->close_sent) {
      dmt_apf_put_channel_close(out, c->peer_id);
      c->close_sent = true;
    }
  }
}

static void slow_done(struct dmt_loop *loop, struct dmt_timer *t) {
  struct sim_channel *c = t->ud;
  struct sim_device *d = c->dev;
  flush(d, c);
  sim_cira_flush(d);
}

void sim_channel_open(struct sim_device *d, uint32_t peer_id, uint32_t window, uint32_t port) {
  struct sim *s = d->sim;
  size_t open = 0;
  for (struct sim_channel *c = d->channels; c; c = c->next) open++;
  if ((d->faults & SIM_FAULT_REFUSE_CHANNEL) || port != DMT_APF_WSMAN_PORT || open >= MAX_CHANNELS) {
    /* Redirection (16994) is not simulated: firmware would connect, the simulator refuses like a busy port. */
    s->count.channels_refused++;
    dmt_apf_put_channel_open_failure(&d->conn.out, peer_id,
                                     open >= MAX_CHANNELS ? DMT_APF_OPEN_RESOURCE_SHORTAGE : DMT_APF_OPEN_CONNECT_FAILED);
    return;
  }
  struct sim_channel *c = calloc(1, sizeof *c);
  if (!c) {
    dmt_apf_put_channel_open_failure(&d->conn.out, peer_id, DMT_APF_OPEN_RESOURCE_SHORTAGE);
    return;
  }
  c->id = d->next_channel_id++;
  c->peer_id = peer_id;
  c->send_window = window;
  c->dev = d;
  dmt_http_parser_init(&c->http, true, MAX_REQUEST_BODY);
  dmt_buf_init(&c->pending, 4u << 20);
  dmt_timer_init(&c->slow, slow_done, c);
  c->next = d->channels;
  d->channels = c;
  s->count.channels_opened++;
  dmt_apf_put_channel_open_confirmation(&d->conn.out, peer_id, c->id, DEVICE_WINDOW);
}

void sim_channel_data(struct sim_device *d, uint32_t id, const uint8_t *data, uint32_t len) {
  struct sim_channel *c = find(d, id);
  if (!c || c->close_sent) return; /* data racing a close: dropped, as MPS does for unknown ids */
  c->unacked += len;
  if (c->unacked > DEVICE_WINDOW / 2) {
    dmt_apf_put_window_adjust(&d->conn.out, c->peer_id, c->unacked);
    c->unacked = 0;
  }
  size_t off = 0;
  while (off < len && !c->close_after_send) {
    size_t used = 0;
    int rc = dmt_http_parse(&c->http, data + off, len - off, &used);
    if (rc < 0) {
      DMT_WARN(&d->sim->log, "http_error", "guid=%s error=\"%s\"", d->guid, dmt_http_strerror(rc));
      c->close_after_send = true;
      break;
    }
    off += used;
    if (rc != DMT_HTTP_DONE) break;
    bool close_after = !c->http.keep_alive;
    sim_wsman_handle(d, SIM_TRANSPORT_CIRA, &c->http, &c->pending, &close_after);
    c->close_after_send = close_after;
    dmt_http_parser_reset(&c->http);
    if ((d->faults & SIM_FAULT_SLOW) && d->slow_ms) dmt_timer_start(d->sim->loop, &c->slow, d->slow_ms);
  }
  flush(d, c);
}

void sim_channel_window(struct sim_device *d, uint32_t id, uint32_t bytes) {
  struct sim_channel *c = find(d, id);
  if (!c) return;
  uint64_t w = (uint64_t)c->send_window + bytes;
  c->send_window = w > UINT32_MAX ? UINT32_MAX : (uint32_t)w;
  flush(d, c);
}

void sim_channel_closed(struct sim_device *d, uint32_t id) {
  struct sim_channel *c = find(d, id);
  if (!c) return;
  if (!c->close_sent) dmt_apf_put_channel_close(&d->conn.out, c->peer_id);
  free_channel(d, c);
}
