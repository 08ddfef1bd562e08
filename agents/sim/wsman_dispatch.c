/*
 * WS-Man dispatch for the simulated AMT: a table from class name to handlers
 * (one table per area, amt_*.c), and the operation semantics firmware
 * implements on top of them:
 *   Get        the instance the selectors name (the first one without selectors)
 *   Enumerate  opens a context (EnumerationContext as AMT formats it)
 *   Pull       pages through the instances, MaxElements at a time; the page
 *              that reaches the end carries EndOfSequence and closes the context
 *   Put/Delete the class's handler (instances chosen by selectors)
 *   Invoke     the class's method handler (<Method>_OUTPUT with ReturnValue)
 * An unknown class gets wsa:DestinationUnreachable, an operation a class
 * does not support wsa:ActionNotSupported, a Pull with an unknown context
 * wsen:InvalidEnumerationContext, selectors naming no instance
 * wsman:InvalidSelectors, all with HTTP 400 as AMT answers faults.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim.h"

#define ENUM_NS "http://schemas.xmlsoap.org/ws/2004/09/enumeration"
#define MAX_OPEN_ENUMERATIONS 8
#define DEFAULT_MAX_ELEMENTS 1

/* ---- the class table ---- */

static const struct amt_class *const *tables(size_t *n) {
  static const struct amt_class *const t[] = {amt_power_classes,  amt_inventory_classes,     amt_network_classes,
                                             amt_setup_classes,  amt_cert_classes,          amt_remote_access_classes,
                                             amt_log_classes};
  *n = sizeof t / sizeof t[0];
  return t;
}

static const struct amt_class *class_at(size_t i) {
  size_t nt;
  const struct amt_class *const *t = tables(&nt);
  for (size_t k = 0; k < nt; k++)
    for (const struct amt_class *c = t[k]; c->name; c++)
      if (i-- == 0) return c;
  return NULL;
}

size_t amt_class_count(void) {
  size_t n = 0;
  while (class_at(n)) n++;
  return n;
}

const char *amt_class_name(size_t i) {
  const struct amt_class *c = class_at(i);
  return c ? c->name : "unknown";
}

static const struct amt_class *find_class(const char *name, size_t *index) {
  size_t nt, i = 0;
  const struct amt_class *const *t = tables(&nt);
  for (size_t k = 0; k < nt; k++)
    for (const struct amt_class *c = t[k]; c->name; c++, i++)
      if (!strcmp(c->name, name)) {
        *index = i;
        return c;
      }
  *index = SIM_MAX_CLASSES;
  return NULL;
}

/* ---- helpers for the class handlers ---- */

static bool selectors_match(const struct dmt_wsman_request *w, const struct amt_prop *props, size_t n) {
  /* Every selector that names a property of the instance must equal it; others (e.g. SystemName on
   * classes that do not report it) are ignored, as firmware does. */
  for (size_t s = 0; s < w->nselectors; s++)
    for (size_t i = 0; i < n; i++)
      if (props[i].value && props[i].name[0] != '@' && !strcmp(props[i].name, w->selectors[s].name) &&
          strcmp(props[i].value, w->selectors[s].value))
        return false;
  return true;
}

void amt_emit_instance(struct amt_emit *e, const char *cls, const struct amt_prop *props, size_t n) {
  if (e->match_selectors && !selectors_match(e->w, props, n)) return;
  size_t idx = e->index++;
  if (idx < e->first || e->written >= e->limit) return;
  e->written++;
  struct dmt_buf *b = e->b;
  const char *p = e->pull ? "h" : "g";
  if (e->pull) {
    char uri[256];
    dmt_wsman_resource_uri(cls, uri, sizeof uri);
    dmt_buf_printf(b, "<h:%s xmlns:h=\"%s\">", cls, uri);
  } else {
    dmt_buf_printf(b, "<g:%s>", cls);
  }
  for (size_t i = 0; i < n; i++) {
    if (!props[i].value) continue;
    bool raw = props[i].name[0] == '@';
    const char *name = props[i].name + raw;
    dmt_buf_printf(b, "<%s:%s>", p, name);
    if (raw) dmt_buf_append(b, props[i].value, strlen(props[i].value));
    else dmt_wsman_escape(b, props[i].value);
    dmt_buf_printf(b, "</%s:%s>", p, name);
  }
  dmt_buf_printf(b, "</%s:%s>", p, cls);
}

