/*
 * The RPC <-> RPS message envelope (rps-activation.md §1.2) and the device
 * payload of activate/deactivate/maintenance (§1.5). Pure: no I/O, no
 * state. Strict about shape and size: a text message is one JSON object of
 * at most 100 KiB whose known keys are strings (payload may be null);
 * unknown keys are ignored as DMT ignores them. Payload strings have fixed
 * caps; anything longer is "Invalid payload from client".
 */
#include <ctype.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dmt/amt_guid.h"
#include "rps.h"

static const char *const envelope_keys[] = {"method", "apiKey", "appVersion", "protocolVersion", "status",
                                            "message", "payload", "tenantId", "fqdn"};

void rpc_msg_free(struct rpc_msg *m) {
  char **f[] = {&m->method, &m->api_key, &m->app_version, &m->protocol_version, &m->status,
                &m->message, &m->payload, &m->tenant_id, &m->fqdn};
  for (size_t i = 0; i < sizeof f / sizeof f[0]; i++) {
    free(*f[i]);
    *f[i] = NULL;
  }
}

int rpc_msg_decode(const char *text, size_t len, struct rpc_msg *m, char *err, size_t errlen) {
  memset(m, 0, sizeof *m);
  if (len > RPS_MAX_MESSAGE) {
    snprintf(err, errlen, "message larger than %u bytes", RPS_MAX_MESSAGE);
    return -1;
  }
  json_error_t je;
  /* jansson: rejects duplicate keys, NUL in strings and trailing data; depth is bounded by its own limit. */
  json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
  if (!root) {
    snprintf(err, errlen, "invalid JSON: %s", je.text);
    return -1;
  }
  if (!json_is_object(root)) {
    json_decref(root);
    snprintf(err, errlen, "message is not a JSON object");
    return -1;
  }
  char **f[] = {&m->method, &m->api_key, &m->app_version, &m->protocol_version, &m->status,
                &m->message, &m->payload, &m->tenant_id, &m->fqdn};
  for (size_t i = 0; i < sizeof envelope_keys / sizeof envelope_keys[0]; i++) {
    json_t *v = json_object_get(root, envelope_keys[i]);
    if (!v || json_is_null(v)) continue;
    if (!json_is_string(v)) {
      snprintf(err, errlen, "%s must be a string", envelope_keys[i]);
      json_decref(root);
      rpc_msg_free(m);
      return -1;
    }
    *f[i] = strndup(json_string_value(v), json_string_length(v));
    if (!*f[i]) {
      snprintf(err, errlen, "out of memory");
      json_decref(root);
      rpc_msg_free(m);
      return -1;
    }
  }
  json_decref(root);
  if (!m->method || !*m->method) {
    snprintf(err, errlen, "missing method");
    rpc_msg_free(m);
    return -1;
  }
  return 0;
}

char *rpc_msg_encode(const char *method, const char *status, const char *message, const char *payload) {
  json_t *o = json_object();
  json_object_set_new(o, "method", json_string(method));
  json_object_set_new(o, "apiKey", json_string("xxxxx"));
  json_object_set_new(o, "appVersion", json_string(RPS_APP_VERSION));
  json_object_set_new(o, "protocolVersion", json_string(RPS_PROTOCOL_VERSION));
  json_object_set_new(o, "status", json_string(status));
  json_object_set_new(o, "message", json_string(message ? message : ""));
  json_object_set_new(o, "payload", payload ? json_string(payload) : json_null());
  json_object_set_new(o, "tenantId", json_string(""));
  char *s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
  json_decref(o);
  return s;
}

