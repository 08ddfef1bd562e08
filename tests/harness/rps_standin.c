/*
 * The RPC + AMT stand-in of rps_standin.h. One lws client context serviced by
 * its own thread; every device's state is touched only by that thread until
 * its job is done (the done flag is published with release ordering).
 */
#include "rps_standin.h"

#include <jansson.h>
#include <libwebsockets.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dmt/buf.h"
#include "dmt/digest.h"
#include "dmt/http.h"
#include "dmt/wsman.h"

#define MAX_CHAIN 8
#define MAX_CERTS 16
#define LSA_USER "$$OsAdmin"

struct out_msg {
  struct out_msg *next;
  size_t len;
  bool binary;
  unsigned char buf[];
};

struct sdev {
  struct standin *s;
  struct sdev *next_pending;
  char guid[37], ver[24], build[16], fqdn[128], hostname[64], friendly[64];
  char **hashes;
  size_t nhashes;
  bool no_hashes, tls_enforced, binary_first;
  char *raw_first;
  char fail_method[64], fault_call[96], stall_call[96], drop_call[96];
  int fail_rv;
  /* AMT */
  int mode;
  char realm[48], nonce[33], lsa_pass[24], ha1[33];
  uint8_t cfg_nonce[20];
  X509 *chain[MAX_CHAIN];
  int nchain;
  bool chain_done;
  char *certs[MAX_CERTS];
  int ncerts;
  int redir_state, kvm_state;
  long long optin;
  bool listener;
  int proxies;
  unsigned long seq;
  /* job */
  char host[64], path[128], method_line[256], tenant[80], password[64];
  int port;
  bool tls;
  struct lws *wsi;
  struct dmt_buf rx;
  struct out_msg *head, *tail;
  struct timespec t0;
  bool got_terminal, dropping;
  struct sresult res;
  int done; /* atomic */
};

struct standin {
  struct lws_context *ctx;
  pthread_t thread;
  pthread_mutex_t mu;
  struct sdev *pending;
  struct sdev **all;
  size_t nall;
  volatile int stop;
};

static double ms_since(const struct timespec *t0) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)(t.tv_sec - t0->tv_sec) * 1000.0 + (double)(t.tv_nsec - t0->tv_nsec) / 1e6;
}

static void finish(struct sdev *d) {
  if (__atomic_load_n(&d->done, __ATOMIC_ACQUIRE)) return;
  d->res.ms = ms_since(&d->t0);
  d->res.mode = d->mode;
  snprintf(d->res.admin_ha1, sizeof d->res.admin_ha1, "%s", d->ha1);
  snprintf(d->res.realm, sizeof d->res.realm, "%s", d->realm);
  __atomic_store_n(&d->done, 1, __ATOMIC_RELEASE);
}

static void queue_text(struct sdev *d, char *text) {
  size_t n = strlen(text);
  struct out_msg *m = malloc(sizeof *m + LWS_PRE + n);
  m->next = NULL;
  m->len = n;
  m->binary = false;
  memcpy(m->buf + LWS_PRE, text, n);
  free(text);
  if (d->tail) d->tail->next = m;
  else d->head = m;
  d->tail = m;
  if (d->wsi) lws_callback_on_writable(d->wsi);
}

static char *b64(const uint8_t *p, size_t n) {
  char *o = malloc((n + 2) / 3 * 4 + 1);
  EVP_EncodeBlock((unsigned char *)o, p, (int)n);
  return o;
}

static uint8_t *unb64(const char *s, size_t *n) {
  size_t l = strlen(s);
  uint8_t *o = malloc(l / 4 * 3 + 4);
  int r = EVP_DecodeBlock(o, (const unsigned char *)s, (int)l);
  if (r < 0) {
    free(o);
    return NULL;
  }
  size_t pad = (l && s[l - 1] == '=') + (l > 1 && s[l - 2] == '=');
  *n = (size_t)r - pad;
  return o;
}

static char *envelope(const char *method, const char *payload, const char *tenant) {
  json_t *o = json_object();
  json_object_set_new(o, "method", json_string(method));
  json_object_set_new(o, "apiKey", json_string("key"));
  json_object_set_new(o, "appVersion", json_string("v2.52.4"));
  json_object_set_new(o, "protocolVersion", json_string("4.0.0"));
  json_object_set_new(o, "status", json_string("ok"));
  json_object_set_new(o, "message", json_string("ok"));
  json_object_set_new(o, "fqdn", json_string(""));
  json_object_set_new(o, "payload", json_string(payload));
  json_object_set_new(o, "tenantId", json_string(tenant ? tenant : ""));
  char *s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
  json_decref(o);
  return s;
}

static void send_first(struct sdev *d) {
  if (d->raw_first) {
    queue_text(d, strdup(d->raw_first));
    if (d->binary_first) d->tail->binary = true;
    return;
  }
  json_t *p = json_object();
  json_object_set_new(p, "ver", json_string(d->ver));
  json_object_set_new(p, "build", json_string(d->build));
  json_object_set_new(p, "sku", json_string("16392"));
  json_object_set_new(p, "features", json_string("AMT Pro Corporate"));
  json_object_set_new(p, "uuid", json_string(d->guid));
  json_object_set_new(p, "username", json_string(LSA_USER));
  json_object_set_new(p, "password", json_string(d->password[0] ? d->password : d->lsa_pass));
  json_object_set_new(p, "currentMode", json_integer(d->mode));
  json_object_set_new(p, "hostname", json_string(d->hostname));
  json_object_set_new(p, "fqdn", json_string(d->fqdn));
  json_object_set_new(p, "client", json_string("RPC"));
  if (!d->no_hashes) {
    json_t *a = json_array();
    for (size_t i = 0; i < d->nhashes; i++) json_array_append_new(a, json_string(d->hashes[i]));
    json_object_set_new(p, "certHashes", a);
  }
  json_object_set_new(p, "ipConfiguration",
                      json_pack("{s:b, s:b, s:b, s:s, s:s, s:s, s:s, s:s}", "dhcp", 0, "static", 1, "ipsync", 0,
                                "ipAddress", "10.1.2.3", "netmask", "255.255.255.0", "gateway", "10.1.2.1",
                                "primaryDns", "10.1.2.1", "secondaryDns", ""));
  json_object_set_new(p, "hostnameInfo", json_pack("{s:s, s:s}", "dnsSuffixOS", "corp.example", "hostname",
                                                   d->hostname));
  if (d->friendly[0]) json_object_set_new(p, "friendlyName", json_string(d->friendly));
  if (d->tls_enforced) json_object_set_new(p, "tlsEnforced", json_true());
  char *js = json_dumps(p, JSON_COMPACT | JSON_PRESERVE_ORDER);
  json_decref(p);
  char *pl = b64((const uint8_t *)js, strlen(js));
  free(js);
  queue_text(d, envelope(d->method_line, pl, d->tenant));
  if (d->binary_first) d->tail->binary = true;
  free(pl);
}

