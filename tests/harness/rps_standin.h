/*
 * A STAND-IN for rpc-go + AMT, for the RPS agent's tests and benchmark until
 * the fleet simulator's RPC mode (dmt-sim, branch `sim`) is on main. It is
 * test scaffolding, not a simulator: many devices on one libwebsockets client
 * context in a thread of its own, each speaking protocol 4.0.0 like rpc-go
 * (../shared/reference/rps-activation.md §1.5, §6.1) and answering the
 * server's WS-Man requests from a small AMT model with canned instances:
 * digest authentication as AMT (401 first, one nonce per session, LSA account
 * before activation, admin HA1 after), chunked SOAP replies, Setup /
 * AddNextCertInChain / AdminSetup / UpgradeClientToAdmin with the checks
 * firmware makes (trusted root hash, signature over ConfigurationNonce ||
 * McNonce with the leaf key), SetMEBxPassword, SetAdminAclEntryEx,
 * Unprovision, time sync, Ethernet/802.1x/proxy/Wi-Fi/redirection/opt-in/KVM
 * instances, and the CIRA configuration calls, whose parameters are kept so a
 * test can hand them to the real simulator and terminator. Faults can be
 * injected per device: a method returning a ReturnValue, a SOAP fault, a
 * request never answered, the WebSocket closed at a given request.
 */
#ifndef DMT_TEST_RPS_STANDIN_H
#define DMT_TEST_RPS_STANDIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct standin;
struct sdev;

/* What the device reports and how it misbehaves. */
struct sdev_spec {
  const char *guid;
  int mode;                     /* CurrentControlMode 0/1/2 */
  const char *ver, *build;      /* default 16.1.25 / 2124 */
  const char *fqdn;             /* DNS suffix reported (payload fqdn) */
  const char *admin_password;   /* for mode 1/2 devices: the AMT admin password AMT holds */
  const char *hostname, *friendly_name;
  char *const *trusted_hashes;  /* certHashes (lowercase hex), also what AMT checks at AdminSetup */
  size_t ntrusted;
  bool no_cert_hashes;          /* omit certHashes from the payload */
  bool tls_enforced;
  /* faults */
  const char *fail_method;      /* this method answers ReturnValue fail_rv */
  int fail_rv;
  const char *fault_call;       /* "Method" or "Op Class" (e.g. "Get AMT_GeneralSettings"): SOAP fault 400 */
  const char *stall_call;       /* never answered */
  const char *drop_call;        /* the client closes the WebSocket when this request arrives */
  const char *realm;            /* default a valid one; e.g. "Gist:..." to test the realm check */
  const char *raw_first;        /* send this text as the first message instead of the job request */
  bool binary_first;            /* send the first message as a binary frame */
};

struct sresult {
  bool done;
  char method[16], status[16]; /* the terminal message's; "" if the socket closed first */
  char *message;               /* its message */
  bool closed_by_server;
  unsigned wsman_requests, unauthorized;
  double ms;
  /* the device afterwards */
  int mode;
  char realm[48];
  char admin_ha1[33];          /* HA1 of admin: MD5(admin:realm:password) */
  bool mebx_set, time_synced;
  char hostname_set[64];
  bool dhcp, ipsync, shared_static;
  /* CIRA as configured through WS-Man */
  bool mps;
  char mps_host[128], mps_user[64], mps_password[64], mps_cn[128];
  int mps_port, mps_format;
  char *root_b64;              /* the last AddTrustedRootCertificate blob */
  unsigned policies;           /* bit per Trigger: 1 user initiated, 2 alert, 4 periodic */
  unsigned periodic_interval;
  unsigned mps_type_puts;      /* RemoteAccessPolicyAppliesToMPS Puts with MpsType 2 */
  int user_initiated_state;
  bool env_detection_set;
  unsigned cert_chain_len;
  bool admin_signature_verified;
};

struct standin *standin_new(void);
void standin_free(struct standin *s);

/* Creates a device model (before or between runs; not while it runs a job). */
struct sdev *standin_device(struct standin *s, const struct sdev_spec *spec);

/*
 * Starts an RPC job for the device: connects to url (ws:// or wss://host:port/path; wss is not verified),
 * sends {"method": method_line, payload: the device's JSON} with tenantId and,
 * if password is non-NULL, that as payload.password (else the LSA or admin
 * one), then answers wsman requests until success/error. Thread-safe.
 */
int standin_run(struct standin *s, struct sdev *d, const char *url, const char *method_line, const char *tenant,
                const char *password);
/* Waits until every device of the list is done (timeout_ms). */
bool standin_wait(struct standin *s, struct sdev **devs, size_t n, int timeout_ms);
/* The outcome of the device's last job (valid once done). */
const struct sresult *standin_result(const struct sdev *d);
/* Parameters of the last request the device received (class and method/op), for assertions. */
const char *standin_guid(const struct sdev *d);

#endif
