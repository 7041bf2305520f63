/* strbuf.h: a growable byte string, the one text builder the runtime uses. */
#ifndef CRM_STRBUF_H
#define CRM_STRBUF_H

#include <stdarg.h>
#include <stddef.h>
#include "carmine_api.h"

CRM_BEGIN_DECLS

typedef struct {
    char *data; /* always NUL-terminated once anything was written */
    size_t len;
    size_t cap;
} strbuf;

#define SB_INIT {0, 0, 0}

CRM_API void sb_putn(strbuf *sb, const char *s, size_t n);
/* Room for n more bytes and the NUL (doubling from 64), for writers that
 * fill sb->data themselves and end it with the NUL. */
CRM_API void sb_reserve(strbuf *sb, size_t n);
CRM_API void sb_puts(strbuf *sb, const char *s);
CRM_API void sb_putc(strbuf *sb, char c);
/* Appends a code point as UTF-8 (1 to 4 bytes; no check for surrogates). */
CRM_API void sb_put_utf8(strbuf *sb, unsigned cp);
CRM_API void sb_printf(strbuf *sb, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
CRM_API void sb_vprintf(strbuf *sb, const char *fmt, va_list ap);
/* The malloc'd string (never NULL); the strbuf is reset. */
CRM_API char *sb_take(strbuf *sb);
CRM_API void sb_free(strbuf *sb);

CRM_END_DECLS

#endif