int rps_b64_decode(const char *in, size_t inlen, uint8_t **out, size_t *outlen) {
  *out = NULL;
  *outlen = 0;
  /* EVP_DecodeBlock wants whole quanta; it also skips leading/trailing whitespace, which we refuse. */
  if (inlen % 4 != 0) return -1;
  for (size_t i = 0; i < inlen; i++) {
    unsigned char ch = (unsigned char)in[i];
    if (!(isalnum(ch) || ch == '+' || ch == '/' || (ch == '=' && i >= inlen - 2))) return -1;
  }
  if (inlen >= 2 && in[inlen - 2] == '=' && in[inlen - 1] != '=') return -1;
  uint8_t *buf = malloc(inlen / 4 * 3 + 1);
  if (!buf) return -1;
  if (inlen == 0) {
    *out = buf;
    return 0;
  }
  int n = EVP_DecodeBlock(buf, (const unsigned char *)in, (int)inlen);
  if (n < 0) {
    free(buf);
    return -1;
  }
  size_t pad = (in[inlen - 1] == '=') + (in[inlen - 2] == '=');
  *out = buf;
  *outlen = (size_t)n - pad;
  buf[*outlen] = 0;
  return 0;
}

char *rps_b64_encode(const uint8_t *in, size_t len) {
  char *out = malloc((len + 2) / 3 * 4 + 1);
  if (!out) return NULL;
  EVP_EncodeBlock((unsigned char *)out, in, (int)len);
  return out;
}

/* ---- payload ---- */

/* Copies a JSON string (or a number, rendered as JavaScript would) into out; -1 if too long or another type. */
static int get_text(json_t *o, const char *key, char *out, size_t outlen, bool *present) {
  json_t *v = json_object_get(o, key);
  if (present) *present = v && !json_is_null(v);
  out[0] = '\0';
  if (!v || json_is_null(v)) return 0;
  if (json_is_string(v)) {
    if (json_string_length(v) >= outlen || strlen(json_string_value(v)) != json_string_length(v)) return -1;
    memcpy(out, json_string_value(v), json_string_length(v) + 1);
    return 0;
  }
  if (json_is_number(v)) {
    rps_js_number_string(json_number_value(v), out, outlen);
    return 0;
  }
  return -1;
}

static bool truthy(json_t *v) {
  if (!v || json_is_null(v) || json_is_false(v)) return false;
  if (json_is_string(v)) return json_string_length(v) > 0;
  if (json_is_number(v)) return json_number_value(v) != 0;
  return true;
}

/* §1.5 rule 1: bytes 0-3, 4-5, 6-7 little-endian, 8-9 big-endian, 10-15 as hex. */
static int uuid_from_array(json_t *a, char out[37]) {
  if (json_array_size(a) != 16) return -1;
  uint8_t b[16];
  for (size_t i = 0; i < 16; i++) {
    json_t *x = json_array_get(a, i);
    if (!json_is_integer(x) || json_integer_value(x) < 0 || json_integer_value(x) > 255) return -1;
    b[i] = (uint8_t)json_integer_value(x);
  }
  dmt_amt_uuid_to_guid(b, out);
  return 0;
}

void rpc_device_free(struct rpc_device *d) {
  OPENSSL_cleanse(d->password, sizeof d->password);
  for (size_t i = 0; i < d->ncert_hashes; i++) free(d->cert_hashes[i]);
  free(d->cert_hashes);
  d->cert_hashes = NULL;
  d->ncert_hashes = 0;
}

#define INVALID(...)                     \
  do {                                   \
    snprintf(err, errlen, __VA_ARGS__);  \
    goto fail;                           \
  } while (0)

