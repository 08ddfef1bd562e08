/*
 * A minimal, strict CIRA server for testing dmt-sim: TLS on its own event
 * loop thread, and APF checked byte by byte against the layouts of
 * mps-cira.md §1.4 with its own small encoder and parser (not the codec the
 * simulator uses), so a mistake shared by codec and simulator still fails.
 *
 * Per connection it expects, exactly: PROTOCOLVERSION (93 bytes, 1.0,
 * trigger PERIODIC, a known UUID, 64 zero bytes) and SERVICE_REQUEST
 * auth@amt.intel.com; after SERVICE_ACCEPT, USERAUTH_REQUEST with the
 * device's user, service pfwd@amt.intel.com, method password, the FALSE byte
 * and the device's password; after USERAUTH_SUCCESS, SERVICE_REQUEST
 * pfwd@amt.intel.com; then seven GLOBAL_REQUEST tcpip-forward (want-reply 1,
 * the device's host name) for 16993, 16992, 664, 623, 16995, 16994, 5900,
 * each only after the previous REQUEST_SUCCESS; after the last, it sends
 * KEEPALIVE_OPTIONS_REQUEST(interval, 0) and expects the matching reply,
 * then KEEPALIVE_REQUEST with cookies 1, 2, ... at that interval. Anything
 * else is recorded as a violation and the connection is closed. A wrong
 * password gets DMT MPS's 15-byte USERAUTH_FAILURE.
 *
 * WS-Man runs through APF channels the way DMT's MPS does (CHANNEL_OPEN
 * forwarded-tcpip to 16992, first request without credentials, 401 with
 * Connection: close, a new channel with digest), with the server's window
 * enforced and the device's WINDOW_ADJUSTs recorded.
 */
#ifndef APF_TEST_SERVER_H
#define APF_TEST_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct apf_server;

struct apf_server *apf_server_start(const char *cert_pem, const char *key_pem, uint32_t keepalive_s);
/* Same, optionally with the terminator's legacy TLS switch (TLS 1.0+, RSA key exchange) for AMT 11/12. */
struct apf_server *apf_server_start_tls(const char *cert_pem, const char *key_pem, uint32_t keepalive_s, bool legacy);
void apf_server_stop(struct apf_server *s);
int apf_server_port(const struct apf_server *s);

/* The credentials and host name a device must present. */
void apf_server_expect(struct apf_server *s, const char *guid, const char *user, const char *password,
                       const char *hostname);

struct apf_server_stats {
  size_t connections;        /* TLS connections accepted */
  size_t ready;              /* devices currently past the forward/keepalive-options phase */
  size_t sessions;           /* completed handshakes, in all */
  size_t keepalive_checked;  /* devices whose two first keepalives came at the negotiated interval */
  size_t keepalive_early;    /* keepalives that came too early or too late */
  size_t auth_failures;
  size_t disconnects;        /* APF DISCONNECT received (reason 11, exact layout) */
  size_t bad_frames;         /* messages of an unknown type */
  size_t violations;         /* anything else off the reference layouts */
};
void apf_server_stats(struct apf_server *s, struct apf_server_stats *out);
/* The first violations, one per line (static buffer). */
const char *apf_server_violations(struct apf_server *s);
/* Completed handshakes of one device. */
size_t apf_server_sessions_of(struct apf_server *s, const char *guid);
bool apf_server_is_ready(struct apf_server *s, const char *guid);

struct apf_wsman_result {
  bool refused;             /* CHANNEL_OPEN_FAILURE */
  int first_status;         /* the unauthenticated attempt (expect 401) */
  bool first_closed;        /* the device closed that channel itself (Connection: close) */
  bool first_connection_close; /* the 401 carried Connection: close */
  char realm[64];
  int status;               /* the authenticated attempt */
  char *body;               /* its de-chunked body (malloc'd) */
  bool chunked;
  bool window_respected;    /* never more CHANNEL_DATA than the server's credits */
  bool device_adjusted;     /* the device returned credits with WINDOW_ADJUST */
  uint64_t elapsed_ms;      /* authenticated request to complete response */
  char error[256];
};

/*
 * Runs one WS-Man exchange with the device over new channels (blocking; the
 * server thread does the work). window is the server's initial window per
 * channel; pad_bytes adds an XML comment of that size to the request (to
 * exercise the device's own window). Returns 0 when the exchange completed.
 */
int apf_server_wsman(struct apf_server *s, const char *guid, const char *envelope, const char *amt_password,
                     uint32_t window, size_t pad_bytes, struct apf_wsman_result *r, int timeout_ms);
void apf_wsman_result_free(struct apf_wsman_result *r);

/* Test certificates written into dir: an MPS root, a server certificate it issued for 127.0.0.1 (with the
 * root in the chain file), one it issued for mps.example.com, and a self-signed one from another root. */
struct apf_pki {
  char root[600], cert[600], key[600], named_cert[600], named_key[600], other_cert[600], other_key[600];
};
int apf_test_pki(const char *dir, struct apf_pki *out);

/* Mixed-endian GUID of 16 UUID bytes, written independently of the codec (mps-cira.md §1.8). */
void apf_uuid_to_guid(const uint8_t uuid[16], char out[37]);

#endif
