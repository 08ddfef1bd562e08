/*
 * dmt-sim internals: a fleet of simulated Intel AMT devices in one process on
 * one epoll loop (common/evloop.c). Each device has its own identity (SMBIOS
 * UUID -> GUID), firmware model, credentials, power state, control mode and
 * CIRA configuration, persisted in a state directory. A device calls home
 * over CIRA (TLS + APF) when it has an MPS and a periodic policy, answers
 * WS-Man through its APF channels (or a local TCP port), and can run the RPC
 * side of an RPS activation or deactivation over a WebSocket.
 *
 * This is the one internal header: every .c file of agents/sim includes it.
 * Memory is budgeted per device (docs/simulator.md): idle state is a few
 * hundred bytes plus OpenSSL's TLS session; HTTP parsers, channel buffers,
 * certificate chains and enumeration contexts exist only while in use.
 */
#ifndef DMT_SIM_H
#define DMT_SIM_H

#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "dmt/buf.h"
#include "dmt/evloop.h"
#include "dmt/http.h"
#include "dmt/log.h"
#include "dmt/strmap.h"
#include "dmt/wsman.h"

/* ------------------------------------------------------------------ */
/* Shared, interned objects                                            */
/* ------------------------------------------------------------------ */

/* Firmware and platform description shared by many devices. */
struct sim_model {
  char version[16];  /* "16.1.27" */
  char build[8];     /* "2225" */
  char sku[8];       /* "16392" */
  char features[40]; /* "AMT Pro Corporate" */
  bool legacy_tls;   /* AMT 11 and 12 offer only old TLS suites (mps-cira.md §1.1) */
};

/* A certificate known to the fleet, interned by SHA-256 (never freed before exit). */
struct sim_cert {
  uint8_t sha256[32];
  char sha256_hex[65];
  uint8_t *der;
  size_t der_len;
  X509 *x509;
};

/* A device's set of trusted root certificates (AMT_PublicKeyCertificate with
 * TrustedRootCertficate=true), interned so that devices with the same roots
 * share one X509_STORE for verifying their MPS. */
struct sim_trust {
  size_t n;
  const struct sim_cert **certs;
  X509_STORE *store;
};

/* Hashes of the provisioning root CAs firmware trusts for ACM (the "certHashes"). */
struct sim_hash {
  uint8_t len; /* 20 (SHA-1), 32 (SHA-256) or 48 (SHA-384) */
  uint8_t md[48];
};

/* ------------------------------------------------------------------ */
/* Device                                                              */
/* ------------------------------------------------------------------ */

/* IPS_HostBasedSetupService.CurrentControlMode */
enum sim_mode { SIM_MODE_PRE = 0, SIM_MODE_CCM = 1, SIM_MODE_ACM = 2 };

/* Which side of the device a WS-Man request came in on (firmware accepts the
 * local OS account $$OsAdmin only on the host interface). */
enum sim_transport { SIM_TRANSPORT_CIRA, SIM_TRANSPORT_LOCAL };

enum sim_conn_state {
  SIM_IDLE,       /* not connected; a reconnect may be scheduled */
  SIM_CONNECTING, /* TCP connect in progress */
  SIM_HANDSHAKE,  /* TLS handshake */
  SIM_AUTH,       /* APF: protocol version, auth service, userauth */
  SIM_FORWARDING, /* APF: pfwd service and tcpip-forward requests */
  SIM_READY,      /* keepalives and channels */
};

/* Faults that stay on until cleared (control socket / CLI). */
enum sim_fault_flag {
  SIM_FAULT_STALL = 1u << 0,          /* stop reading and writing (a hung device) */
  SIM_FAULT_SLOW = 1u << 1,           /* hold every WS-Man response back slow_ms */
  SIM_FAULT_WRONG_PASSWORD = 1u << 2, /* present a wrong CIRA password */
  SIM_FAULT_REFUSE_CHANNEL = 1u << 3, /* answer CHANNEL_OPEN with a failure */
};

