/*
 * Fault injection, per device (the control socket applies a fault to one GUID
 * or to the whole fleet):
 *   drop               TCP connection cut, no DISCONNECT (cable pulled); reconnects with back-off
 *   stall / unstall    the device stops reading, writing and keeping alive (a hung ME), then resumes
 *   slow <ms> / fast   every WS-Man response is held back <ms> (channels and the local port)
 *   wrongpass / rightpass  the next CIRA logins present a wrong password (the tunnel is re-established now)
 *   badframe           one malformed APF message (an unknown type byte) goes to the server
 *   refuse-channel / accept-channel  CHANNEL_OPEN answered with CHANNEL_OPEN_FAILURE
 *   reboot [ms]        firmware restart: tunnel cut, volatile state (digest nonce, enumerations,
 *                      certificate chain) lost, back after <ms> (sim.boot_ms) with the host powered on
 */
#include <stdlib.h>
#include <string.h>

#include "dmt/apf.h"
#include "sim.h"

static void cut(struct sim_device *d, const char *why) {
  if (d->conn.state != SIM_STREAM_CLOSED) sim_cira_drop(d, why, false);
}

static void badframe(struct sim_device *d) {
  if (d->conn.state != SIM_STREAM_OPEN) return;
  static const uint8_t junk[] = {0x07, 0xde, 0xad, 0xbe, 0xef}; /* no APF message has type 7 */
  dmt_buf_append(&d->conn.out, junk, sizeof junk);
  sim_cira_flush(d);
}

static void reboot(struct sim_device *d, const char *arg) {
  struct sim *s = d->sim;
  unsigned ms = arg ? (unsigned)strtoul(arg, NULL, 10) : s->boot_ms;
  sim_device_reset_volatile(d);
  d->optin_state = 0;
  d->power_state = 2;
  d->os_power_saving = 2;
  sim_device_save(d);
  sim_cira_reboot(d, ms);
}

static void set_flag(struct sim_device *d, uint8_t flag, bool on) {
  if (on) d->faults |= flag;
  else d->faults &= (uint8_t)~flag;
}

int sim_fault_apply(struct sim_device *d, const char *fault, const char *arg) {
  if (!strcmp(fault, "drop")) {
    cut(d, "fault: drop");
  } else if (!strcmp(fault, "stall") || !strcmp(fault, "unstall")) {
    bool on = !strcmp(fault, "stall");
    set_flag(d, SIM_FAULT_STALL, on);
    sim_stream_stall(&d->conn, on);
    if (!on) sim_cira_flush(d);
  } else if (!strcmp(fault, "slow")) {
    set_flag(d, SIM_FAULT_SLOW, true);
    unsigned long ms = arg ? strtoul(arg, NULL, 10) : 2000;
    d->slow_ms = (uint16_t)(ms > 60000 ? 60000 : ms);
  } else if (!strcmp(fault, "fast")) {
    set_flag(d, SIM_FAULT_SLOW, false);
  } else if (!strcmp(fault, "wrongpass") || !strcmp(fault, "rightpass")) {
    set_flag(d, SIM_FAULT_WRONG_PASSWORD, !strcmp(fault, "wrongpass"));
    if (d->conn.state != SIM_STREAM_CLOSED) sim_cira_drop(d, "fault: log in again", true);
  } else if (!strcmp(fault, "badframe")) {
    badframe(d);
  } else if (!strcmp(fault, "refuse-channel") || !strcmp(fault, "refuse")) {
    set_flag(d, SIM_FAULT_REFUSE_CHANNEL, true);
  } else if (!strcmp(fault, "accept-channel") || !strcmp(fault, "accept")) {
    set_flag(d, SIM_FAULT_REFUSE_CHANNEL, false);
  } else if (!strcmp(fault, "reboot")) {
    reboot(d, arg);
  } else {
    return -1;
  }
  d->sim->count.faults_injected++;
  return 0;
}