void amt_return(struct dmt_buf *b, const char *method, int rv, const char *extra_xml) {
  dmt_buf_printf(b, "<g:%s_OUTPUT>%s<g:ReturnValue>%d</g:ReturnValue></g:%s_OUTPUT>", method,
                 extra_xml ? extra_xml : "", rv, method);
}

void amt_epr(struct dmt_buf *b, const char *cls, const struct dmt_wsman_selector *sel, size_t nsel) {
  char uri[256];
  dmt_wsman_resource_uri(cls, uri, sizeof uri);
  dmt_buf_printf(b, "<b:Address>" DMT_WSMAN_ADDRESS_ANONYMOUS "</b:Address><b:ReferenceParameters><c:ResourceURI>%s"
                    "</c:ResourceURI><c:SelectorSet>", uri);
  for (size_t i = 0; i < nsel; i++) {
    dmt_buf_printf(b, "<c:Selector Name=\"%s\">", sel[i].name);
    dmt_wsman_escape(b, sel[i].value);
    dmt_buf_printf(b, "</c:Selector>");
  }
  dmt_buf_printf(b, "</c:SelectorSet></b:ReferenceParameters>");
}

void amt_fault_not_supported(struct amt_fault *f) {
  f->subcode = "b:ActionNotSupported";
  f->reason = "The action is not supported by the service.";
}

void amt_fault_invalid_selectors(struct amt_fault *f) {
  f->subcode = "c:InvalidSelectors";
  f->reason = "The Selectors for the resource were not valid.";
}

void amt_fault_invalid_parameter(struct amt_fault *f) {
  f->subcode = "c:InvalidParameter";
  f->reason = "An operation parameter was not valid.";
}

bool amt_param_bool(const struct dmt_wsman_request *w, const char *name, bool def) {
  const char *v = dmt_wsman_request_param(w, name);
  if (!v) return def;
  return !strcmp(v, "true") || !strcmp(v, "1");
}

long amt_param_long(const struct dmt_wsman_request *w, const char *name, long def) {
  const char *v = dmt_wsman_request_param(w, name);
  if (!v || !*v) return def;
  char *end;
  long n = strtol(v, &end, 10);
  return *end ? def : n;
}

/* ---- enumeration contexts ---- */

static void context_text(uint32_t id, char out[40]) { snprintf(out, 40, "%08X-0000-0000-0000-000000000000", id); }

static struct sim_enum_ctx *open_enum(struct sim_device *d, const struct amt_class *c) {
  struct sim_extra *x = sim_device_extra(d);
  if (!x) return NULL;
  size_t n = 0;
  struct sim_enum_ctx **last = &x->enums;
  for (struct sim_enum_ctx **pp = &x->enums; *pp; pp = &(*pp)->next) {
    n++;
    last = pp;
  }
  if (n >= MAX_OPEN_ENUMERATIONS) { /* firmware keeps a few; the oldest is dropped */
    struct sim_enum_ctx *old = *last;
    *last = NULL;
    free(old);
  }
  struct sim_enum_ctx *e = calloc(1, sizeof *e);
  if (!e) return NULL;
  e->id = ++x->next_enum_id + ((d->index & 0xff) << 24);
  e->cls = c;
  e->next = x->enums;
  x->enums = e;
  return e;
}

static struct sim_enum_ctx *find_enum(struct sim_device *d, const char *text, struct sim_enum_ctx ***link) {
  if (!d->extra) return NULL;
  for (struct sim_enum_ctx **pp = &d->extra->enums; *pp; pp = &(*pp)->next) {
    char t[40];
    context_text((*pp)->id, t);
    if (!strcmp(t, text)) {
      *link = pp;
      return *pp;
    }
  }
  return NULL;
}