/* What AddMpServer, the remote access policies and a fleet file configure. */
struct sim_cira_config {
  const char *host;     /* interned AccessInfo (FQDN or IP) */
  const char *cn;       /* interned CN, checked against the certificate when host is an IP; may be NULL */
  const char *user;     /* interned MPS username */
  const char *alt_host; /* secondary MPS (fleet files), tried after a failure; may be NULL */
  char password[40];
  uint16_t port, alt_port;
  uint8_t info_format; /* 3 IPv4, 4 IPv6, 201 FQDN */
  uint8_t mps_type;    /* AMT_RemoteAccessPolicyAppliesToMPS.MpsType: 0 external, 1 internal, 2 both */
  bool has_mps;        /* AddMpServer done (a Management Presence Server entry exists) */
  bool periodic;       /* a periodic (Trigger 2) policy exists */
  bool user_initiated; /* a user-initiated (Trigger 0) policy exists */
  uint32_t periodic_interval_s;
  uint32_t periodic_lifetime_s, user_initiated_lifetime_s;
};

struct sim_channel;
struct sim_rpc;
struct sim_stream;

typedef void (*sim_stream_fn)(struct sim_stream *st);
typedef void (*sim_stream_close_fn)(struct sim_stream *st, const char *why);

/* A non-blocking TCP (+ optional TLS) client connection on the loop (net.c). */
struct sim_stream {
  struct sim *sim;
  int fd;
  SSL *ssl;
  uint8_t state; /* enum sim_stream_state */
  bool stalled;  /* no reads or writes while set */
  bool tls;
  bool legacy_tls; /* AMT 11/12: TLS 1.2 at most, RSA key exchange suites only */
  const struct sim_trust *trust; /* verify the server against these roots; NULL = no verification */
  const char *name;              /* expected server name or IP (must outlive the stream) */
  struct dmt_buf in, out;
  sim_stream_fn on_open, on_data;
  sim_stream_close_fn on_close;
  void *ud;
};

/* An open WS-Man enumeration (Enumerate until the Pull that returns EndOfSequence). */
struct sim_enum_ctx {
  struct sim_enum_ctx *next;
  uint32_t id;
  const struct amt_class *cls;
  size_t position;
};

/* Rarely used per-device state, allocated on demand and freed when empty. */
struct sim_extra {
  struct sim_acm_chain *chain; /* AddNextCertInChain in progress */
  struct sim_enum_ctx *enums;  /* open WS-Man enumerations */
  uint32_t next_enum_id;
};

struct sim_device {
  struct sim *sim;
  uint32_t index;
  uint8_t uuid[16]; /* raw SMBIOS UUID bytes, as sent in PROTOCOLVERSION */
  char guid[37];    /* DMT's device id: mixed-endian rendering, lowercase */
  const struct sim_model *model;
  const char *dns_suffix; /* interned */
  char hostname[24];

  /* persistent AMT state */
  uint8_t mode;            /* enum sim_mode */
  uint8_t power_state;     /* CIM PowerState: 2 on, 3/4 sleep, 6/8 off, 7 hibernate */
  uint8_t os_power_saving; /* 2 full power, 3 OS power saving */
  bool boot_options_set;   /* AMT_BootSettingData has non-default options */
  bool mebx_password_set;
  bool dhcp, ip_sync, shared_static_ip;
  bool kvm_enabled;
  uint16_t redirection_state; /* AMT_RedirectionService.EnabledState: 32768 none .. 32771 IDER+SOL */
  uint16_t user_initiated_state; /* AMT_UserInitiatedConnectionService.EnabledState */
  uint32_t optin_required;       /* IPS_OptInService.OptInRequired */
  uint32_t static_ip, static_mask, static_gateway, static_dns;
  char amt_ha1[33];       /* HA1 of user "admin" (= NetworkAdminPassword); "" when not provisioned */
  char amt_password[40];  /* plaintext, only when the fleet gave it (used for RPC deactivation) */
  char lsa_password[20];  /* the local system account ($$OsAdmin) password firmware hands to RPC */
  char *detection_strings; /* AMT_EnvironmentDetectionSettingData.DetectionStrings, '\n'-joined; NULL = none */
  const struct sim_trust *trust; /* trusted root certificates; NULL = none */
  struct sim_cira_config *cira;  /* NULL = CIRA not configured */

