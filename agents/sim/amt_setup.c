/*
 * Provisioning classes of the simulated AMT (rps-activation.md §2.3-2.5, §2.8,
 * Appendix A):
 *   IPS_HostBasedSetupService  Get (CurrentControlMode, AllowedControlModes,
 *                              CertChainStatus, a fresh ConfigurationNonce),
 *                              Setup (client control mode), AddNextCertInChain,
 *                              AdminSetup and UpgradeClientToAdmin (admin control
 *                              mode, with the firmware's chain, hash, EKU, DNS
 *                              suffix and signature checks from amt_certs.c)
 *   AMT_SetupAndConfigurationService  Get, Unprovision (back to pre-provisioning,
 *                              CIRA configuration erased, tunnel closed once the
 *                              answer is out), CommitChanges, SetMEBxPassword, GetUuid
 *   AMT_AuthorizationService   SetAdminAclEntryEx (new admin password as HA1)
 * Passwords arrive as the digest HA1 MD5("admin:<realm>:<password>"), which is
 * what the device stores and checks digest responses against.
 */
#include <ctype.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim.h"

#define PT_STATUS_INVALID_PT_MODE 3
#define PT_STATUS_NOT_PERMITTED 16
#define OPTIN_KVM 1u
#define OPTIN_ALL 0xFFFFFFFFu

static bool valid_ha1(const char *v) {
  if (!v || strlen(v) != 32) return false;
  for (int i = 0; i < 32; i++)
    if (!isxdigit((unsigned char)v[i])) return false;
  return true;
}

static void set_ha1(struct sim_device *d, const char *hex) {
  for (int i = 0; i < 32; i++) d->amt_ha1[i] = (char)tolower((unsigned char)hex[i]);
  d->amt_ha1[32] = '\0';
  d->amt_password[0] = '\0'; /* only the hash is known now */
}

static struct sim_acm_chain *chain_of(struct sim_device *d, bool create) {
  if (!create) return d->extra ? d->extra->chain : NULL;
  struct sim_extra *x = sim_device_extra(d);
  if (x && !x->chain) x->chain = calloc(1, sizeof *x->chain);
  return x ? x->chain : NULL;
}

/* The nonce signs one admin activation attempt: a new one is drawn after each. */
static void end_acm_attempt(struct sim_device *d) {
  struct sim_acm_chain *ch = chain_of(d, false);
  if (ch) {
    amt_chain_free(ch);
    free(ch);
    d->extra->chain = NULL;
    sim_device_extra_release(d);
  }
  RAND_bytes(d->config_nonce, sizeof d->config_nonce);
}

static void hbs_instances(struct sim_device *d, struct amt_emit *e) {
  const struct sim_acm_chain *ch = chain_of(d, false);
  char mode[4], status[4];
  snprintf(mode, sizeof mode, "%u", d->mode);
  snprintf(status, sizeof status, "%d", !ch || ch->n == 0 ? 0 : ch->complete ? 2 : 1);
  char *nonce = sim_base64_encode(d->config_nonce, sizeof d->config_nonce);
  const struct amt_prop p[] = {{"AllowedControlModes", "2"}, {"AllowedControlModes", "1"},
                               {"CertChainStatus", status}, {"ConfigurationNonce", nonce},
                               {"CreationClassName", "IPS_HostBasedSetupService"}, {"CurrentControlMode", mode},
                               {"ElementName", "Intel(r) AMT Host Based Setup Service"},
                               {"Name", "Intel(r) AMT Host Based Setup Service"},
                               {"SystemCreationClassName", "CIM_ComputerSystem"}, {"SystemName", "Intel(r) AMT"}};
  amt_emit_instance(e, "IPS_HostBasedSetupService", p, sizeof p / sizeof p[0]);
  free(nonce);
}

static int setup_ccm(struct sim_device *d, const struct dmt_wsman_request *w) {
  if (d->mode != SIM_MODE_PRE) return AMT_HBS_INVALID_STATE;
  const char *pw = dmt_wsman_request_param(w, "NetworkAdminPassword");
  if (amt_param_long(w, "NetAdminPassEncryptionType", -1) != 2 || !valid_ha1(pw)) return AMT_HBS_INVALID_PARAM;
  set_ha1(d, pw);
  d->mode = SIM_MODE_CCM;
  d->optin_required = OPTIN_ALL;
  d->sim->count.activations_ccm++;
  sim_device_save(d);
  DMT_INFO(&d->sim->log, "activated", "guid=%s mode=ccm", d->guid);
  return AMT_HBS_SUCCESS;
}

