/*
 * The simulator's RPC side against an RPS stand-in built on libwebsockets (an
 * independent WebSocket implementation) that speaks the RPS protocol of
 * rps-activation.md §1-2 with the project's own WS-Man and digest codecs:
 *   - the first message: "activate --profile <p>" with the device payload
 *     (version, build, SKU, UUID, $$OsAdmin and the LSA password, mode 0,
 *     host name, DNS suffix, "RPC", the trusted root hashes, ...);
 *   - CCM: GeneralSettings (401, then digest as $$OsAdmin), Setup, then as
 *     admin with the new password the CIRA configuration (root certificate,
 *     AddMpServer, MPS entry, periodic and user-initiated policies,
 *     user-initiated connections, environment detection), then "success";
 *   - ACM: the same with the provisioning chain and AdminSetup signed over
 *     ConfigurationNonce || McNonce (and a tampered signature that must fail);
 *   - deactivate: "deactivate --password <pw>" and Unprovision.
 * A successful activation leaves the device in CCM/ACM and it calls home to
 * the strict CIRA server with the credentials RPS gave it; deactivation
 * hangs up with DISCONNECT and leaves it unprovisioned.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <jansson.h>
#include <libwebsockets.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "apf_server.h"
#include "dmt/digest.h"
#include "dmt/http.h"
#include "dmt/mptree.h"
#include "dmt/tls.h"
#include "dmt/wsman.h"
#include "harness.h"

#define GUID_PREFIX "6e6e0000-0000-4000-8000-"
#define CCM_PASSWORD "Ccm@Passw0rd1"
#define ACM_PASSWORD "Acm@Passw0rd1"
#define MPS_USER "rpsCiraUser"
#define MPS_PASSWORD "Rps@MpsPassw0rd"
#define MAX_MESSAGE 65536

/* ---- the RPS stand-in ---- */

enum flow { FLOW_CCM, FLOW_ACM, FLOW_ACM_TAMPERED, FLOW_DEACTIVATE };

struct job {
  enum flow flow;
  int step;
  bool retried;
  char uuid[40], user[32], password[64], realm[64];
  struct dmt_digest_challenge ch;
  bool have_challenge;
  uint32_t nc;
  uint8_t config_nonce[20];
  json_t *first; /* the device payload */
  char *outbox[4];
  size_t nout;
  struct dmt_buf msg;
  char pending_env[8192]; /* the request in flight (re-sent after a 401) */
  char result[256];       /* "success ..." / "error ..." once done, "" before */
  bool closed;
};

static struct {
  char *dir;
  struct apf_pki pki;
  char control[600], log[600], acm_root_pem[600];
  struct apf_server *mps;
  pid_t sim;
  struct lws_context *ws;
  int ws_port;
  pthread_t ws_thread;
  volatile int stop;
  pthread_mutex_t mu;
  struct job jobs[8];
  size_t njobs;
  /* ACM provisioning PKI */
  EVP_PKEY *acm_root_key, *acm_leaf_key;
  X509 *acm_root, *acm_leaf;
  char root_hash[65];
} W;

static const char *guid(size_t i) {
  static char g[4][37];
  static int k;
  k = (k + 1) % 4;
  snprintf(g[k], 37, GUID_PREFIX "%012zx", i);
  return g[k];
}

static char *b64(const void *p, size_t n) {
  char *out = malloc(4 * ((n + 2) / 3) + 1);
  EVP_EncodeBlock((unsigned char *)out, p, (int)n);
  return out;
}

static int unb64(const char *in, uint8_t *out, size_t cap) {
  size_t len = strlen(in);
  if (len % 4 || len / 4 * 3 > cap) return -1;
  int n = EVP_DecodeBlock(out, (const unsigned char *)in, (int)len);
  if (n >= 0 && len && in[len - 1] == '=') n--;
  if (n >= 0 && len > 1 && in[len - 2] == '=') n--;
  return n;
}

static char *der_b64(X509 *x) {
  unsigned char *der = NULL;
  int len = i2d_X509(x, &der);
  char *s = b64(der, (size_t)len);
  OPENSSL_free(der);
  return s;
}

static void queue(struct job *j, const char *method, const char *status, const char *message, const char *payload) {
  json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s?, s:s}", "method", method, "apiKey", "xxxxx",
                        "appVersion", "2.40.0", "protocolVersion", "4.0.0", "status", status, "message", message,
                        "payload", payload, "tenantId", "");
  if (j->nout < 4) j->outbox[j->nout++] = json_dumps(o, JSON_COMPACT);
  json_decref(o);
}

