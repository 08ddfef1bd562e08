/*
 * Request plumbing independent of the HTTP library: query-string decoding,
 * UTF-8 checks, and turning a received request (method, path, query, headers,
 * body) into the JSON "locations" the validators and handlers read. Pure, so
 * the fuzz target drives it directly.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bridge.h"

const char *br_method_name(unsigned m) {
  switch (m) {
    case BR_M_GET: return "GET";
    case BR_M_POST: return "POST";
    case BR_M_PUT: return "PUT";
    case BR_M_PATCH: return "PATCH";
    case BR_M_DELETE: return "DELETE";
    case BR_M_OPTIONS: return "OPTIONS";
    case BR_M_HEAD: return "HEAD";
    default: return "OTHER";
  }
}

void br_request_clear(struct br_request *r) {
  free(r->path);
  for (size_t i = 0; i < r->nquery; i++) {
    free(r->query[i].key);
    free(r->query[i].value);
  }
  free(r->authorization);
  free(r->content_type);
  free(r->if_match);
  free(r->if_none_match);
  free(r->cache_control);
  free(r->project_id);
  free(r->body);
  memset(r, 0, sizeof *r);
}

bool br_utf8_valid(const char *s, size_t len) {
  const unsigned char *p = (const unsigned char *)s, *end = p + len;
  while (p < end) {
    unsigned c = *p;
    size_t n;
    unsigned min;
    if (c < 0x80) {
      if (c == 0) return false; /* no NUL inside text we hand to C strings */
      p++;
      continue;
    } else if ((c & 0xe0) == 0xc0) {
      n = 1;
      min = 0x80;
      c &= 0x1f;
    } else if ((c & 0xf0) == 0xe0) {
      n = 2;
      min = 0x800;
      c &= 0x0f;
    } else if ((c & 0xf8) == 0xf0) {
      n = 3;
      min = 0x10000;
      c &= 0x07;
    } else {
      return false;
    }
    if ((size_t)(end - p) <= n) return false;
    for (size_t i = 1; i <= n; i++) {
      if ((p[i] & 0xc0) != 0x80) return false;
      c = (c << 6) | (p[i] & 0x3f);
    }
    if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff)) return false;
    p += n + 1;
  }
  return true;
}

static int hexv(int c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

int br_url_decode(char *s) {
  char *w = s;
  for (const char *r = s; *r; r++) {
    if (*r == '%') {
      int hi = hexv((unsigned char)r[1]), lo = hi >= 0 ? hexv((unsigned char)r[2]) : -1;
      if (hi < 0 || lo < 0) return -1;
      *w++ = (char)(hi << 4 | lo);
      r += 2;
    } else {
      *w++ = *r;
    }
  }
  *w = '\0';
  return 0;
}

static int add_pair(struct br_request *r, const char *k, size_t kl, const char *v, size_t vl) {
  if (r->nquery >= BR_MAX_QUERY) return -1;
  char *key = strndup(k, kl), *val = strndup(v, vl);
  if (!key || !val) {
    free(key);
    free(val);
    return -1;
  }
  for (char *p = key; *p; p++)
    if (*p == '+') *p = ' ';
  for (char *p = val; *p; p++)
    if (*p == '+') *p = ' ';
  if (br_url_decode(key) != 0 || br_url_decode(val) != 0 || !br_utf8_valid(key, strlen(key)) ||
      !br_utf8_valid(val, strlen(val)) || !*key) {
    free(key);
    free(val);
    return -1;
  }
  r->query[r->nquery].key = key;
  r->query[r->nquery].value = val;
  r->nquery++;
  return 0;
}

int br_query_parse(struct br_request *r, const char *qs, size_t len) {
  size_t i = 0;
  while (i < len) {
    size_t j = i;
    while (j < len && qs[j] != '&') j++;
    if (j > i) {
      const char *eq = memchr(qs + i, '=', j - i);
      int rc = eq ? add_pair(r, qs + i, (size_t)(eq - (qs + i)), eq + 1, (size_t)(qs + j - eq - 1))
                  : add_pair(r, qs + i, j - i, "", 0);
      if (rc != 0) return -1;
    }
    i = j + 1;
  }
  return 0;
}

int br_query_add_fragment(struct br_request *r, const char *frag) {
  /* lws has already url-decoded the fragment: store it verbatim */
  if (r->nquery >= BR_MAX_QUERY) return -1;
  const char *eq = strchr(frag, '=');
  size_t kl = eq ? (size_t)(eq - frag) : strlen(frag);
  if (!kl || !br_utf8_valid(frag, strlen(frag))) return -1;
  r->query[r->nquery].key = strndup(frag, kl);
  r->query[r->nquery].value = strdup(eq ? eq + 1 : "");
  if (!r->query[r->nquery].key || !r->query[r->nquery].value) {
    free(r->query[r->nquery].key);
    free(r->query[r->nquery].value);
    return -1;
  }
  r->nquery++;
  return 0;
}

const char *br_param(const struct br_txn *t, size_t i) { return i < t->nparams ? t->params[i] : ""; }

const char *br_query(const struct br_txn *t, const char *key) {
  for (size_t i = 0; i < t->req.nquery; i++)
    if (!strcmp(t->req.query[i].key, key)) return t->req.query[i].value;
  return NULL;
}


void br_vctx_init(struct br_vctx *v, struct br_txn *t, PGconn *db) {
  if (!json_is_object(t->body) && !json_is_array(t->body)) {
    json_decref(t->body);
    t->body = json_object();
  }
  v->body = t->body;
  v->params = t->jparams;
  v->query = t->jquery;
  v->db = db;
  v->tenant = t->who.tenant;
  v->ud = NULL;
}