static int add_next_cert(struct sim_device *d, const struct dmt_wsman_request *w) {
  if (d->mode == SIM_MODE_ACM) return AMT_CHAIN_INVALID_STATE;
  uint8_t *der = NULL;
  int len = sim_base64_decode(dmt_wsman_request_param(w, "NextCertificate"), &der);
  struct sim_acm_chain *ch = chain_of(d, true);
  int rv = !ch ? AMT_CHAIN_INTERNAL_ERROR
               : amt_chain_add(ch, der, len > 0 ? (size_t)len : 0, amt_param_bool(w, "IsLeafCertificate", false),
                               amt_param_bool(w, "IsRootCertificate", false));
  free(der);
  return rv;
}

/* AdminSetup (from pre-provisioning) and UpgradeClientToAdmin (from client control mode). */
static int admin_activation(struct sim_device *d, const struct dmt_wsman_request *w, bool upgrade) {
  struct sim *s = d->sim;
  int rv;
  const char *why = NULL;
  uint8_t *mc = NULL, *sig = NULL;
  const char *pw = upgrade ? NULL : dmt_wsman_request_param(w, "NetworkAdminPassword");
  if (d->mode != (upgrade ? SIM_MODE_CCM : SIM_MODE_PRE)) {
    rv = AMT_HBS_INVALID_STATE;
    why = "wrong control mode";
  } else if (!upgrade && (amt_param_long(w, "NetAdminPassEncryptionType", -1) != 2 || !valid_ha1(pw))) {
    rv = AMT_HBS_INVALID_PARAM;
    why = "invalid admin password hash";
  } else {
    int mc_len = sim_base64_decode(dmt_wsman_request_param(w, "McNonce"), &mc);
    int sig_len = sim_base64_decode(dmt_wsman_request_param(w, "DigitalSignature"), &sig);
    rv = amt_acm_verify(chain_of(d, false), s->acm_hashes, s->nacm_hashes, d->dns_suffix, d->config_nonce, mc,
                        mc_len > 0 ? (size_t)mc_len : 0, (int)amt_param_long(w, "SigningAlgorithm", -1), sig,
                        sig_len > 0 ? (size_t)sig_len : 0, &why);
  }
  free(mc);
  free(sig);
  end_acm_attempt(d);
  if (rv != AMT_HBS_SUCCESS) {
    DMT_WARN(&s->log, "admin_activation_refused", "guid=%s rv=%d reason=\"%s\"", d->guid, rv, why ? why : "");
    return rv;
  }
  if (!upgrade) set_ha1(d, pw);
  d->mode = SIM_MODE_ACM;
  d->optin_required = OPTIN_KVM;
  s->count.activations_acm++;
  sim_device_save(d);
  DMT_INFO(&s->log, "activated", "guid=%s mode=acm upgrade=%d", d->guid, upgrade);
  return AMT_HBS_SUCCESS;
}

static void hbs_invoke(struct sim_device *d, const struct dmt_wsman_request *w, struct dmt_buf *b,
                       struct amt_fault *f) {
  if (!strcmp(w->method, "Setup")) amt_return(b, "Setup", setup_ccm(d, w), NULL);
  else if (!strcmp(w->method, "AddNextCertInChain")) amt_return(b, "AddNextCertInChain", add_next_cert(d, w), NULL);
  else if (!strcmp(w->method, "AdminSetup")) amt_return(b, "AdminSetup", admin_activation(d, w, false), NULL);
  else if (!strcmp(w->method, "UpgradeClientToAdmin"))
    amt_return(b, "UpgradeClientToAdmin", admin_activation(d, w, true), NULL);
  else amt_fault_not_supported(f);
}

static void setup_and_configuration(struct sim_device *d, struct amt_emit *e) {
  /* ProvisioningMode: 1 = admin control, 4 = client control (as DMT reads it); state 0 pre, 2 post. */
  const char *pmode = d->mode == SIM_MODE_CCM ? "4" : "1";
  const char *pstate = d->mode == SIM_MODE_PRE ? "0" : "2";
  const struct amt_prop p[] = {{"CreationClassName", "AMT_SetupAndConfigurationService"},
                               {"ElementName", "Intel(r) AMT Setup and Configuration Service"},
                               {"EnabledState", "5"}, {"Name", "Intel(r) AMT Setup and Configuration Service"},
                               {"PasswordModel", "1"}, {"ProvisioningMode", pmode}, {"ProvisioningServerOTP", ""},
                               {"ProvisioningState", pstate}, {"RequestedState", "12"},
                               {"SystemCreationClassName", "CIM_ComputerSystem"}, {"SystemName", "Intel(r) AMT"},
                               {"ZeroTouchConfigurationEnabled", "true"}};
  amt_emit_instance(e, "AMT_SetupAndConfigurationService", p, sizeof p / sizeof p[0]);
}

