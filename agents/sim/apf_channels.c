/*
 * APF channels on the device side: the server opens one per HTTP exchange
 * (MPS: per REST call; Console: per round trip). Each carries HTTP/1.1 to the
 * device's WS-Man responder. Flow control both ways: we never send more than
 * the server's credits, and return our own credits once half the window has
 * been consumed (mps-cira.md §1.10).
 */
#include <stdlib.h>
#include <string.h>

#include "dmt/apf.h"
#include "sim.h"

#define OUR_WINDOW 32768u
#define MAX_REQUEST_BODY (1u << 20)
#define MAX_SEGMENT 16384u

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

/* Sends what the server's window allows; closes the channel when a Connection: close response is out. */
static void flush(struct sim_device *d, struct sim_channel *c) {
  if (dmt_timer_armed(&c->slow)) return; /* held back by the slow-response fault */
  while (dmt_buf_size(&c->pending) > 0 && c->send_window > 0) {
    uint32_t n = (uint32_t)dmt_buf_size(&c->pending);
    if (n > c->send_window) n = c->send_window;
    if (n > MAX_SEGMENT) n = MAX_SEGMENT;
    dmt_apf_put_channel_data(&d->out, c->peer_id, dmt_buf_ptr(&c->pending), n);
    dmt_buf_consume(&c->pending, n);
    c->send_window -= n;
  }
  if (dmt_buf_size(&c->pending) == 0 && c->close_after_send && !c->close_sent) {
    dmt_apf_put_channel_close(&d->out, c->peer_id);
    c->close_sent = true;
  }
}

static void slow_done(struct dmt_loop *loop, struct dmt_timer *t) {
  struct sim_channel *c = t->ud;
  flush(c->dev, c);
  sim_cira_send(c->dev);
}

void sim_channel_open(struct sim_device *d, uint32_t peer_id, uint32_t window, uint32_t port) {
  struct sim *s = d->sim;
  if ((d->faults & SIM_FAULT_REFUSE_CHANNEL) || port != DMT_APF_WSMAN_PORT) {
    s->count.channels_refused++;
    dmt_apf_put_channel_open_failure(&d->out, peer_id, DMT_APF_OPEN_CONNECT_FAILED);
    return;
  }
  struct sim_channel *c = calloc(1, sizeof *c);
  if (!c) {
    dmt_apf_put_channel_open_failure(&d->out, peer_id, DMT_APF_OPEN_RESOURCE_SHORTAGE);
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
  dmt_apf_put_channel_open_confirmation(&d->out, peer_id, c->id, OUR_WINDOW);
}

void sim_channel_data(struct sim_device *d, uint32_t id, const uint8_t *data, uint32_t len) {
  struct sim_channel *c = find(d, id);
  if (!c || c->close_sent) return; /* data racing a close: dropped, as MPS does for unknown ids */
  c->unacked += len;
  if (c->unacked > OUR_WINDOW / 2) {
    dmt_apf_put_window_adjust(&d->out, c->peer_id, c->unacked);
    c->unacked = 0;
  }
  size_t off = 0;
  while (off < len) {
    size_t used = 0;
    int rc = dmt_http_parse(&c->http, data + off, len - off, &used);
    if (rc < 0) {
      DMT_WARN(&d->sim->log, "http_error", "guid=%s error=\"%s\"", d->guid, dmt_http_strerror(rc));
      c->close_after_send = true;
      flush(d, c);
      return;
    }
    off += used;
    if (rc != DMT_HTTP_DONE) break;
    bool close_after = !c->http.keep_alive;
    sim_wsman_handle(d, &c->http, &c->pending, &close_after);
    c->close_after_send = close_after;
    dmt_http_parser_reset(&c->http);
    if ((d->faults & SIM_FAULT_SLOW) && d->slow_ms) dmt_timer_start(d->sim->loop, &c->slow, d->slow_ms);
    flush(d, c);
    if (c->close_after_send) break;
  }
}

void sim_channel_window(struct sim_device *d, uint32_t id, uint32_t bytes) {
  struct sim_channel *c = find(d, id);
  if (!c) return;
  c->send_window = (uint32_t)(c->send_window + (uint64_t)bytes > UINT32_MAX ? UINT32_MAX : c->send_window + bytes);
  flush(d, c);
}

void sim_channel_closed(struct sim_device *d, uint32_t id) {
  struct sim_channel *c = find(d, id);
  if (!c) return;
  if (!c->close_sent) dmt_apf_put_channel_close(&d->out, c->peer_id);
  free_channel(d, c);
}
