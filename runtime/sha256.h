/* sha256.h: SHA-256 (FIPS 180-4), for the Admin API's flows `rev`. Written
 * here rather than linking OpenSSL, whose libcrypto costs a megabyte of
 * resident memory for this one digest. */
#ifndef CRM_SHA256_H
#define CRM_SHA256_H
#include <stddef.h>

/* hex receives 64 lowercase hex digits and a NUL. */
void crm_sha256_hex(const void *data, size_t len, char hex[65]);
#endif
