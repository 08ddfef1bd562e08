/*
 * WS-Management (SOAP 1.2 over HTTP) envelopes as DMT and AMT exchange them.
 * Client side (terminator, RPS agent): build Get/Put/Delete/Enumerate/Pull/
 * Invoke requests exactly as DMT's wsman-messages does, and parse responses
 * (header fields, SOAP faults, enumeration state) with the body turned into a
 * msgpack tree shaped like DMT's JSON (xml2js with explicitArray:false,
 * namespace prefixes stripped, attributes dropped, numbers and booleans
 * converted). Server side (the simulator is the AMT): parse requests and
 * build AMT-style responses and faults.
 *
 * XML is parsed by libxml2 with network access, DTDs and entity expansion
 * off and a size cap, so hostile documents cannot reach out or blow up.
 * Callers must run xmlInitParser() once at start-up (dmt_wsman_init()).
 * Pure: no I/O.
 */
#ifndef DMT_WSMAN_H
#define DMT_WSMAN_H

#include <msgpack.h>
#include <stdbool.h>
#include <stddef.h>

#include "dmt/buf.h"

#define DMT_WSMAN_NS_AMT "http://intel.com/wbem/wscim/1/amt-schema/1/"
#define DMT_WSMAN_NS_CIM "http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/"
#define DMT_WSMAN_NS_IPS "http://intel.com/wbem/wscim/1/ips-schema/1/"
#define DMT_WSMAN_ACTION_GET "http://schemas.xmlsoap.org/ws/2004/09/transfer/Get"
#define DMT_WSMAN_ACTION_PUT "http://schemas.xmlsoap.org/ws/2004/09/transfer/Put"
#define DMT_WSMAN_ACTION_DELETE "http://schemas.xmlsoap.org/ws/2004/09/transfer/Delete"
#define DMT_WSMAN_ACTION_CREATE "http://schemas.xmlsoap.org/ws/2004/09/transfer/Create"
#define DMT_WSMAN_ACTION_ENUMERATE "http://schemas.xmlsoap.org/ws/2004/09/enumeration/Enumerate"
#define DMT_WSMAN_ACTION_PULL "http://schemas.xmlsoap.org/ws/2004/09/enumeration/Pull"
#define DMT_WSMAN_ADDRESS_ANONYMOUS "http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous"
#define DMT_WSMAN_MAX_XML (4u << 20)

/* Initialises libxml2 (idempotent, thread-safe). */
void dmt_wsman_init(void);

/* "AMT_GeneralSettings" -> its full resource URI by prefix (AMT_, CIM_, IPS_); -1 if unknown prefix. */
int dmt_wsman_resource_uri(const char *class_name, char *out, size_t outlen);

struct dmt_wsman_selector {
  const char *name;
  const char *value;
};

/* A method parameter or instance property. raw_xml: value is an XML fragment (e.g. an EPR), not text. */
struct dmt_wsman_param {
  const char *name;
  const char *value;
  bool raw_xml;
};

/* ---- client: requests (append the SOAP envelope to out; 0 or -1) ---- */

int dmt_wsman_get(struct dmt_buf *out, const char *class_name, const char *message_id,
                  const struct dmt_wsman_selector *sel, size_t nsel);
int dmt_wsman_enumerate(struct dmt_buf *out, const char *class_name, const char *message_id);
int dmt_wsman_pull(struct dmt_buf *out, const char *class_name, const char *message_id,
                   const char *context, unsigned max_elements);
int dmt_wsman_put(struct dmt_buf *out, const char *class_name, const char *message_id,
                  const struct dmt_wsman_selector *sel, size_t nsel, const struct dmt_wsman_param *props,
                  size_t nprops);
int dmt_wsman_delete(struct dmt_buf *out, const char *class_name, const char *message_id,
                     const struct dmt_wsman_selector *sel, size_t nsel);
int dmt_wsman_invoke(struct dmt_buf *out, const char *class_name, const char *method, const char *message_id,
                     const struct dmt_wsman_selector *sel, size_t nsel, const struct dmt_wsman_param *params,
                     size_t nparams);
/*
 * An endpoint reference to an instance, as a raw XML fragment for a method
 * parameter or selector (e.g. AddRemoteAccessPolicyRule's MpServer,
 * AMT_RemoteAccessPolicyAppliesToMPS's ManagedElement/PolicySet): Address
 * (anonymous) and ReferenceParameters with the class's ResourceURI and the
 * selectors (the a:/w: prefixes bound by every request envelope). A method
 * parameter takes it as is (raw_xml); as a selector value it goes inside
 * <a:EndpointReference> (dmt_wsman_selector_epr). 0 or -1.
 */
