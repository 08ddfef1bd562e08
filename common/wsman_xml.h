/* Internal: safe libxml2 parsing and node helpers shared by the WS-Man codec files. */
#ifndef DMT_WSMAN_XML_H
#define DMT_WSMAN_XML_H

#include <libxml/parser.h>
#include <libxml/tree.h>
#include <stddef.h>

/* Parses with network, DTD loading and entity substitution off; NULL with err set on failure. */
xmlDocPtr dmt_xml_parse(const char *xml, size_t len, char *err, size_t errlen);
/* First element child of parent with this local name (any namespace), or NULL. */
xmlNodePtr dmt_xml_child(xmlNodePtr parent, const char *local);
xmlNodePtr dmt_xml_first_element(xmlNodePtr parent);
/* Copies the node's text content into out (truncating); "" for NULL. */
void dmt_xml_text(xmlNodePtr node, char *out, size_t outlen);
/* The node's text content, malloc'd ("" for NULL). */
char *dmt_xml_text_dup(xmlNodePtr node);

#endif