/* RPS's HTTP framing: one chunk, Connection: close, digest once a challenge is known. */
static void send_wsman(struct job *j, const char *envelope) {
  snprintf(j->pending_env, sizeof j->pending_env, "%s", envelope);
  char auth[1024];
  const char *authorization = NULL;
  if (j->have_challenge) {
    dmt_digest_authorization(j->user, j->password, &j->ch, "POST", "/wsman", ++j->nc, "k2f9x", auth, sizeof auth);
    authorization = auth;
  }
  struct dmt_buf http;
  dmt_buf_init(&http, 0);
  dmt_http_build_wsman_request_chunked(&http, authorization, j->uuid, 16992, envelope, strlen(envelope));
  char *payload = b64(dmt_buf_ptr(&http), dmt_buf_size(&http));
  queue(j, "wsman", "ok", "", payload);
  free(payload);
  dmt_buf_free(&http);
}

static void finish(struct job *j, bool ok, const char *status) {
  char msg[300];
  snprintf(msg, sizeof msg, "{\"Status\":\"%s\"}", status);
  queue(j, ok ? "success" : "error", ok ? "success" : "failed", msg, NULL);
  snprintf(j->result, sizeof j->result, "%s %s", ok ? "success" : "error", status);
}

static char *envelope(int kind, const char *cls, const char *method, const struct dmt_wsman_param *p, size_t n,
                      const char *ctx) {
  struct dmt_buf b;
  dmt_buf_init(&b, 0);
  if (kind == 'G') dmt_wsman_get(&b, cls, "0", NULL, 0);
  else if (kind == 'E') dmt_wsman_enumerate(&b, cls, "1");
  else if (kind == 'P') dmt_wsman_pull(&b, cls, "2", ctx, 999);
  else if (kind == 'U') dmt_wsman_put(&b, cls, "3", NULL, 0, p, n);
  else dmt_wsman_invoke(&b, cls, method, "4", NULL, 0, p, n);
  dmt_buf_append_u8(&b, 0);
  return (char *)b.data;
}

static void next(struct job *j, char *env) {
  j->step++;
  j->retried = false;
  send_wsman(j, env);
  free(env);
}

/* ACM: RSASSA-PKCS1-v1_5 / SHA-256 over ConfigurationNonce || McNonce with the provisioning key. */
static char *acm_signature(const uint8_t nonce[20], const uint8_t mc[20], bool tamper) {
  uint8_t data[40], sig[512];
  memcpy(data, nonce, 20);
  memcpy(data + 20, mc, 20);
  EVP_MD_CTX *ctx = EVP_MD_CTX_new();
  EVP_PKEY_CTX *pctx = NULL;
  size_t len = sizeof sig;
  EVP_DigestSignInit(ctx, &pctx, EVP_sha256(), NULL, W.acm_leaf_key);
  EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PADDING);
  EVP_DigestSign(ctx, sig, &len, data, sizeof data);
  EVP_MD_CTX_free(ctx);
  if (tamper) sig[len - 1] ^= 0x01;
  return b64(sig, len);
}