/* ---- the AMT model ---- */

struct call {
  const struct dmt_wsman_request *w;
  struct dmt_buf *b;       /* Body content */
  const char *subcode;     /* fault */
  const char *reason;
  int status;
};

static void prop(struct dmt_buf *b, const char *n, const char *v) {
  dmt_buf_printf(b, "<g:%s>", n);
  dmt_wsman_escape(b, v ? v : "");
  dmt_buf_printf(b, "</g:%s>", n);
}

static void propi(struct dmt_buf *b, const char *n, long long v) {
  dmt_buf_printf(b, "<g:%s>%lld</g:%s>", n, v, n);
}

static void out_rv(struct call *c, const char *method, int rv, const char *extra) {
  dmt_buf_printf(c->b, "<g:%s_OUTPUT>%s<g:ReturnValue>%d</g:ReturnValue></g:%s_OUTPUT>", method, extra ? extra : "",
                 rv, method);
}

static void fault(struct call *c, const char *subcode, const char *reason) {
  c->subcode = subcode;
  c->reason = reason;
  c->status = 400;
}

static void epr(struct dmt_buf *b, const char *elem, const char *cls, const char *const *sel, size_t n) {
  char uri[256];
  dmt_wsman_resource_uri(cls, uri, sizeof uri);
  dmt_buf_printf(b, "<g:%s><b:Address>http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous</b:Address>"
                    "<b:ReferenceParameters><c:ResourceURI>%s</c:ResourceURI><c:SelectorSet>",
                 elem, uri);
  for (size_t i = 0; i + 1 < n; i += 2) {
    dmt_buf_printf(b, "<c:Selector Name=\"%s\">", sel[i]);
    dmt_wsman_escape(b, sel[i + 1]);
    dmt_buf_printf(b, "</c:Selector>");
  }
  dmt_buf_printf(b, "</c:SelectorSet></b:ReferenceParameters></g:%s>", elem);
}

static const char *param(const struct call *c, const char *n) { return dmt_wsman_request_param(c->w, n); }

static bool hash_trusted(struct sdev *d, X509 *root) {
  const EVP_MD *mds[] = {EVP_sha1(), EVP_sha256(), EVP_sha384()};
  for (int k = 0; k < 3; k++) {
    uint8_t md[64];
    unsigned n = 0;
    char hex[129];
    X509_digest(root, mds[k], md, &n);
    for (unsigned i = 0; i < n; i++) sprintf(hex + 2 * i, "%02x", md[i]);
    for (size_t i = 0; i < d->nhashes; i++)
      if (!strcasecmp(d->hashes[i], hex)) return true;
  }
  return false;
}

/* AdminSetup / UpgradeClientToAdmin: the chain, the trusted root, the signature over ConfigurationNonce || McNonce. */
static int verify_acm(struct sdev *d, struct call *c) {
  if (!d->chain_done || d->nchain < 1 || !hash_trusted(d, d->chain[d->nchain - 1])) return 5;
  size_t mcl = 0, sigl = 0;
  const char *mc64 = param(c, "McNonce"), *sig64 = param(c, "DigitalSignature");
  if (!mc64 || !sig64) return 3;
  uint8_t *mc = unb64(mc64, &mcl), *sig = unb64(sig64, &sigl);
  uint8_t data[64];
  int rv = 5;
  if (mc && sig && mcl == 20) {
    memcpy(data, d->cfg_nonce, 20);
    memcpy(data + 20, mc, 20);
    EVP_MD_CTX *v = EVP_MD_CTX_new();
    if (EVP_DigestVerifyInit(v, NULL, EVP_sha256(), NULL, X509_get0_pubkey(d->chain[0])) == 1 &&
        EVP_DigestVerify(v, sig, sigl, data, 40) == 1)
      rv = 0;
    EVP_MD_CTX_free(v);
  }
  free(mc);
  free(sig);
  if (rv == 0) {
    d->res.admin_signature_verified = true;
    RAND_bytes(d->cfg_nonce, sizeof d->cfg_nonce);
  }
  return rv;
}

static void chain_reset(struct sdev *d) {
  for (int i = 0; i < d->nchain; i++) X509_free(d->chain[i]);
  d->nchain = 0;
  d->chain_done = false;
}

static void unprovision(struct sdev *d) {
  d->mode = 0;
  d->ha1[0] = '\0';
  d->res.mps = false;
  d->res.policies = 0;
  for (int i = 0; i < d->ncerts; i++) free(d->certs[i]);
  d->ncerts = 0;
  d->proxies = 0;
  d->res.user_initiated_state = 0;
}

