/*
 * Response bodies in DMT's shapes, shared by every route file so that no two
 * routes spell an error differently: validation errors (express-validator),
 * RPS errors {"error","message"}, not-found, unexpected {"message"}, the MPS
 * AMT ErrorResponse {"error","errorDescription"} and the not-connected 404.
 * Plus the Express-compatible weak ETag used for 304 answers.
 */
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bridge.h"

void br_out_reset(struct br_out *o) {
  free(o->body);
  free(o->event_topic);
  free(o->event_msg);
  memset(o, 0, sizeof *o);
}

void br_out_drop_event(struct br_out *o) {
  free(o->event_topic);
  free(o->event_msg);
  o->event_topic = NULL;
  o->event_msg = NULL;
  o->event_len = 0;
}

void br_out_raw(struct br_out *o, int status, const char *ctype, const char *body, size_t len) {
  free(o->body);
  o->body = NULL;
  o->len = 0;
  o->status = status;
  o->ctype = ctype;
  if (body && len) {
    o->body = malloc(len + 1);
    if (o->body) {
      memcpy(o->body, body, len);
      o->body[len] = '\0';
      o->len = len;
    }
  }
}

void br_out_json(struct br_out *o, int status, json_t *j) {
  char *text = j ? json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
  json_decref(j);
  free(o->body);
  o->status = status;
  o->ctype = NULL;
  o->body = text;
  o->len = text ? strlen(text) : 0;
}

void br_out_text(struct br_out *o, int status, const char *json_text) {
  br_out_raw(o, status, NULL, json_text, json_text ? strlen(json_text) : 0);
}

void br_out_empty(struct br_out *o, int status) { br_out_raw(o, status, NULL, NULL, 0); }

void br_out_error(struct br_out *o, int status, const char *error, const char *message) {
  json_t *j = json_object();
  if (error) json_object_set_new(j, "error", json_string(error));
  if (message) json_object_set_new(j, "message", json_string(message));
  br_out_json(o, status, j);
}

void br_out_message(struct br_out *o, int status, const char *message) { br_out_error(o, status, NULL, message); }

void br_out_not_found(struct br_out *o, const char *type, const char *name) {
  char msg[600];
  snprintf(msg, sizeof msg, "%s profile %s Not Found", type, name ? name : "");
  br_out_error(o, 404, "Not Found", msg);
}

void br_out_unexpected(struct br_out *o, const char *method, const char *name) {
  char msg[600];
  snprintf(msg, sizeof msg, "Operation failed: %s %s", method, name ? name : "");
  br_out_message(o, 500, msg);
}

/* MPS src/utils/constants.ts HTTPErrorTable */
static const char *http_error_text(int status) {
  switch (status) {
    case 400: return "Incorrect URI or Bad Request";
    case 401: return "Unauthorized";
    case 404: return "Not Found";
    case 408: return "Timeout Error";
    case 409: return "Conflict";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 503: return "Service Unavailable";
    default: return "Internal Server Error";
  }
}

void br_out_amt_error(struct br_out *o, int status, const char *desc) {
  json_t *j = json_object();
  json_object_set_new(j, "error", json_string(http_error_text(status)));
  json_object_set_new(j, "errorDescription", json_string(desc ? desc : ""));
  br_out_json(o, status, j);
}

void br_out_not_connected(struct br_out *o, const char *guid) {
  char desc[300];
  snprintf(desc, sizeof desc, "guid : %s", guid);
  json_t *j = json_object();
  json_object_set_new(j, "error", json_string("Device not found/connected. Please connect again using CIRA."));
  json_object_set_new(j, "errorDescription", json_string(desc));
  br_out_json(o, 404, j);
}

void br_out_validation(struct br_out *o, json_t *errors) {
  json_t *j = json_object();
  json_object_set_new(j, "errors", errors);
  br_out_json(o, 400, j);
}

void br_etag(const char *body, size_t len, char out[64]) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int mdlen = 0;
  EVP_Digest(body ? body : "", len, md, &mdlen, EVP_sha1(), NULL);
  unsigned char b64[64];
  int n = EVP_EncodeBlock(b64, md, (int)mdlen);
  if (n > 27) n = 27; /* Express keeps 27 characters of the base64 SHA-1 */
  snprintf(out, 64, "W/\"%zx-%.*s\"", len, n, (const char *)b64);
}
