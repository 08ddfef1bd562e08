/*
 * DMT's power and boot action codes (mps-cira.md §3.4) and what each one
 * means on the wire, as a table instead of scattered conditionals:
 *   - the validator set (DMTFCombinedPowerStates) - anything else is a 400;
 *   - CIM codes 2-8 and 10-17 go to CIM_PowerManagementService.
 *     RequestPowerStateChange (2 first wakes an OS in power saving, as DMT);
 *   - 500/501 are the OS power-saving path (IPS_PowerManagementService);
 *   - the extended codes (100 and up) are boot options, set up as DMT's
 *     bootOptions does (BIOS setup, IDE-R, PXE, CD/DVD, OCR HTTPS/PBA/WinRE
 *     boot sources) before a reset or power-on.
 * Also AMT's and the OS power-saving ReturnValue names DMT prints, and the
 * OCR TLV parameter blocks of UEFI HTTPS/PBA/WinRE boot. Pure.
 */
#include <stdio.h>
#include <string.h>

#include "cira.h"
#include "dmt/amt_logs.h"

static const int valid_codes[] = {2,   3,   4,   5,   6,   7,   8,   10,  11,  12,  13,  14,  15,  16,  17,  100,
                                  101, 104, 105, 106, 107, 108, 109, 110, 200, 201, 202, 203, 300, 301, 400, 401,
                                  500, 501};

bool power_action_valid(int64_t action) {
  for (size_t i = 0; i < sizeof valid_codes / sizeof valid_codes[0]; i++)
    if (valid_codes[i] == action) return true;
  return false;
}

/* The CIM PowerState a successful RequestPowerStateChange(code) leads to. */
static int cim_result_state(int code) {
  switch (code) {
    case 3: case 4: case 6: case 7: case 8: return code; /* sleep light/deep, off hard, hibernate, off soft */
    case 12: return 8;                                   /* off soft graceful */
    case 13: return 6;                                   /* off hard graceful */
    default: return 2;                                   /* on, cycles, resets, NMI: running afterwards */
  }
}

static bool is_reset_boot(int64_t a) {
  /* DMT bootOptions.determinePowerAction: these reset a running machine, the others power it on. */
  return a == 101 || a == 200 || a == 202 || a == 301 || a == 400 || a == 105 || a == 107 || a == 109;
}

int power_plan_for(int64_t action, struct power_plan *p) {
  memset(p, 0, sizeof *p);
  p->action = action;
  if (!power_action_valid(action)) return -1;
  if (action == 500 || action == 501) {
    p->path = POWER_PATH_OS;
    p->os_target = action == 500 ? 2 : 3;
    return 0;
  }
  if (action < 100) {
    p->path = POWER_PATH_CIM;
    p->cim_state = (int)action;
    p->wake_os_first = action == 2;
    p->expected_power = cim_result_state((int)action);
    return 0;
  }
  p->path = POWER_PATH_BOOT;
  p->cim_state = is_reset_boot(action) ? 10 : 2;
  p->expected_power = 2;
  p->bios_setup = action < 104;                  /* 100, 101 */
  p->use_ider = action >= 200 && action < 300;   /* 200-203 */
  p->ider_boot_device = (action == 202 || action == 203) ? 1 : 0; /* 1 = CD on IDE-R, 0 = floppy */
  switch (action) {
    case 400: case 401: p->boot_source = "Intel(r) AMT: Force PXE Boot"; break;
    case 202: case 203: p->boot_source = "Intel(r) AMT: Force CD/DVD Boot"; break;
    case 105: case 106: p->boot_source = "Intel(r) AMT: Force OCR UEFI HTTPS Boot"; p->ocr = OCR_HTTPS; break;
    case 107: case 108: p->ocr = OCR_PBA; break;   /* source looked up by boot path */
    case 109: case 110: p->ocr = OCR_WINRE; break; /* source looked up by boot path or the WinRE entry */
    default: break;
  }
  return 0;
}

/* ---- names ---- */

