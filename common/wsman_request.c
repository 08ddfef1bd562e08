/*
 * WS-Man request envelopes, byte-compatible with DMT's wsman-messages
 * (../shared/reference/rps-activation.md §1.6): fixed namespace prefixes, the
 * header elements in DMT's order, method inputs as <h:Method_INPUT>.
 */
#include <stdio.h>
#include <string.h>

#include "dmt/wsman.h"

int dmt_wsman_resource_uri(const char *class_name, char *out, size_t outlen) {
  const char *ns = !strncmp(class_name, "AMT_", 4)   ? DMT_WSMAN_NS_AMT
                   : !strncmp(class_name, "CIM_", 4) ? DMT_WSMAN_NS_CIM
                   : !strncmp(class_name, "IPS_", 4) ? DMT_WSMAN_NS_IPS
                                                     : NULL;
  if (!ns) return -1;
  int n = snprintf(out, outlen, "%s%s", ns, class_name);
  return (n < 0 || (size_t)n >= outlen) ? -1 : 0;
}

int dmt_wsman_escape(struct dmt_buf *out, const char *s) {
  for (; s && *s; s++) {
    const char *rep = NULL;
    switch (*s) {
      case '&': rep = "&amp;"; break;
      case '<': rep = "&lt;"; break;
      case '>': rep = "&gt;"; break;
      case '"': rep = "&quot;"; break;
      case '\'': rep = "&apos;"; break;
    }
    if (rep ? dmt_buf_append(out, rep, strlen(rep)) : dmt_buf_append_u8(out, (uint8_t)*s)) return -1;
  }
  return 0;
}

static int header(struct dmt_buf *out, const char *action, const char *uri, const char *message_id,
                  const struct dmt_wsman_selector *sel, size_t nsel) {
  int rc = dmt_buf_printf(
      out,
      "<?xml version=\"1.0\" encoding=\"utf-8\"?><Envelope xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" "
      "xmlns:xsd=\"http://www.w3.org/2001/XMLSchema\" xmlns:a=\"http://schemas.xmlsoap.org/ws/2004/08/addressing\" "
      "xmlns:w=\"http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd\" xmlns=\"http://www.w3.org/2003/05/soap-envelope\">"
      "<Header><a:Action>%s</a:Action><a:To>/wsman</a:To><w:ResourceURI>%s</w:ResourceURI>"
      "<a:MessageID>%s</a:MessageID><a:ReplyTo><a:Address>" DMT_WSMAN_ADDRESS_ANONYMOUS
      "</a:Address></a:ReplyTo><w:OperationTimeout>PT60S</w:OperationTimeout>",
      action, uri, message_id);
  if (rc) return rc;
  if (nsel) {
    if (dmt_buf_printf(out, "<w:SelectorSet>")) return -1;
    for (size_t i = 0; i < nsel; i++) {
      if (dmt_buf_printf(out, "<w:Selector Name=\"%s\">", sel[i].name) || dmt_wsman_escape(out, sel[i].value) ||
          dmt_buf_printf(out, "</w:Selector>"))
        return -1;
    }
    if (dmt_buf_printf(out, "</w:SelectorSet>")) return -1;
  }
  return dmt_buf_printf(out, "</Header>");
}

int dmt_wsman_epr(struct dmt_buf *out, const char *cls, const struct dmt_wsman_selector *sel, size_t nsel) {
  char uri[256];
  if (dmt_wsman_resource_uri(cls, uri, sizeof uri)) return -1;
  if (dmt_buf_printf(out,
                     "<a:Address>" DMT_WSMAN_ADDRESS_ANONYMOUS "</a:Address><a:ReferenceParameters>"
                     "<w:ResourceURI>%s</w:ResourceURI><w:SelectorSet>",
                     uri))
    return -1;
  for (size_t i = 0; i < nsel; i++) {
    if (dmt_buf_printf(out, "<w:Selector Name=\"%s\">", sel[i].name) || dmt_wsman_escape(out, sel[i].value) ||
        dmt_buf_printf(out, "</w:Selector>"))
      return -1;
  }
  return dmt_buf_printf(out, "</w:SelectorSet></a:ReferenceParameters>");
}

int dmt_wsman_selector_epr(struct dmt_buf *out, const char *name, const char *cls,
                           const struct dmt_wsman_selector *sel, size_t nsel) {
  if (dmt_buf_printf(out, "<w:Selector Name=\"%s\"><a:EndpointReference>", name) ||
      dmt_wsman_epr(out, cls, sel, nsel))
    return -1;
  return dmt_buf_printf(out, "</a:EndpointReference></w:Selector>");
}

