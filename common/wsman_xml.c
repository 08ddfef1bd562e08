/*
 * Safe libxml2 use for WS-Man (see wsman_xml.h). The parser options matter:
 * no XML_PARSE_NOENT (entities stay unexpanded, so no billion laughs), no
 * DTD loading, no network, and libxml2's own huge-input guard left on.
 */
#include "wsman_xml.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dmt/wsman.h"

static pthread_once_t init_once = PTHREAD_ONCE_INIT;

static void init_libxml(void) { xmlInitParser(); }

void dmt_wsman_init(void) { pthread_once(&init_once, init_libxml); }

xmlDocPtr dmt_xml_parse(const char *xml, size_t len, char *err, size_t errlen) {
  dmt_wsman_init();
  if (len > DMT_WSMAN_MAX_XML) {
    snprintf(err, errlen, "XML document larger than %u bytes", DMT_WSMAN_MAX_XML);
    return NULL;
  }
  xmlParserCtxtPtr ctx = xmlNewParserCtxt();
  if (!ctx) {
    snprintf(err, errlen, "out of memory");
    return NULL;
  }
  int opts = XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING | XML_PARSE_NOCDATA;
  xmlDocPtr doc = xmlCtxtReadMemory(ctx, xml, (int)len, "wsman.xml", NULL, opts);
  if (!doc || !ctx->wellFormed) {
    const xmlError *e = xmlCtxtGetLastError(ctx);
    snprintf(err, errlen, "malformed XML%s%s", e && e->message ? ": " : "", e && e->message ? e->message : "");
    err[strcspn(err, "\n")] = '\0';
    if (doc) xmlFreeDoc(doc);
    doc = NULL;
  } else if (doc->intSubset || doc->extSubset) {
    snprintf(err, errlen, "DTDs are not allowed in WS-Man messages");
    xmlFreeDoc(doc);
    doc = NULL;
  }
  xmlFreeParserCtxt(ctx);
  return doc;
}

xmlNodePtr dmt_xml_first_element(xmlNodePtr parent) {
  for (xmlNodePtr n = parent ? parent->children : NULL; n; n = n->next)
    if (n->type == XML_ELEMENT_NODE) return n;
  return NULL;
}

xmlNodePtr dmt_xml_child(xmlNodePtr parent, const char *local) {
  for (xmlNodePtr n = parent ? parent->children : NULL; n; n = n->next)
    if (n->type == XML_ELEMENT_NODE && !strcmp((const char *)n->name, local)) return n;
  return NULL;
}

void dmt_xml_text(xmlNodePtr node, char *out, size_t outlen) {
  out[0] = '\0';
  if (!node) return;
  xmlChar *t = xmlNodeGetContent(node);
  if (t) snprintf(out, outlen, "%s", (const char *)t);
  xmlFree(t);
}

char *dmt_xml_text_dup(xmlNodePtr node) {
  xmlChar *t = node ? xmlNodeGetContent(node) : NULL;
  char *s = strdup(t ? (const char *)t : "");
  xmlFree(t);
  return s;
}
