/* value.h: JavaScript value semantics on top of jansson.
 *
 * Every value a message, a context store or a JSONata expression holds is a
 * jansson json_t. Node-RED is JavaScript, so what users see must follow
 * JavaScript's rules, not JSON's:
 *
 *  - Numbers are doubles. By convention every number Carmine creates is a
 *    json_real (parsers use JSON_DECODE_INT_AS_REAL); readers accept json_integer
 *    too (crm_num_value). Two numbers compare by value (crm_equal), so 1 == 1.0.
 *  - NaN, +Infinity and -Infinity, which jansson refuses, are carried by three
 *    static json_real singletons (crm_num() returns them). Their refcount is
 *    jansson's "static" marker, so incref/decref leave them alone. They
 *    serialise as `null`, like JSON.stringify.
 *  - A Buffer (Node-RED's binary payload) is an object with the single key
 *    CRM_BUF_KEY whose value is a jansson string holding the raw bytes.
 *  - A live handle (the HTTP response of an `http in` message) is an object with
 *    the single key CRM_HANDLE_KEY and a number: copies share the handle.
 *  - An Error object (made by a function node's code) is an object holding its
 *    own enumerable members as any object does, and under CRM_ERR_KEY an object
 *    with what it holds but does not enumerate: name, message, stack, cause.
 *    JSON.stringify and key enumeration leave that member out, as JavaScript
 *    leaves those out of an Error; reading msg.payload.message finds it.
 *
 * Ownership follows jansson: functions returning json_t* return a NEW reference
 * unless they say "borrowed".
 */
#ifndef CRM_VALUE_H
#define CRM_VALUE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <string.h>
#include "carmine_api.h"

CRM_BEGIN_DECLS

#define CRM_BUF_KEY "\x01" "buffer"
#define CRM_HANDLE_KEY "\x01" "handle"
#define CRM_ERR_KEY "\x01" "error"

/* Numbers ---------------------------------------------------------------- */

/* A new number (json_real or a static NaN/Infinity singleton). */
CRM_API json_t *crm_num(double d);
/* The value of a json_real or json_integer; NaN for anything else. */
CRM_API double crm_num_value(const json_t *v);
static inline bool crm_is_num(const json_t *v) { return v && json_is_number(v); }
/* JavaScript Number.prototype.toString(): "1", "0.1", "1e+21", "NaN", "-Infinity".
 * buf must hold at least 32 bytes. Returns buf. */
CRM_API char *crm_fmt_number(double d, char *buf);
/* JavaScript Number(string): "" and whitespace give 0, "0x1f" is hex, junk is NaN. */
CRM_API double crm_str_to_number(const char *s);
/* JavaScript's white space (WhiteSpace and LineTerminator, as String.prototype.trim,
 * Number() and parseFloat() skip it) at s, UTF-8: its length in bytes, or 0. */
CRM_API size_t crm_js_space_at(const char *s);
/* s past its leading JavaScript white space. */
CRM_API const char *crm_js_skip_space(const char *s);
/* parseFloat(s): the longest decimal prefix after white space ("Infinity"
 * too, no hex); NaN when there is none. */
CRM_API double crm_parse_float(const char *s);
/* parseInt(s, radix): radix 0 is parseInt(s) without one (10, or 16 after
 * "0x"); NaN for a radix outside 2..36 or no digits. */
CRM_API double crm_parse_int(const char *s, int radix);
/* parseFloat(String(v)) and parseInt(String(v), radix), for message values. */
CRM_API double crm_parse_float_value(const json_t *v);
CRM_API double crm_parse_int_value(const json_t *v, int radix);

/* Buffers ---------------------------------------------------------------- */

CRM_API json_t *crm_buf_new(const void *data, size_t len);
CRM_API bool crm_is_buf(const json_t *v);
/* Borrowed pointer to the bytes, valid while v lives. len may be NULL. */
CRM_API const unsigned char *crm_buf_data(const json_t *v, size_t *len);

/* Live handles ----------------------------------------------------------- */

CRM_API json_t *crm_handle_new(long long id);
CRM_API bool crm_is_handle(const json_t *v);
CRM_API long long crm_handle_id(const json_t *v);

/* Errors ----------------------------------------------------------------- */

/* The hidden part of an Error object (borrowed), or NULL when v is none. */
static inline json_t *crm_error_part(const json_t *v)
{
    return json_is_object(v) && json_object_size(v) ? json_object_get(v, CRM_ERR_KEY) : NULL;
}
static inline bool crm_is_error(const json_t *v) { return crm_error_part(v) != NULL; }
/* v[key] for a member an Error holds but does not enumerate (message, name,
 * stack, cause), borrowed; NULL when v is no Error or has no such member.
 * For readers that did not find key among v's own members. */