  /* volatile */
  uint8_t optin_state; /* IPS_OptInService.OptInState: 0 none, 2 code displayed, 3 code received */
  uint32_t optin_code; /* the user consent code "on the screen" */
  uint8_t config_nonce[20]; /* IPS_HostBasedSetupService.ConfigurationNonce */
  char nonce[33];           /* digest nonce handed out by the 401; valid until the firmware restarts */
  struct sim_extra *extra;

  /* CIRA connection */
  uint8_t state; /* enum sim_conn_state */
  bool use_alt;
  uint8_t forwards_acked;
  uint8_t failures; /* consecutive failed connection attempts (back-off) */
  uint32_t keepalive_ms, keepalive_timeout_ms;
  uint32_t cookie;
  uint32_t next_channel_id;
  uint64_t last_rx_ms;
  struct sim_stream conn;
  struct sim_channel *channels;
  struct dmt_timer timer; /* connect deadline, keepalive tick, reconnect back-off or boot delay */

  /* faults */
  uint8_t faults; /* enum sim_fault_flag */
  uint16_t slow_ms;
  bool rebooting;
  bool waiting; /* queued for a handshake slot */

  struct sim_rpc *rpc; /* RPC job in progress */
};

/* ------------------------------------------------------------------ */
/* Fleet                                                               */
/* ------------------------------------------------------------------ */

#define SIM_MAX_CLASSES 96

struct sim_counters {
  uint64_t connects, connected, disconnects, auth_failures, reconnects, tls_failures, protocol_errors;
  uint64_t channels_opened, channels_refused, wsman_requests, wsman_401, wsman_faults;
  uint64_t keepalives_sent, power_changes, faults_injected, state_writes;
  uint64_t rpc_started, rpc_succeeded, rpc_failed, activations_ccm, activations_acm, deactivations;
  uint64_t wsman_by_class[SIM_MAX_CLASSES + 1]; /* indexed like the class table; last = unknown class */
};

struct sim {
  struct dmt_loop *loop;
  struct dmt_log log;
  SSL_CTX *tls;           /* one client context for every device (per-device trust via X509_STORE) */
  bool verify_server;     /* false only with sim.insecure (tests of other behaviours) */
  struct sim_device *devices;
  size_t ndevices;
  struct dmt_strmap by_guid;  /* guid -> device */
  struct dmt_strmap interned; /* string -> the interned copy */
  struct dmt_strmap certs;    /* sha256 hex -> struct sim_cert */
  struct dmt_strmap trusts;   /* joined hashes -> struct sim_trust */
  struct sim_model *models;
  size_t nmodels;
  struct sim_hash *acm_hashes; /* provisioning root hashes every device trusts */
  size_t nacm_hashes;
  const struct sim_trust *default_trust; /* sim.mps_ca: for fleet devices without their own root */
  const struct sim_trust *rpc_trust;     /* sim.rpc_ca: verifies a wss:// RPS; NULL = not verified */
  char *state_dir;
  struct sim_counters count;
  unsigned connect_rate; /* initial connections per second across the fleet (0 = unlimited) */
  unsigned reconnect_min_ms, reconnect_max_ms;
  unsigned keepalive_default_ms;
  unsigned boot_ms;           /* firmware restart time for the reboot fault */
  unsigned policy_interval_s; /* periodic interval for fleet devices without a policy */
  int control_fd;
  char *control_path;
  struct control_client *control_clients;
  int wsman_fd; /* local WS-Man listener, -1 if none */
  size_t rpc_active;
  size_t ready_now;       /* devices with an established tunnel */
  size_t handshaking;     /* devices between connect() and the end of the APF handshake */
  unsigned max_handshakes; /* cap on handshaking (one process plays a whole fleet) */
  uint32_t *admission;     /* ring of device indexes waiting for a handshake slot */
  size_t admission_head, admission_len;
  struct dmt_timer admit;  /* starts waiting devices once slots are free */
  uint64_t start_ms, half_ready_ms, all_ready_ms; /* when half / all of the fleet first had a tunnel */
  unsigned long msg_seq; /* AMT MessageID counter (uuid:00000000-8086-8086-8086-<seq>) */
};

/* ------------------------------------------------------------------ */
/* device_state.c: identity, defaults, persistence                     */
/* ------------------------------------------------------------------ */

