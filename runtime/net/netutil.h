/* netutil.h: what the file, exec, tcp, udp and websocket nodes share: Node's
 * wording of system errors, text encodings as iconv-lite names them, UTF-8
 * checks, and small socket helpers. Everything here only touches its
 * arguments: any thread. */
#ifndef CRM_NETUTIL_H
#define CRM_NETUTIL_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#include "strbuf.h"

/* Node's text of a system error: "ENOENT: no such file or directory, open
 * '/x'" (path NULL leaves the quoted part out). malloc'd. */
char *crm_sys_error(int err, const char *syscall, const char *path);
/* The error's code name ("ENOENT"), libuv's description of it. */
const char *crm_errno_name(int err);
const char *crm_errno_text(int err);
/* The own properties of Node's system Error as a message shows them:
 * {errno: -2, code: "ENOENT", syscall, path}. */
json_t *crm_sys_error_obj(int err, const char *syscall, const char *path);

/* Whether bytes are valid UTF-8 (the is-utf8 package's rule). */
bool crm_utf8_valid(const void *data, size_t len);
/* Buffer.toString(): a json string, invalid UTF-8 replaced by U+FFFD. */
json_t *crm_text_of(const void *data, size_t len);

/* iconv-lite's encode(text, enc) / decode(bytes, enc). enc "none" or NULL:
 * Buffer.from(text) / buf.toString(). Known names: utf8, ucs2/utf16le,
 * latin1/binary, ascii, base64, hex, and whatever iconv(3) knows.
 * encode appends to out; 0, or -1 for an unknown encoding. decode returns a
 * new json string, NULL for an unknown encoding. */
int crm_text_encode(const char *enc, const char *text, size_t len, strbuf *out);
json_t *crm_text_decode(const char *enc, const void *data, size_t len);

/* Base64 (Node's Buffer.from(s, "base64") is lenient: it skips what is not
 * base64 and stops at '='). decode appends to out. */
void crm_base64_encode(const void *data, size_t len, strbuf *out);
void crm_base64_decode(const char *s, size_t len, strbuf *out);

/* The bytes Node-RED sends for a payload: a Buffer as is, a string as
 * UTF-8, anything else as String(v) (JSON for objects when json_objects).
 * Appends to out. */
void crm_payload_bytes(const json_t *v, bool json_objects, strbuf *out);

/* Sockets. */
int crm_set_nonblock(int fd);
/* "1.2.3.4" / "::1" of an address, and its port. buf: 64 bytes. */
const char *crm_addr_text(const struct sockaddr *sa, char *buf, int *port);

/* Node-RED's iface option: an interface name ("lo") becomes its first
 * address of the family (AF_INET or AF_INET6), written to buf (64 bytes).
 * A text with a '.' is returned as is. NULL when the name is unknown. */
const char *crm_iface_address(const char *iface, int family, char *buf);
/* Fills ss with a numeric address (or a name from /etc/hosts) and port for
 * family (AF_INET, AF_INET6, or AF_UNSPEC for either). 0 or -1. */
int crm_resolve(const char *host, int port, int family, struct sockaddr_storage *ss, socklen_t *len);

#endif