/* The CIRA configuration steps, as RPS's ciraConfiguration machine sends them; returns false when done. */
static bool cira_step(struct job *j, int k) {
  char port[16];
  snprintf(port, sizeof port, "%d", apf_server_port(W.mps));
  switch (k) {
    case 0: {
      FILE *f = fopen(W.pki.root, "r");
      X509 *r = PEM_read_X509(f, NULL, NULL, NULL);
      fclose(f);
      char *blob = der_b64(r);
      X509_free(r);
      struct dmt_wsman_param p[] = {{"CertificateBlob", blob, false}};
      next(j, envelope('I', "AMT_PublicKeyManagementService", "AddTrustedRootCertificate", p, 1, NULL));
      free(blob);
      return true;
    }
    case 1: {
      struct dmt_wsman_param p[] = {{"AccessInfo", "127.0.0.1", false}, {"InfoFormat", "3", false},
                                    {"Port", port, false},              {"AuthMethod", "2", false},
                                    {"Username", MPS_USER, false},      {"Password", MPS_PASSWORD, false},
                                    {"CN", "127.0.0.1", false}};
      next(j, envelope('I', "AMT_RemoteAccessService", "AddMpServer", p, 7, NULL));
      return true;
    }
    case 2:
      next(j, envelope('E', "AMT_ManagementPresenceRemoteSAP", NULL, NULL, 0, NULL));
      return true;
    case 3: {
      struct dmt_wsman_param p[] = {{"Trigger", "2", false}, {"TunnelLifeTime", "0", false},
                                    {"ExtendedData", "AAAAAAAAABk=", false}};
      next(j, envelope('I', "AMT_RemoteAccessService", "AddRemoteAccessPolicyRule", p, 3, NULL));
      return true;
    }
    case 4: {
      struct dmt_wsman_param p[] = {{"Trigger", "0", false}, {"TunnelLifeTime", "300", false},
                                    {"ExtendedData", "", false}};
      next(j, envelope('I', "AMT_RemoteAccessService", "AddRemoteAccessPolicyRule", p, 3, NULL));
      return true;
    }
    case 5: {
      struct dmt_wsman_param p[] = {{"RequestedState", "32771", false}};
      next(j, envelope('I', "AMT_UserInitiatedConnectionService", "RequestStateChange", p, 1, NULL));
      return true;
    }
    case 6: {
      struct dmt_wsman_param p[] = {{"DetectionAlgorithm", "0", false},
                                    {"DetectionStrings", "3f1b2c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d.com", false},
                                    {"ElementName", "Intel(r) AMT Environment Detection Settings", false},
                                    {"InstanceID", "Intel(r) AMT Environment Detection Settings", false}};
      next(j, envelope('U', "AMT_EnvironmentDetectionSettingData", NULL, p, 4, NULL));
      return true;
    }
  }
  return false;
}