void sim_device_init(struct sim *s, struct sim_device *d, uint32_t index, const char *guid);
/* "Digest:" + 32 hex digits derived from the UUID (stable per device, as firmware's is). */
void sim_device_realm(const struct sim_device *d, char out[40]);
/* The UUID bytes as 32 uppercase hex digits (CIM_ComputerSystemPackage.PlatformGUID). */
void sim_device_platform_guid(const struct sim_device *d, char out[33]);
void sim_device_set_amt_password(struct sim_device *d, const char *password);
/* Writes the device's state file atomically (temp + rename); no-op without a state dir. */
void sim_device_save(struct sim_device *d);
/* Loads the state file if there is one; 0 if restored, 1 if none, -1 on a corrupt file. */
int sim_device_restore(struct sim_device *d);
struct sim_cira_config *sim_device_cira(struct sim_device *d); /* allocates on first use */
/* Unprovisioning: back to pre-provisioning with no credentials, certificates or CIRA. */
void sim_device_unprovision(struct sim_device *d);
struct sim_extra *sim_device_extra(struct sim_device *d);
void sim_device_extra_release(struct sim_device *d); /* frees extra if nothing is left in it */
void sim_device_free(struct sim_device *d);
/* Firmware restart: volatile state (nonce, enumerations, chain, channels) is lost. */
void sim_device_reset_volatile(struct sim_device *d);
/* True if the device should keep a CIRA tunnel up (MPS + periodic policy, outside the enterprise). */
bool sim_device_wants_cira(const struct sim_device *d);

/* ------------------------------------------------------------------ */
/* fleet.c: fleet file, templates, lookup, interning                   */
/* ------------------------------------------------------------------ */

struct sim_template {
  size_t count;
  const char *guid_prefix; /* first 24 GUID characters; the index fills the last 12 hex digits */
  const char *mps_hosts;   /* comma list, devices take them round-robin */
  const char *mps_ports;   /* comma list */
  const char *mps_user, *mps_password, *amt_password;
  const char *versions, *builds, *skus; /* comma lists, cycled */
  const char *dns_suffix;
  const char *mode; /* pre, ccm, acm */
};

int sim_fleet_load(struct sim *s, const char *path, char *err, size_t errlen);
int sim_fleet_template(struct sim *s, const struct sim_template *t, char *err, size_t errlen);
struct sim_device *sim_fleet_find(struct sim *s, const char *guid);
const char *sim_intern(struct sim *s, const char *str);
const struct sim_model *sim_model_get(struct sim *s, const char *version, const char *build, const char *sku);
/* Parses "hex,hex,..." provisioning root hashes into s->acm_hashes; -1 on a malformed entry. */
int sim_fleet_add_acm_hashes(struct sim *s, const char *list);
void sim_fleet_free(struct sim *s);

/* ------------------------------------------------------------------ */
/* amt_certs.c: certificates, trust sets, ACM chain and signature       */
/* ------------------------------------------------------------------ */

const struct sim_cert *sim_cert_intern(struct sim *s, const uint8_t *der, size_t len);
const struct sim_cert *sim_cert_intern_pem_file(struct sim *s, const char *path, char *err, size_t errlen);
const struct sim_cert *sim_cert_find(struct sim *s, const char *sha256_hex);
/* The trust set of `base` plus `add` (or minus `remove`), interned. base may be NULL. */
const struct sim_trust *sim_trust_with(struct sim *s, const struct sim_trust *base, const struct sim_cert *add);
const struct sim_trust *sim_trust_without(struct sim *s, const struct sim_trust *base, const struct sim_cert *remove);
/* Writes a certificate into <state_dir>/certs/<sha256>.der once. */
void sim_cert_persist(struct sim *s, const struct sim_cert *c);

