/*
 * The AMT side of WS-Man (see dmt/wsman.h): parse what DMT's MPS and RPS send
 * and answer in AMT's own envelope style (prefixes a:..h:, RelatesTo,
 * uuid:00000000-8086-8086-8086-... MessageIDs), so a client cannot tell the
 * simulator from firmware by the envelope.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dmt/wsman.h"
#include "wsman_xml.h"

static void set_op(struct dmt_wsman_request *req) {
  static const struct { const char *action; enum dmt_wsman_op op; } std[] = {
      {DMT_WSMAN_ACTION_GET, DMT_WSMAN_OP_GET},           {DMT_WSMAN_ACTION_PUT, DMT_WSMAN_OP_PUT},
      {DMT_WSMAN_ACTION_DELETE, DMT_WSMAN_OP_DELETE},     {DMT_WSMAN_ACTION_CREATE, DMT_WSMAN_OP_CREATE},
      {DMT_WSMAN_ACTION_ENUMERATE, DMT_WSMAN_OP_ENUMERATE}, {DMT_WSMAN_ACTION_PULL, DMT_WSMAN_OP_PULL},
  };
  for (size_t i = 0; i < sizeof std / sizeof std[0]; i++)
    if (!strcmp(req->action, std[i].action)) {
      req->op = std[i].op;
      return;
    }
  /* A method invocation's action is <resource URI>/<Method>. */
  size_t ul = strlen(req->resource_uri);
  const char *method = req->action + ul + 1;
  if (ul && !strncmp(req->action, req->resource_uri, ul) && req->action[ul] == '/' && *method &&
      !strchr(method, '/') && strlen(method) < sizeof req->method) {
    req->op = DMT_WSMAN_OP_INVOKE;
    memcpy(req->method, method, strlen(method) + 1);
  }
}

static void add_params(struct dmt_wsman_request *req, xmlNodePtr top) {
  for (xmlNodePtr c = top ? top->children : NULL; c && req->nparams < DMT_WSMAN_MAX_PARAMS; c = c->next) {
    if (c->type != XML_ELEMENT_NODE) continue;
    snprintf(req->params[req->nparams].name, sizeof req->params[0].name, "%s", (const char *)c->name);
    req->params[req->nparams].value = dmt_xml_text_dup(c);
    req->nparams++;
  }
}

int dmt_wsman_parse_request(const char *xml, size_t len, struct dmt_wsman_request *req, char *err,
                            size_t errlen) {
  memset(req, 0, sizeof *req);
  xmlDocPtr doc = dmt_xml_parse(xml, len, err, errlen);
  if (!doc) return -1;
  int rc = -1;
  xmlNodePtr env = xmlDocGetRootElement(doc);
  xmlNodePtr hdr = dmt_xml_child(env, "Header"), body = dmt_xml_child(env, "Body");
  if (!env || strcmp((const char *)env->name, "Envelope") || !hdr || !body) {
    snprintf(err, errlen, "not a SOAP envelope");
    goto out;
  }
  dmt_xml_text(dmt_xml_child(hdr, "Action"), req->action, sizeof req->action);
  dmt_xml_text(dmt_xml_child(hdr, "ResourceURI"), req->resource_uri, sizeof req->resource_uri);
  dmt_xml_text(dmt_xml_child(hdr, "MessageID"), req->message_id, sizeof req->message_id);
  if (!req->action[0] || !req->resource_uri[0]) {
    snprintf(err, errlen, "missing Action or ResourceURI");
    goto out;
  }
  const char *slash = strrchr(req->resource_uri, '/');
  snprintf(req->class_name, sizeof req->class_name, "%s", slash ? slash + 1 : req->resource_uri);
  for (xmlNodePtr s = dmt_xml_first_element(dmt_xml_child(hdr, "SelectorSet")); s && req->nselectors < DMT_WSMAN_MAX_SELECTORS;
       s = s->next) {
    if (s->type != XML_ELEMENT_NODE || strcmp((const char *)s->name, "Selector")) continue;
    xmlChar *name = xmlGetProp(s, (const xmlChar *)"Name");
    snprintf(req->selectors[req->nselectors].name, sizeof req->selectors[0].name, "%s", name ? (char *)name : "");
    xmlFree(name);
    dmt_xml_text(s, req->selectors[req->nselectors].value, sizeof req->selectors[0].value);
    req->nselectors++;
  }
  set_op(req);
  if (req->op == DMT_WSMAN_OP_PULL) {
    xmlNodePtr pull = dmt_xml_child(body, "Pull");
    dmt_xml_text(dmt_xml_child(pull, "EnumerationContext"), req->enumeration_context, sizeof req->enumeration_context);
    char max[16];
    dmt_xml_text(dmt_xml_child(pull, "MaxElements"), max, sizeof max);
    req->max_elements = (unsigned)strtoul(max, NULL, 10);
  } else if (req->op == DMT_WSMAN_OP_INVOKE || req->op == DMT_WSMAN_OP_PUT || req->op == DMT_WSMAN_OP_CREATE) {
    add_params(req, dmt_xml_first_element(body));
  }
  rc = 0;
out:
  xmlFreeDoc(doc);
  return rc;
}