/* Handles one HTTP response from the device: the next request, or the terminal message. */
static void on_response(struct job *j, int status, json_t *tree, const char *www) {
  if (status == 401 && www && !j->retried) { /* store the challenge, send the same request again */
    j->have_challenge = dmt_digest_parse_challenge(www, &j->ch) == 0;
    j->retried = true;
    char env[sizeof j->pending_env];
    memcpy(env, j->pending_env, sizeof env);
    send_wsman(j, env);
    return;
  }
  json_t *body = json_object_get(tree, "Body");
  char path[96];
  if (status != 200) {
    finish(j, false, "Unable to authenticate with AMT");
    return;
  }
  switch (j->step) {
    case 0: { /* GeneralSettings: the realm */
      const char *realm = json_string_value(json_object_get(json_object_get(body, "AMT_GeneralSettings"), "DigestRealm"));
      if (!realm || !dmt_digest_realm_valid(realm)) {
        finish(j, false, "Not a valid digest realm.");
        return;
      }
      snprintf(j->realm, sizeof j->realm, "%s", realm);
      if (j->flow == FLOW_DEACTIVATE) {
        struct dmt_wsman_param p[] = {{"ProvisioningMode", "1", false}};
        next(j, envelope('I', "AMT_SetupAndConfigurationService", "Unprovision", p, 1, NULL));
      } else if (j->flow == FLOW_CCM) {
        char ha1[33];
        dmt_digest_ha1("admin", realm, CCM_PASSWORD, ha1);
        struct dmt_wsman_param p[] = {{"NetAdminPassEncryptionType", "2", false}, {"NetworkAdminPassword", ha1, false}};
        next(j, envelope('I', "IPS_HostBasedSetupService", "Setup", p, 2, NULL));
      } else {
        next(j, envelope('G', "IPS_HostBasedSetupService", NULL, NULL, 0, NULL));
      }
      return;
    }
    default:
      break;
  }
  if (j->flow == FLOW_DEACTIVATE) {
    json_t *rv = json_object_get(json_object_get(body, "Unprovision_OUTPUT"), "ReturnValue");
    finish(j, json_integer_value(rv) == 0 && json_is_integer(rv), "Deactivated");
    return;
  }
  if (j->flow == FLOW_CCM && j->step == 1) {
    json_t *rv = json_object_get(json_object_get(body, "Setup_OUTPUT"), "ReturnValue");
    if (!json_is_integer(rv) || json_integer_value(rv) != 0) {
      finish(j, false, "Failed to activate in client control mode.");
      return;
    }
    /* UPDATE_CREDENTIALS: admin and the new password, same nonce */
    snprintf(j->user, sizeof j->user, "admin");
    snprintf(j->password, sizeof j->password, CCM_PASSWORD);
    j->step = 99;
  } else if (j->flow != FLOW_CCM && j->step == 1) { /* HBS Get: the nonce, then the chain */
    json_t *hbs = json_object_get(body, "IPS_HostBasedSetupService");
    const char *nonce = json_string_value(json_object_get(hbs, "ConfigurationNonce"));
    uint8_t raw_nonce[64];
    if (!nonce || unb64(nonce, raw_nonce, sizeof raw_nonce) != 20) {
      finish(j, false, "no ConfigurationNonce");
      return;
    }
    memcpy(j->config_nonce, raw_nonce, 20);
    char *leaf = der_b64(W.acm_leaf);
    struct dmt_wsman_param p[] = {{"NextCertificate", leaf, false}, {"IsLeafCertificate", "true", false},
                                  {"IsRootCertificate", "false", false}};
    next(j, envelope('I', "IPS_HostBasedSetupService", "AddNextCertInChain", p, 3, NULL));
    free(leaf);
    return;
  } else if (j->flow != FLOW_CCM && (j->step == 2 || j->step == 3) &&
             json_integer_value(json_object_get(json_object_get(body, "AddNextCertInChain_OUTPUT"), "ReturnValue"))) {
    finish(j, false, "Error while adding the certificates to AMT.");
    return;
  } else if (j->flow != FLOW_CCM && j->step == 2) {
    char *root = der_b64(W.acm_root);
    struct dmt_wsman_param p[] = {{"NextCertificate", root, false}, {"IsLeafCertificate", "false", false},
                                  {"IsRootCertificate", "true", false}};
    next(j, envelope('I', "IPS_HostBasedSetupService", "AddNextCertInChain", p, 3, NULL));
    free(root);
    return;
  } else if (j->flow != FLOW_CCM && j->step == 3) {
    uint8_t mc[20];
    RAND_bytes(mc, sizeof mc);
    char ha1[33], *mc64 = b64(mc, 20), *sig = acm_signature(j->config_nonce, mc, j->flow == FLOW_ACM_TAMPERED);
    dmt_digest_ha1("admin", j->realm, ACM_PASSWORD, ha1);
    struct dmt_wsman_param p[] = {{"NetAdminPassEncryptionType", "2", false}, {"NetworkAdminPassword", ha1, false},
                                  {"McNonce", mc64, false}, {"SigningAlgorithm", "2", false},
                                  {"DigitalSignature", sig, false}};
    next(j, envelope('I', "IPS_HostBasedSetupService", "AdminSetup", p, 5, NULL));
    free(mc64);
    free(sig);
    return;
  } else if (j->flow != FLOW_CCM && j->step == 4) {
    json_t *rv = json_object_get(json_object_get(body, "AdminSetup_OUTPUT"), "ReturnValue");
    if (!json_is_integer(rv) || json_integer_value(rv) != 0) {
      finish(j, false, "Failed to activate in admin control mode.");
      return;
    }
    snprintf(j->user, sizeof j->user, "admin");
    snprintf(j->password, sizeof j->password, ACM_PASSWORD);
    struct dmt_wsman_param p[] = {{"Password", "Mebx@Passw0rd1", false}};
    next(j, envelope('I', "AMT_SetupAndConfigurationService", "SetMEBxPassword", p, 1, NULL));
    return;
  } else if (j->flow != FLOW_CCM && j->step == 5) {
    json_t *rv = json_object_get(json_object_get(body, "SetMEBxPassword_OUTPUT"), "ReturnValue");
    if (!json_is_integer(rv) || json_integer_value(rv) != 0) {
      finish(j, false, "Failed to set MEBx password");
      return;
    }
    j->step = 99;
  } else if (j->step >= 100) {
    /* CIRA step results: method outputs must be 0, the SAP Pull needs the entry's name */
    int k = j->step - 100;
    if (k == 2) { /* Enumerate -> Pull */
      const char *ctx = json_string_value(json_object_get(json_object_get(body, "EnumerateResponse"),
                                                          "EnumerationContext"));
      j->step = 150;
      j->retried = false;
      char *env = envelope('P', "AMT_ManagementPresenceRemoteSAP", NULL, NULL, 0, ctx ? ctx : "");
      send_wsman(j, env);
      free(env);
      return;
    }
    if (j->step == 150) {
      snprintf(path, sizeof path, "PullResponse");
      json_t *sap = json_object_get(json_object_get(json_object_get(body, path), "Items"),
                                    "AMT_ManagementPresenceRemoteSAP");
      if (!sap || strcmp(json_string_value(json_object_get(sap, "Name")) ?: "",
                         "Intel(r) AMT:Management Presence Server 0")) {
        finish(j, false, "Failed to find the MPS");
        return;
      }
      j->step = 102;
    } else {
      const char *outputs[] = {"AddTrustedRootCertificate_OUTPUT", "AddMpServer_OUTPUT", NULL,
                               "AddRemoteAccessPolicyRule_OUTPUT", "AddRemoteAccessPolicyRule_OUTPUT",
                               "RequestStateChange_OUTPUT", NULL};
      if (outputs[k]) {
        json_t *rv = json_object_get(json_object_get(body, outputs[k]), "ReturnValue");
        if (!json_is_integer(rv) || json_integer_value(rv) != 0) {
          finish(j, false, outputs[k]);
          return;
        }
      }
    }
  }
  /* next CIRA step, or done */
  int k = j->step < 100 ? 0 : j->step - 100 + 1;
  j->step = 100 + k - 1; /* next() increments */
  if (!cira_step(j, k))
    finish(j, true, j->flow == FLOW_CCM ? "Client control mode." : "Activated to admin control mode.");
}