static void finish_unprovision(void *arg) {
  struct sim_device *d = arg;
  sim_cira_stop(d, true); /* DISCONNECT: it will not call home again */
  sim_device_unprovision(d);
}

static void setup_invoke(struct sim_device *d, const struct dmt_wsman_request *w, struct dmt_buf *b,
                         struct amt_fault *f) {
  if (!strcmp(w->method, "Unprovision")) {
    if (d->mode == SIM_MODE_PRE) {
      amt_return(b, "Unprovision", PT_STATUS_INVALID_PT_MODE, NULL);
      return;
    }
    d->mode = SIM_MODE_PRE; /* effective now; the tunnel closes once this answer is on its way */
    d->sim->count.deactivations++;
    amt_return(b, "Unprovision", AMT_RV_SUCCESS, NULL);
    dmt_workq_post(dmt_loop_workq(d->sim->loop), finish_unprovision, d);
    DMT_INFO(&d->sim->log, "unprovisioned", "guid=%s", d->guid);
  } else if (!strcmp(w->method, "CommitChanges")) {
    amt_return(b, "CommitChanges", AMT_RV_SUCCESS, NULL);
  } else if (!strcmp(w->method, "SetMEBxPassword")) {
    const char *pw = dmt_wsman_request_param(w, "Password");
    int rv = d->mode != SIM_MODE_ACM ? PT_STATUS_NOT_PERMITTED : (!pw || !*pw) ? AMT_RV_INVALID_PARAMETER : 0;
    if (rv == 0) {
      d->mebx_password_set = true;
      sim_device_save(d);
    }
    amt_return(b, "SetMEBxPassword", rv, NULL);
  } else if (!strcmp(w->method, "GetUuid")) {
    char *uuid = sim_base64_encode(d->uuid, sizeof d->uuid);
    char extra[96];
    snprintf(extra, sizeof extra, "<g:UUID>%s</g:UUID>", uuid);
    free(uuid);
    amt_return(b, "GetUuid", AMT_RV_SUCCESS, extra);
  } else {
    amt_fault_not_supported(f);
  }
}

static void authorization_service(struct sim_device *d, struct amt_emit *e) {
  const struct amt_prop p[] = {{"AllowHttpQopAuthOnly", "1"}, {"CreationClassName", "AMT_AuthorizationService"},
                               {"ElementName", "Intel(r) AMT Authorization Service"}, {"EnabledState", "5"},
                               {"Name", "Intel(r) AMT Authorization Service"}, {"RequestedState", "12"},
                               {"SystemCreationClassName", "CIM_ComputerSystem"}, {"SystemName", "Intel(r) AMT"}};
  amt_emit_instance(e, "AMT_AuthorizationService", p, sizeof p / sizeof p[0]);
}

static void authorization_invoke(struct sim_device *d, const struct dmt_wsman_request *w, struct dmt_buf *b,
                                 struct amt_fault *f) {
  if (strcmp(w->method, "SetAdminAclEntryEx")) {
    amt_fault_not_supported(f);
    return;
  }
  uint8_t *raw = NULL;
  int n = sim_base64_decode(dmt_wsman_request_param(w, "DigestPassword"), &raw);
  const char *user = dmt_wsman_request_param(w, "Username");
  int rv = AMT_RV_INVALID_PARAMETER;
  /* The simulator keeps the admin account's name "admin" (what DMT always uses). */
  if (n == 16 && user && !strcmp(user, "admin") && d->mode != SIM_MODE_PRE) {
    char hex[33];
    for (int i = 0; i < 16; i++) snprintf(hex + 2 * i, 3, "%02x", raw[i]);
    set_ha1(d, hex);
    sim_device_save(d);
    rv = AMT_RV_SUCCESS;
  }
  free(raw);
  amt_return(b, "SetAdminAclEntryEx", rv, NULL);
}

const struct amt_class amt_setup_classes[] = {
    {"IPS_HostBasedSetupService", hbs_instances, NULL, hbs_invoke, NULL},
    {"AMT_SetupAndConfigurationService", setup_and_configuration, NULL, setup_invoke, NULL},
    {"AMT_AuthorizationService", authorization_service, NULL, authorization_invoke, NULL},
    {NULL, NULL, NULL, NULL, NULL},
};