/* AddNextCertInChain / AdminSetup return values (IPS_HostBasedSetupService). */
enum amt_hbs_rv {
  AMT_HBS_SUCCESS = 0,
  AMT_HBS_INTERNAL_ERROR = 1,
  AMT_HBS_INVALID_STATE = 2,
  AMT_HBS_INVALID_PARAM = 3,
  AMT_HBS_METHOD_DISABLED = 4,
  AMT_HBS_AUTH_FAILED = 5,
  AMT_HBS_FLASH_WRITE_LIMIT = 6,
};
enum amt_chain_rv {
  AMT_CHAIN_SUCCESS = 0,
  AMT_CHAIN_INVALID_PARAM = 1,
  AMT_CHAIN_INTERNAL_ERROR = 2,
  AMT_CHAIN_INVALID_STATE = 3,
  AMT_CHAIN_CERT_VERIFY_FAILED = 4,
  AMT_CHAIN_LENGTH_EXCEEDED = 5,
};
#define AMT_CHAIN_MAX 4
/* The provisioning certificate chain sent with AddNextCertInChain, leaf first. */
struct sim_acm_chain {
  X509 *certs[AMT_CHAIN_MAX];
  size_t n;
  bool complete; /* the root arrived (CertChainStatus 2) */
};
#define AMT_ACM_EKU_OID "2.16.840.1.113741.1.2.3"

void amt_chain_free(struct sim_acm_chain *ch);
/* One AddNextCertInChain: DER certificate and the leaf/root flags; returns enum amt_chain_rv. */
int amt_chain_add(struct sim_acm_chain *ch, const uint8_t *der, size_t len, bool is_leaf, bool is_root);
/*
 * The checks firmware makes before AdminSetup/UpgradeClientToAdmin succeed:
 * complete chain; root hash in the trusted list; leaf carries the AMT
 * activation EKU (or the Intel setup OU) and its CN's domain matches the
 * device's DNS suffix; every certificate currently valid; and the signature
 * (RSASSA-PKCS1-v1_5, SHA-256; SHA-1 for signing algorithm 1) over
 * ConfigurationNonce || McNonce verifies with the leaf's public key.
 * Returns enum amt_hbs_rv; *why (if non-NULL) names the failed check.
 */
int amt_acm_verify(const struct sim_acm_chain *ch, const struct sim_hash *trusted, size_t ntrusted,
                   const char *dns_suffix, const uint8_t config_nonce[20], const uint8_t *mc_nonce, size_t mc_len,
                   int signing_algorithm, const uint8_t *sig, size_t sig_len, const char **why);
/* SHA-1/256/384 of a certificate compared with a trusted hash list. */
bool amt_hash_trusted(X509 *cert, const struct sim_hash *trusted, size_t ntrusted);
/* Base64 helpers sized for WS-Man values; decode returns the length or -1. */
int sim_base64_decode(const char *in, uint8_t **out);
char *sim_base64_encode(const uint8_t *in, size_t len);

/* ------------------------------------------------------------------ */
/* amt_power.c                                                         */
/* ------------------------------------------------------------------ */

/* AMT PT_STATUS return values DMT decodes (ReturnValueStr). */
#define AMT_RV_SUCCESS 0
#define AMT_RV_INTERNAL_ERROR 1
#define AMT_RV_NOT_READY 2
#define AMT_RV_INVALID_PARAMETER 36

/* CIM_PowerManagementService.RequestPowerStateChange as the platform applies it. */
int amt_power_request(struct sim_device *d, long requested_state);
/* A local power event (button, OS shutdown): sets the state without rules. */
void amt_power_set(struct sim_device *d, uint8_t state);

/* ------------------------------------------------------------------ */
/* net.c: non-blocking TCP/TLS client streams                          */
/* ------------------------------------------------------------------ */

enum sim_stream_state { SIM_STREAM_CLOSED, SIM_STREAM_CONNECTING, SIM_STREAM_HANDSHAKE, SIM_STREAM_OPEN };

void sim_stream_init(struct sim_stream *st, struct sim *s, void *ud);
/*
 * Connects to host:port; with tls, verifies the server against trust (NULL =
 * no verification) and name (an IP address or a DNS name; NULL = host).
 * Callbacks run on the loop; on_close may be called before this returns.
 */
int sim_stream_connect(struct sim_stream *st, const char *host, unsigned port, bool tls, const struct sim_trust *trust,
                       const char *name);
/* Sends what is in st->out (call after appending). */
void sim_stream_flush(struct sim_stream *st);
/* Closes without notifying on_close; graceful sends TLS close_notify first. */
void sim_stream_close(struct sim_stream *st, bool graceful);
void sim_stream_stall(struct sim_stream *st, bool stalled);

