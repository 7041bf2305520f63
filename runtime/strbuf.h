/* strbuf.h: a growable byte string, the one text builder the runtime uses. */
#ifndef CRM_STRBUF_H
#define CRM_STRBUF_H

#include <stdarg.h>
#include <stddef.h>

typedef struct {
    char *data; /* always NUL-terminated once anything was written */
    size_t len;
    size_t cap;
} strbuf;

#define SB_INIT {0, 0, 0}

void sb_putn(strbuf *sb, const char *s, size_t n);
void sb_puts(strbuf *sb, const char *s);
void sb_putc(strbuf *sb, char c);
void sb_printf(strbuf *sb, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void sb_vprintf(strbuf *sb, const char *fmt, va_list ap);
/* The malloc'd string (never NULL); the strbuf is reset. */
char *sb_take(strbuf *sb);
void sb_free(strbuf *sb);

#endif
