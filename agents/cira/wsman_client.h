/*
 * WS-Man client over APF channels: one channel per HTTP exchange (open,
 * request, response, close, as Console/gwm do), Digest with a cached
 * challenge and a per-device nc counter, the 401 + Connection: close retry on
 * a fresh channel, a per-device limit on calls in flight, and a deadline on
 * every call (DMT has none).
 */
#ifndef DMT_CIRA_WSMAN_CLIENT_H
#define DMT_CIRA_WSMAN_CLIENT_H

#include <msgpack.h>

#include "cira.h"
#include "dmt/wsman.h"

enum wsman_error {
  WSMAN_OK = 0,
  WSMAN_TIMEOUT,      /* no answer before the deadline */
  WSMAN_CLOSED,       /* the device's connection went away */
  WSMAN_AUTH,         /* AMT refused our credentials 4 times */
  WSMAN_REFUSED,      /* the device refused the channel */
  WSMAN_BAD_RESPONSE, /* unparseable HTTP or SOAP, or RelatesTo mismatch */
  WSMAN_FAULT,        /* a SOAP fault (details in resp) */
};

struct wsman_call;
typedef void (*wsman_done_fn)(struct wsman_call *call, void *ud);

struct wsman_call {
  struct cira_conn *conn;
  struct dmt_buf request;   /* SOAP envelope */
  char message_id[24];
  uint64_t deadline_ms;
  unsigned attempts;
  struct dmt_timer timer;
  struct cira_channel *ch;
  wsman_done_fn done;
  void *ud;
  bool finished;
  /* result */
  enum wsman_error error;
  int http_status;
  struct dmt_wsman_response resp;
  msgpack_unpacked tree;
  bool have_tree;
  struct wsman_call *next;  /* device queue */
};

/* A fresh message id for the device; build the envelope with it, then start the call. */
const char *wsman_next_id(struct cira_conn *c, char out[24]);
/* Takes a reference on c; done runs exactly once (possibly after c closed). */
struct wsman_call *wsman_start(struct cira_conn *c, struct dmt_buf *envelope, const char *message_id,
                               uint64_t deadline_ms, wsman_done_fn done, void *ud);
void wsman_free(struct wsman_call *call);
/* The parsed {"Header","Body"} tree of a successful call, or NULL. */
const msgpack_object *wsman_tree(const struct wsman_call *call);
const msgpack_object *wsman_body(const struct wsman_call *call);

/* Channel callbacks (apf_channel.c -> here). */
void wsman_on_channel_open(struct wsman_call *call);
void wsman_on_response(struct wsman_call *call, struct dmt_http_parser *http);
void wsman_on_channel_gone(struct wsman_call *call, enum wsman_error why);
/* Fails every queued and in-flight call of a closing connection. */
void wsman_abort_all(struct cira_conn *c);

#endif