/* ------------------------------------------------------------------ */
/* cira_client.c, apf_channels.c                                       */
/* ------------------------------------------------------------------ */

/* Fleet-wide CIRA state (handshake admission); init before starting devices. */
void sim_cira_fleet_init(struct sim *s);
void sim_cira_fleet_free(struct sim *s);
/* Schedules a connection attempt after delay_ms if the device wants CIRA. */
void sim_cira_start(struct sim_device *d, uint64_t delay_ms);
/* Closes the tunnel; graceful sends APF DISCONNECT first. Schedules a reconnect when wanted. */
void sim_cira_drop(struct sim_device *d, const char *why, bool graceful);
/* Closes the tunnel for good (shutdown, unprovisioning): no reconnect. */
void sim_cira_stop(struct sim_device *d, bool graceful);
/* Re-evaluates after a configuration change: connects if newly wanted, disconnects if no longer. */
void sim_cira_reconsider(struct sim_device *d);
void sim_cira_flush(struct sim_device *d);
/* Firmware restart: the tunnel is cut and the device is back (and calls home) after ms. */
void sim_cira_reboot(struct sim_device *d, unsigned ms);
const char *sim_conn_state_name(uint8_t state);

void sim_channel_open(struct sim_device *d, uint32_t peer_id, uint32_t window, uint32_t port);
void sim_channel_data(struct sim_device *d, uint32_t id, const uint8_t *data, uint32_t len);
void sim_channel_window(struct sim_device *d, uint32_t id, uint32_t bytes);
void sim_channel_closed(struct sim_device *d, uint32_t id);
void sim_channels_free(struct sim_device *d);

/* ------------------------------------------------------------------ */
/* wsman_server.c: HTTP + Digest + dispatch, local listener            */
/* ------------------------------------------------------------------ */

/* Answers one complete HTTP request; appends a complete HTTP response to resp. */
void sim_wsman_handle(struct sim_device *d, enum sim_transport tr, const struct dmt_http_parser *req,
                      struct dmt_buf *resp, bool *close_after);
/* Listens on 127.0.0.1:port; the Host header's GUID picks the device. */
int sim_wsman_listen(struct sim *s, unsigned port, char *err, size_t errlen);

/* ------------------------------------------------------------------ */
/* wsman_dispatch.c and the per-area class tables                      */
/* ------------------------------------------------------------------ */

struct amt_fault {
  const char *code;    /* default a:Sender */
  const char *subcode; /* non-NULL = answer with a fault */
  const char *reason;
  int http_status;     /* default 400 */
};

/* A property of an instance: name and text value (already in AMT's text form). A name
 * starting with '@' marks the value as XML written as is (an EPR, a datetime element). */
struct amt_prop {
  const char *name;
  const char *value;
};

/* Writes instances: Get writes the one matching the selectors, Enumerate/Pull pages through all. */
struct amt_emit {
  struct dmt_buf *b;
  const struct dmt_wsman_request *w;
  size_t index;        /* instances seen so far */
  size_t first, limit; /* write instances [first, first + limit) */
  size_t written;
  bool pull;           /* items bind the class namespace themselves */
  bool match_selectors; /* Get/Put/Delete: only instances matching the request's selectors */
};

struct amt_class {
  const char *name;
  /* Emits every instance (amt_emit_instance per instance). NULL = no Get/Enumerate. */
  void (*instances)(struct sim_device *d, struct amt_emit *e);
  void (*put)(struct sim_device *d, const struct dmt_wsman_request *w, struct dmt_buf *b, struct amt_fault *f);
  void (*invoke)(struct sim_device *d, const struct dmt_wsman_request *w, struct dmt_buf *b, struct amt_fault *f);
  void (*del)(struct sim_device *d, const struct dmt_wsman_request *w, struct dmt_buf *b, struct amt_fault *f);
};

