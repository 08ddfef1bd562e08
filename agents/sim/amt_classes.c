/*
 * WS-Man dispatch for the simulated AMT: finds the class in the per-area
 * tables and maps the operation (Get, Enumerate, Pull, Put, Delete, Invoke)
 * to its handlers. Unknown classes get the DestinationUnreachable fault AMT
 * answers, unsupported operations ActionNotSupported.
 */
#include <stdio.h>
#include <string.h>

#include "amt_classes.h"

#define ENUM_NS "http://schemas.xmlsoap.org/ws/2004/09/enumeration"

void amt_instance(struct dmt_buf *b, const char *cls, bool pull, const struct amt_prop *props, size_t n) {
  char uri[256];
  dmt_wsman_resource_uri(cls, uri, sizeof uri);
  const char *p = pull ? "h" : "g";
  if (pull) dmt_buf_printf(b, "<h:%s xmlns:h=\"%s\">", cls, uri);
  else dmt_buf_printf(b, "<g:%s>", cls);
  for (size_t i = 0; i < n; i++) {
    if (!props[i].value) continue;
    dmt_buf_printf(b, "<%s:%s>", p, props[i].name);
    dmt_wsman_escape(b, props[i].value);
    dmt_buf_printf(b, "</%s:%s>", p, props[i].name);
  }
  dmt_buf_printf(b, "</%s:%s>", p, cls);
}

void amt_return(struct dmt_buf *b, const char *method, int rv, const char *extra_xml) {
  dmt_buf_printf(b, "<g:%s_OUTPUT><g:ReturnValue>%d</g:ReturnValue>%s</g:%s_OUTPUT>", method, rv,
                 extra_xml ? extra_xml : "", method);
}

static const struct amt_class *find(const char *name) {
  const struct amt_class *tables[] = {amt_power_classes, amt_inventory_classes, amt_setup_classes, amt_log_classes};
  for (size_t t = 0; t < sizeof tables / sizeof tables[0]; t++)
    for (const struct amt_class *c = tables[t]; c->name; c++)
      if (!strcmp(c->name, name)) return c;
  return NULL;
}

void amt_dispatch(struct sim_device *d, const struct dmt_wsman_request *w, struct dmt_buf *body, struct amt_fault *f) {
  const struct amt_class *c = find(w->class_name);
  if (!c) {
    f->subcode = "b:DestinationUnreachable";
    f->reason = "No route can be determined to reach the destination role defined by the WS-Addressing To.";
    return;
  }
  switch (w->op) {
    case DMT_WSMAN_OP_GET:
      if (c->instances) {
        c->instances(d, body, false);
        return;
      }
      break;
    case DMT_WSMAN_OP_ENUMERATE:
      if (c->instances) {
        dmt_buf_printf(body, "<EnumerateResponse xmlns=\"" ENUM_NS "\"><EnumerationContext>%02X000000-0000-0000-"
                             "0000-%012lX</EnumerationContext></EnumerateResponse>",
                       (unsigned)(d->index & 0xff), d->wsman_seq);
        return;
      }
      break;
    case DMT_WSMAN_OP_PULL:
      if (c->instances) {
        dmt_buf_printf(body, "<PullResponse xmlns=\"" ENUM_NS "\"><Items>");
        c->instances(d, body, true);
        dmt_buf_printf(body, "</Items><EndOfSequence></EndOfSequence></PullResponse>");
        return;
      }
      break;
    case DMT_WSMAN_OP_PUT:
      if (c->put) {
        c->put(d, w, body, f);
        return;
      }
      break;
    case DMT_WSMAN_OP_DELETE:
      if (c->del) {
        c->del(d, w, body, f);
        return;
      }
      break;
    case DMT_WSMAN_OP_INVOKE:
      if (c->invoke) {
        c->invoke(d, w, body, f);
        return;
      }
      break;
    default:
      break;
  }
  f->subcode = "b:ActionNotSupported";
  f->reason = "The action is not supported by the service.";
}