static inline json_t *crm_error_member(const json_t *v, const char *key, size_t len)
{
    if (len < 4 || len > 7 || !strchr("mnsc", key[0])) return NULL;
    json_t *e = crm_error_part(v);
    return e ? json_object_getn(e, key, len) : NULL;
}

/* Whole values ----------------------------------------------------------- */

/* Deep copy: handles and singletons are shared. */
CRM_API json_t *crm_deep_copy(const json_t *v);
/* A message's copy, as RED.util.cloneMessage makes it: a deep copy whose
 * msg.req and msg.res are the original's (an http in request is shared by
 * every copy, not copied with its body per wire or per part). */
CRM_API json_t *crm_msg_clone(const json_t *msg);
/* JavaScript strict equality extended to deep equality of objects/arrays,
 * numbers by value (NaN never equal). */
CRM_API bool crm_equal(const json_t *a, const json_t *b);
/* JavaScript typeof: "number", "string", "boolean", "object" (null, arrays,
 * objects and buffers), "undefined" for NULL. */
CRM_API const char *crm_typeof(const json_t *v);
/* JavaScript truthiness. NULL (undefined) is falsy. */
CRM_API bool crm_truthy(const json_t *v);
/* JavaScript Number(v): NULL (undefined) is NaN, null 0, "" 0, [5] 5. */
CRM_API double crm_to_number(const json_t *v);
/* JavaScript String(v), malloc'd: objects "[object Object]", arrays joined
 * with ",", buffers as their UTF-8 text, NULL as "undefined". */
CRM_API char *crm_to_string(const json_t *v);

/* A new jansson string holding String(v); for an array, a new array of the
 * String() of each element (how HTTP header values are sent). */
CRM_API json_t *crm_strings_of(const json_t *v);

/* An object's entries in JavaScript's enumeration order: integer-like keys
 * (array indexes) ascending, then the others in insertion order. *out is
 * buf when the object has at most cap keys, else malloc'd (free it when it
 * is not buf). Keys and values are borrowed. Returns the count. */
typedef struct {
    const char *key;
    size_t len;
    unsigned long idx;
    json_t *val;
} crm_entry;
CRM_API size_t crm_js_entries(const json_t *obj, crm_entry *buf, size_t cap, crm_entry **out);

/* JSON text -------------------------------------------------------------- */

/* JSON.stringify(v, null, indent): malloc'd; NULL when v is NULL (undefined).
 * Buffers become {"type":"Buffer","data":[...]}, NaN/Infinity null, handles {}. */
CRM_API char *crm_stringify(const json_t *v, int indent);
/* Length of UTF-8 text in UTF-16 code units (JavaScript's .length), and
 * the bytes of its longest prefix of at most units code units (a character
 * outside the BMP is never split). */
CRM_API size_t crm_utf16_len(const char *s, size_t n);
/* The code point of the UTF-8 sequence at s (n > 0 bytes left), its length
 * in *len; -1 (and *len 1) for an invalid, overlong or truncated sequence or
 * a surrogate, which a decoder shows as U+FFFD. */
CRM_API long crm_utf8_decode(const char *s, size_t n, size_t *len);
CRM_API size_t crm_utf16_prefix(const char *s, size_t n, size_t units);
/* Parse JSON text (any value at top level, numbers as reals). On error returns
 * NULL and writes "line L column C: reason" to err (size errlen). */
CRM_API json_t *crm_parse(const char *text, size_t len, char *err, size_t errlen);

/* Reads and parses a JSON file ("-" is stdin). On error returns NULL and
 * writes "cannot read PATH: reason" or "PATH: line L column C: reason". */
CRM_API json_t *crm_parse_file(const char *path, char *err, size_t errlen);
/* Writes text to path at once: into PATH.PID.tmp, then renamed over path, so
 * a reader never sees half a file. mode: the new file's permissions. 0, or
 * -1 with errno set. */
CRM_API int crm_write_file(const char *path, const char *text, unsigned mode);
/* settings.userDir (the current directory when unset) joined with name,
 * malloc'd: where Node-RED keeps its files (.config.runtime.json,
 * .sessions.json). */
CRM_API char *crm_userdir_file(const json_t *settings, const char *name);

/* The value of a hexadecimal digit, or -1. */
CRM_API int crm_hexval(int c);

/* Convert jansson integers to reals, recursively (used on values that come
 * from outside: config files, plugin output). Returns v. */
CRM_API json_t *crm_normalize_numbers(json_t *v);

CRM_END_DECLS

#endif
