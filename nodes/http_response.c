/* http_response.c: Node-RED's http response (spec §3.11): answers the
 * request behind msg.res. Headers, cookies, status and body follow the node
 * (configuration beats msg) and then Express's res.set / res.cookie /
 * res.jsonp / res.send rules, so clients see what Node-RED would send. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "http.h"
#include "httpclient.h"
#include "strbuf.h"

typedef struct {
    double status; /* parseInt(config.statusCode); 0: not configured */
    json_t *headers;
    json_t *html_headers; /* {"Content-Type": "text/html; charset=utf-8"}: the usual answer's, made once */
} http_response;

static int http_response_create(crm_node *n, const json_t *cfg)
{
    http_response *r = calloc(1, sizeof *r);
    if (!r) return -1;
    const json_t *sc = json_object_get(cfg, "statusCode");
    r->status = sc ? crm_parse_int_value(sc, 10) : 0;
    if (isnan(r->status)) r->status = 0; /* NaN and 0 mean unset */
    const json_t *hd = json_object_get(cfg, "headers");
    r->headers = json_is_object(hd) ? crm_deep_copy(hd) : json_object();
    r->html_headers = json_pack("{s:s}", "Content-Type", "text/html; charset=utf-8");
    crm_node_set_data(n, r);
    return 0;
}

static void http_response_close(crm_node *n)
{
    http_response *r = crm_node_data(n);
    if (!r) return;
    json_decref(r->headers);
    json_decref(r->html_headers);
    free(r);
    crm_node_set_data(n, NULL);
}

/* Response headers, case-insensitive like Node's setHeader. */
static json_t *hget(json_t *out, const char *name)
{
    const char *k;
    json_t *v;
    json_object_foreach(out, k, v) {
        if (!strcasecmp(k, name)) return v;
    }
    return NULL;
}

static void hset(json_t *out, const char *name, json_t *value)
{
    const char *k;
    json_t *v;
    void *tmp;
    json_object_foreach_safe(out, tmp, k, v) {
        if (!strcasecmp(k, name)) json_object_del(out, k);
    }
    json_object_set_new(out, name, value);
}

/* res.set(name, value). -1 on a TypeError (message in err). */
static int res_set(json_t *out, const char *name, const json_t *value, char **err)
{
    if (!strcasecmp(name, "content-type")) {
        if (json_is_array(value)) {
            *err = strdup("TypeError: Content-Type cannot be set to an Array");
            return -1;
        }
        char *s = crm_to_string(value);
        char *ct = crm_http_type_for_set(s ? s : "");
        free(s);
        hset(out, name, json_string(ct));
        free(ct);
        return 0;
    }
    hset(out, name, crm_strings_of(value));
    return 0;
}

/* res.append("Set-Cookie", line). */
static void append_cookie(json_t *out, const char *line)
{
    json_t *prev = hget(out, "set-cookie");
    json_t *arr = json_array();
    if (json_is_array(prev)) json_array_extend(arr, prev);
    else if (prev) json_array_append(arr, prev);
    json_array_append_new(arr, json_string(line));
    hset(out, "Set-Cookie", arr);
}

static void put_uri_component(strbuf *sb, const char *s)
{
    char *e = crm_uri_component(s, strlen(s));
    sb_puts(sb, e ? e : "");
    free(e);
}