static void invoke(struct sdev *d, struct call *c) {
  const char *m = c->w->method, *cls = c->w->class_name;
  if (d->fail_method[0] && !strcmp(m, d->fail_method)) {
    out_rv(c, m, d->fail_rv, NULL);
    return;
  }
  if (!strcmp(cls, "IPS_HostBasedSetupService") && !strcmp(m, "Setup")) {
    const char *h = param(c, "NetworkAdminPassword");
    if (d->mode != 0) return out_rv(c, m, 2, NULL);
    if (!h || strlen(h) != 32) return out_rv(c, m, 3, NULL);
    snprintf(d->ha1, sizeof d->ha1, "%s", h);
    d->mode = 1;
    return out_rv(c, m, 0, NULL);
  }
  if (!strcmp(m, "AddNextCertInChain")) {
    const char *cert = param(c, "NextCertificate"), *leaf = param(c, "IsLeafCertificate"),
               *root = param(c, "IsRootCertificate");
    size_t n = 0;
    uint8_t *der = cert ? unb64(cert, &n) : NULL;
    const unsigned char *p = der;
    X509 *x = der ? d2i_X509(NULL, &p, (long)n) : NULL;
    free(der);
    if (!x) return out_rv(c, m, 1, NULL);
    if (leaf && !strcmp(leaf, "true")) chain_reset(d);
    if (d->nchain == MAX_CHAIN) {
      X509_free(x);
      return out_rv(c, m, 5, NULL);
    }
    d->chain[d->nchain++] = x;
    d->res.cert_chain_len = (unsigned)d->nchain;
    if (root && !strcmp(root, "true")) d->chain_done = true;
    return out_rv(c, m, 0, NULL);
  }
  if (!strcmp(m, "AdminSetup")) {
    if (d->mode != 0) return out_rv(c, m, 2, NULL);
    int rv = verify_acm(d, c);
    const char *h = param(c, "NetworkAdminPassword");
    if (rv == 0 && h && strlen(h) == 32) {
      snprintf(d->ha1, sizeof d->ha1, "%s", h);
      d->mode = 2;
    }
    return out_rv(c, m, rv, NULL);
  }
  if (!strcmp(m, "UpgradeClientToAdmin")) {
    if (d->mode != 1) return out_rv(c, m, 2, NULL);
    int rv = verify_acm(d, c);
    if (rv == 0) d->mode = 2;
    return out_rv(c, m, rv, NULL);
  }
  if (!strcmp(m, "SetMEBxPassword")) {
    d->res.mebx_set = param(c, "Password") && *param(c, "Password");
    return out_rv(c, m, 0, NULL);
  }
  if (!strcmp(m, "Unprovision")) {
    unprovision(d);
    return out_rv(c, m, 0, NULL);
  }
  if (!strcmp(m, "CommitChanges")) return out_rv(c, m, 0, NULL);
  if (!strcmp(m, "SetAdminAclEntryEx")) {
    size_t n = 0;
    const char *p64 = param(c, "DigestPassword");
    uint8_t *raw = p64 ? unb64(p64, &n) : NULL;
    if (!raw || n != 16) {
      free(raw);
      return out_rv(c, m, 36, NULL);
    }
    for (int i = 0; i < 16; i++) sprintf(d->ha1 + 2 * i, "%02x", raw[i]);
    free(raw);
    return out_rv(c, m, 0, NULL);
  }
  if (!strcmp(m, "GetLowAccuracyTimeSynch")) {
    char extra[64];
    snprintf(extra, sizeof extra, "<g:Ta0>%lld</g:Ta0>", (long long)time(NULL));
    return out_rv(c, m, 0, extra);
  }
  if (!strcmp(m, "SetHighAccuracyTimeSynch")) {
    d->res.time_synced = param(c, "Ta0") && param(c, "Tm1") && param(c, "Tm2");
    return out_rv(c, m, d->res.time_synced ? 0 : 36, NULL);
  }
  if (!strcmp(m, "AddTrustedRootCertificate")) {
    const char *blob = param(c, "CertificateBlob");
    if (!blob || !*blob || d->ncerts == MAX_CERTS) return out_rv(c, m, 36, NULL);
    d->certs[d->ncerts++] = strdup(blob);
    free(d->res.root_b64);
    d->res.root_b64 = strdup(blob);
    return out_rv(c, m, 0, NULL);
  }
  if (!strcmp(m, "AddMpServer")) {
    struct sresult *r = &d->res;
    const char *v;
    snprintf(r->mps_host, sizeof r->mps_host, "%s", (v = param(c, "AccessInfo")) ? v : "");
    snprintf(r->mps_user, sizeof r->mps_user, "%s", (v = param(c, "Username")) ? v : "");
    snprintf(r->mps_password, sizeof r->mps_password, "%s", (v = param(c, "Password")) ? v : "");
    snprintf(r->mps_cn, sizeof r->mps_cn, "%s", (v = param(c, "CN")) ? v : "");
    r->mps_port = (v = param(c, "Port")) ? atoi(v) : 0;
    r->mps_format = (v = param(c, "InfoFormat")) ? atoi(v) : 0;
    if (!r->mps_host[0] || !r->mps_port || !r->mps_user[0] || !r->mps_password[0]) return out_rv(c, m, 36, NULL);
    r->mps = true;
    return out_rv(c, m, 0, NULL);
  }
  if (!strcmp(m, "AddRemoteAccessPolicyRule")) {
    const char *t = param(c, "Trigger"), *mp = param(c, "MpServer");
    if (!d->res.mps || !t || !mp || !strstr(mp, "Management Presence Server 0")) return out_rv(c, m, 36, NULL);
    int trig = atoi(t);
    d->res.policies |= trig == 0 ? 1u : trig == 1 ? 2u : 4u;
    if (trig == 2) {
      size_t n = 0;
      uint8_t *ext = unb64(param(c, "ExtendedData") ? param(c, "ExtendedData") : "", &n);
      if (ext && n == 8) d->res.periodic_interval = (unsigned)ext[4] << 24 | (unsigned)ext[5] << 16 | ext[6] << 8 | ext[7];
      free(ext);
    }
    return out_rv(c, m, 0, NULL);
  }
  if (!strcmp(cls, "AMT_UserInitiatedConnectionService") && !strcmp(m, "RequestStateChange")) {
    d->res.user_initiated_state = param(c, "RequestedState") ? atoi(param(c, "RequestedState")) : 0;
    return out_rv(c, m, 0, NULL);
  }
  if (!strcmp(cls, "AMT_RedirectionService") && !strcmp(m, "RequestStateChange")) {
    d->redir_state = atoi(param(c, "RequestedState") ? param(c, "RequestedState") : "0");
    return out_rv(c, m, 0, NULL);
  }
  if (!strcmp(cls, "CIM_KVMRedirectionSAP") && !strcmp(m, "RequestStateChange")) {
    d->kvm_state = atoi(param(c, "RequestedState") ? param(c, "RequestedState") : "0");
    return out_rv(c, m, 0, NULL);
  }
  if (!strcmp(m, "AddProxyAccessPoint")) {
    d->proxies++;
    return out_rv(c, m, 0, NULL);
  }
  fault(c, "b:ActionNotSupported", "The action is not supported by the service.");
}