void dmt_wsman_request_free(struct dmt_wsman_request *req) {
  for (size_t i = 0; i < req->nparams; i++) free(req->params[i].value);
  req->nparams = 0;
}

const char *dmt_wsman_request_param(const struct dmt_wsman_request *req, const char *name) {
  for (size_t i = 0; i < req->nparams; i++)
    if (!strcmp(req->params[i].name, name)) return req->params[i].value;
  return NULL;
}

size_t dmt_wsman_request_params(const struct dmt_wsman_request *req, const char *name, const char **out,
                                size_t max) {
  size_t n = 0;
  for (size_t i = 0; i < req->nparams && n < max; i++)
    if (!strcmp(req->params[i].name, name)) out[n++] = req->params[i].value;
  return n;
}

const char *dmt_wsman_request_selector(const struct dmt_wsman_request *req, const char *name) {
  for (size_t i = 0; i < req->nselectors; i++)
    if (!strcmp(req->selectors[i].name, name)) return req->selectors[i].value;
  return NULL;
}

static const char *response_action(const struct dmt_wsman_request *req, char *buf, size_t n) {
  switch (req->op) {
    case DMT_WSMAN_OP_GET: return "http://schemas.xmlsoap.org/ws/2004/09/transfer/GetResponse";
    case DMT_WSMAN_OP_PUT: return "http://schemas.xmlsoap.org/ws/2004/09/transfer/PutResponse";
    case DMT_WSMAN_OP_DELETE: return "http://schemas.xmlsoap.org/ws/2004/09/transfer/DeleteResponse";
    case DMT_WSMAN_OP_CREATE: return "http://schemas.xmlsoap.org/ws/2004/09/transfer/CreateResponse";
    case DMT_WSMAN_OP_ENUMERATE: return "http://schemas.xmlsoap.org/ws/2004/09/enumeration/EnumerateResponse";
    case DMT_WSMAN_OP_PULL: return "http://schemas.xmlsoap.org/ws/2004/09/enumeration/PullResponse";
    default: snprintf(buf, n, "%sResponse", req->action); return buf;
  }
}

static int envelope(struct dmt_buf *out, const struct dmt_wsman_request *req, unsigned long seq, const char *action,
                    const char *body_xml) {
  if (dmt_buf_printf(out,
                     "<?xml version=\"1.0\" encoding=\"UTF-8\"?><a:Envelope "
                     "xmlns:a=\"http://www.w3.org/2003/05/soap-envelope\" "
                     "xmlns:b=\"http://schemas.xmlsoap.org/ws/2004/08/addressing\" "
                     "xmlns:c=\"http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd\" "
                     "xmlns:d=\"http://schemas.xmlsoap.org/ws/2005/02/trust\" "
                     "xmlns:e=\"http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd\" "
                     "xmlns:f=\"http://schemas.dmtf.org/wbem/wsman/1/cimbinding.xsd\" xmlns:g=\"") ||
      dmt_wsman_escape(out, req->resource_uri) ||
      dmt_buf_printf(out,
                     "\" xmlns:h=\"http://schemas.dmtf.org/wbem/wscim/1/common\" "
                     "xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\"><a:Header><b:To>" DMT_WSMAN_ADDRESS_ANONYMOUS
                     "</b:To><b:RelatesTo>") ||
      dmt_wsman_escape(out, req->message_id) ||
      dmt_buf_printf(out, "</b:RelatesTo><b:Action a:mustUnderstand=\"true\">%s</b:Action>"
                          "<b:MessageID>uuid:00000000-8086-8086-8086-%012lX</b:MessageID><c:ResourceURI>",
                     action, seq) ||
      dmt_wsman_escape(out, req->resource_uri) ||
      dmt_buf_printf(out, "</c:ResourceURI></a:Header><a:Body>%s</a:Body></a:Envelope>", body_xml))
    return -1;
  return 0;
}

int dmt_wsman_build_response(struct dmt_buf *out, const struct dmt_wsman_request *req, unsigned long seq,
                             const char *body_xml) {
  char buf[384];
  return envelope(out, req, seq, response_action(req, buf, sizeof buf), body_xml);
}

int dmt_wsman_build_fault(struct dmt_buf *out, const struct dmt_wsman_request *req, unsigned long seq,
                          const char *code, const char *subcode, const char *reason) {
  struct dmt_buf body;
  dmt_buf_init(&body, 0);
  int rc = dmt_buf_printf(&body, "<a:Fault><a:Code><a:Value>%s</a:Value><a:Subcode><a:Value>%s</a:Value></a:Subcode>"
                                 "</a:Code><a:Reason><a:Text xml:lang=\"en-US\">", code, subcode) ||
           dmt_wsman_escape(&body, reason) ||
           dmt_buf_printf(&body, "</a:Text></a:Reason><a:Detail></a:Detail></a:Fault>") ||
           dmt_buf_append_u8(&body, 0) ||
           envelope(out, req, seq, "http://schemas.xmlsoap.org/ws/2004/08/addressing/fault", (const char *)dmt_buf_ptr(&body));
  dmt_buf_free(&body);
  return rc ? -1 : 0;
}