static int params_xml(struct dmt_buf *out, const struct dmt_wsman_param *p, size_t n) {
  for (size_t i = 0; i < n; i++) {
    if (dmt_buf_printf(out, "<h:%s>", p[i].name)) return -1;
    if (p[i].raw_xml ? dmt_buf_append(out, p[i].value, strlen(p[i].value)) : dmt_wsman_escape(out, p[i].value))
      return -1;
    if (dmt_buf_printf(out, "</h:%s>", p[i].name)) return -1;
  }
  return 0;
}

static int simple(struct dmt_buf *out, const char *action, const char *cls, const char *message_id,
                  const struct dmt_wsman_selector *sel, size_t nsel, const char *body) {
  char uri[256];
  if (dmt_wsman_resource_uri(cls, uri, sizeof uri)) return -1;
  if (header(out, action, uri, message_id, sel, nsel)) return -1;
  return dmt_buf_printf(out, "%s</Envelope>", body);
}

int dmt_wsman_get(struct dmt_buf *out, const char *cls, const char *message_id,
                  const struct dmt_wsman_selector *sel, size_t nsel) {
  return simple(out, DMT_WSMAN_ACTION_GET, cls, message_id, sel, nsel, "<Body></Body>");
}

int dmt_wsman_delete(struct dmt_buf *out, const char *cls, const char *message_id,
                     const struct dmt_wsman_selector *sel, size_t nsel) {
  return simple(out, DMT_WSMAN_ACTION_DELETE, cls, message_id, sel, nsel, "<Body></Body>");
}

int dmt_wsman_enumerate(struct dmt_buf *out, const char *cls, const char *message_id) {
  return simple(out, DMT_WSMAN_ACTION_ENUMERATE, cls, message_id, NULL, 0,
                "<Body><Enumerate xmlns=\"http://schemas.xmlsoap.org/ws/2004/09/enumeration\" /></Body>");
}

int dmt_wsman_pull(struct dmt_buf *out, const char *cls, const char *message_id, const char *context,
                   unsigned max_elements) {
  char uri[256];
  if (dmt_wsman_resource_uri(cls, uri, sizeof uri) || header(out, DMT_WSMAN_ACTION_PULL, uri, message_id, NULL, 0))
    return -1;
  if (dmt_buf_printf(out, "<Body><Pull xmlns=\"http://schemas.xmlsoap.org/ws/2004/09/enumeration\">"
                          "<EnumerationContext>") ||
      dmt_wsman_escape(out, context))
    return -1;
  return dmt_buf_printf(out, "</EnumerationContext><MaxElements>%u</MaxElements><MaxCharacters>99999"
                             "</MaxCharacters></Pull></Body></Envelope>",
                        max_elements ? max_elements : 999);
}

int dmt_wsman_put(struct dmt_buf *out, const char *cls, const char *message_id,
                  const struct dmt_wsman_selector *sel, size_t nsel, const struct dmt_wsman_param *props,
                  size_t nprops) {
  char uri[256];
  if (dmt_wsman_resource_uri(cls, uri, sizeof uri) || header(out, DMT_WSMAN_ACTION_PUT, uri, message_id, sel, nsel))
    return -1;
  if (dmt_buf_printf(out, "<Body><h:%s xmlns:h=\"%s\">", cls, uri) || params_xml(out, props, nprops)) return -1;
  return dmt_buf_printf(out, "</h:%s></Body></Envelope>", cls);
}

int dmt_wsman_put_xml_selectors(struct dmt_buf *out, const char *cls, const char *message_id,
                                const char *selectors_xml, const struct dmt_wsman_param *props, size_t nprops) {
  char uri[256];
  if (dmt_wsman_resource_uri(cls, uri, sizeof uri) || header(out, DMT_WSMAN_ACTION_PUT, uri, message_id, NULL, 0))
    return -1;
  /* header() closed the Header: reopen it for the selector set */
  out->len -= strlen("</Header>");
  if (dmt_buf_printf(out, "<w:SelectorSet>%s</w:SelectorSet></Header><Body><h:%s xmlns:h=\"%s\">", selectors_xml, cls,
                     uri) ||
      params_xml(out, props, nprops))
    return -1;
  return dmt_buf_printf(out, "</h:%s></Body></Envelope>", cls);
}

int dmt_wsman_invoke(struct dmt_buf *out, const char *cls, const char *method, const char *message_id,
                     const struct dmt_wsman_selector *sel, size_t nsel, const struct dmt_wsman_param *params,
                     size_t nparams) {
  char uri[256], action[384];
  if (dmt_wsman_resource_uri(cls, uri, sizeof uri)) return -1;
  snprintf(action, sizeof action, "%s/%s", uri, method);
  if (header(out, action, uri, message_id, sel, nsel)) return -1;
  if (dmt_buf_printf(out, "<Body><h:%s_INPUT xmlns:h=\"%s\">", method, uri) || params_xml(out, params, nparams))
    return -1;
  return dmt_buf_printf(out, "</h:%s_INPUT></Body></Envelope>", method);
}