static void handle_message(struct job *j, const char *text, size_t len) {
  json_t *o = json_loadb(text, len, 0, NULL);
  const char *method = json_string_value(json_object_get(o, "method"));
  const char *payload = json_string_value(json_object_get(o, "payload"));
  if (!method || !payload) {
    snprintf(j->result, sizeof j->result, "error unreadable message");
    json_decref(o);
    return;
  }
  uint8_t *raw = malloc(strlen(payload) + 4);
  int n = unb64(payload, raw, strlen(payload) + 4);
  if (strcmp(method, "response")) { /* the first message: command line + device payload */
    j->first = n > 0 ? json_loadb((const char *)raw, (size_t)n, 0, NULL) : NULL;
    const char *uuid = json_string_value(json_object_get(j->first, "uuid"));
    snprintf(j->uuid, sizeof j->uuid, "%s", uuid ? uuid : "");
    json_t *meta = json_pack("{s:s, s:s, s:s}", "method", method, "protocolVersion",
                             json_string_value(json_object_get(o, "protocolVersion")) ?: "", "apiKey",
                             json_string_value(json_object_get(o, "apiKey")) ?: "");
    json_object_set_new(j->first, "_envelope", meta);
    if (!strncmp(method, "activate --profile ", 19)) {
      const char *profile = method + 19;
      j->flow = !strcmp(profile, "ccm") ? FLOW_CCM : !strcmp(profile, "acm") ? FLOW_ACM : FLOW_ACM_TAMPERED;
      snprintf(j->user, sizeof j->user, "%s", json_string_value(json_object_get(j->first, "username")) ?: "");
    } else {
      j->flow = FLOW_DEACTIVATE;
      snprintf(j->user, sizeof j->user, "admin");
    }
    snprintf(j->password, sizeof j->password, "%s", json_string_value(json_object_get(j->first, "password")) ?: "");
    j->step = 0;
    char *env = envelope('G', "AMT_GeneralSettings", NULL, NULL, 0, NULL);
    send_wsman(j, env);
    free(env);
  } else {
    struct dmt_http_parser http;
    dmt_http_parser_init(&http, false, 4u << 20);
    size_t used = 0;
    int rc = n > 0 ? dmt_http_parse(&http, raw, (size_t)n, &used) : -1;
    const char *type = dmt_http_header(&http, "Content-Type");
    json_t *tree = NULL;
    if (rc == DMT_HTTP_DONE && http.status == 200) {
      /* RPS accepts only complete chunked 200s on this path */
      const char *te = dmt_http_header(&http, "Transfer-Encoding");
      struct dmt_wsman_response r;
      char err[128];
      if (te && !strcmp(te, "chunked") && type && strstr(type, "soap") &&
          dmt_wsman_parse_response((const char *)dmt_buf_ptr(&http.body), dmt_buf_size(&http.body), &r, err,
                                   sizeof err) == 0) {
        tree = dmt_mp_buf_to_json(r.tree.data, r.tree.size);
        dmt_wsman_response_free(&r);
      }
    }
    if (rc != DMT_HTTP_DONE) finish(j, false, "unparsable response");
    else on_response(j, tree ? 200 : http.status == 200 ? 599 : http.status, tree,
                     dmt_http_header(&http, "WWW-Authenticate"));
    json_decref(tree);
    dmt_http_parser_free(&http);
  }
  free(raw);
  json_decref(o);
}