int rpc_device_decode(const uint8_t *text, size_t len, const char *client_id, struct rpc_device *d, char *err,
                      size_t errlen) {
  memset(d, 0, sizeof *d);
  d->current_mode = -1;
  json_error_t je;
  json_t *o = json_loadb((const char *)text, len, JSON_REJECT_DUPLICATES, &je);
  if (!o) {
    snprintf(err, errlen, "Failed to parse client message payload. %s", je.text);
    return -1;
  }
  if (!json_is_object(o) || !truthy(json_object_get(o, "client")) || !truthy(json_object_get(o, "ver")) ||
      !truthy(json_object_get(o, "build")) || !truthy(json_object_get(o, "uuid")))
    INVALID("Invalid payload from client");
  char client[16];
  if (get_text(o, "ver", d->ver, sizeof d->ver, NULL) || get_text(o, "build", d->build, sizeof d->build, NULL) ||
      get_text(o, "sku", d->sku, sizeof d->sku, NULL) ||
      get_text(o, "features", d->features, sizeof d->features, NULL) ||
      get_text(o, "username", d->username, sizeof d->username, NULL) ||
      get_text(o, "password", d->password, sizeof d->password, NULL) ||
      get_text(o, "hostname", d->hostname, sizeof d->hostname, NULL) ||
      get_text(o, "fqdn", d->fqdn, sizeof d->fqdn, NULL) ||
      get_text(o, "friendlyName", d->friendly_name, sizeof d->friendly_name, NULL) ||
      get_text(o, "client", client, sizeof client, NULL))
    INVALID("Invalid payload from client");
  json_t *u = json_object_get(o, "uuid");
  char raw_uuid[64] = "";
  if (json_is_array(u)) {
    if (uuid_from_array(u, raw_uuid)) INVALID("%s - uuid not valid length", client_id);
  } else if (get_text(o, "uuid", raw_uuid, sizeof raw_uuid, NULL)) {
    INVALID("%s - uuid not valid length", client_id);
  }
  if (strlen(raw_uuid) != 36) INVALID("%s - uuid not valid length", client_id);
  if (dmt_guid_normalize(raw_uuid, d->uuid) != 0) INVALID("%s - uuid not valid", client_id);
  json_t *cm = json_object_get(o, "currentMode");
  if (json_is_integer(cm) && json_integer_value(cm) >= 0 && json_integer_value(cm) <= 255)
    d->current_mode = (int)json_integer_value(cm);
  json_t *h = json_object_get(o, "certHashes");
  if (h && !json_is_null(h)) {
    if (!json_is_array(h) || json_array_size(h) > 64) INVALID("Invalid payload from client");
    d->has_cert_hashes = true;
    d->cert_hashes = calloc(json_array_size(h) + 1, sizeof *d->cert_hashes);
    if (!d->cert_hashes) INVALID("out of memory");
    for (size_t i = 0; i < json_array_size(h); i++) {
      json_t *x = json_array_get(h, i);
      if (!json_is_string(x) || json_string_length(x) > 128) INVALID("Invalid payload from client");
      char *s = strdup(json_string_value(x));
      if (!s) INVALID("out of memory");
      for (char *p = s; *p; p++) *p = (char)tolower((unsigned char)*p);
      d->cert_hashes[d->ncert_hashes++] = s;
    }
  }
  json_t *ip = json_object_get(o, "ipConfiguration");
  if (json_is_object(ip)) {
    d->ip.present = true;
    d->ip.dhcp = json_is_true(json_object_get(ip, "dhcp"));
    d->ip.is_static = json_is_true(json_object_get(ip, "static"));
    d->ip.ipsync = json_is_true(json_object_get(ip, "ipsync"));
    if (get_text(ip, "ipAddress", d->ip.ip, sizeof d->ip.ip, NULL) ||
        get_text(ip, "netmask", d->ip.netmask, sizeof d->ip.netmask, NULL) ||
        get_text(ip, "gateway", d->ip.gateway, sizeof d->ip.gateway, NULL) ||
        get_text(ip, "primaryDns", d->ip.dns1, sizeof d->ip.dns1, NULL) ||
        get_text(ip, "secondaryDns", d->ip.dns2, sizeof d->ip.dns2, NULL))
      INVALID("Invalid payload from client");
  }
  json_t *hn = json_object_get(o, "hostnameInfo");
  if (json_is_object(hn)) {
    d->has_hostname_info = true;
    if (get_text(hn, "hostname", d->os_hostname, sizeof d->os_hostname, NULL) ||
        get_text(hn, "dnsSuffixOS", d->os_dns_suffix, sizeof d->os_dns_suffix, NULL))
      INVALID("Invalid payload from client");
  }
  d->tls_enforced = json_is_true(json_object_get(o, "tlsEnforced"));
  d->tls_tunnel = json_is_true(json_object_get(o, "tlsTunnel"));
  json_decref(o);
  return 0;
fail:
  json_decref(o);
  rpc_device_free(d);
  return -1;
}