static void enumerate(struct sim_device *d, const struct amt_class *c, struct dmt_buf *body, struct amt_fault *f) {
  struct sim_enum_ctx *e = open_enum(d, c);
  if (!e) {
    f->code = "a:Receiver";
    f->subcode = "c:InternalError";
    f->reason = "Out of resources.";
    return;
  }
  char t[40];
  context_text(e->id, t);
  dmt_buf_printf(body, "<EnumerateResponse xmlns=\"" ENUM_NS "\"><EnumerationContext>%s</EnumerationContext>"
                       "</EnumerateResponse>", t);
}

static void pull(struct sim_device *d, const struct dmt_wsman_request *w, const struct amt_class *c,
                 struct dmt_buf *body, struct amt_fault *f) {
  struct sim_enum_ctx **link = NULL;
  struct sim_enum_ctx *e = find_enum(d, w->enumeration_context, &link);
  if (!e || e->cls != c) {
    f->subcode = "wsen:InvalidEnumerationContext";
    f->reason = "The supplied enumeration context is invalid.";
    return;
  }
  struct amt_emit em = {.b = body, .w = w, .first = e->position,
                        .limit = w->max_elements ? w->max_elements : DEFAULT_MAX_ELEMENTS, .pull = true};
  dmt_buf_printf(body, "<PullResponse xmlns=\"" ENUM_NS "\">");
  size_t mark = dmt_buf_size(body);
  dmt_buf_printf(body, "<Items>");
  c->instances(d, &em);
  e->position += em.written;
  bool end = e->position >= em.index;
  if (em.written == 0) {
    body->len = body->off + mark; /* no items: AMT sends an empty Items element */
    dmt_buf_printf(body, "<Items></Items>");
  } else {
    dmt_buf_printf(body, "</Items>");
  }
  if (end) {
    dmt_buf_printf(body, "<EndOfSequence></EndOfSequence>");
    *link = e->next;
    free(e);
    sim_device_extra_release(d);
  } else {
    char t[40];
    context_text(e->id, t);
    dmt_buf_printf(body, "<EnumerationContext>%s</EnumerationContext>", t);
  }
  dmt_buf_printf(body, "</PullResponse>");
}

static void get(struct sim_device *d, const struct dmt_wsman_request *w, const struct amt_class *c,
                struct dmt_buf *body, struct amt_fault *f) {
  struct amt_emit em = {.b = body, .w = w, .limit = 1, .match_selectors = true};
  c->instances(d, &em);
  if (em.written == 0) {
    /* A class with no instance at all answers like an unknown resource; a selector naming none, InvalidSelectors. */
    if (w->nselectors) amt_fault_invalid_selectors(f);
    else {
      f->subcode = "b:DestinationUnreachable";
      f->reason = "No route can be determined to reach the destination role defined by the WS-Addressing To.";
    }
  }
}

void amt_dispatch(struct sim_device *d, const struct dmt_wsman_request *w, struct dmt_buf *body, struct amt_fault *f) {
  size_t index;
  const struct amt_class *c = find_class(w->class_name, &index);
  d->sim->count.wsman_by_class[index < SIM_MAX_CLASSES ? index : SIM_MAX_CLASSES]++;
  if (!c) {
    f->subcode = "b:DestinationUnreachable";
    f->reason = "No route can be determined to reach the destination role defined by the WS-Addressing To.";
    return;
  }
  switch (w->op) {
    case DMT_WSMAN_OP_GET:
      if (!c->instances) break;
      get(d, w, c, body, f);
      return;
    case DMT_WSMAN_OP_ENUMERATE:
      if (!c->instances) break;
      enumerate(d, c, body, f);
      return;
    case DMT_WSMAN_OP_PULL:
      if (!c->instances) break;
      pull(d, w, c, body, f);
      return;
    case DMT_WSMAN_OP_PUT:
      if (!c->put) break;
      c->put(d, w, body, f);
      return;
    case DMT_WSMAN_OP_DELETE:
      if (!c->del) break;
      c->del(d, w, body, f);
      return;
    case DMT_WSMAN_OP_INVOKE:
      if (!c->invoke) break;
      c->invoke(d, w, body, f);
      return;
    default:
      break;
  }
  amt_fault_not_supported(f);
}