static void put_http_date(strbuf *sb, double ms)
{
    time_t t = (time_t)floor(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    char buf[64];
    strftime(buf, sizeof buf, "%a, %d %b %Y %H:%M:%S GMT", &tm);
    sb_puts(sb, buf);
}

/* res.cookie(name, value, opts) with cookie.serialize's attribute order. */
static void res_cookie(json_t *out, const char *name, const json_t *value, const json_t *opts)
{
    strbuf sb = SB_INIT;
    char *val;
    if (json_is_object(value) || json_is_array(value) || json_is_null(value)) {
        char *j = crm_stringify(value, 0);
        size_t l = strlen(j ? j : "") + 3;
        val = malloc(l);
        if (val) snprintf(val, l, "j:%s", j ? j : "");
        free(j);
    } else {
        val = crm_to_string(value);
    }
    sb_puts(&sb, name);
    sb_putc(&sb, '=');
    put_uri_component(&sb, val ? val : "");
    free(val);
    const json_t *ma = json_object_get(opts, "maxAge");
    double expires = NAN;
    bool has_expires = false;
    if (ma && !json_is_null(ma)) {
        double m = json_is_string(ma) ? crm_str_to_number(json_string_value(ma)) : crm_num_value(ma);
        if (isfinite(m)) {
            expires = crm_wall_ms() + m;
            has_expires = true;
            char buf[32];
            sb_puts(&sb, "; Max-Age=");
            sb_puts(&sb, crm_fmt_number(floor(m / 1000), buf));
        }
    }
    const char *domain = json_string_value(json_object_get(opts, "domain"));
    if (domain) sb_printf(&sb, "; Domain=%s", domain);
    const char *path = json_string_value(json_object_get(opts, "path"));
    sb_printf(&sb, "; Path=%s", path ? path : "/");
    const json_t *ex = json_object_get(opts, "expires");
    if (has_expires) {
        sb_puts(&sb, "; Expires=");
        put_http_date(&sb, expires);
    } else if (json_is_number(ex) && crm_num_value(ex) != 0) {
        sb_puts(&sb, "; Expires=");
        put_http_date(&sb, crm_num_value(ex));
    } else if (json_is_string(ex) && *json_string_value(ex)) {
        sb_printf(&sb, "; Expires=%s", json_string_value(ex));
    }
    if (crm_truthy(json_object_get(opts, "httpOnly"))) sb_puts(&sb, "; HttpOnly");
    if (crm_truthy(json_object_get(opts, "secure"))) sb_puts(&sb, "; Secure");
    if (crm_truthy(json_object_get(opts, "partitioned"))) sb_puts(&sb, "; Partitioned");
    const char *prio = json_string_value(json_object_get(opts, "priority"));
    if (prio && (!strcasecmp(prio, "low") || !strcasecmp(prio, "medium") || !strcasecmp(prio, "high")))
        sb_printf(&sb, "; Priority=%c%s", prio[0] & ~0x20, strcasecmp(prio, "low") == 0 ? "ow"
                                                            : strcasecmp(prio, "medium") == 0 ? "edium" : "igh");
    const json_t *ss = json_object_get(opts, "sameSite");
    if (json_is_true(ss)) sb_puts(&sb, "; SameSite=Strict");
    else if (json_is_string(ss)) {
        const char *v = json_string_value(ss);
        if (!strcasecmp(v, "lax")) sb_puts(&sb, "; SameSite=Lax");
        else if (!strcasecmp(v, "strict")) sb_puts(&sb, "; SameSite=Strict");
        else if (!strcasecmp(v, "none")) sb_puts(&sb, "; SameSite=None");
    }
    append_cookie(out, sb.data);
    sb_free(&sb);
}

static void set_cookies(json_t *out, const json_t *cookies)
{
    const char *name;
    json_t *c;
    json_object_foreach((json_t *)cookies, name, c) {
        bool obj = json_is_object(c);
        if (json_is_null(c) || (obj && json_is_null(json_object_get(c, "value")))) {
            /* clearCookie: expires in 1970, path "/", unless the options say otherwise */
            json_t *opts = json_pack("{s:f,s:s}", "expires", 1.0, "path", "/");
            if (obj) json_object_update(opts, c);
            json_t *empty = json_string("");
            res_cookie(out, name, empty, opts);
            json_decref(empty);
            json_decref(opts);
        } else if (obj) {
            json_t *v = json_object_get(c, "value");
            json_t *undef = v ? NULL : json_string("undefined"); /* String(undefined) */
            res_cookie(out, name, v ? v : undef, c);
            json_decref(undef);
        } else {
            json_t *opts = json_object();
            res_cookie(out, name, c, opts);
            json_decref(opts);
        }
    }
}

/* Configured headers, then msg.headers for names not configured (§3.11). */
static json_t *merged_headers(const http_response *r, json_t *msg)
{
    json_t *headers = crm_deep_copy(r->headers);
    /* unchanged headers of an http request reply are not echoed */
    if (crm_http_drop_echoed_headers(msg)) return headers;
    json_t *mh = json_object_get(msg, "headers");
    if (!json_is_object(mh)) return headers;
    const char *k;
    json_t *v;
    json_object_foreach(mh, k, v) {
        if (!json_object_get(headers, k)) json_object_set(headers, k, v);
    }
    return headers;
}

/* node.statusCode || parseInt(msg.statusCode) || 200, then Node's check:
 * outside 100..999 it throws RangeError (ERR_HTTP_INVALID_STATUS_CODE),
 * whichever of the two set it (recorded: tests/flows/http-status.json). */
static int status_of(const http_response *r, const json_t *msg, double *bad)
{
    double d = r->status;
    if (!d) {
        const json_t *sc = json_object_get(msg, "statusCode");
        d = sc ? crm_parse_int_value(sc, 10) : NAN;
        if (isnan(d) || d == 0) return 200;
    }
    *bad = d;
    if (!(d >= 100 && d <= 999)) return -1;
    return (int)d;
}

/* The JSONP callback name Express reads from req.query, sanitised. */
static char *jsonp_callback(const json_t *msg)
{
    const json_t *cb = crm_msg_get(msg, "req.query.callback");
    if (json_is_array(cb)) cb = json_array_get(cb, 0);
    const char *s = json_string_value(cb);
    if (!s || !*s) return NULL;
    strbuf sb = SB_INIT;
    for (const char *p = s; *p; p++)
        if (strchr("[]$._", *p) || (*p >= '0' && *p <= '9') || ((*p | 0x20) >= 'a' && (*p | 0x20) <= 'z'))
            sb_putc(&sb, *p);
    return sb.len ? sb_take(&sb) : (sb_free(&sb), strdup(""));
}

/* JSON.stringify output made safe for a script: U+2028/2029 escaped. */
static void put_js_safe(strbuf *sb, const char *s)
{
    for (; *s; s++) {
        if ((unsigned char)s[0] == 0xE2 && (unsigned char)s[1] == 0x80 && ((unsigned char)s[2] & 0xFE) == 0xA8) {
            sb_puts(sb, (unsigned char)s[2] == 0xA8 ? "\\u2028" : "\\u2029");
            s += 2;
        } else {
            sb_putc(sb, *s);
        }
    }
}

/* res.jsonp(payload) -> the body; sets the content type. */
static char *jsonp_body(json_t *out, const json_t *payload, const json_t *msg, size_t *len)
{
    char *json = crm_stringify(payload, 0);
    if (!hget(out, "content-type")) {
        hset(out, "X-Content-Type-Options", json_string("nosniff"));
        hset(out, "Content-Type", json_string("application/json; charset=utf-8"));
    }
    char *cb = jsonp_callback(msg);
    if (cb && *cb) {
        hset(out, "X-Content-Type-Options", json_string("nosniff"));
        hset(out, "Content-Type", json_string("text/javascript; charset=utf-8"));
        strbuf sb = SB_INIT;
        sb_printf(&sb, "/**/ typeof %s === 'function' && %s(", cb, cb);
        put_js_safe(&sb, json ? json : "");
        sb_puts(&sb, ");");
        free(json);
        json = sb_take(&sb);
    }
    free(cb);
    /* res.send of a string: the type gets charset=utf-8 */
    char *ct = crm_http_set_charset(json_string_value(hget(out, "content-type")));
    hset(out, "Content-Type", json_string(ct));
    free(ct);
    *len = json ? strlen(json) : 0;
    return json;
}

static bool has_entries(const json_t *v) { return json_is_object(v) && json_object_size(v) > 0; }

/* The usual answer, with no header or cookie to merge: a string or number
 * payload sent as text/html. Returns false when the general path must run. */
static bool answer_plain(crm_node *n, const http_response *r, json_t *msg, const json_t *res)
{
    const json_t *payload = json_object_get(msg, "payload");
    if (!(json_is_string(payload) || json_is_number(payload)) || has_entries(r->headers) ||
        has_entries(json_object_get(msg, "headers")) || json_is_object(json_object_get(msg, "cookies")))
        return false;
    double bad;
    int status = status_of(r, msg, &bad);
    if (status < 0) return false;
    char numbuf[32];
    const char *data =
        json_is_string(payload) ? json_string_value(payload) : crm_fmt_number(crm_num_value(payload), numbuf);
    size_t len = json_is_string(payload) ? json_string_length(payload) : strlen(data);
    if (crm_http_respond(n, res, status, r->html_headers, data, len, CRM_HTTP_ETAG) < 0)
        crm_node_error(n, msg, "Error [ERR_HTTP_HEADERS_SENT]: Cannot set headers after they are sent to the client");
    else
        crm_node_done(n, msg);
    json_decref(msg);
    return true;
}

static void http_response_input(crm_node *n, json_t *msg)
{
    http_response *r = crm_node_data(n);
    const json_t *res = json_object_get(msg, "res");
    if (!res) {
        crm_node_warn(n, "No response object");
        crm_node_done(n, msg);
        json_decref(msg);
        return;
    }
    if (answer_plain(n, r, msg, res)) return;
    json_t *out = json_object();
    json_t *headers = merged_headers(r, msg);
    char *err = NULL;
    const char *k;
    json_t *v;
    json_object_foreach(headers, k, v) {
        if (!err) res_set(out, k, v, &err);
    }
    json_decref(headers);
    const json_t *cookies = json_object_get(msg, "cookies");
    if (!err && json_is_object(cookies)) set_cookies(out, cookies);
    double bad = NAN;
    int status = err ? 0 : status_of(r, msg, &bad);
    if (!err && status < 0) {
        char buf[32];
        size_t l = 80;
        err = malloc(l);
        if (err) snprintf(err, l, "RangeError [ERR_HTTP_INVALID_STATUS_CODE]: Invalid status code: %s", crm_fmt_number(bad, buf));
    }
    const json_t *payload = json_object_get(msg, "payload");
    if (!err && json_is_boolean(payload)) {
        err = strdup(json_is_true(payload)
                         ? "TypeError [ERR_INVALID_ARG_TYPE]: The \"string\" argument must be of type string or an instance of Buffer or ArrayBuffer. Received type boolean (true)"
                         : "TypeError [ERR_INVALID_ARG_TYPE]: The \"string\" argument must be of type string or an instance of Buffer or ArrayBuffer. Received type boolean (false)");
    }
    if (err) { /* the handler threw: reported on the message, no answer, no done */
        crm_node_error(n, msg, "%s", err);
        free(err);
        json_decref(out);
        json_decref(msg);
        return;
    }
    char *body = NULL;
    const void *data = "";
    size_t len = 0;
    unsigned flags = CRM_HTTP_ETAG;
    char numbuf[32];
    if (payload && !crm_is_buf(payload) && (json_is_object(payload) || json_is_array(payload) || json_is_null(payload))) {
        body = jsonp_body(out, payload, msg, &len);
        data = body;
    } else if (crm_is_buf(payload)) {
        data = crm_buf_data(payload, &len);
        if (!hget(out, "content-type")) hset(out, "Content-Type", json_string("application/octet-stream"));
    } else if (payload) {
        if (json_is_string(payload)) {
            data = json_string_value(payload);
            len = json_string_length(payload);
        } else {
            data = crm_fmt_number(crm_num_value(payload), numbuf);
            len = strlen(numbuf);
        }
        const json_t *ct = hget(out, "content-type");
        char *t = ct ? crm_http_set_charset(json_string_value(ct)) : strdup("text/html; charset=utf-8");
        hset(out, "Content-Type", json_string(t ? t : "text/html; charset=utf-8"));
        free(t);
    } else {
        flags = 0; /* undefined: an empty body, no type, no ETag */
    }
    if (crm_http_respond(n, res, status, out, data, len, flags) < 0)
        crm_node_error(n, msg, "Error [ERR_HTTP_HEADERS_SENT]: Cannot set headers after they are sent to the client");
    else
        crm_node_done(n, msg);
    free(body);
    json_decref(out);
    json_decref(msg);
}

const crm_node_type crm_type_http_response = {
    .abi = CRM_ABI_VERSION,
    .type = "http response",
    .create = http_response_create,
    .input = http_response_input,
    .close = http_response_close,
};
