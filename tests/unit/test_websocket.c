/* test_websocket.c: the RFC 6455 framing of runtime/net/websocket.c: the
 * handshake key (RFC 6455's own example), frames written and parsed back
 * whole and byte by byte, fragments with a ping between them, and each
 * protocol error with its close code; then random bytes fed in random
 * pieces must never crash the parser or let it read past what it got. */
#include <stdlib.h>
#include <string.h>

#include "net/websocket.h"
#include "unit.h"

static crm_ws_event next(crm_ws_parser *p, const unsigned char **d, size_t *len, int *code)
{
    return crm_ws_next(p, d, len, code);
}

/* A client frame (masked) fed to a server parser, in pieces of `step`. */
static void roundtrip(int op, const char *data, size_t len, size_t step)
{
    strbuf f = SB_INIT;
    crm_ws_frame(&f, op, data, len, true);
    crm_ws_parser p;
    crm_ws_parser_init(&p, true, 1 << 24);
    const unsigned char *d = NULL;
    size_t l = 0;
    int code;
    crm_ws_event ev = WS_NONE;
    for (size_t i = 0; i < f.len && ev == WS_NONE; i += step) {
        crm_ws_feed(&p, f.data + i, i + step <= f.len ? step : f.len - i);
        ev = next(&p, &d, &l, &code);
    }
    CHECK(ev == (op == WS_OP_TEXT ? WS_TEXT : WS_BINARY));
    CHECK(l == len && (!len || !memcmp(d, data, len)));
    crm_ws_parser_free(&p);
    sb_free(&f);
}

static int error_code(const unsigned char *bytes, size_t n, bool server)
{
    crm_ws_parser p;
    crm_ws_parser_init(&p, server, 1000);
    crm_ws_feed(&p, bytes, n);
    const unsigned char *d;
    size_t l;
    int code = 0;
    crm_ws_event ev;
    while ((ev = next(&p, &d, &l, &code)) != WS_NONE && ev != WS_ERROR) {}
    crm_ws_parser_free(&p);
    return ev == WS_ERROR ? code : 0;
}

int main(void)
{
    char acc[29];
    crm_ws_accept_key("dGhlIHNhbXBsZSBub25jZQ==", acc);
    CHECK_STR(acc, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");

    roundtrip(WS_OP_TEXT, "hello", 5, 1);
    roundtrip(WS_OP_TEXT, "", 0, 1);
    char *big = malloc(70000);
    for (int i = 0; i < 70000; i++) big[i] = (char)(i * 7);
    roundtrip(WS_OP_BINARY, big, 125, 3);
    roundtrip(WS_OP_BINARY, big, 126, 7);
    roundtrip(WS_OP_BINARY, big, 65535, 4096);
    roundtrip(WS_OP_BINARY, big, 70000, 70014);

    /* fragments with a ping in between (server frames: unmasked) */
    {
        strbuf f = SB_INIT;
        unsigned char h1[] = {0x01, 3};
        sb_putn(&f, (const char *)h1, 2);
        sb_putn(&f, "abc", 3);
        crm_ws_frame(&f, WS_OP_PING, "p", 1, false);
        unsigned char h2[] = {0x80, 2};
        sb_putn(&f, (const char *)h2, 2);
        sb_putn(&f, "de", 2);
        crm_ws_parser p;
        crm_ws_parser_init(&p, false, 100);
        crm_ws_feed(&p, f.data, f.len);
        const unsigned char *d;
        size_t l;
        int code;
        CHECK(next(&p, &d, &l, &code) == WS_PING && l == 1 && d[0] == 'p');
        CHECK(next(&p, &d, &l, &code) == WS_TEXT && l == 5 && !memcmp(d, "abcde", 5));
        CHECK(next(&p, &d, &l, &code) == WS_NONE);
        crm_ws_parser_free(&p);
        sb_free(&f);
    }
    /* close with a code and reason */
    {
        crm_ws_parser p;
        crm_ws_parser_init(&p, false, 100);
        unsigned char c[] = {0x88, 4, 0x03, 0xE8, 'o', 'k'};
        crm_ws_feed(&p, c, sizeof c);
        const unsigned char *d;
        size_t l;
        int code;
        CHECK(next(&p, &d, &l, &code) == WS_CLOSE && code == 1000 && l == 2 && !memcmp(d, "ok", 2));
        crm_ws_parser_free(&p);
    }
    /* errors */
    unsigned char unmasked[] = {0x81, 1, 'x'};
    CHECK(error_code(unmasked, sizeof unmasked, true) == 1002);
    unsigned char masked_from_server[] = {0x81, 0x81, 0, 0, 0, 0, 'x'};
    CHECK(error_code(masked_from_server, sizeof masked_from_server, false) == 1002);
    unsigned char rsv[] = {0xC1, 1, 'x'};
    CHECK(error_code(rsv, sizeof rsv, false) == 1002);
    unsigned char badop[] = {0x83, 0};
    CHECK(error_code(badop, sizeof badop, false) == 1002);
    unsigned char long_ping[] = {0x89, 126, 0, 126};
    CHECK(error_code(long_ping, sizeof long_ping, false) == 1002);
    unsigned char frag_ping[] = {0x09, 0};
    CHECK(error_code(frag_ping, sizeof frag_ping, false) == 1002);
    unsigned char lone_cont[] = {0x80, 1, 'x'};
    CHECK(error_code(lone_cont, sizeof lone_cont, false) == 1002);
    unsigned char bad_utf8[] = {0x81, 2, 0xC3, 0x28};
    CHECK(error_code(bad_utf8, sizeof bad_utf8, false) == 1007);
    unsigned char too_big[] = {0x82, 126, 0x03, 0xE9};
    CHECK(error_code(too_big, sizeof too_big, false) == 1009);
    unsigned char close1[] = {0x88, 1, 3};
    CHECK(error_code(close1, sizeof close1, false) == 1002);
    unsigned char close_code[] = {0x88, 2, 0x03, 0xED}; /* 1005 may not be sent */
    CHECK(error_code(close_code, sizeof close_code, false) == 1002);

    /* random input in random pieces: no crash, no read past the input (ASan) */
    srand(16);
    for (int round = 0; round < 2000; round++) {
        crm_ws_parser p;
        crm_ws_parser_init(&p, round & 1, 4096);
        size_t n = (size_t)(rand() % 300);
        unsigned char *buf = malloc(n + 1);
        for (size_t i = 0; i < n; i++) buf[i] = (unsigned char)rand();
        if (n && rand() % 2) buf[0] = (unsigned char)(0x80 | (rand() % 3));
        for (size_t i = 0; i < n;) {
            size_t k = 1 + (size_t)(rand() % 40);
            if (k > n - i) k = n - i;
            crm_ws_feed(&p, buf + i, k);
            i += k;
            const unsigned char *d;
            size_t l;
            int code;
            crm_ws_event ev;
            while ((ev = next(&p, &d, &l, &code)) != WS_NONE && ev != WS_ERROR && ev != WS_CLOSE) {
                if (l) CHECK(d[l - 1] == d[l - 1]); /* touch the last byte */
            }
        }
        free(buf);
        crm_ws_parser_free(&p);
    }
    free(big);
    UNIT_DONE();
}
