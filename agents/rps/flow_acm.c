/*
 * Admin control mode activation (rps-activation.md §2.4) and the CCM -> ACM
 * upgrade (§2.5). Before this flow runs, job.c has matched the domain by DNS
 * suffix, decrypted its provisioning certificate (signing pool, cached),
 * checked validity, the certificate/suffix match and that one of the
 * device's trusted root hashes is the chain's root.
 *
 *   GENERAL_SETTINGS -> HBS_GET (ConfigurationNonce) -> ADD_NEXT_CERT (leaf .. root, loops on alt)
 *     -> SIGN (pool: RSA-SHA256 over ConfigurationNonce || McNonce)
 *     -> ADMIN_SETUP | UPGRADE_CLIENT_TO_ADMIN (one-shot) -ok-> DELAY
 *          \-timeout-> CHECK_MODE -ok-> DELAY
 *     -> UPDATE_CREDENTIALS -> CHANGE_PASSWORD (upgrade only) -> UPDATE_CREDENTIALS
 *     -> SET_MEBX -> SAVE_RECORD -> POST_ACTIVATION
 * A device already in admin mode at HBS_GET (alt) goes to CHANGE_PASSWORD.
 */
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rps.h"

enum {
  S_GENERAL_SETTINGS,
  S_HBS_GET,
  S_ADD_CERT,
  S_SIGN,
  S_ADMIN_SETUP,
  S_CHECK_MODE,
  S_DELAY,
  S_UPDATE_CREDENTIALS,
  S_CHANGE_PASSWORD,
  S_UPDATE_CREDENTIALS_2,
  S_SET_MEBX,
  S_SAVE_RECORD,
  S_POST
};

static int hbs_reply(struct rps_job *j, const struct wsman_reply *r) {
  if (!wsman_ok(r)) return FE_FAIL;
  if (wsman_int(r, "IPS_HostBasedSetupService.CurrentControlMode", -1) == 2 && !j->upgrade) {
    j->upgrade = true; /* already admin: only the password and the rest remain */
    return FE_ALT;
  }
  char nonce[128];
  uint8_t *raw = NULL;
  size_t len = 0;
  if (!wsman_text(r, "IPS_HostBasedSetupService.ConfigurationNonce", nonce, sizeof nonce) ||
      rps_b64_decode(nonce, strlen(nonce), &raw, &len) != 0 || len == 0 || len > sizeof j->config_nonce) {
    free(raw);
    flow_fail_text(j, "Failed to get the configuration nonce from AMT");
    return FE_FAIL;
  }
  memcpy(j->config_nonce, raw, len);
  j->config_nonce_len = len;
  free(raw);
  j->cert_index = 0;
  return FE_OK;
}

static void add_cert_enter(struct rps_job *j) {
  size_t i = j->cert_index, n = j->chain->ncerts;
  struct dmt_wsman_param p[] = {{"NextCertificate", j->chain->certs_b64[i], false},
                                {"IsLeafCertificate", i == 0 ? "true" : "false", false},
                                {"IsRootCertificate", i == n - 1 ? "true" : "false", false}};
  ws_invoke(j, "IPS_HostBasedSetupService", "AddNextCertInChain", NULL, 0, p, 3);
}

static int add_cert_reply(struct rps_job *j, const struct wsman_reply *r) {
  if (wsman_return_value(r, "AddNextCertInChain") != 0) return FE_FAIL;
  return ++j->cert_index < j->chain->ncerts ? FE_ALT : FE_OK;
}

/* ---- signing on the pool ---- */

struct sign_req {
  struct rps_job *j;
  EVP_PKEY *key;
  uint8_t data[64 + 20];
  size_t cn_len;
  char *sig;
  uint64_t t0, us;
};

static void sign_work(void *arg) {
  struct sign_req *q = arg;
  uint64_t t = rps_now_us();
  acm_sign(q->key, q->data, q->cn_len, q->data + q->cn_len, 20, &q->sig);
  q->us = rps_now_us() - t;
}

static void sign_done(void *arg) {
  struct sign_req *q = arg;
  struct rps_job *j = q->j;
  j->t_sign += q->us;
  j->srv->count.signatures++;
  EVP_PKEY_free(q->key);
  free(j->signature_b64);
  j->signature_b64 = q->sig;
  OPENSSL_cleanse(q->data, sizeof q->data);
  free(q);
  flow_post(j, j->signature_b64 ? FE_OK : FE_FAIL);
  job_unref(j);
}

static void sign_enter(struct rps_job *j) {
  struct sign_req *q = calloc(1, sizeof *q);
  if (!q || RAND_bytes(j->mc_nonce, sizeof j->mc_nonce) != 1) {
    free(q);
    flow_post(j, FE_FAIL);
    return;
  }
  q->j = job_ref(j);
  EVP_PKEY_up_ref(j->chain->key);
  q->key = j->chain->key;
  memcpy(q->data, j->config_nonce, j->config_nonce_len);
  memcpy(q->data + j->config_nonce_len, j->mc_nonce, sizeof j->mc_nonce);
  q->cn_len = j->config_nonce_len;
  if (work_pool_submit(j->srv->pool, sign_work, sign_done, q) != 0) {
    EVP_PKEY_free(q->key);
    free(q);
    flow_post(j, FE_FAIL);
    job_unref(j);
  }
}