static const struct code_name {
  int code;
  const char *name;
} amt_status[] = {
    {0x0000, "SUCCESS"}, {0x0001, "INTERNAL_ERROR"}, {0x0002, "NOT_READY"}, {0x0003, "INVALID_PT_MODE"},
    {0x0004, "INVALID_MESSAGE_LENGTH"}, {0x0005, "TABLE_FINGERPRINT_NOT_AVAILABLE"},
    {0x0006, "INTEGRITY_CHECK_FAILED"}, {0x0007, "UNSUPPORTED_ISVS_VERSION"},
    {0x0008, "APPLICATION_NOT_REGISTERED"}, {0x0009, "INVALID_REGISTRATION_DATA"},
    {0x000a, "APPLICATION_DOES_NOT_EXIST"}, {0x000b, "NOT_ENOUGH_STORAGE"}, {0x000c, "INVALID_NAME"},
    {0x000d, "BLOCK_DOES_NOT_EXIST"}, {0x000e, "INVALID_BYTE_OFFSET"}, {0x000f, "INVALID_BYTE_COUNT"},
    {0x0010, "NOT_PERMITTED"}, {0x0011, "NOT_OWNER"}, {0x0012, "BLOCK_LOCKED_BY_OTHER"},
    {0x0013, "BLOCK_NOT_LOCKED"}, {0x0014, "INVALID_GROUP_PERMISSIONS"}, {0x0015, "GROUP_DOES_NOT_EXIST"},
    {0x0016, "INVALID_MEMBER_COUNT"}, {0x0017, "MAX_LIMIT_REACHED"}, {0x0018, "INVALID_AUTH_TYPE"},
    {0x0019, "AUTHENTICATION_FAILED"}, {0x001a, "INVALID_DHCP_MODE"}, {0x001b, "INVALID_IP_ADDRESS"},
    {0x001c, "INVALID_DOMAIN_NAME"}, {0x001d, "UNSUPPORTED_VERSION"}, {0x001e, "REQUEST_UNEXPECTED"},
    {0x001f, "INVALID_TABLE_TYPE"}, {0x0020, "INVALID_PROVISIONING_STATE"}, {0x0021, "UNSUPPORTED_OBJECT"},
    {0x0022, "INVALID_TIME"}, {0x0023, "INVALID_INDEX"}, {0x0024, "INVALID_PARAMETER"},
    {0x0025, "INVALID_NETMASK"}, {0x0026, "FLASH_WRITE_LIMIT_EXCEEDED"}, {0x0027, "INVALID_IMAGE_LENGTH"},
    {0x0028, "INVALID_IMAGE_SIGNATURE"}, {0x0029, "PROPOSE_ANOTHER_VERSION"}, {0x002a, "INVALID_PID_FORMAT"},
    {0x002b, "INVALID_PPS_FORMAT"}, {0x002c, "BIST_COMMAND_BLOCKED"}, {0x002d, "CONNECTION_FAILED"},
    {0x002e, "CONNECTION_TOO_MANY"}, {0x002f, "RNG_GENERATION_IN_PROGRESS"}, {0x0030, "RNG_NOT_READY"},
    {0x0031, "CERTIFICATE_NOT_READY"}, {0x0400, "DISABLED_BY_POLICY"}, {0x0800, "NETWORK_IF_ERROR_BASE"},
    {0x0801, "UNSUPPORTED_OEM_NUMBER"}, {0x0802, "UNSUPPORTED_BOOT_OPTION"}, {0x0803, "INVALID_COMMAND"},
    {0x0804, "INVALID_SPECIAL_COMMAND"}, {0x0805, "INVALID_HANDLE"}, {0x0806, "INVALID_PASSWORD"},
    {0x0807, "INVALID_REALM"}, {0x0808, "STORAGE_ACL_ENTRY_IN_USE"}, {0x0809, "DATA_MISSING"},
    {0x080a, "DUPLICATE"}, {0x080b, "EVENTLOG_FROZEN"}, {0x080c, "PKI_MISSING_KEYS"},
    {0x080d, "PKI_GENERATING_KEYS"}, {0x080e, "INVALID_KEY"}, {0x080f, "INVALID_CERT"},
    {0x0810, "CERT_KEY_NOT_MATCH"}, {0x0811, "MAX_KERB_DOMAIN_REACHED"}, {0x0812, "UNSUPPORTED"},
    {0x0813, "INVALID_PRIORITY"}, {0x0814, "NOT_FOUND"}, {0x0815, "INVALID_CREDENTIALS"},
    {0x0816, "INVALID_PASSPHRASE"}, {0x0818, "NO_ASSOCIATION"}, {0x081b, "AUDIT_FAIL"},
    {0x081c, "BLOCKING_COMPONENT"}, {0x0821, "USER_CONSENT_REQUIRED"}, {0x1000, "APP_INTERNAL_ERROR"},
    {0x1001, "NOT_INITIALIZED"}, {0x1002, "LIB_VERSION_UNSUPPORTED"}, {0x1003, "INVALID_PARAM"},
    {0x1004, "RESOURCES"}, {0x1005, "HARDWARE_ACCESS_ERROR"}, {0x1006, "REQUESTOR_NOT_REGISTERED"},
    {0x1007, "NETWORK_ERROR"}, {0x1008, "PARAM_BUFFER_TOO_SHORT"}, {0x1009, "COM_NOT_INITIALIZED_IN_THREAD"},
    {0x100a, "URL_REQUIRED"},
};

