/* httpd_cors.c: httpNodeCors (the cors module's answers) and httpNodeAuth
 * (Basic authentication) for node routes. */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include "engine.h"
#include "http_internal.h"
#include "metrics.h"
#include "runtime.h"

#include "httpd_internal.h"

/* CORS (the cors module with httpNodeCors as options) --------------------------------- */

static const char *cors_origin(const json_t *opts, const json_t *headers, bool *vary)
{
    const json_t *o = json_object_get(opts, "origin");
    const char *req_origin = json_string_value(json_object_get(headers, "origin"));
    *vary = false;
    if (!o || (json_is_string(o) && !strcmp(json_string_value(o), "*"))) return "*";
    if (json_is_false(o)) return NULL;
    *vary = true;
    if (json_is_string(o)) return json_string_value(o);
    if (json_is_true(o)) return req_origin;
    if (json_is_array(o) && req_origin) {
        size_t i;
        json_t *e;
        json_array_foreach(o, i, e) {
            if (json_is_string(e) && !strcmp(json_string_value(e), req_origin)) return req_origin;
        }
    }
    return NULL;
}

static char *list_setting(const json_t *v)
{
    if (json_is_string(v)) return strdup(json_string_value(v));
    if (!json_is_array(v)) return NULL;
    strbuf sb = SB_INIT;
    size_t i;
    json_t *e;
    json_array_foreach(v, i, e) {
        if (!json_is_string(e)) continue;
        if (sb.len) sb_putc(&sb, ',');
        sb_puts(&sb, json_string_value(e));
    }
    return sb.len ? sb_take(&sb) : (sb_free(&sb), NULL);
}

/* The headers cors adds; preflight adds methods, allowed headers, max age. */
json_t *httpd_cors_headers(const json_t *opts, const json_t *headers, bool preflight)
{
    json_t *out = json_object();
    bool vary;
    const char *origin = cors_origin(opts, headers, &vary);
    strbuf varyv = SB_INIT;
    if (origin) json_object_set_new(out, "Access-Control-Allow-Origin", json_string(origin));
    if (vary) sb_puts(&varyv, "Origin");
    if (json_is_true(json_object_get(opts, "credentials")))
        json_object_set_new(out, "Access-Control-Allow-Credentials", json_string("true"));
    if (preflight) {
        char *m = list_setting(json_object_get(opts, "methods"));
        json_object_set_new(out, "Access-Control-Allow-Methods", json_string(m ? m : "GET,HEAD,PUT,PATCH,POST,DELETE"));
        free(m);
        const json_t *ah = json_object_get(opts, "allowedHeaders");
        if (!ah) ah = json_object_get(opts, "headers");
        char *allowed = list_setting(ah);
        if (!allowed) {
            const char *req = json_string_value(json_object_get(headers, "access-control-request-headers"));
            if (req) allowed = strdup(req);
            if (varyv.len) sb_puts(&varyv, ", ");
            sb_puts(&varyv, "Access-Control-Request-Headers");
        }
        if (allowed && *allowed) json_object_set_new(out, "Access-Control-Allow-Headers", json_string(allowed));
        free(allowed);
        const json_t *ma = json_object_get(opts, "maxAge");
        if (json_is_number(ma) || json_is_string(ma)) {
            char buf[32];
            if (json_is_number(ma)) crm_fmt_number(json_number_value(ma), buf);
            else snprintf(buf, sizeof buf, "%s", json_string_value(ma));
            json_object_set_new(out, "Access-Control-Max-Age", json_string(buf));
        }
    }
    char *exposed = list_setting(json_object_get(opts, "exposedHeaders"));
    if (exposed) json_object_set_new(out, "Access-Control-Expose-Headers", json_string(exposed));
    free(exposed);
    if (varyv.len) json_object_set_new(out, "Vary", json_string(varyv.data));
    sb_free(&varyv);
    return out;
}

/* httpNodeAuth ---------------------------------------------------------------------- */

static int b64val(int c)
{
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
}

bool httpd_auth_ok(crm_httpd *h, const char *header)
{
    if (!header || strncasecmp(header, "Basic ", 6) != 0) return false;
    pthread_mutex_lock(&h->auth_mu);
    for (int i = 0; i < AUTH_CACHE; i++) {
        if (h->auth_ok[i] && !strcmp(h->auth_ok[i], header)) {
            pthread_mutex_unlock(&h->auth_mu);
            return true;
        }
    }
    pthread_mutex_unlock(&h->auth_mu);
    const char *p = header + 6;
    while (*p == ' ') p++;
    char dec[512];
    size_t o = 0;
    unsigned acc = 0;
    int bits = 0;
    for (; *p && *p != '=' && o + 1 < sizeof dec; p++) {
        int v = b64val((unsigned char)*p);
        if (v < 0) return false;
        acc = (acc << 6) | (unsigned)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            dec[o++] = (char)((acc >> bits) & 0xFF);
        }
    }
    dec[o] = 0;
    char *colon = strchr(dec, ':');
    if (!colon) return false;
    *colon = 0;
    if (strcmp(dec, h->auth_user) != 0 || !http_password_ok(colon + 1, h->auth_pass)) return false;
    /* bcrypt is slow on purpose: remember headers that passed */
    pthread_mutex_lock(&h->auth_mu);
    free(h->auth_ok[h->auth_next]);
    h->auth_ok[h->auth_next] = strdup(header);
    h->auth_next = (h->auth_next + 1) % AUTH_CACHE;
    pthread_mutex_unlock(&h->auth_mu);
    return true;
}