static int ws_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in, size_t len) {
  struct job **jp = user;
  switch (reason) {
    case LWS_CALLBACK_ESTABLISHED:
      pthread_mutex_lock(&W.mu);
      *jp = W.njobs < 8 ? &W.jobs[W.njobs++] : NULL;
      if (*jp) dmt_buf_init(&(*jp)->msg, MAX_MESSAGE);
      pthread_mutex_unlock(&W.mu);
      break;
    case LWS_CALLBACK_RECEIVE:
      if (!*jp) return -1;
      pthread_mutex_lock(&W.mu);
      dmt_buf_append(&(*jp)->msg, in, len);
      if (lws_is_final_fragment(wsi) && !lws_remaining_packet_payload(wsi)) {
        handle_message(*jp, (const char *)dmt_buf_ptr(&(*jp)->msg), dmt_buf_size(&(*jp)->msg));
        dmt_buf_free(&(*jp)->msg);
      }
      pthread_mutex_unlock(&W.mu);
      lws_callback_on_writable(wsi);
      break;
    case LWS_CALLBACK_SERVER_WRITEABLE: {
      pthread_mutex_lock(&W.mu);
      struct job *j = *jp;
      if (j && j->nout) {
        char *m = j->outbox[0];
        memmove(j->outbox, j->outbox + 1, (j->nout - 1) * sizeof j->outbox[0]);
        j->nout--;
        size_t n = strlen(m);
        unsigned char *buf = malloc(LWS_PRE + n);
        memcpy(buf + LWS_PRE, m, n);
        lws_write(wsi, buf + LWS_PRE, n, LWS_WRITE_TEXT);
        free(buf);
        free(m);
        if (j->nout) lws_callback_on_writable(wsi);
      }
      pthread_mutex_unlock(&W.mu);
      break;
    }
    case LWS_CALLBACK_CLOSED:
      pthread_mutex_lock(&W.mu);
      if (*jp) (*jp)->closed = true;
      pthread_mutex_unlock(&W.mu);
      break;
    default:
      break;
  }
  return 0;
}

static void *ws_run(void *arg) {
  while (!W.stop) lws_service(W.ws, 50);
  return NULL;
}

