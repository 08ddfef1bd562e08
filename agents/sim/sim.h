/*
 * dmt-sim internals: a fleet of simulated AMT devices on one epoll loop. Each
 * device owns at most one CIRA connection (TLS + APF) whose channels carry
 * HTTP/WS-Man to the device's own responder, exactly as firmware does.
 */
#ifndef DMT_SIM_H
#define DMT_SIM_H

#include <openssl/ssl.h>
#include <stdbool.h>
#include <stdint.h>

#include "dmt/buf.h"
#include "dmt/evloop.h"
#include "dmt/http.h"
#include "dmt/log.h"
#include "dmt/wsman.h"

/* IPS_HostBasedSetupService.CurrentControlMode */
enum sim_mode { SIM_MODE_PRE = 0, SIM_MODE_CCM = 1, SIM_MODE_ACM = 2 };

enum sim_conn_state {
  SIM_IDLE,        /* not connected; a reconnect may be scheduled */
  SIM_CONNECTING,  /* TCP connect in progress */
  SIM_HANDSHAKE,   /* TLS handshake */
  SIM_AUTH,        /* APF: protocol version, auth service, userauth */
  SIM_FORWARDING,  /* APF: pfwd service and tcpip-forward requests */
  SIM_READY,       /* keepalives and channels */
};

/* Faults the control socket can inject. */
enum sim_fault {
  SIM_FAULT_NONE = 0,
  SIM_FAULT_STALL = 1,          /* stop reading and writing (a dead device) */
  SIM_FAULT_SLOW = 2,           /* delay every WS-Man response by slow_ms */
  SIM_FAULT_WRONG_PASSWORD = 4, /* present a wrong CIRA password */
  SIM_FAULT_REFUSE_CHANNEL = 8, /* answer CHANNEL_OPEN with a failure */
};

struct sim_channel {
  uint32_t id, peer_id;
  uint32_t send_window;     /* bytes we may still send (peer's credits) */
  uint32_t unacked;         /* bytes received and not yet returned with WINDOW_ADJUST */
  struct dmt_http_parser http;
  struct dmt_buf pending;   /* response bytes waiting for window */
  bool close_after_send, close_sent;
  struct dmt_timer slow;    /* SIM_FAULT_SLOW: response held back */
  struct sim_device *dev;
  struct sim_channel *next;
};

struct sim_log_record {
  uint32_t time;
  uint16_t app_id, event_id;
  uint8_t initiator_type;
  char initiator[16];
};

struct sim_device {
  struct sim *sim;
  size_t index;
  char guid[37];
  uint8_t uuid[16];
  char hostname[64];
  char dns_suffix[64];
  char amt_version[16], amt_build[8], amt_sku[8];
  char realm[40];          /* Digest:<32 hex> */
  char amt_ha1[33];        /* HA1 of user admin: the AMT password never needs storing */
  enum sim_mode mode;
  char mps_host[128];
  unsigned mps_port;
  char alt_host[128];       /* secondary MPS of the remote access policy, tried after a failure */
  unsigned alt_port;
  bool use_alt;
  char mps_user[32];
  char mps_password[64];
  uint16_t power_state;    /* CIM PowerState */
  uint8_t os_power_saving; /* 2 full power, 3 power saving */
  bool boot_settings_dirty;

  /* connection */
  enum sim_conn_state state;
  int fd;
  SSL *ssl;
  struct dmt_buf in, out;
  struct dmt_timer timer;   /* connect/handshake deadline, keepalive tick or reconnect back-off */
  struct dmt_timer aux;     /* deferred device actions (e.g. dropping CIRA after unprovisioning) */
  uint32_t keepalive_ms;
  uint32_t cookie;
  unsigned forwards_acked;
  unsigned backoff_ms;
  uint64_t last_rx_ms;
  char nonce[33];           /* digest nonce of the current connection */
  uint32_t next_channel_id;
  struct sim_channel *channels;
  unsigned long wsman_seq;
  unsigned faults;
  unsigned slow_ms;
  bool malformed_next;      /* send one malformed APF frame */
};

struct sim_counters {
  uint64_t connects, connected, disconnects, auth_failures, reconnects;
  uint64_t channels_opened, channels_refused, wsman_requests, wsman_401, wsman_faults;
  uint64_t keepalives_sent, power_changes, faults_injected, tls_failures;
};

struct sim {
  struct dmt_loop *loop;
  struct dmt_log log;
  SSL_CTX *tls;
  bool verify_server;
  struct sim_device *devices;
  size_t ndevices;
  const char *state_dir;
  struct sim_counters count;
  unsigned connect_rate;     /* new connections per second (0 = unlimited) */
  unsigned reconnect_min_ms, reconnect_max_ms;
  unsigned keepalive_default_ms;
  int control_fd;
};

/* fleet.c */
int sim_fleet_load(struct sim *s, const char *path, char *err, size_t errlen);
int sim_fleet_template(struct sim *s, size_t count, const char *guid_prefix, const char *mps_host, unsigned mps_port,
                       const char *mps_user, const char *mps_password, const char *amt_password);
void sim_device_set_amt_password(struct sim_device *d, const char *password);
void sim_device_save(struct sim_device *d);
void sim_device_restore(struct sim_device *d);

/* cira_client.c */
void sim_cira_start(struct sim_device *d, uint64_t delay_ms);
void sim_cira_drop(struct sim_device *d, const char *why);
int sim_cira_send(struct sim_device *d); /* flush out; 0 or -1 (connection dropped) */

/* apf_channels.c */
void sim_channel_open(struct sim_device *d, uint32_t peer_id, uint32_t window, uint32_t port);
void sim_channel_data(struct sim_device *d, uint32_t id, const uint8_t *data, uint32_t len);
void sim_channel_window(struct sim_device *d, uint32_t id, uint32_t bytes);
void sim_channel_closed(struct sim_device *d, uint32_t id);
void sim_channels_free(struct sim_device *d);

/* amt_wsman.c: answers one HTTP request; fills resp with a complete HTTP response. */
void sim_wsman_handle(struct sim_device *d, const struct dmt_http_parser *req, struct dmt_buf *resp, bool *close_after);

/* control.c */
int sim_control_open(struct sim *s, const char *path, char *err, size_t errlen);
void sim_counters_print(const struct sim *s, FILE *out);

#endif