static const struct code_name os_status[] = {
    {0, "COMPLETED_WITH_NO_ERROR"}, {1, "NOT_SUPPORTED"}, {2, "UNKNOWN_OR_UNSPECIFIED_ERROR"},
    {3, "CANNOT_COMPLETE_WITHIN_TIMEOUT_PERIOD"}, {4, "FAILED"}, {5, "INVALID_PARAMETER"}, {6, "IN_USE"},
    {4096, "METHOD_PARAMETERS_CHECKED_JOB_STARTED"}, {4097, "INVALID_STATE_TRANSITION"},
    {4098, "USE_OF_TIMEOUT_PARAMETER_NOT_SUPPORTED"}, {4099, "BUSY"},
};

static const char *lookup(const struct code_name *t, size_t n, int64_t code) {
  for (size_t i = 0; i < n; i++)
    if (t[i].code == code) return t[i].name;
  return "UNKNOWN_ERROR";
}

const char *amt_status_name(int64_t code) { return lookup(amt_status, sizeof amt_status / sizeof amt_status[0], code); }

const char *os_power_status_name(int64_t code) {
  return lookup(os_status, sizeof os_status / sizeof os_status[0], code);
}

/* ---- OCR boot parameters: TLV entries {u16 vendor 0x8086, u16 type, u32 length, value}, little-endian ---- */

enum {
  OCR_EFI_NETWORK_DEVICE_PATH = 1,
  OCR_EFI_FILE_DEVICE_PATH = 2,
  OCR_EFI_DEVICE_PATH_LEN = 3,
  OCR_HTTPS_CERT_SYNC_ROOT_CA = 20,
  OCR_HTTPS_USER_NAME = 40,
  OCR_HTTPS_PASSWORD = 41,
};
#define OCR_MAX_PATH 300u
#define OCR_MAX_CREDENTIAL 16u

static int put_le(struct dmt_buf *b, uint32_t v, unsigned bytes) {
  for (unsigned i = 0; i < bytes; i++)
    if (dmt_buf_append_u8(b, (uint8_t)(v >> (8 * i)))) return -1;
  return 0;
}

static int tlv(struct dmt_buf *b, unsigned type, const void *value, size_t len) {
  if (put_le(b, 0x8086, 2) || put_le(b, type, 2) || put_le(b, (uint32_t)len, 4)) return -1;
  return len ? dmt_buf_append(b, value, len) : 0;
}

int ocr_https_params(const char *url, const char *user, const char *password, struct dmt_buf *out, int *count,
                     const char **why) {
  size_t ul = url ? strlen(url) : 0;
  if (!ul || ul > OCR_MAX_PATH || (strncmp(url, "https://", 8) && strncmp(url, "http://", 7))) {
    *why = "boot_details.url must be an http(s) URL of at most 300 bytes";
    return -1;
  }
  if ((user && strlen(user) > OCR_MAX_CREDENTIAL) || (password && strlen(password) > OCR_MAX_CREDENTIAL)) {
    *why = "boot_details.username and password are limited to 16 bytes";
    return -1;
  }
  const uint8_t yes = 1;
  *count = 2;
  if (tlv(out, OCR_EFI_NETWORK_DEVICE_PATH, url, ul) || tlv(out, OCR_HTTPS_CERT_SYNC_ROOT_CA, &yes, 1)) goto oom;
  if (user && *user) {
    if (tlv(out, OCR_HTTPS_USER_NAME, user, strlen(user))) goto oom;
    (*count)++;
  }
  if (password && *password) {
    if (tlv(out, OCR_HTTPS_PASSWORD, password, strlen(password))) goto oom;
    (*count)++;
  }
  return 0;
oom:
  *why = "out of memory";
  return -1;
}

int ocr_file_params(const char *path, struct dmt_buf *out, int *count, const char **why) {
  size_t pl = path ? strlen(path) : 0;
  if (!pl || pl > OCR_MAX_PATH) {
    *why = "boot_details.bootPath must name a boot file of at most 300 bytes";
    return -1;
  }
  uint8_t len_le[2] = {(uint8_t)pl, (uint8_t)(pl >> 8)};
  *count = 2;
  if (tlv(out, OCR_EFI_FILE_DEVICE_PATH, path, pl) || tlv(out, OCR_EFI_DEVICE_PATH_LEN, len_le, 2)) {
    *why = "out of memory";
    return -1;
  }
  return 0;
}