static void inst_general(struct sdev *d, struct dmt_buf *b) {
  dmt_buf_printf(b, "<g:AMT_GeneralSettings>");
  prop(b, "AMTNetworkEnabled", "1");
  prop(b, "DigestRealm", d->realm);
  prop(b, "DomainName", d->fqdn);
  prop(b, "ElementName", "Intel(r) AMT: General Settings");
  prop(b, "HostName", d->res.hostname_set[0] ? d->res.hostname_set : d->hostname);
  prop(b, "InstanceID", "Intel(r) AMT: General Settings");
  prop(b, "RmcpPingResponseEnabled", "true");
  prop(b, "SharedFQDN", "true");
  dmt_buf_printf(b, "</g:AMT_GeneralSettings>");
}

static void inst_ethernet(struct sdev *d, struct dmt_buf *b) {
  dmt_buf_printf(b, "<g:AMT_EthernetPortSettings>");
  prop(b, "DHCPEnabled", d->res.dhcp ? "true" : "false");
  if (!d->res.dhcp) {
    prop(b, "DefaultGateway", "10.1.2.1");
  }
  prop(b, "ElementName", "Intel(r) AMT Ethernet Port Settings");
  if (!d->res.dhcp) prop(b, "IPAddress", "10.1.2.3");
  prop(b, "InstanceID", "Intel(r) AMT Ethernet Port Settings 0");
  prop(b, "IpSyncEnabled", d->res.ipsync ? "true" : "false");
  prop(b, "LinkIsUp", "true");
  prop(b, "MACAddress", "a4-ae-11-1c-02-4d");
  prop(b, "PhysicalConnectionType", "0");
  if (!d->res.dhcp) prop(b, "PrimaryDNS", "10.1.2.1");
  prop(b, "SharedMAC", "true");
  prop(b, "SharedStaticIp", d->res.shared_static ? "true" : "false");
  if (!d->res.dhcp) prop(b, "SubnetMask", "255.255.255.0");
  dmt_buf_printf(b, "</g:AMT_EthernetPortSettings>");
}

static void get(struct sdev *d, struct call *c) {
  const char *cls = c->w->class_name;
  struct dmt_buf *b = c->b;
  if (!strcmp(cls, "AMT_GeneralSettings")) return inst_general(d, b);
  if (!strcmp(cls, "IPS_HostBasedSetupService")) {
    char *n = b64(d->cfg_nonce, sizeof d->cfg_nonce);
    dmt_buf_printf(b, "<g:IPS_HostBasedSetupService>");
    prop(b, "AllowedControlModes", "2");
    prop(b, "AllowedControlModes", "1");
    propi(b, "CertChainStatus", d->chain_done ? 2 : d->nchain ? 1 : 0);
    prop(b, "ConfigurationNonce", n);
    propi(b, "CurrentControlMode", d->mode);
    prop(b, "ElementName", "Intel(r) AMT Host Based Setup Service");
    dmt_buf_printf(b, "</g:IPS_HostBasedSetupService>");
    free(n);
    return;
  }
  if (!strcmp(cls, "IPS_IEEE8021xSettings")) {
    dmt_buf_printf(b, "<g:IPS_IEEE8021xSettings>");
    prop(b, "ElementName", "Intel(r) AMT: IEEE 802.1x Settings");
    prop(b, "Enabled", "3");
    prop(b, "InstanceID", "Intel(r) AMT: IEEE 802.1x Settings");
    dmt_buf_printf(b, "</g:IPS_IEEE8021xSettings>");
    return;
  }
  if (!strcmp(cls, "AMT_EnvironmentDetectionSettingData")) {
    dmt_buf_printf(b, "<g:AMT_EnvironmentDetectionSettingData>");
    prop(b, "DetectionAlgorithm", "0");
    if (d->res.env_detection_set) prop(b, "DetectionStrings", "b332bb28-ef3a-43b0-b998-342285ac1e26.com");
    prop(b, "ElementName", "Intel(r) AMT Environment Detection Settings");
    prop(b, "InstanceID", "Intel(r) AMT Environment Detection Settings");
    dmt_buf_printf(b, "</g:AMT_EnvironmentDetectionSettingData>");
    return;
  }
  if (!strcmp(cls, "AMT_RedirectionService")) {
    dmt_buf_printf(b, "<g:AMT_RedirectionService>");
    prop(b, "CreationClassName", "AMT_RedirectionService");
    prop(b, "ElementName", "Intel(r) AMT Redirection Service");
    propi(b, "EnabledState", d->redir_state);
    prop(b, "ListenerEnabled", d->listener ? "true" : "false");
    prop(b, "Name", "Intel(r) AMT Redirection Service");
    prop(b, "SystemCreationClassName", "CIM_ComputerSystem");
    prop(b, "SystemName", "Intel(r) AMT");
    dmt_buf_printf(b, "</g:AMT_RedirectionService>");
    return;
  }
  if (!strcmp(cls, "IPS_OptInService")) {
    dmt_buf_printf(b, "<g:IPS_OptInService>");
    prop(b, "CanModifyOptInPolicy", "1");
    prop(b, "CreationClassName", "IPS_OptInService");
    prop(b, "ElementName", "Intel(r) AMT OptIn Service");
    prop(b, "Name", "Intel(r) AMT OptIn Service");
    propi(b, "OptInRequired", d->optin);
    prop(b, "OptInState", "0");
    prop(b, "SystemName", "Intel(r) AMT");
    dmt_buf_printf(b, "</g:IPS_OptInService>");
    return;
  }
  if (!strcmp(cls, "CIM_KVMRedirectionSAP")) {
    dmt_buf_printf(b, "<g:CIM_KVMRedirectionSAP>");
    prop(b, "CreationClassName", "CIM_KVMRedirectionSAP");
    prop(b, "ElementName", "KVM Redirection Service Access Point");
    propi(b, "EnabledState", d->kvm_state);
    prop(b, "Name", "KVM Redirection Service Access Point");
    dmt_buf_printf(b, "</g:CIM_KVMRedirectionSAP>");
    return;
  }
  fault(c, "b:DestinationUnreachable", "No route can be determined to reach the destination role defined by the "
                                      "WS-Addressing To.");
}

