/*
 * Server-initiated APF channels to the device's port 16992, with both
 * directions of flow control: requests never exceed the device's credits
 * (queued until WINDOW_ADJUST), and our credits are returned once half the
 * advertised window is consumed; a device sending beyond the credits it was
 * given breaks the protocol and is disconnected. CHANNEL_CLOSE is sent
 * exactly once, also when a close races the open (mps-cira.md §1.10).
 * Messages for unknown channel ids are consumed and ignored, as MPS does.
 */
#include <stdlib.h>
#include <string.h>

#include "cira.h"

#define MAX_RESPONSE_BODY (4u << 20)
#define MAX_SEGMENT 16384u

static struct cira_channel *find(struct cira_conn *c, uint32_t id) {
  for (struct cira_channel *ch = c->channels; ch; ch = ch->next)
    if (ch->id == id) return ch;
  return NULL;
}

static void unlink_free(struct cira_conn *c, struct cira_channel *ch) {
  for (struct cira_channel **pp = &c->channels; *pp; pp = &(*pp)->next)
    if (*pp == ch) {
      *pp = ch->next;
      break;
    }
  dmt_http_parser_free(&ch->http);
  dmt_buf_free(&ch->pending);
  free(ch);
}

struct cira_channel *channel_open(struct cira_conn *c) {
  if (c->state != CONN_ACTIVE) return NULL;
  struct cira_channel *ch = calloc(1, sizeof *ch);
  if (!ch) return NULL;
  ch->id = c->next_channel_id++;
  dmt_http_parser_init(&ch->http, false, MAX_RESPONSE_BODY);
  dmt_buf_init(&ch->pending, 1u << 20);
  ch->next = c->channels;
  c->channels = ch;
  /* As DMT's MPS opens them: forwarded-tcpip, empty target, originator 1.2.3.4. */
  dmt_apf_put_channel_open(&c->out, "forwarded-tcpip", ch->id, c->srv->set.window, "", DMT_APF_WSMAN_PORT, "1.2.3.4",
                           (ch->id % 30000u) + 1024u);
  conn_flush(c);
  return ch;
}

static void flush_pending(struct cira_conn *c, struct cira_channel *ch) {
  while (ch->open && !ch->close_sent && dmt_buf_size(&ch->pending) && ch->send_window) {
    uint32_t n = (uint32_t)dmt_buf_size(&ch->pending);
    if (n > ch->send_window) n = ch->send_window;
    if (n > MAX_SEGMENT) n = MAX_SEGMENT;
    dmt_apf_put_channel_data(&c->out, ch->peer_id, dmt_buf_ptr(&ch->pending), n);
    dmt_buf_consume(&ch->pending, n);
    ch->send_window -= n;
  }
  conn_flush(c);
}

void channel_send(struct cira_conn *c, struct cira_channel *ch, const void *data, size_t len) {
  if (dmt_buf_append(&ch->pending, data, len) != 0) {
    if (ch->call) wsman_on_channel_gone(ch->call, WSMAN_BAD_RESPONSE);
    return;
  }
  flush_pending(c, ch);
}

void channel_close(struct cira_conn *c, struct cira_channel *ch) {
  if (!ch->open) {
    ch->closing = true; /* sent when the confirmation (or failure) arrives */
    return;
  }
  if (!ch->close_sent) {
    dmt_apf_put_channel_close(&c->out, ch->peer_id);
    ch->close_sent = true;
    conn_flush(c);
  }
  /* Kept until the device's own CHANNEL_CLOSE so late data finds a known id. */
}

void channel_on_confirm(struct cira_conn *c, uint32_t id, uint32_t peer_id, uint32_t window) {
  struct cira_channel *ch = find(c, id);
  if (!ch || ch->open) return;
  ch->open = true;
  ch->peer_id = peer_id;
  ch->send_window = window;
  if (ch->closing || !ch->call) {
    channel_close(c, ch);
    return;
  }
  wsman_on_channel_open(ch->call);
}

void channel_on_failure(struct cira_conn *c, uint32_t id) {
  struct cira_channel *ch = find(c, id);
  if (!ch) return;
  if (ch->call) wsman_on_channel_gone(ch->call, WSMAN_REFUSED);
  unlink_free(c, ch);
}

void channel_on_data(struct cira_conn *c, uint32_t id, const uint8_t *data, uint32_t len) {
  struct cira_channel *ch = find(c, id);
  if (!ch || !ch->open) return;
  if ((uint64_t)ch->unacked + len > c->srv->set.window) {
    c->srv->count.protocol_errors++;
    conn_close(c, DMT_APF_DISC_PROTOCOL_ERROR, "channel data beyond the advertised window");
    return;
  }
  ch->unacked += len;
  if (ch->unacked > c->srv->set.window / 2) {
    dmt_apf_put_window_adjust(&c->out, ch->peer_id, ch->unacked);
    ch->unacked = 0;
    conn_flush(c);
  }
  if (!ch->call) return; /* answer to an abandoned call: consumed and dropped */
  size_t used = 0;
  int rc = dmt_http_parse(&ch->http, data, len, &used);
  if (rc < 0) {
    DMT_WARN(&c->srv->log, "wsman_http_error", "guid=%s error=\"%s\"", c->guid, dmt_http_strerror(rc));
    wsman_on_channel_gone(ch->call, WSMAN_BAD_RESPONSE);
    return;
  }
  if (rc == DMT_HTTP_DONE) wsman_on_response(ch->call, &ch->http);
}

void channel_on_window(struct cira_conn *c, uint32_t id, uint32_t bytes) {
  struct cira_channel *ch = find(c, id);
  if (!ch) return;
  uint64_t w = (uint64_t)ch->send_window + bytes;
  ch->send_window = w > UINT32_MAX ? UINT32_MAX : (uint32_t)w;
  flush_pending(c, ch);
}

void channel_on_close(struct cira_conn *c, uint32_t id) {
  struct cira_channel *ch = find(c, id);
  if (!ch) return;
  if (!ch->close_sent && ch->open) {
    dmt_apf_put_channel_close(&c->out, ch->peer_id);
    conn_flush(c);
  }
  if (ch->call) {
    /* A response framed by connection close (no length) completes here. */
    if (dmt_http_parse_eof(&ch->http) == DMT_HTTP_DONE) wsman_on_response(ch->call, &ch->http);
    else if (ch->call) wsman_on_channel_gone(ch->call, WSMAN_BAD_RESPONSE);
  }
  struct cira_channel *again = find(c, id); /* the call may have closed it */
  if (again) unlink_free(c, again);
}

void channels_abort(struct cira_conn *c) {
  while (c->channels) {
    struct cira_channel *ch = c->channels;
    if (ch->call) wsman_on_channel_gone(ch->call, WSMAN_CLOSED);
    unlink_free(c, ch);
  }
}
