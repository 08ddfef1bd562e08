/*
 * WS-Man response parsing (see dmt/wsman.h). The msgpack tree follows what
 * DMT's xml2js produces with explicitArray:false, stripPrefix, parseNumbers
 * and parseBooleans, because the REST bridge hands these trees to API clients
 * that were written against DMT's JSON.
 */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "dmt/wsman.h"
#include "wsman_xml.h"

#define MAX_TREE_DEPTH 24

static bool is_blank(const char *s) {
  for (; *s; s++)
    if (!isspace((unsigned char)*s)) return false;
  return true;
}

/* xml2js parseNumbers (JavaScript's !isNaN) and parseBooleans, restricted to values JSON can carry. */
static void pack_scalar(msgpack_packer *pk, const char *s) {
  size_t n = strlen(s);
  if (!strcasecmp(s, "true") || !strcasecmp(s, "false")) {
    if (tolower((unsigned char)s[0]) == 't') msgpack_pack_true(pk);
    else msgpack_pack_false(pk);
    return;
  }
  if (n > 0 && n < 32 && !is_blank(s)) {
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    while (isspace((unsigned char)*end)) end++;
    if (!errno && !*end && (isdigit((unsigned char)s[0]) || s[0] == '-' || s[0] == '+' || isspace((unsigned char)s[0]))) {
      msgpack_pack_int64(pk, v);
      return;
    }
    errno = 0;
    double d = strtod(s, &end);
    while (isspace((unsigned char)*end)) end++;
    /* strtod also accepts hex floats, "inf" and "nan": keep those as text. */
    bool plain = strspn(s, " \t\r\n+-0123456789.eE") == n;
    if (!errno && !*end && plain && isfinite(d)) {
      msgpack_pack_double(pk, d);
      return;
    }
  }
  msgpack_pack_str_with_body(pk, s, n);
}

static void pack_node(msgpack_packer *pk, xmlNodePtr node, int depth);

/* An element with element children becomes a map; repeated names become arrays in first-seen order. */
static void pack_children(msgpack_packer *pk, xmlNodePtr node, int depth) {
  const char *names[256];
  size_t nnames = 0;
  bool text = false;
  for (xmlNodePtr c = node->children; c; c = c->next) {
    if (c->type == XML_TEXT_NODE && c->content && !is_blank((const char *)c->content)) text = true;
    if (c->type != XML_ELEMENT_NODE) continue;
    bool seen = false;
    for (size_t i = 0; i < nnames && !seen; i++) seen = !strcmp(names[i], (const char *)c->name);
    if (!seen && nnames < 256) names[nnames++] = (const char *)c->name;
  }
  msgpack_pack_map(pk, nnames + (text ? 1 : 0));
  if (text) { /* xml2js puts mixed text under "_" */
    msgpack_pack_str_with_body(pk, "_", 1);
    char *t = dmt_xml_text_dup(node);
    msgpack_pack_str_with_body(pk, t, strlen(t));
    free(t);
  }
  for (size_t i = 0; i < nnames; i++) {
    size_t count = 0;
    for (xmlNodePtr c = node->children; c; c = c->next)
      if (c->type == XML_ELEMENT_NODE && !strcmp((const char *)c->name, names[i])) count++;
    msgpack_pack_str_with_body(pk, names[i], strlen(names[i]));
    if (count > 1) msgpack_pack_array(pk, count);
    for (xmlNodePtr c = node->children; c; c = c->next)
      if (c->type == XML_ELEMENT_NODE && !strcmp((const char *)c->name, names[i])) pack_node(pk, c, depth + 1);
  }
}

static void pack_node(msgpack_packer *pk, xmlNodePtr node, int depth) {
  if (depth > MAX_TREE_DEPTH) {
    msgpack_pack_nil(pk);
    return;
  }
  if (dmt_xml_first_element(node)) {
    pack_children(pk, node, depth);
    return;
  }
  char *t = dmt_xml_text_dup(node);
  if (*t) pack_scalar(pk, t);
  else msgpack_pack_str_with_body(pk, "", 0);
  free(t);
}

static int tree_depth(xmlNodePtr n) {
  int max = 0;
  for (xmlNodePtr c = n ? n->children : NULL; c; c = c->next) {
    if (c->type != XML_ELEMENT_NODE) continue;
    int d = tree_depth(c);
    if (d > max) max = d;
    if (max > MAX_TREE_DEPTH) break;
  }
  return max + 1;
}

int dmt_wsman_parse_response(const char *xml, size_t len, struct dmt_wsman_response *r, char *err,
                             size_t errlen) {
  memset(r, 0, sizeof *r);
  msgpack_sbuffer_init(&r->tree);
  xmlDocPtr doc = dmt_xml_parse(xml, len, err, errlen);
  if (!doc) return -1;
  int rc = -1;
  xmlNodePtr env = xmlDocGetRootElement(doc);
  xmlNodePtr hdr = dmt_xml_child(env, "Header"), body = dmt_xml_child(env, "Body");
  if (!env || strcmp((const char *)env->name, "Envelope") || !body) {
    snprintf(err, errlen, "not a SOAP envelope");
    goto out;
  }
  if (tree_depth(env) > MAX_TREE_DEPTH) {
    snprintf(err, errlen, "XML nested deeper than %d levels", MAX_TREE_DEPTH);
    goto out;
  }
  dmt_xml_text(dmt_xml_child(hdr, "Action"), r->action, sizeof r->action);
  dmt_xml_text(dmt_xml_child(hdr, "MessageID"), r->message_id, sizeof r->message_id);
  dmt_xml_text(dmt_xml_child(hdr, "RelatesTo"), r->relates_to, sizeof r->relates_to);
  dmt_xml_text(dmt_xml_child(hdr, "ResourceURI"), r->resource_uri, sizeof r->resource_uri);
  xmlNodePtr fault = dmt_xml_child(body, "Fault");
  if (fault) {
    r->is_fault = true;
    xmlNodePtr code = dmt_xml_child(fault, "Code");
    dmt_xml_text(dmt_xml_child(code, "Value"), r->fault_code, sizeof r->fault_code);
    dmt_xml_text(dmt_xml_child(dmt_xml_child(code, "Subcode"), "Value"), r->fault_subcode, sizeof r->fault_subcode);
    dmt_xml_text(dmt_xml_child(dmt_xml_child(fault, "Reason"), "Text"), r->fault_reason, sizeof r->fault_reason);
  }
  xmlNodePtr en = dmt_xml_child(body, "EnumerateResponse");
  if (en) dmt_xml_text(dmt_xml_child(en, "EnumerationContext"), r->enumeration_context, sizeof r->enumeration_context);
  xmlNodePtr pull = dmt_xml_child(body, "PullResponse");
  if (pull) {
    dmt_xml_text(dmt_xml_child(pull, "EnumerationContext"), r->enumeration_context, sizeof r->enumeration_context);
    r->end_of_sequence = dmt_xml_child(pull, "EndOfSequence") != NULL;
  }
  msgpack_packer pk;
  msgpack_packer_init(&pk, &r->tree, msgpack_sbuffer_write);
  msgpack_pack_map(&pk, hdr ? 2 : 1);
  if (hdr) {
    msgpack_pack_str_with_body(&pk, "Header", 6);
    pack_node(&pk, hdr, 1);
  }
  msgpack_pack_str_with_body(&pk, "Body", 4);
  pack_node(&pk, body, 1);
  rc = 0;
out:
  xmlFreeDoc(doc);
  return rc;
}

void dmt_wsman_response_free(struct dmt_wsman_response *r) { msgpack_sbuffer_destroy(&r->tree); }