static void pull(struct sdev *d, struct call *c) {
  const char *cls = c->w->class_name;
  struct dmt_buf *b = c->b;
  dmt_buf_printf(b, "<g:PullResponse><g:Items>");
  if (!strcmp(cls, "AMT_EthernetPortSettings")) inst_ethernet(d, b);
  else if (!strcmp(cls, "AMT_ManagementPresenceRemoteSAP") && d->res.mps) {
    dmt_buf_printf(b, "<g:AMT_ManagementPresenceRemoteSAP>");
    prop(b, "AccessInfo", d->res.mps_host);
    prop(b, "CreationClassName", "AMT_ManagementPresenceRemoteSAP");
    prop(b, "ElementName", "Intel(r) AMT:Management Presence Server");
    propi(b, "InfoFormat", d->res.mps_format);
    prop(b, "Name", "Intel(r) AMT:Management Presence Server 0");
    propi(b, "Port", d->res.mps_port);
    prop(b, "SystemCreationClassName", "CIM_ComputerSystem");
    prop(b, "SystemName", "Intel(r) AMT");
    dmt_buf_printf(b, "</g:AMT_ManagementPresenceRemoteSAP>");
  } else if (!strcmp(cls, "AMT_PublicKeyCertificate")) {
    for (int i = 0; i < d->ncerts; i++) {
      char id[64];
      snprintf(id, sizeof id, "Intel(r) AMT Certificate: Handle: %d", i);
      dmt_buf_printf(b, "<g:AMT_PublicKeyCertificate>");
      prop(b, "ElementName", "Intel(r) AMT Certificate");
      prop(b, "InstanceID", id);
      prop(b, "TrustedRootCertficate", "true");
      prop(b, "X509Certificate", d->certs[i]);
      dmt_buf_printf(b, "</g:AMT_PublicKeyCertificate>");
    }
  } else if (!strcmp(cls, "AMT_RemoteAccessPolicyAppliesToMPS")) {
    static const char *const names[] = {"User Initiated", "Alert", "Periodic"};
    for (int t = 0; t < 3; t++) {
      if (!(d->res.policies & (1u << t))) continue;
      const char *sap[] = {"CreationClassName", "AMT_ManagementPresenceRemoteSAP", "Name",
                           "Intel(r) AMT:Management Presence Server 0", "SystemCreationClassName", "CIM_ComputerSystem",
                           "SystemName", "Intel(r) AMT"};
      const char *rule[] = {"CreationClassName", "AMT_RemoteAccessPolicyRule", "PolicyRuleName", names[t],
                            "SystemCreationClassName", "CIM_ComputerSystem", "SystemName", "Intel(r) AMT"};
      dmt_buf_printf(b, "<g:AMT_RemoteAccessPolicyAppliesToMPS>");
      epr(b, "ManagedElement", "AMT_ManagementPresenceRemoteSAP", sap, 8);
      prop(b, "MpsType", "0");
      prop(b, "OrderOfAccess", "0");
      epr(b, "PolicySet", "AMT_RemoteAccessPolicyRule", rule, 8);
      dmt_buf_printf(b, "</g:AMT_RemoteAccessPolicyAppliesToMPS>");
    }
  } else if (!strcmp(cls, "IPS_HTTPProxyAccessPoint")) {
    for (int i = 0; i < d->proxies; i++) {
      char name[32];
      snprintf(name, sizeof name, "Proxy %d", i);
      dmt_buf_printf(b, "<g:IPS_HTTPProxyAccessPoint>");
      prop(b, "Name", name);
      dmt_buf_printf(b, "</g:IPS_HTTPProxyAccessPoint>");
    }
  }
  dmt_buf_printf(b, "</g:Items><g:EndOfSequence></g:EndOfSequence></g:PullResponse>");
}

/* A Put echoes the instance as AMT stored it. */
static void put(struct sdev *d, struct call *c) {
  const struct dmt_wsman_request *w = c->w;
  const char *cls = w->class_name;
  if (!strcmp(cls, "AMT_EthernetPortSettings")) {
    const char *v;
    if ((v = param(c, "DHCPEnabled"))) d->res.dhcp = !strcmp(v, "true");
    if ((v = param(c, "IpSyncEnabled"))) d->res.ipsync = !strcmp(v, "true");
    if ((v = param(c, "SharedStaticIp"))) d->res.shared_static = !strcmp(v, "true");
    return inst_ethernet(d, c->b);
  }
  if (!strcmp(cls, "AMT_GeneralSettings")) {
    const char *h = param(c, "HostName");
    if (h) snprintf(d->res.hostname_set, sizeof d->res.hostname_set, "%s", h);
    return inst_general(d, c->b);
  }
  if (!strcmp(cls, "AMT_EnvironmentDetectionSettingData")) d->res.env_detection_set = param(c, "DetectionStrings");
  if (!strcmp(cls, "AMT_RedirectionService")) d->listener = param(c, "ListenerEnabled") && !strcmp(param(c, "ListenerEnabled"), "true");
  if (!strcmp(cls, "IPS_OptInService") && param(c, "OptInRequired")) d->optin = atoll(param(c, "OptInRequired"));
  if (!strcmp(cls, "AMT_RemoteAccessPolicyAppliesToMPS")) {
    if (w->nselectors != 2 || !param(c, "MpsType")) return fault(c, "c:InvalidSelectors", "selectors");
    if (!strcmp(param(c, "MpsType"), "2")) d->res.mps_type_puts++;
  }
  dmt_buf_printf(c->b, "<g:%s>", cls);
  for (size_t i = 0; i < w->nparams; i++) prop(c->b, w->params[i].name, w->params[i].value);
  dmt_buf_printf(c->b, "</g:%s>", cls);
}