static void admin_setup_enter(struct rps_job *j) {
  char *mc = rps_b64_encode(j->mc_nonce, sizeof j->mc_nonce);
  if (!mc) {
    flow_post(j, FE_FAIL);
    return;
  }
  if (j->upgrade) {
    struct dmt_wsman_param p[] = {{"McNonce", mc, false}, {"SigningAlgorithm", "2", false},
                                  {"DigitalSignature", j->signature_b64, false}};
    ws_invoke(j, "IPS_HostBasedSetupService", "UpgradeClientToAdmin", NULL, 0, p, 3);
  } else {
    char hash[DMT_DIGEST_HEX];
    amt_network_admin_password(j->realm, j->amt_password, hash);
    struct dmt_wsman_param p[] = {{"NetAdminPassEncryptionType", "2", false}, {"NetworkAdminPassword", hash, false},
                                  {"McNonce", mc, false}, {"SigningAlgorithm", "2", false},
                                  {"DigitalSignature", j->signature_b64, false}};
    ws_invoke(j, "IPS_HostBasedSetupService", "AdminSetup", NULL, 0, p, 5);
    OPENSSL_cleanse(hash, sizeof hash);
  }
  free(mc);
}

static void admin_activated(struct rps_job *j) {
  if (!j->upgrade) {
    j->activated = true; /* AdminSetup set amt_password; an upgrade keeps the old one until CHANGE_PASSWORD */
    snprintf(j->st.status, sizeof j->st.status, "Activated to admin control mode.");
  }
}

static int admin_setup_reply(struct rps_job *j, const struct wsman_reply *r) {
  const char *method = j->upgrade ? "UpgradeClientToAdmin" : "AdminSetup";
  if (wsman_return_value(r, method) != 0) {
    flow_fail_text(j, "%s", j->upgrade ? "Failed to upgrade to admin control mode." :
                                         "Failed to activate in admin control mode.");
    return FE_FAIL;
  }
  admin_activated(j);
  return FE_OK;
}

static int check_mode_reply(struct rps_job *j, const struct wsman_reply *r) {
  int ev = step_check_mode_reply(j, r);
  if (ev == FE_OK) admin_activated(j);
  else flow_fail_text(j, "%s", j->upgrade ? "Failed to upgrade to admin control mode." :
                                            "Failed to activate in admin control mode.");
  return ev;
}

static void change_password_enter(struct rps_job *j) {
  if (j->activated) flow_post(j, FE_OK); /* AdminSetup already set it */
  else step_change_password(j);
}

static const struct flow_state states[] = {
    [S_GENERAL_SETTINGS] = {.name = "GET_GENERAL_SETTINGS", .enter = step_general_settings,
                            .reply = step_general_settings_reply},
    [S_HBS_GET] = {.name = "IPS_HOST_BASED_SETUP_SERVICE", .enter = step_check_mode, .reply = hbs_reply,
                   .on = {{FE_ALT, FLOW_TO(S_UPDATE_CREDENTIALS)}}},
    [S_ADD_CERT] = {.name = "ADD_NEXT_CERT_IN_CHAIN", .enter = add_cert_enter, .reply = add_cert_reply,
                    .fail = "Device <uuid> activation failed. Error while adding the certificates to AMT.",
                    .on = {{FE_ALT, FLOW_TO(S_ADD_CERT)}}},
    [S_SIGN] = {.name = "SIGN_NONCES", .enter = sign_enter, .fail = "Failed to activate in admin control mode."},
    [S_ADMIN_SETUP] = {.name = "ADMIN_SETUP", .enter = admin_setup_enter, .reply = admin_setup_reply,
                       .one_shot = true, .on = {{FE_OK, FLOW_TO(S_DELAY)}, {FE_TIMEOUT, FLOW_TO(S_CHECK_MODE)}}},
    [S_CHECK_MODE] = {.name = "CHECK_ACTIVATION_ON_AMT", .enter = step_check_mode, .reply = check_mode_reply},
    [S_DELAY] = {.name = "DELAYED_TRANSITION", .enter = step_delay},
    [S_UPDATE_CREDENTIALS] = {.name = "UPDATE_CREDENTIALS", .enter = step_update_credentials},
    [S_CHANGE_PASSWORD] = {.name = "CHANGE_AMT_PASSWORD", .enter = change_password_enter,
                           .reply = step_change_password_reply, .fail = "Failed to update AMT admin password."},
    [S_UPDATE_CREDENTIALS_2] = {.name = "UPDATE_CREDENTIALS_NEW_PASSWORD", .enter = step_update_credentials},
    [S_SET_MEBX] = {.name = "SET_MEBX_PASSWORD", .enter = step_set_mebx, .reply = step_set_mebx_reply,
                    .fail = "Failed to set MEBx password."},
    [S_SAVE_RECORD] = {.name = "SAVE_DEVICE_RECORD", .enter = step_save_record,
                       .fail = "Failed to save device information to Secret Provider"},
    [S_POST] = {.name = "POST_ACTIVATION", .call = &flow_post_activation, .soft = true},
};

const struct flow flow_acm = {"acm", states, sizeof states / sizeof states[0], NULL};