int dmt_wsman_epr(struct dmt_buf *out, const char *class_name, const struct dmt_wsman_selector *sel, size_t nsel);
/* Appends <w:Selector Name="name"><a:EndpointReference>EPR</a:EndpointReference></w:Selector>. */
int dmt_wsman_selector_epr(struct dmt_buf *out, const char *name, const char *class_name,
                           const struct dmt_wsman_selector *sel, size_t nsel);
/*
 * Put whose SelectorSet is given as XML (the <w:Selector> elements, e.g. from
 * dmt_wsman_selector_epr), for instances addressed by references such as
 * AMT_RemoteAccessPolicyAppliesToMPS. 0 or -1.
 */
int dmt_wsman_put_xml_selectors(struct dmt_buf *out, const char *class_name, const char *message_id,
                                const char *selectors_xml, const struct dmt_wsman_param *props, size_t nprops);
/* XML-escapes s into out (&, <, >, ", '). */
int dmt_wsman_escape(struct dmt_buf *out, const char *s);

/* ---- client: responses ---- */

struct dmt_wsman_response {
  char action[256];
  char message_id[128];
  char relates_to[128];
  char resource_uri[256];
  bool is_fault;
  char fault_code[128];    /* e.g. "a:Sender" */
  char fault_subcode[128]; /* e.g. "b:DestinationUnreachable" */
  char fault_reason[512];
  char enumeration_context[128];
  bool end_of_sequence;
  msgpack_sbuffer tree;    /* {"Header": {...}, "Body": {...}} */
};

/* 0 on success (a fault is a successful parse with is_fault set); -1 with err on malformed XML. */
int dmt_wsman_parse_response(const char *xml, size_t len, struct dmt_wsman_response *r, char *err,
                             size_t errlen);
void dmt_wsman_response_free(struct dmt_wsman_response *r);

/* ---- server: requests and AMT-style responses ---- */

enum dmt_wsman_op {
  DMT_WSMAN_OP_UNKNOWN,
  DMT_WSMAN_OP_GET,
  DMT_WSMAN_OP_PUT,
  DMT_WSMAN_OP_DELETE,
  DMT_WSMAN_OP_CREATE,
  DMT_WSMAN_OP_ENUMERATE,
  DMT_WSMAN_OP_PULL,
  DMT_WSMAN_OP_INVOKE,
};

#define DMT_WSMAN_MAX_SELECTORS 8
#define DMT_WSMAN_MAX_PARAMS 48

struct dmt_wsman_request {
  enum dmt_wsman_op op;
  char action[256];
  char resource_uri[256];
  char class_name[256];  /* last path segment of the resource URI */
  char method[96];       /* INVOKE only */
  char message_id[128];
  struct { char name[64]; char value[256]; } selectors[DMT_WSMAN_MAX_SELECTORS];
  size_t nselectors;
  char enumeration_context[128];
  unsigned max_elements;
  /* Children of the body's top element (method input or instance), in order; nested content flattened to text. */
  struct { char name[96]; char *value; } params[DMT_WSMAN_MAX_PARAMS];
  size_t nparams;
};

int dmt_wsman_parse_request(const char *xml, size_t len, struct dmt_wsman_request *req, char *err,
                            size_t errlen);
void dmt_wsman_request_free(struct dmt_wsman_request *req);
const char *dmt_wsman_request_param(const struct dmt_wsman_request *req, const char *name);
/* All values of a repeated parameter (e.g. AddNextCertInChain is one each; Put instances may repeat). */
size_t dmt_wsman_request_params(const struct dmt_wsman_request *req, const char *name, const char **out,
                                size_t max);
const char *dmt_wsman_request_selector(const struct dmt_wsman_request *req, const char *name);

/*
 * AMT-style response envelope: RelatesTo = the request's MessageID, Action =
 * the request's action + "Response" (WS-Transfer/Enumeration names for the
 * standard operations), MessageID uuid:00000000-8086-8086-8086-<12 hex seq>.
 * body_xml is the Body's content; elements of the class use the prefix "g:"
 * (bound to the request's resource URI). 0 or -1.
 */
int dmt_wsman_build_response(struct dmt_buf *out, const struct dmt_wsman_request *req, unsigned long seq,
                             const char *body_xml);
/* AMT-style SOAP fault. subcode like "b:DestinationUnreachable" (b = addressing), "c:InvalidSelectors" (c = wsman). */
int dmt_wsman_build_fault(struct dmt_buf *out, const struct dmt_wsman_request *req, unsigned long seq,
                          const char *code, const char *subcode, const char *reason);

#endif