static void del(struct sdev *d, struct call *c) {
  const char *cls = c->w->class_name;
  if (!strcmp(cls, "AMT_RemoteAccessPolicyRule")) {
    const char *n = dmt_wsman_request_selector(c->w, "PolicyRuleName");
    unsigned bit = !n ? 0 : !strcmp(n, "User Initiated") ? 1u : !strcmp(n, "Alert") ? 2u : !strcmp(n, "Periodic") ? 4u : 0;
    if (!(d->res.policies & bit)) return fault(c, "b:DestinationUnreachable", "no such policy");
    d->res.policies &= ~bit;
    return;
  }
  if (!strcmp(cls, "AMT_ManagementPresenceRemoteSAP")) {
    d->res.mps = false;
    return;
  }
  if (!strcmp(cls, "AMT_PublicKeyCertificate")) {
    const char *id = dmt_wsman_request_selector(c->w, "InstanceID");
    int h = id && strrchr(id, ' ') ? atoi(strrchr(id, ' ') + 1) : -1;
    if (h < 0 || h >= d->ncerts) return fault(c, "b:DestinationUnreachable", "no such certificate");
    free(d->certs[h]);
    memmove(&d->certs[h], &d->certs[h + 1], (size_t)(d->ncerts - h - 1) * sizeof d->certs[0]);
    d->ncerts--;
    return;
  }
  if (!strcmp(cls, "IPS_HTTPProxyAccessPoint") && d->proxies > 0) {
    d->proxies--;
    return;
  }
  fault(c, "b:DestinationUnreachable", "no such instance");
}

static void label_of(const struct dmt_wsman_request *w, char *out, size_t n) {
  static const char *const ops[] = {"?", "Get", "Put", "Delete", "Create", "Enumerate", "Pull", "Invoke"};
  if (w->op == DMT_WSMAN_OP_INVOKE) snprintf(out, n, "%s", w->method);
  else snprintf(out, n, "%s %s", ops[w->op], w->class_name);
}

static bool authorized(struct sdev *d, const struct dmt_http_parser *req) {
  const char *h = dmt_http_header(req, "Authorization");
  struct dmt_digest_credentials cr;
  if (!h || dmt_digest_parse_authorization(h, &cr) != 0) return false;
  if (!strcmp(cr.username, LSA_USER)) {
    char ha1[DMT_DIGEST_HEX];
    dmt_digest_ha1(LSA_USER, d->realm, d->lsa_pass, ha1);
    return dmt_digest_verify(&cr, "POST", LSA_USER, d->realm, d->nonce, ha1);
  }
  return d->ha1[0] && dmt_digest_verify(&cr, "POST", "admin", d->realm, d->nonce, d->ha1);
}

