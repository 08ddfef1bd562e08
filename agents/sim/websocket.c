/*
 * WebSocket client framing (RFC 6455) for the RPC side, no I/O: the upgrade
 * request and the check of the server's 101 (Sec-WebSocket-Accept =
 * base64(SHA-1(key + GUID)), OpenSSL for both), masked client frames, and an
 * incremental frame decoder with bounds checks.
 *
 * Why not libwebsockets here: the simulator runs every device on one epoll
 * loop (common/evloop.c) and opens up to thousands of RPC sessions at once
 * next to tens of thousands of CIRA tunnels. lws brings its own service loop;
 * driving it from ours needs its external-poll glue and a second TLS stack
 * configuration. The client half of the protocol RPS speaks (one text
 * message per frame, ping/pong, close) is small, and the stream, TLS and
 * timers are already the simulator's own (net.c), so the client lives on the
 * same loop. The test suite checks it against an lws server.
 */
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "sim.h"

#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
#define MAX_HANDSHAKE_REPLY 8192

int sim_ws_handshake_request(struct dmt_buf *out, const char *host, unsigned port, const char *path,
                             char key_out[32]) {
  uint8_t raw[16];
  if (RAND_bytes(raw, sizeof raw) != 1) return -1;
  EVP_EncodeBlock((unsigned char *)key_out, raw, sizeof raw);
  char authority[300];
  bool ipv6 = strchr(host, ':') != NULL;
  if (port == 80 || port == 443) snprintf(authority, sizeof authority, ipv6 ? "[%s]" : "%s", host);
  else snprintf(authority, sizeof authority, ipv6 ? "[%s]:%u" : "%s:%u", host, port);
  return dmt_buf_printf(out,
                        "GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                        "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n",
                        path, authority, key_out);
}

/* Value of header `name` within the header block [p, end), or NULL (copied into out). */
static const char *header(const char *p, const char *end, const char *name, char *out, size_t n) {
  size_t nl = strlen(name);
  while (p < end) {
    const char *eol = memchr(p, '\n', (size_t)(end - p));
    if (!eol) eol = end;
    if ((size_t)(eol - p) > nl && !strncasecmp(p, name, nl) && p[nl] == ':') {
      const char *v = p + nl + 1;
      while (v < eol && (*v == ' ' || *v == '\t')) v++;
      const char *ve = eol;
      while (ve > v && (ve[-1] == '\r' || ve[-1] == ' ')) ve--;
      snprintf(out, n, "%.*s", (int)(ve - v), v);
      return out;
    }
    p = eol + 1;
  }
  return NULL;
}

static bool has_token(const char *list, const char *token) {
  size_t tl = strlen(token);
  for (const char *p = list; *p;) {
    while (*p == ' ' || *p == ',') p++;
    const char *e = p;
    while (*e && *e != ',') e++;
    const char *te = e;
    while (te > p && te[-1] == ' ') te--;
    if ((size_t)(te - p) == tl && !strncasecmp(p, token, tl)) return true;
    p = e;
  }
  return false;
}

int sim_ws_handshake_response(const uint8_t *buf, size_t len, const char *key, size_t *consumed) {
  const char *p = (const char *)buf;
  const char *end = memmem(p, len, "\r\n\r\n", 4);
  if (!end) return len > MAX_HANDSHAKE_REPLY ? -1 : 0;
  *consumed = (size_t)(end - p) + 4;
  if (len < 12 || strncmp(p, "HTTP/1.1 101", 12)) return -1;
  char v[256];
  if (!header(p, end, "Upgrade", v, sizeof v) || strcasecmp(v, "websocket")) return -1;
  if (!header(p, end, "Connection", v, sizeof v) || !has_token(v, "upgrade")) return -1;
  if (!header(p, end, "Sec-WebSocket-Accept", v, sizeof v)) return -1;
  char material[96];
  snprintf(material, sizeof material, "%s" WS_GUID, key);
  uint8_t sha[20];
  unsigned shalen = 0;
  EVP_Digest(material, strlen(material), sha, &shalen, EVP_sha1(), NULL);
  char expect[32];
  EVP_EncodeBlock((unsigned char *)expect, sha, sizeof sha);
  return strcmp(v, expect) ? -1 : 1;
}

int sim_ws_frame(struct dmt_buf *out, unsigned opcode, const void *data, size_t len) {
  uint8_t hdr[14];
  size_t h = 0;
  hdr[h++] = (uint8_t)(0x80 | (opcode & 0x0F));
  if (len < 126) {
    hdr[h++] = (uint8_t)(0x80 | len);
  } else if (len <= 0xFFFF) {
    hdr[h++] = 0x80 | 126;
    hdr[h++] = (uint8_t)(len >> 8);
    hdr[h++] = (uint8_t)len;
  } else {
    hdr[h++] = 0x80 | 127;
    for (int i = 7; i >= 0; i--) hdr[h++] = (uint8_t)((uint64_t)len >> (8 * i));
  }
  uint8_t mask[4];
  RAND_bytes(mask, sizeof mask);
  memcpy(hdr + h, mask, 4);
  h += 4;
  uint8_t *w = dmt_buf_reserve(out, h + len);
  if (!w) return -1;
  memcpy(w, hdr, h);
  const uint8_t *src = data;
  for (size_t i = 0; i < len; i++) w[h + i] = src[i] ^ mask[i & 3];
  dmt_buf_commit(out, h + len);
  return 0;
}

int sim_ws_parse(uint8_t *buf, size_t len, size_t max_payload, struct sim_ws_frame *f, size_t *consumed) {
  if (len < 2) return 0;
  if (buf[0] & 0x70) return -1; /* no extensions were negotiated */
  f->fin = buf[0] & 0x80;
  f->opcode = buf[0] & 0x0F;
  bool masked = buf[1] & 0x80;
  uint64_t plen = buf[1] & 0x7F;
  size_t h = 2;
  if (plen == 126) {
    if (len < 4) return 0;
    plen = (uint64_t)buf[2] << 8 | buf[3];
    h = 4;
  } else if (plen == 127) {
    if (len < 10) return 0;
    plen = 0;
    for (int i = 0; i < 8; i++) plen = plen << 8 | buf[2 + i];
    h = 10;
  }
  bool control = f->opcode & 0x8;
  if ((control && (!f->fin || plen > 125)) || plen > max_payload) return -1;
  if (f->opcode != 0 && f->opcode != SIM_WS_TEXT && f->opcode != SIM_WS_BINARY && f->opcode != SIM_WS_CLOSE &&
      f->opcode != SIM_WS_PING && f->opcode != SIM_WS_PONG)
    return -1;
  uint8_t mask[4] = {0};
  if (masked) {
    if (len < h + 4) return 0;
    memcpy(mask, buf + h, 4);
    h += 4;
  }
  if (len - h < plen) return 0;
  uint8_t *payload = buf + h;
  if (masked)
    for (size_t i = 0; i < plen; i++) payload[i] ^= mask[i & 3];
  f->data = payload;
  f->len = (size_t)plen;
  *consumed = h + (size_t)plen;
  return 1;
}