void amt_emit_instance(struct amt_emit *e, const char *cls, const struct amt_prop *props, size_t n);
/* <g:Method_OUTPUT><g:ReturnValue>rv</g:ReturnValue>extra</g:Method_OUTPUT> */
void amt_return(struct dmt_buf *b, const char *method, int rv, const char *extra_xml);
/* An endpoint reference to an instance, as AMT returns it from Add* methods. */
void amt_epr(struct dmt_buf *b, const char *cls, const struct dmt_wsman_selector *sel, size_t nsel);
void amt_fault_not_supported(struct amt_fault *f);
void amt_fault_invalid_selectors(struct amt_fault *f);
void amt_fault_invalid_parameter(struct amt_fault *f);
/* Boolean / integer parameters as AMT parses them. */
bool amt_param_bool(const struct dmt_wsman_request *w, const char *name, bool def);
long amt_param_long(const struct dmt_wsman_request *w, const char *name, long def);

/* Runs one parsed request against the device: body XML for the response or a fault. */
void amt_dispatch(struct sim_device *d, const struct dmt_wsman_request *w, struct dmt_buf *body, struct amt_fault *f);
/* Class names in table order (for counters). */
size_t amt_class_count(void);
const char *amt_class_name(size_t i);

extern const struct amt_class amt_power_classes[];
extern const struct amt_class amt_inventory_classes[];
extern const struct amt_class amt_network_classes[];
extern const struct amt_class amt_setup_classes[];
extern const struct amt_class amt_cert_classes[];
extern const struct amt_class amt_remote_access_classes[];
extern const struct amt_class amt_log_classes[];

/* ------------------------------------------------------------------ */
/* rpc_client.c, websocket.c                                           */
/* ------------------------------------------------------------------ */

enum sim_rpc_action { SIM_RPC_ACTIVATE, SIM_RPC_DEACTIVATE };

struct sim_rpc_request {
  enum sim_rpc_action action;
  const char *url;      /* ws://host:port/path or wss://... */
  const char *profile;  /* activate */
  const char *password; /* deactivate (AMT admin password); NULL = the one the fleet gave */
  bool force;           /* deactivate -f */
  const char *tenant;
  const char *trust_pem; /* CA for wss:// (NULL = no verification, as `rpc -n`) */
};

/* Starts an RPC job for the device; 0 or -1 (already running, bad URL). */
int sim_rpc_start(struct sim_device *d, const struct sim_rpc_request *req, char *err, size_t errlen);
/* Last job result of the device: "none", "running", "success: ...", "error: ..." */
const char *sim_rpc_status(const struct sim_device *d);
void sim_rpc_abort(struct sim_device *d);

/* WebSocket client framing (RFC 6455), no I/O. */
#define SIM_WS_TEXT 0x1
#define SIM_WS_BINARY 0x2
#define SIM_WS_CLOSE 0x8
#define SIM_WS_PING 0x9
#define SIM_WS_PONG 0xA
/* Builds the upgrade request; key_out receives the Sec-WebSocket-Key (base64 of 16 random bytes). */
int sim_ws_handshake_request(struct dmt_buf *out, const char *host, unsigned port, const char *path,
                             char key_out[32]);
/* Parses the server's reply in buf: 1 accepted (*consumed set), 0 need more, -1 refused. */
int sim_ws_handshake_response(const uint8_t *buf, size_t len, const char *key, size_t *consumed);
/* Appends one masked client frame. */
int sim_ws_frame(struct dmt_buf *out, unsigned opcode, const void *data, size_t len);
struct sim_ws_frame {
  unsigned opcode;
  bool fin;
  const uint8_t *data; /* unmasked in place */
  size_t len;
};
/* Decodes one frame from buf (unmasking in place): 1 frame, 0 need more, -1 protocol error. */
int sim_ws_parse(uint8_t *buf, size_t len, size_t max_payload, struct sim_ws_frame *f, size_t *consumed);

/* ------------------------------------------------------------------ */
/* faults.c, control.c                                                 */
/* ------------------------------------------------------------------ */

/* Applies one named fault (drop, stall, unstall, slow <ms>, fast, wrongpass, rightpass,
 * badframe, refuse-channel, accept-channel, reboot [ms]); 0 or -1 for an unknown name. */
int sim_fault_apply(struct sim_device *d, const char *fault, const char *arg);
int sim_control_open(struct sim *s, const char *path, char *err, size_t errlen);
void sim_control_close(struct sim *s);
void sim_counters_print(const struct sim *s, FILE *out);

#endif