/* Returns 0 answered (resp filled), 1 no answer (stall), -1 close the socket (drop). */
static int handle_http(struct sdev *d, const uint8_t *raw, size_t len, struct dmt_buf *resp) {
  struct dmt_http_parser hp;
  dmt_http_parser_init(&hp, true, 1u << 20);
  size_t used;
  int rc = dmt_http_parse(&hp, raw, len, &used);
  if (rc != DMT_HTTP_DONE) {
    dmt_http_parser_free(&hp);
    dmt_buf_printf(resp, "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
    return 0;
  }
  d->res.wsman_requests++;
  struct dmt_wsman_request w;
  char err[256];
  bool parsed = dmt_wsman_parse_request((const char *)dmt_buf_ptr(&hp.body), dmt_buf_size(&hp.body), &w, err,
                                        sizeof err) == 0;
  char label[400] = "";
  if (parsed) label_of(&w, label, sizeof label);
  if (parsed && d->drop_call[0] && !strcmp(label, d->drop_call)) {
    dmt_wsman_request_free(&w);
    dmt_http_parser_free(&hp);
    return -1;
  }
  if (parsed && d->stall_call[0] && !strcmp(label, d->stall_call)) {
    dmt_wsman_request_free(&w);
    dmt_http_parser_free(&hp);
    return 1;
  }
  if (!authorized(d, &hp)) {
    d->res.unauthorized++;
    dmt_http_build_amt_401(resp, d->realm, d->nonce, d->ver);
    if (parsed) dmt_wsman_request_free(&w);
    dmt_http_parser_free(&hp);
    return 0;
  }
  dmt_http_parser_free(&hp);
  if (!parsed) {
    dmt_buf_printf(resp, "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
    return 0;
  }
  struct dmt_buf body, env;
  dmt_buf_init(&body, 0);
  dmt_buf_init(&env, 0);
  struct call c = {.w = &w, .b = &body, .status = 200};
  if (d->fault_call[0] && !strcmp(label, d->fault_call)) {
    fault(&c, "b:ActionNotSupported", "injected fault");
  } else {
    switch (w.op) {
      case DMT_WSMAN_OP_GET: get(d, &c); break;
      case DMT_WSMAN_OP_PUT: put(d, &c); break;
      case DMT_WSMAN_OP_DELETE: del(d, &c); break;
      case DMT_WSMAN_OP_ENUMERATE:
        dmt_buf_printf(&body, "<g:EnumerateResponse><g:EnumerationContext>ctx-%s</g:EnumerationContext>"
                              "</g:EnumerateResponse>", w.class_name);
        break;
      case DMT_WSMAN_OP_PULL: pull(d, &c); break;
      case DMT_WSMAN_OP_INVOKE: invoke(d, &c); break;
      default: fault(&c, "b:ActionNotSupported", "unsupported"); break;
    }
  }
  dmt_buf_append_u8(&body, 0);
  if (c.subcode) dmt_wsman_build_fault(&env, &w, ++d->seq, "a:Sender", c.subcode, c.reason);
  else dmt_wsman_build_response(&env, &w, ++d->seq, (const char *)dmt_buf_ptr(&body));
  dmt_http_build_amt_soap(resp, c.status, d->ver, (const char *)dmt_buf_ptr(&env), dmt_buf_size(&env), 0x0FFF);
  dmt_buf_free(&body);
  dmt_buf_free(&env);
  dmt_wsman_request_free(&w);
  return 0;
}

/* ---- RPC side ---- */

static int on_server_message(struct sdev *d, const char *text, size_t len) {
  json_t *m = json_loadb(text, len, 0, NULL);
  if (!m) return 0;
  const char *method = json_string_value(json_object_get(m, "method"));
  int rc = 0;
  if (method && !strcmp(method, "wsman")) {
    const char *p64 = json_string_value(json_object_get(m, "payload"));
    size_t n = 0;
    uint8_t *raw = p64 ? unb64(p64, &n) : NULL;
    struct dmt_buf resp;
    dmt_buf_init(&resp, 0);
    int h = raw ? handle_http(d, raw, n, &resp) : 1;
    free(raw);
    if (h == 0) {
      char *out = b64(dmt_buf_ptr(&resp), dmt_buf_size(&resp));
      queue_text(d, envelope("response", out, d->tenant));
      free(out);
    } else if (h < 0) {
      d->dropping = true;
      rc = -1;
    }
    dmt_buf_free(&resp);
  } else if (method && (!strcmp(method, "success") || !strcmp(method, "error"))) {
    snprintf(d->res.method, sizeof d->res.method, "%s", method);
    snprintf(d->res.status, sizeof d->res.status, "%s", json_string_value(json_object_get(m, "status")) ?: "");
    free(d->res.message);
    const char *msg = json_string_value(json_object_get(m, "message"));
    d->res.message = strdup(msg ? msg : "");
    d->got_terminal = true;
    rc = -1; /* rpc-go closes after the terminal message */
  }
  json_decref(m);
  return rc;
}

static int client_cb(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in, size_t len) {
  struct standin *s = lws_context_user(lws_get_context(wsi));
  struct sdev *d = (struct sdev *)lws_get_opaque_user_data(wsi);
  switch (reason) {
    case LWS_CALLBACK_EVENT_WAIT_CANCELLED: {
      pthread_mutex_lock(&s->mu);
      struct sdev *p = s->pending;
      s->pending = NULL;
      pthread_mutex_unlock(&s->mu);
      while (p) {
        struct sdev *next = p->next_pending;
        struct lws_client_connect_info ci;
        memset(&ci, 0, sizeof ci);
        ci.context = s->ctx;
        ci.address = p->host;
        ci.port = p->port;
        ci.path = p->path;
        ci.host = p->host;
        ci.origin = p->host;
        ci.local_protocol_name = "standin";
        if (p->tls) /* like rpc-go -n: encrypted, not verified (the test's CA is private) */
          ci.ssl_connection = LCCSCF_USE_SSL | LCCSCF_ALLOW_SELFSIGNED | LCCSCF_SKIP_SERVER_CERT_HOSTNAME_CHECK |
                              LCCSCF_ALLOW_INSECURE;
        ci.opaque_user_data = p;
        ci.pwsi = &p->wsi;
        clock_gettime(CLOCK_MONOTONIC, &p->t0);
        if (!lws_client_connect_via_info(&ci)) {
          snprintf(p->res.method, sizeof p->res.method, "connect");
          finish(p);
        }
        p = next;
      }
      return 0;
    }
    case LWS_CALLBACK_CLIENT_ESTABLISHED:
      if (d) send_first(d);
      return 0;
    case LWS_CALLBACK_CLIENT_RECEIVE:
      if (!d) return -1;
      dmt_buf_append(&d->rx, in, len);
      if (!lws_is_final_fragment(wsi) || lws_remaining_packet_payload(wsi) > 0) return 0;
      {
        int rc = on_server_message(d, (const char *)dmt_buf_ptr(&d->rx), dmt_buf_size(&d->rx));
        dmt_buf_reset(&d->rx);
        return rc;
      }
    case LWS_CALLBACK_CLIENT_WRITEABLE: {
      if (!d || !d->head) return 0;
      struct out_msg *m = d->head;
      int w = lws_write(wsi, m->buf + LWS_PRE, m->len, m->binary ? LWS_WRITE_BINARY : LWS_WRITE_TEXT);
      d->head = m->next;
      if (!d->head) d->tail = NULL;
      free(m);
      if (w < 0) return -1;
      if (d->head) lws_callback_on_writable(wsi);
      return 0;
    }
    case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
      if (d) {
        snprintf(d->res.method, sizeof d->res.method, "connect");
        d->wsi = NULL;
        finish(d);
      }
      return 0;
    case LWS_CALLBACK_CLIENT_CLOSED:
      if (d) {
        d->wsi = NULL;
        if (!d->got_terminal && !d->dropping) d->res.closed_by_server = true;
        while (d->head) {
          struct out_msg *m = d->head;
          d->head = m->next;
          free(m);
        }
        d->tail = NULL;
        finish(d);
      }
      return 0;
    default:
      return 0;
  }
}

static const struct lws_protocols protocols[] = {
    {"standin", client_cb, 0, 65536, 0, NULL, 0},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

static void *service(void *arg) {
  struct standin *s = arg;
  while (!s->stop) lws_service(s->ctx, 0);
  return NULL;
}

struct standin *standin_new(void) {
  struct standin *s = calloc(1, sizeof *s);
  pthread_mutex_init(&s->mu, NULL);
  lws_set_log_level(LLL_ERR, NULL);
  struct lws_context_creation_info info;
  memset(&info, 0, sizeof info);
  info.port = CONTEXT_PORT_NO_LISTEN;
  info.protocols = protocols;
  info.user = s;
  info.timeout_secs = 30;
  info.options = LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
  s->ctx = lws_create_context(&info);
  if (!s->ctx) {
    free(s);
    return NULL;
  }
  pthread_create(&s->thread, NULL, service, s);
  return s;
}

static void sdev_free(struct sdev *d) {
  chain_reset(d);
  for (int i = 0; i < d->ncerts; i++) free(d->certs[i]);
  for (size_t i = 0; i < d->nhashes; i++) free(d->hashes[i]);
  free(d->hashes);
  free(d->res.message);
  free(d->res.root_b64);
  free(d->raw_first);
  dmt_buf_free(&d->rx);
  while (d->head) {
    struct out_msg *m = d->head;
    d->head = m->next;
    free(m);
  }
  free(d);
}

void standin_free(struct standin *s) {
  if (!s) return;
  s->stop = 1;
  lws_cancel_service(s->ctx);
  pthread_join(s->thread, NULL);
  lws_context_destroy(s->ctx);
  for (size_t i = 0; i < s->nall; i++) sdev_free(s->all[i]);
  free(s->all);
  pthread_mutex_destroy(&s->mu);
  free(s);
}

#define COPY(dst, src) snprintf((dst), sizeof(dst), "%s", (src) ? (src) : "")

struct sdev *standin_device(struct standin *s, const struct sdev_spec *sp) {
  struct sdev *d = calloc(1, sizeof *d);
  d->s = s;
  COPY(d->guid, sp->guid);
  COPY(d->ver, sp->ver ? sp->ver : "16.1.25");
  COPY(d->build, sp->build ? sp->build : "2124");
  COPY(d->fqdn, sp->fqdn);
  COPY(d->hostname, sp->hostname ? sp->hostname : "standin-host");
  COPY(d->friendly, sp->friendly_name);
  COPY(d->fail_method, sp->fail_method);
  COPY(d->fault_call, sp->fault_call);
  COPY(d->stall_call, sp->stall_call);
  COPY(d->drop_call, sp->drop_call);
  d->fail_rv = sp->fail_rv;
  d->no_hashes = sp->no_cert_hashes;
  d->tls_enforced = sp->tls_enforced;
  d->binary_first = sp->binary_first;
  d->raw_first = sp->raw_first ? strdup(sp->raw_first) : NULL;
  d->hashes = calloc(sp->ntrusted + 1, sizeof *d->hashes);
  for (size_t i = 0; i < sp->ntrusted; i++) d->hashes[d->nhashes++] = strdup(sp->trusted_hashes[i]);
  d->mode = sp->mode;
  uint8_t r[16];
  RAND_bytes(r, sizeof r);
  if (sp->realm) COPY(d->realm, sp->realm);
  else {
    snprintf(d->realm, sizeof d->realm, "Digest:");
    for (int i = 0; i < 16; i++) sprintf(d->realm + 7 + 2 * i, "%02X", r[i]);
  }
  dmt_digest_random_hex(d->lsa_pass, 8);
  if (sp->admin_password) dmt_digest_ha1("admin", d->realm, sp->admin_password, d->ha1);
  RAND_bytes(d->cfg_nonce, sizeof d->cfg_nonce);
  d->redir_state = 32771;
  d->kvm_state = 2;
  d->optin = 4294967295LL;
  d->listener = true;
  d->res.dhcp = true;
  d->res.ipsync = true;
  dmt_buf_init(&d->rx, 1u << 20);
  s->all = realloc(s->all, (s->nall + 1) * sizeof *s->all);
  s->all[s->nall++] = d;
  return d;
}

int standin_run(struct standin *s, struct sdev *d, const char *url, const char *method_line, const char *tenant,
                const char *password) {
  d->tls = !strncmp(url, "wss://", 6);
  if (sscanf(url + (d->tls ? 6 : 5), "%63[^:]:%d%127s", d->host, &d->port, d->path) < 2) return -1;
  if (!d->path[0]) snprintf(d->path, sizeof d->path, "/");
  COPY(d->method_line, method_line);
  COPY(d->tenant, tenant);
  COPY(d->password, password);
  /* a new session: new nonce, cleared outcome (the device's AMT state stays) */
  dmt_digest_random_hex(d->nonce, 16);
  free(d->res.message);
  d->res.message = NULL;
  d->res.method[0] = d->res.status[0] = '\0';
  d->res.closed_by_server = false;
  d->res.wsman_requests = d->res.unauthorized = 0;
  d->got_terminal = d->dropping = false;
  __atomic_store_n(&d->done, 0, __ATOMIC_RELEASE);
  pthread_mutex_lock(&s->mu);
  d->next_pending = s->pending;
  s->pending = d;
  pthread_mutex_unlock(&s->mu);
  lws_cancel_service(s->ctx);
  return 0;
}

bool standin_wait(struct standin *s, struct sdev **devs, size_t n, int timeout_ms) {
  struct timespec t0;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  for (;;) {
    size_t done = 0;
    for (size_t i = 0; i < n; i++) done += __atomic_load_n(&devs[i]->done, __ATOMIC_ACQUIRE) != 0;
    if (done == n) return true;
    if (ms_since(&t0) > timeout_ms) return false;
    struct timespec ts = {0, 5 * 1000 * 1000};
    nanosleep(&ts, NULL);
  }
}

const struct sresult *standin_result(const struct sdev *d) { return &d->res; }
const char *standin_guid(const struct sdev *d) { return d->guid; }
