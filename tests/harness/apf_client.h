/*
 * A minimal device side of CIRA for tests that need to misbehave where
 * dmt-sim will not: TLS to the terminator (verifying its certificate as
 * firmware does, by IP), then APF messages built with common/apf's encoders
 * (byte-exact per mps-cira.md), sent whole, split or batched, and the
 * terminator's answers decoded one by one. Blocking sockets with short
 * receive timeouts: simple, and fine for a test.
 */
#ifndef DMT_TEST_APF_CLIENT_H
#define DMT_TEST_APF_CLIENT_H

#include <openssl/ssl.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dmt/apf.h"
#include "dmt/buf.h"

struct raw {
  int fd;
  SSL *ssl;
  struct dmt_buf in;
  size_t used; /* bytes of the last message returned, consumed on the next read */
  bool eof;
  bool got_disconnect;
  uint32_t disconnect_reason;
};

/* TLS to 127.0.0.1:port, from a given loopback source address (NULL: any). */
bool raw_connect_from(struct raw *r, SSL_CTX *ctx, int port, const char *source);
void raw_free(struct raw *r);
bool raw_write(struct raw *r, const void *p, size_t n);
/* Writes the buffer in pieces of `piece` bytes (0: whole), pausing so each lands in its own read; frees it. */
bool raw_send(struct raw *r, struct dmt_buf *b, size_t piece);
/* The next APF message: 1, 0 on timeout, -1 once the connection is closed. */
int raw_next(struct raw *r, struct dmt_apf_msg *m, int timeout_ms);
/* Waits for a message of `type` (keepalive options and channel opens in between are skipped). */
bool raw_expect(struct raw *r, uint8_t type, struct dmt_apf_msg *m, int timeout_ms);
/* True once the terminator closed the connection (r->got_disconnect / disconnect_reason tell how). */
bool raw_closed(struct raw *r, int timeout_ms);
/* PROTOCOLVERSION, SERVICE_REQUEST(auth), USERAUTH_REQUEST(password). */
void put_login(struct dmt_buf *b, const char *guid, const char *user, const char *pass);
/* SERVICE_REQUEST(pfwd) and the first nports tcpip-forward requests, in firmware's order. */
void put_forwards(struct dmt_buf *b, int nports);
/* Connects and logs in; true on USERAUTH_SUCCESS. */
bool raw_login_as(struct raw *r, SSL_CTX *ctx, int port, const char *source, const char *guid, const char *user,
                  const char *pass);
bool raw_keepalive_ok(struct raw *r, uint32_t cookie);

#endif
