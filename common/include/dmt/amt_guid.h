/*
 * AMT device GUIDs. AMT sends its raw 16-byte SMBIOS system UUID (in APF's
 * PROTOCOLVERSION and as CIM_ComputerSystemPackage.PlatformGUID); DMT names
 * the device by the mixed-endian ("Microsoft GUID") rendering of those bytes,
 * lowercased: the first three groups are byte-reversed, the last two are not
 * (../shared/reference/mps-cira.md §1.8).
 */
#ifndef DMT_AMT_GUID_H
#define DMT_AMT_GUID_H

#include <stdbool.h>
#include <stdint.h>

#define DMT_GUID_STRLEN 36

/* uuid bytes -> "4c4c4544-004b-4210-8033-b6c04f504633" (out: 37 bytes incl. NUL). */
void dmt_amt_uuid_to_guid(const uint8_t uuid[16], char out[DMT_GUID_STRLEN + 1]);
/* The inverse; returns -1 if guid is not 8-4-4-4-12 hex. */
int dmt_amt_guid_to_uuid(const char *guid, uint8_t uuid[16]);
/* Validates 8-4-4-4-12 hex (any case) and writes the lowercase form; -1 if invalid. */
int dmt_guid_normalize(const char *in, char out[DMT_GUID_STRLEN + 1]);
bool dmt_guid_valid(const char *s);

#endif