static const struct lws_protocols protocols[] = {
    {"rps", ws_callback, sizeof(struct job *), MAX_MESSAGE, 0, NULL, 0},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

static int start_rps(void) {
  lws_set_log_level(LLL_ERR, NULL);
  W.ws_port = dmt_test_free_port();
  struct lws_context_creation_info info = {0};
  info.port = W.ws_port;
  info.iface = "127.0.0.1";
  info.protocols = protocols;
  info.options = LWS_SERVER_OPTION_DISABLE_IPV6;
  W.ws = lws_create_context(&info);
  if (!W.ws) return -1;
  return pthread_create(&W.ws_thread, NULL, ws_run, NULL);
}

/* ---- fixture ---- */

static int make_acm_pki(void) {
  char err[256];
  W.acm_root_key = dmt_tls_rsa_key(2048);
  W.acm_leaf_key = dmt_tls_rsa_key(2048);
  struct dmt_cert_spec root = {.common_name = "CA Custom Root Certificate", .is_ca = true, .days_before = 1,
                               .days_valid = 30};
  struct dmt_cert_spec leaf = {.common_name = "intel.vprodemo.com", .org = "Intel(R) Client Setup Certificate",
                               .ext_key_usage = "serverAuth,2.16.840.1.113741.1.2.3", .days_before = 1,
                               .days_valid = 30};
  W.acm_root = dmt_tls_issue(&root, W.acm_root_key, NULL, NULL, err, sizeof err);
  W.acm_leaf = dmt_tls_issue(&leaf, W.acm_leaf_key, W.acm_root, W.acm_root_key, err, sizeof err);
  snprintf(W.acm_root_pem, sizeof W.acm_root_pem, "%s/provisioning-root.pem", W.dir);
  uint8_t md[32];
  unsigned n = 0;
  X509_digest(W.acm_root, EVP_sha256(), md, &n);
  for (unsigned i = 0; i < n; i++) snprintf(W.root_hash + 2 * i, 3, "%02x", md[i]);
  return W.acm_leaf && dmt_tls_write_cert(W.acm_root_pem, &W.acm_root, 1, err, sizeof err) == 0 ? 0 : -1;
}

static int setup(void **state) {
  pthread_mutex_init(&W.mu, NULL);
  W.dir = dmt_test_tmpdir("sim-rpc");
  snprintf(W.control, sizeof W.control, "%s/sim.sock", W.dir);
  snprintf(W.log, sizeof W.log, "%s/sim.log", W.dir);
  if (apf_test_pki(W.dir, &W.pki) != 0 || make_acm_pki() != 0 || start_rps() != 0) return -1;
  W.mps = apf_server_start(W.pki.cert, W.pki.key, 5);
  for (size_t i = 0; i < 4; i++) {
    char host[24];
    snprintf(host, sizeof host, "sim-%05zu", i);
    apf_server_expect(W.mps, guid(i), MPS_USER, MPS_PASSWORD, host);
  }
  char prefix[64], roots[700], ctl[700];
  snprintf(prefix, sizeof prefix, "--sim.guid_prefix=%s", GUID_PREFIX);
  snprintf(roots, sizeof roots, "--sim.acm_roots=%s", W.acm_root_pem);
  snprintf(ctl, sizeof ctl, "--sim.control=%s", W.control);
  char *argv[] = {(char *)dmt_test_bin("agents/sim/dmt-sim"), "--sim.count=4", prefix, roots, ctl, "--sim.mode=pre",
                  "--sim.dns_suffix=vprodemo.com", "--sim.reconnect_min_ms=200", "--log.level=warn", NULL};
  W.sim = dmt_test_spawn(argv, NULL, W.log);
  for (int i = 0; i < 250 && access(W.control, F_OK) != 0; i++) usleep(20000);
  return W.sim > 0 ? 0 : -1;
}

static int teardown(void **state) {
  if (W.sim > 0) dmt_test_stop(W.sim, SIGKILL, 1000);
  W.stop = 1;
  pthread_join(W.ws_thread, NULL);
  lws_context_destroy(W.ws);
  apf_server_stop(W.mps);
  for (size_t i = 0; i < W.njobs; i++) json_decref(W.jobs[i].first);
  X509_free(W.acm_root);
  X509_free(W.acm_leaf);
  EVP_PKEY_free(W.acm_root_key);
  EVP_PKEY_free(W.acm_leaf_key);
  return 0;
}

static const char *rpc_status(size_t i) {
  char cmd[96];
  snprintf(cmd, sizeof cmd, "rpc %s", guid(i));
  return dmt_test_sim_control(W.control, cmd);
}

static bool rpc_done(void *arg) {
  const char *s = rpc_status((size_t)(uintptr_t)arg);
  return s && (strstr(s, "ok success") || strstr(s, "ok error"));
}

/* "<verb> <guid> ws://127.0.0.1:<port>/activate <rest>" */
static void run_job(size_t device, const char *verb, const char *rest) {
  char cmd[256];
  snprintf(cmd, sizeof cmd, "%s %s ws://127.0.0.1:%d/activate %s", verb, guid(device), W.ws_port, rest);
  const char *r = dmt_test_sim_control(W.control, cmd);
  assert_non_null(r);
  assert_non_null(strstr(r, "ok 1"));
  assert_true(dmt_test_wait_until(rpc_done, (void *)(uintptr_t)device, 60000));
}

/* Copies of what the RPS thread recorded for a device's job (of that flow). */
static json_t *first_payload(size_t device, enum flow flow) {
  json_t *copy = NULL;
  pthread_mutex_lock(&W.mu);
  for (size_t i = 0; i < W.njobs; i++)
    if (!strcmp(W.jobs[i].uuid, guid(device)) && W.jobs[i].flow == flow) copy = json_deep_copy(W.jobs[i].first);
  pthread_mutex_unlock(&W.mu);
  return copy;
}

static void job_result(size_t device, char *out, size_t n) {
  out[0] = '\0';
  pthread_mutex_lock(&W.mu);
  for (size_t i = 0; i < W.njobs; i++)
    if (!strcmp(W.jobs[i].uuid, guid(device))) snprintf(out, n, "%s", W.jobs[i].result);
  pthread_mutex_unlock(&W.mu);
}

static bool ready_at_mps(void *arg) { return apf_server_is_ready(W.mps, guid((size_t)(uintptr_t)arg)); }

static void test_first_message(void **state) {
  run_job(0, "activate", "ccm");
  json_t *p = first_payload(0, FLOW_CCM); /* a copy: no assertion may fire while the RPS thread is locked out */
  assert_non_null(p);
  assert_string_equal(json_string_value(json_object_get(json_object_get(p, "_envelope"), "method")),
                      "activate --profile ccm");
  assert_string_equal(json_string_value(json_object_get(json_object_get(p, "_envelope"), "protocolVersion")), "4.0.0");
  assert_string_equal(json_string_value(json_object_get(p, "ver")), "16.1.27");
  assert_string_equal(json_string_value(json_object_get(p, "build")), "2225");
  assert_string_equal(json_string_value(json_object_get(p, "sku")), "16392");
  assert_string_equal(json_string_value(json_object_get(p, "uuid")), guid(0));
  assert_string_equal(json_string_value(json_object_get(p, "username")), "$$OsAdmin");
  assert_true(strlen(json_string_value(json_object_get(p, "password"))) >= 8);
  assert_int_equal(json_integer_value(json_object_get(p, "currentMode")), 0);
  assert_string_equal(json_string_value(json_object_get(p, "hostname")), "sim-00000");
  assert_string_equal(json_string_value(json_object_get(p, "fqdn")), "vprodemo.com");
  assert_string_equal(json_string_value(json_object_get(p, "client")), "RPC");
  assert_string_equal(json_string_value(json_array_get(json_object_get(p, "certHashes"), 0)), W.root_hash);
  assert_true(json_is_object(json_object_get(p, "ipConfiguration")));
  assert_true(json_is_object(json_object_get(p, "hostnameInfo")));
  json_decref(p);
}

static void test_ccm_activation_then_calls_home(void **state) {
  assert_non_null(strstr(rpc_status(0), "ok success"));
  const char *info = dmt_test_sim_control(W.control, "info " GUID_PREFIX "000000000000");
  assert_non_null(strstr(info, "\"mode\":\"ccm\""));
  assert_non_null(strstr(info, "\"username\":\"" MPS_USER "\""));
  assert_non_null(strstr(info, "\"user_initiated_state\":32771"));
  /* the device calls the MPS RPS configured, verifying it against the root RPS installed */
  assert_true(dmt_test_wait_until(ready_at_mps, (void *)(uintptr_t)0, 30000));
  struct apf_server_stats st;
  apf_server_stats(W.mps, &st);
  assert_int_equal(st.violations, 0);
}

static void test_acm_activation(void **state) {
  run_job(1, "activate", "acm");
  assert_non_null(strstr(rpc_status(1), "ok success: {\"Status\":\"Activated to admin control mode.\"}"));
  const char *info = dmt_test_sim_control(W.control, "info " GUID_PREFIX "000000000001");
  assert_non_null(strstr(info, "\"mode\":\"acm\""));
  assert_non_null(strstr(info, "\"mebx_password_set\":true"));
  assert_true(dmt_test_wait_until(ready_at_mps, (void *)(uintptr_t)1, 30000));
}

static void test_acm_with_tampered_signature_fails(void **state) {
  run_job(2, "activate", "acmtampered");
  assert_non_null(strstr(rpc_status(2), "ok error"));
  char result[256];
  job_result(2, result, sizeof result);
  assert_string_equal(result, "error Failed to activate in admin control mode.");
  const char *info = dmt_test_sim_control(W.control, "info " GUID_PREFIX "000000000002");
  assert_non_null(strstr(info, "\"mode\":\"pre\""));
  assert_null(strstr(info, "\"mps\""));
}

static bool gone_from_mps(void *arg) { return !apf_server_is_ready(W.mps, guid(0)); }

static void test_deactivation(void **state) {
  struct apf_server_stats before;
  apf_server_stats(W.mps, &before);
  run_job(0, "deactivate", CCM_PASSWORD);
  assert_non_null(strstr(rpc_status(0), "ok success"));
  json_t *p = first_payload(0, FLOW_DEACTIVATE);
  assert_non_null(p);
  assert_string_equal(json_string_value(json_object_get(json_object_get(p, "_envelope"), "method")),
                      "deactivate --password " CCM_PASSWORD);
  assert_int_equal(json_integer_value(json_object_get(p, "currentMode")), 1);
  json_decref(p);
  /* it hangs up with DISCONNECT and stays away */
  assert_true(dmt_test_wait_until(gone_from_mps, NULL, 10000));
  struct apf_server_stats after;
  apf_server_stats(W.mps, &after);
  assert_int_equal(after.disconnects, before.disconnects + 1);
  const char *info = dmt_test_sim_control(W.control, "info " GUID_PREFIX "000000000000");
  assert_non_null(strstr(info, "\"mode\":\"pre\""));
  /* a bad URL is refused at once */
  assert_non_null(strstr(dmt_test_sim_control(W.control, "activate " GUID_PREFIX "000000000003 http://x/ ccm"),
                         "error"));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_first_message),
      cmocka_unit_test(test_ccm_activation_then_calls_home),
      cmocka_unit_test(test_acm_activation),
      cmocka_unit_test(test_acm_with_tampered_signature_fails),
      cmocka_unit_test(test_deactivation),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
