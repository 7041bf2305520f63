/* http_request.c: the `http request` node (Node-RED core/network/21-httprequest.js).
 *
 * The input handler builds the request exactly as Node-RED does (URL from
 * config or msg.url with mustache, method, headers, cookies, auth, body) and
 * hands it to the shared curl-multi client (runtime/httpclient.c). The
 * client's thread posts the result back to this node's loop, where the same
 * msg object is filled in (statusCode, headers, responseUrl, payload, ...),
 * sent and done. Nothing here blocks; any number of requests can be in flight.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "carmine.h"
#include "httpclient.h"
#include "strbuf.h"
#include "value.h"

#define T_NOOVERRIDE \
    "Warning: msg properties can no longer override set node properties. See bit.ly/nr-override-msg-props"

enum { RET_TXT, RET_BIN, RET_OBJ };
enum { QS_IGNORE, QS_QUERY, QS_BODY };
enum { AUTH_BASIC, AUTH_DIGEST, AUTH_BEARER };

typedef struct {
    int refs;             /* the node's own + one per request not yet handled */
    bool closed;
    crm_node *n;
    crm_http_group *group; /* created on the first request */
    char *url;            /* configured url, NULL when empty */
    bool templated;
    char *method;         /* configured method as given (default "GET") */
    int ret, paytoqs, auth;
    bool senderr, persist;
    char *user, *password; /* credentials */
    json_t *headers;      /* the configured header list */
    char *tls_id, *proxy_id;
    double timeout_ms;    /* settings.httpRequestTimeout */
    double max_body;      /* settings.httpRequestMaxBody */
} hr_state;

typedef struct {
    hr_state *st;
    json_t *msg;
    char *url;            /* the URL as Node-RED reports it in errors */
    crm_http_result *res;
} hr_req;

static void state_unref(hr_state *st)
{
    if (--st->refs) return;
    free(st->url);
    free(st->method);
    free(st->user);
    free(st->password);
    json_decref(st->headers);
    free(st->tls_id);
    free(st->proxy_id);
    free(st);
}

static void req_free(hr_req *r)
{
    json_decref(r->msg);
    free(r->url);
    crm_http_result_free(r->res);
    free(r);
}

static char *dup_nonempty(const char *s) { return s && *s ? strdup(s) : NULL; }

/* JavaScript Number(v) for the values a msg property can hold. */
static double js_number(const json_t *v)
{
    if (!v || json_is_object(v)) return NAN;
    if (json_is_null(v)) return 0;
    if (json_is_boolean(v)) return json_is_true(v) ? 1 : 0;
    if (json_is_number(v)) return crm_num_value(v);
    if (json_is_string(v)) return crm_str_to_number(json_string_value(v));
    char *s = crm_to_string(v); /* arrays */
    double d = s ? crm_str_to_number(s) : NAN;
    free(s);
    return d;
}

/* Config --------------------------------------------------------------------- */

static int hr_create(crm_node *n, const json_t *cfg)
{
    hr_state *st = calloc(1, sizeof *st);
    if (!st) return -1;
    st->refs = 1;
    st->n = n;
    st->url = dup_nonempty(crm_cfg_str(cfg, "url", ""));
    st->templated = st->url && strstr(st->url, "{{");
    const char *method = crm_cfg_str(cfg, "method", "");
    st->method = strdup(*method ? method : "GET");
    const char *ret = crm_cfg_str(cfg, "ret", "txt");
    st->ret = !strcmp(ret, "bin") ? RET_BIN : !strcmp(ret, "obj") ? RET_OBJ : RET_TXT;
    const json_t *qs = json_object_get(cfg, "paytoqs");
    if (json_is_true(qs) || (json_is_string(qs) && !strcmp(json_string_value(qs), "query"))) st->paytoqs = QS_QUERY;
    else if (json_is_string(qs) && !strcmp(json_string_value(qs), "body")) st->paytoqs = QS_BODY;
    const char *auth = crm_cfg_str(cfg, "authType", "");
    st->auth = !strcmp(auth, "digest") ? AUTH_DIGEST : !strcmp(auth, "bearer") ? AUTH_BEARER : AUTH_BASIC;
    st->senderr = crm_truthy(json_object_get(cfg, "senderr"));
    st->persist = crm_truthy(json_object_get(cfg, "persist"));
    const json_t *cred = json_object_get(cfg, "credentials");
    st->user = dup_nonempty(json_string_value(json_object_get(cred, "user")));
    st->password = dup_nonempty(json_string_value(json_object_get(cred, "password")));
    const json_t *hdrs = json_object_get(cfg, "headers");
    st->headers = json_is_array(hdrs) ? json_deep_copy(hdrs) : json_array();
    st->tls_id = dup_nonempty(crm_cfg_str(cfg, "tls", ""));
    st->proxy_id = dup_nonempty(crm_cfg_str(cfg, "proxy", ""));
    st->timeout_ms = 120000;
    const json_t *settings = crm_node_settings(n);
    const json_t *t = json_object_get(settings, "httpRequestTimeout");
    if (crm_truthy(t)) {
        double d = trunc(js_number(t)); /* parseInt */
        if (isfinite(d) && d != 0) st->timeout_ms = d;
    }
    /* a response body is held whole (msg.payload): past this size the
     * request fails instead of the process running out of memory */
    st->max_body = 512.0 * 1024 * 1024;
    const json_t *mb = json_object_get(settings, "httpRequestMaxBody");
    if (json_is_number(mb) || json_is_string(mb)) {
        double d = json_is_number(mb) ? json_number_value(mb) : crm_str_to_number(json_string_value(mb));
        if (d >= 0 && isfinite(d)) st->max_body = d;
    }
    crm_node_set_data(n, st);
    return 0;
}

static void drop_req(void *arg)
{
    hr_req *r = arg;
    hr_state *st = r->st;
    req_free(r);
    state_unref(st);
}

static void hr_close(crm_node *n)
{
    hr_state *st = crm_node_data(n);
    if (!st) return;
    st->closed = true;
    crm_http_group_close(st->group, drop_req);
    st->group = NULL;
    crm_node_status(n, NULL, NULL, NULL);
    crm_node_set_data(n, NULL);
    state_unref(st);
}

/* Request headers ---------------------------------------------------------------- */

typedef struct {
    json_t *h;            /* name (as typed) -> value */
    char ct_name[64];     /* the case the user gave Content-Type / Content-Length */
    char cl_name[64];
} hdrs;

/* Node-RED's normaliseKnownHeader: content-type/-length go lower-case,
 * remembering the case given. */
static const char *normalise_known(hdrs *H, const char *name, char *buf, size_t bufsz)
{
    if (!strcasecmp(name, "content-type")) {
        snprintf(H->ct_name, sizeof H->ct_name, "%s", name);
        return "content-type";
    }
    if (!strcasecmp(name, "content-length")) {
        snprintf(H->cl_name, sizeof H->cl_name, "%s", name);
        return "content-length";
    }
    snprintf(buf, bufsz, "%s", name);
    return buf;
}

/* updateHeader: drop every case variant, then set name if value is truthy. */
static void update_header(json_t *h, const char *name, json_t *value /* stolen */)
{
    const char *k;
    json_t *v;
    void *tmp;
    json_object_foreach_safe(h, tmp, k, v) if (!strcasecmp(k, name)) json_object_del(h, k);
    if (crm_truthy(value)) json_object_set_new(h, name, value);
    else json_decref(value);
}

static json_t *header_get(const json_t *h, const char *name) { return json_object_get(h, name); }

/* msg.headers, unless it is a response's headers passed on unchanged. */
static void headers_from_msg(hdrs *H, json_t *msg)
{
    if (crm_http_drop_echoed_headers(msg)) return;
    json_t *mh = json_object_get(msg, "headers");
    if (!json_is_object(mh)) return;
    const char *k;
    json_t *v;
    json_object_foreach(mh, k, v) {
        char buf[256];
        update_header(H->h, normalise_known(H, k, buf, sizeof buf), json_incref(v));
    }
}

/* A header name or value from the node's list: "other" takes the literal,
 * "msg" a msg property, any other type is itself the text. */
static json_t *header_part(crm_node *n, const char *type, const json_t *value, const json_t *msg)
{
    if (!type) return NULL;
    if (!strcmp(type, "other")) return json_incref((json_t *)value);
    if (!strcmp(type, "msg")) {
        json_t *out = NULL;
        char *err = NULL;
        crm_typed *t = crm_typed_new(n, "msg", value, &err);
        if (t && crm_typed_eval(n, t, msg, &out, &err) < 0) out = NULL;
        crm_typed_free(t);
        free(err);
        return out;
    }
    return json_string(type);
}

static void headers_from_node(hdrs *H, crm_node *n, const json_t *list, const json_t *msg)
{
    size_t i;
    json_t *e;
    json_array_foreach(list, i, e) {
        json_t *name = header_part(n, json_string_value(json_object_get(e, "keyType")), json_object_get(e, "keyValue"), msg);
        if (!crm_truthy(name)) {
            json_decref(name);
            continue;
        }
        json_t *value = header_part(n, json_string_value(json_object_get(e, "valueType")),
                                    json_object_get(e, "valueValue"), msg);
        char *ns = crm_to_string(name), buf[256];
        update_header(H->h, normalise_known(H, ns, buf, sizeof buf), value ? value : json_null());
        free(ns);
        json_decref(name);
    }
}

/* The final header object for the client: string values, user case restored. */
static json_t *headers_for_client(hdrs *H)
{
    json_t *out = json_object();
    const char *k;
    json_t *v;
    json_object_foreach(H->h, k, v) {
        const char *name = !strcmp(k, "content-type") && H->ct_name[0]   ? H->ct_name
                           : !strcmp(k, "content-length") && H->cl_name[0] ? H->cl_name
                                                                          : k;
        json_object_set_new(out, name, crm_strings_of(v));
    }
    return out;
}

/* Cookies ------------------------------------------------------------------------ */

/* cookie.serialize's checks (npm cookie 0.7): it throws on a bad name or
 * a value (after encoding) outside RFC 6265's cookie-octets. */
static bool cookie_name_ok(const char *s)
{
    if (!*s) return false;
    for (; *s; s++)
        if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
              strchr("!#$%&'*+-.^_`|~", *s)))
            return false;
    return true;
}

static bool cookie_octet(unsigned char c)
{
    return c == 0x21 || (c >= 0x23 && c <= 0x2B) || (c >= 0x2D && c <= 0x3A) || (c >= 0x3C && c <= 0x5B) ||
           (c >= 0x5D && c <= 0x7E);
}

static bool cookie_value_ok(const char *v)
{
    size_t n = strlen(v);
    if (n >= 2 && v[0] == '"' && v[n - 1] == '"') v++, n -= 2;
    for (size_t i = 0; i < n; i++)
        if (!cookie_octet((unsigned char)v[i])) return false;
    return true;
}

/* Adds name=value to the jar text; NULL, or the TypeError text. */
static const char *cookie_add(strbuf *jar, const char *name, const char *value, bool encode)
{
    if (!cookie_name_ok(name)) return "TypeError: argument name is invalid";
    char *enc = encode ? crm_uri_component(value, strlen(value)) : strdup(value);
    if (!cookie_value_ok(enc)) {
        free(enc);
        return "TypeError: argument val is invalid";
    }
    if (jar->len) sb_puts(jar, "; ");
    sb_printf(jar, "%s=%s", name, enc);
    free(enc);
    return NULL;
}

/* A `cookie` header and msg.cookies become the request's cookie jar. On a
 * value cookie.serialize would refuse, *err names the TypeError. */
static char *build_cookies(hdrs *H, const json_t *msg, const char **err)
{
    strbuf jar = SB_INIT;
    *err = NULL;
    json_t *ch = header_get(H->h, "cookie");
    if (ch) {
        char *s = crm_to_string(ch);
        json_t *parsed = crm_cookie_parse(s ? s : "");
        free(s);
        const char *k;
        json_t *v;
        json_object_foreach(parsed, k, v) if (!*err) *err = cookie_add(&jar, k, json_string_value(v), false);
        json_decref(parsed);
        json_object_del(H->h, "cookie");
    }
    json_t *mc = json_object_get(msg, "cookies");
    const char *k;
    json_t *v;
    if (json_is_object(mc) && !crm_is_buf(mc)) {
        json_object_foreach(mc, k, v) {
            if (*err || json_is_null(v)) continue;
            json_t *val = v;
            bool encode = true;
            if (json_is_object(v) && !crm_is_buf(v)) {
                val = json_object_get(v, "value");
                if (json_is_null(val)) continue;
                encode = !json_is_false(json_object_get(v, "encode"));
            }
            char *s = crm_to_string(val);
            *err = cookie_add(&jar, k, s ? s : "undefined", encode);
            free(s);
        }
    }
    if (*err) {
        sb_free(&jar);
        return NULL;
    }
    return jar.data ? sb_take(&jar) : NULL;
}

/* Body ------------------------------------------------------------------------------ */

static const char *mime_for(const char *filename)
{
    static const char *const map[][2] = {{".txt", "text/plain"},       {".html", "text/html"},
                                          {".json", "application/json"}, {".csv", "text/csv"},
                                          {".png", "image/png"},         {".jpg", "image/jpeg"},
                                          {".jpeg", "image/jpeg"},       {".gif", "image/gif"},
                                          {".pdf", "application/pdf"},   {".xml", "application/xml"},
                                          {".js", "application/javascript"}};
    const char *dot = filename ? strrchr(filename, '.') : NULL;
    for (size_t i = 0; dot && i < sizeof map / sizeof *map; i++)
        if (!strcasecmp(dot, map[i][0])) return map[i][1];
    return "application/octet-stream";
}

/* Appends a value as form-data does: strings as text, Buffers as bytes, the
 * rest JSON-encoded. */
static void form_value(strbuf *b, const json_t *v)
{
    if (json_is_string(v)) {
        sb_putn(b, json_string_value(v), json_string_length(v));
    } else if (crm_is_buf(v)) {
        size_t n;
        const unsigned char *d = crm_buf_data(v, &n);
        sb_putn(b, (const char *)d, n);
    } else {
        char *s = crm_stringify(v, 0);
        if (s) sb_puts(b, s);
        free(s);
    }
}

/* multipart/form-data from an object payload (the npm form-data layout). */
static char *form_body(const json_t *payload, size_t *len, char **ctype)
{
    char boundary[64] = "--------------------------";
    static unsigned seed;
    if (!seed) seed = (unsigned)time(NULL);
    for (int i = 0; i < 24; i++) boundary[26 + i] = (char)('0' + rand_r(&seed) % 10);
    boundary[50] = 0;
    strbuf b = SB_INIT;
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)payload, k, v) {
        if (json_is_null(v)) continue;
        const json_t *val = v, *opts = NULL;
        if (json_is_object(v) && !crm_is_buf(v) && json_object_get(v, "value")) {
            val = json_object_get(v, "value");
            opts = json_object_get(v, "options");
        }
        const char *filename = json_string_value(json_object_get(opts, "filename"));
        const char *ct = json_string_value(json_object_get(opts, "contentType"));
        sb_printf(&b, "--%s\r\nContent-Disposition: form-data; name=\"%s\"", boundary, k);
        if (filename) sb_printf(&b, "; filename=\"%s\"", filename);
        sb_puts(&b, "\r\n");
        if (!ct && (filename || crm_is_buf(val))) ct = mime_for(filename);
        if (ct) sb_printf(&b, "Content-Type: %s\r\n", ct);
        sb_puts(&b, "\r\n");
        form_value(&b, val);
        sb_puts(&b, "\r\n");
    }
    sb_printf(&b, "--%s--\r\n", boundary);
    *len = b.len;
    strbuf c = SB_INIT;
    sb_printf(&c, "multipart/form-data; boundary=%s", boundary);
    *ctype = sb_take(&c);
    return sb_take(&b);
}

/* The request body for methods other than GET/HEAD; NULL for none. */
static char *make_body(hdrs *H, const json_t *payload, size_t *len)
{
    json_t *ct = header_get(H->h, "content-type");
    const char *cts = json_string_value(ct);
    if (cts && !strcmp(cts, "multipart/form-data") && json_is_object(payload) && !crm_is_buf(payload)) {
        char *ctype = NULL;
        char *b = form_body(payload, len, &ctype);
        json_object_set_new(H->h, "content-type", json_string(ctype));
        free(ctype);
        return b;
    }
    char *body;
    if (json_is_string(payload)) {
        *len = json_string_length(payload);
        body = malloc(*len + 1);
        if (body) memcpy(body, json_string_value(payload), *len + 1);
    } else if (crm_is_buf(payload)) {
        const unsigned char *d = crm_buf_data(payload, len);
        body = malloc(*len + 1);
        if (body) memcpy(body, d, *len);
    } else if (json_is_number(payload)) {
        char buf[32];
        body = strdup(crm_fmt_number(crm_num_value(payload), buf));
        *len = strlen(body);
    } else if (cts && !strcmp(cts, "application/x-www-form-urlencoded")) {
        body = crm_querystring(payload);
        *len = strlen(body);
    } else {
        body = crm_stringify(payload, 0);
        *len = body ? strlen(body) : 0;
        if (!ct) json_object_set_new(H->h, "content-type", json_string("application/json"));
    }
    return body;
}

/* paytoqs "body": a GET with the payload as body; objects (Buffers too, as
 * typeof says) go as JSON, with no content-type added. */
static char *get_body(const json_t *payload, size_t *len)
{
    char *body = NULL;
    if (json_is_string(payload)) {
        body = strndup(json_string_value(payload), json_string_length(payload));
        *len = json_string_length(payload);
        return body;
    }
    if (json_is_number(payload)) {
        char buf[32];
        body = strdup(crm_fmt_number(crm_num_value(payload), buf));
    } else if (!json_is_boolean(payload)) {
        body = crm_stringify(payload, 0);
    }
    *len = body ? strlen(body) : 0;
    return body;
}

/* Auth ------------------------------------------------------------------------------ */

static char *b64(const char *s)
{
    static const char tbl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t n = strlen(s);
    strbuf sb = SB_INIT;
    for (size_t i = 0; i < n; i += 3) {
        unsigned v = (unsigned char)s[i] << 16;
        if (i + 1 < n) v |= (unsigned char)s[i + 1] << 8;
        if (i + 2 < n) v |= (unsigned char)s[i + 2];
        sb_putc(&sb, tbl[(v >> 18) & 63]);
        sb_putc(&sb, tbl[(v >> 12) & 63]);
        sb_putc(&sb, i + 1 < n ? tbl[(v >> 6) & 63] : '=');
        sb_putc(&sb, i + 2 < n ? tbl[v & 63] : '=');
    }
    return sb.data ? sb_take(&sb) : strdup("");
}

/* user:password@ of a URL, percent-decoded. */
static void url_userinfo(const char *url, char **user, char **pass)
{
    *user = *pass = NULL;
    const char *a = strstr(url, "://");
    if (!a) return;
    a += 3;
    const char *end = a + strcspn(a, "/?#");
    const char *at = NULL;
    for (const char *c = a; c < end; c++)
        if (*c == '@') at = c;
    if (!at) return;
    const char *colon = memchr(a, ':', (size_t)(at - a));
    *user = strndup(a, (size_t)((colon ? colon : at) - a));
    if (colon) *pass = strndup(colon + 1, (size_t)(at - colon - 1));
}

/* TLS / proxy config nodes: their state is the option struct. */
static const crm_tls_options *find_tls(hr_state *st)
{
    if (!st->tls_id) return NULL;
    crm_node *t = crm_node_find(st->n, st->tls_id);
    if (!t || strcmp(crm_node_type_name(t), "tls-config")) return NULL;
    return crm_node_data(t);
}

static const crm_proxy_options *find_proxy(hr_state *st)
{
    if (!st->proxy_id) return NULL;
    crm_node *p = crm_node_find(st->n, st->proxy_id);
    if (!p || strcmp(crm_node_type_name(p), "http proxy")) return NULL;
    return crm_node_data(p);
}

/* Completion ------------------------------------------------------------------------ */

static json_t *redirect_list(const json_t *hops)
{
    json_t *list = json_array();
    size_t i;
    json_t *hop;
    json_array_foreach(hops, i, hop) {
        double status = json_number_value(json_object_get(hop, "status"));
        json_t *h = json_object_get(hop, "headers");
        json_t *loc = json_object_get(h, "location");
        if (status < 300 || status >= 400 || !loc) continue;
        json_t *e = json_pack("{s:O}", "location", loc);
        json_t *sc = json_object_get(h, "set-cookie");
        if (sc) json_object_set_new(e, "cookies", crm_extract_cookies(sc));
        json_array_append_new(list, e);
    }
    return list;
}

static json_t *response_payload(hr_state *st, const crm_http_result *res)
{
    if (st->ret == RET_BIN) return crm_buf_new(res->body, res->body_len);
    if (st->ret == RET_TXT) return crm_utf8_string(res->body, res->body_len);
    const char *text = res->status == 204 ? "{}" : (const char *)res->body;
    size_t len = res->status == 204 ? 2 : res->body_len;
    char err[128];
    json_t *payload = crm_parse(text, len, err, sizeof err);
    if (payload) return payload;
    crm_node_warn(st->n, "JSON parse error");
    return crm_utf8_string(text, len);
}

static void on_success(hr_state *st, hr_req *r)
{
    crm_node *n = st->n;
    crm_http_result *res = r->res;
    json_t *msg = r->msg;
    json_t *headers = res->headers;
    /* the keys in Node-RED's assignment order */
    json_object_set_new(msg, "statusCode", crm_num((double)res->status));
    json_object_set(msg, "headers", headers);
    json_t *redirects = redirect_list(res->hops);
    /* got's response URL: the requested URL (fragment included) unless a
     * redirect moved it */
    char *rurl = json_array_size(redirects) ? strdup(res->url) : crm_url_clean(r->url, true);
    json_object_set_new(msg, "responseUrl", crm_utf8_string(rurl, strlen(rurl)));
    free(rurl);
    json_object_set_new(msg, "payload", json_null());
    json_object_set_new(msg, "redirectList", redirects);
    json_object_set_new(msg, "retry", crm_num(0));
    json_t *sc = json_object_get(headers, "set-cookie");
    if (sc) json_object_set_new(msg, "responseCookies", crm_extract_cookies(sc));
    char hash[17];
    json_object_set_new(headers, "x-node-red-request-node", json_string(crm_hash_sum(headers, hash)));
    json_object_set_new(msg, "payload", response_payload(st, res));
    crm_node_status(n, NULL, NULL, NULL);
    crm_node_send(n, 0, msg);
    crm_node_done(n, msg);
}

static void on_failure(hr_state *st, hr_req *r)
{
    crm_node *n = st->n;
    crm_http_result *res = r->res;
    json_t *msg = r->msg;
    const char *code = res->err_code;
    if (!strcmp(code, "ETIMEDOUT")) {
        crm_node_error(n, msg, "no response from server");
        crm_node_status(n, "red", "ring", "common.notification.errors.no-response");
    } else {
        /* got's RequestError carries its code, which Node-RED's catch passes on as error.code */
        json_t *extra = json_pack("{s:s}", "code", code);
        crm_node_error_with(n, msg, res->err_text, extra);
        json_decref(extra);
        crm_node_status(n, "red", "ring", code);
    }
    strbuf sb = SB_INIT;
    sb_printf(&sb, "%s : %s", res->err_text, r->url);
    json_object_set_new(msg, "payload", json_string(sb.data));
    sb_free(&sb);
    json_object_set_new(msg, "statusCode", json_string(code));
    if (!st->senderr) crm_node_send(n, 0, msg);
    crm_node_done(n, msg);
    if (st->senderr) json_decref(msg);
}

/* Runs on the node's loop with a finished request. */
static void on_result(crm_node *n, void *arg)
{
    (void)n;
    hr_req *r = arg;
    hr_state *st = r->st;
    if (!st->closed) {
        if (r->res->err_code) on_failure(st, r);
        else on_success(st, r);
        r->msg = NULL; /* sent (or freed) above */
    }
    req_free(r);
    state_unref(st);
}

/* Client thread: hand the result to the loop at once. */
static void on_done(crm_http_result *res, void *arg)
{
    hr_req *r = arg;
    r->res = res;
    crm_node_post(r->st->n, on_result, r);
}

/* Input ------------------------------------------------------------------------------ */

/* The URL to request, or NULL when the handler already reported why not. */
static char *resolve_url(crm_node *n, hr_state *st, json_t *msg)
{
    json_t *murl = json_object_get(msg, "url");
    bool msg_has = crm_truthy(murl);
    if (msg_has && st->url && !(json_is_string(murl) && !strcmp(json_string_value(murl), st->url)))
        crm_node_warn(n, T_NOOVERRIDE);
    char *url = NULL;
    if (st->templated) {
        char *err = NULL;
        url = crm_mustache_render(st->url, msg, &err);
        if (!url) {
            crm_node_error(n, msg, "Error: %s", err ? err : "bad template");
            free(err);
            return NULL;
        }
    } else if (st->url) {
        url = strdup(st->url);
    } else if (msg_has) {
        if (!json_is_string(murl)) {
            crm_node_error(n, msg, "TypeError: url.indexOf is not a function");
            return NULL;
        }
        url = strdup(json_string_value(murl));
    }
    if (!url || !*url) {
        free(url);
        crm_node_error(n, msg, "No url specified");
        crm_node_done(n, msg);
        return NULL;
    }
    if (strstr(url, "://") && strncmp(url, "http", 4)) {
        free(url);
        crm_node_warn(n, "non-http transport requested");
        crm_node_status(n, "red", "ring", "httpin.errors.invalid-transport");
        crm_node_done(n, msg);
        return NULL;
    }
    if (strncmp(url, "http://", 7) && strncmp(url, "https://", 8)) {
        strbuf sb = SB_INIT;
        sb_printf(&sb, "%s%s", find_tls(st) ? "https://" : "http://", url);
        free(url);
        url = sb_take(&sb);
    }
    /* a % in the query not followed by two hex digits is a literal % */
    char *q = strchr(url, '?');
    if (q && q[1]) {
        strbuf sb = SB_INIT;
        sb_putn(&sb, url, (size_t)(q - url + 1));
        for (const char *c = q + 1; *c; c++) {
            bool hex2 = c[1] && c[2] && strchr("0123456789abcdefABCDEF", c[1]) && strchr("0123456789abcdefABCDEF", c[2]);
            if (*c == '%' && !hex2) sb_puts(&sb, "%25");
            else sb_putc(&sb, *c);
        }
        free(url);
        url = sb_take(&sb);
    }
    return url;
}

/* The method, or NULL after reporting an error. */
static char *resolve_method(crm_node *n, hr_state *st, json_t *msg)
{
    json_t *mm = json_object_get(msg, "method");
    bool use = !strcmp(st->method, "use");
    if (crm_truthy(mm) && !use) crm_node_warn(n, T_NOOVERRIDE);
    const char *m = st->method;
    if (crm_truthy(mm) && use) {
        if (!json_is_string(mm)) {
            crm_node_error(n, msg, "TypeError: msg.method.toUpperCase is not a function");
            return NULL;
        }
        m = json_string_value(mm);
    }
    char *up = strdup(m);
    for (char *c = up; *c; c++)
        if (*c >= 'a' && *c <= 'z') *c = (char)(*c - 32);
    return up;
}

static double resolve_timeout(crm_node *n, hr_state *st, json_t *msg)
{
    json_t *t = json_object_get(msg, "requestTimeout");
    if (!t) return st->timeout_ms;
    double d = js_number(t);
    if (isnan(d)) crm_node_warn(n, "Timeout value is not a valid number, ignoring");
    else if (d < 1) crm_node_warn(n, "Timeout value is negative, ignoring");
    else return d;
    return st->timeout_ms;
}

/* -1: no opinion, 0/1: msg.rejectUnauthorized. */
static int resolve_reject(crm_node *n, json_t *msg)
{
    json_t *v = json_object_get(msg, "rejectUnauthorized");
    if (!v) return -1;
    if (json_is_boolean(v)) return json_is_true(v);
    const char *s = json_string_value(v);
    if (s && !strcmp(s, "true")) return 1;
    if (s && !strcmp(s, "false")) return 0;
    crm_node_warn(n, "msg.rejectUnauthorized should be a boolean");
    return -1;
}

/* Basic / bearer headers, or digest credentials for the client. */
static void apply_auth(hr_state *st, hdrs *H, const char *url, crm_http_spec *spec, char **user, char **pass)
{
    char *uu, *up;
    url_userinfo(url, &uu, &up);
    *user = st->user ? strdup(st->user) : uu ? strdup(uu) : NULL;
    *pass = st->password ? strdup(st->password) : up ? strdup(up) : NULL;
    free(uu);
    free(up);
    if (!*user && !*pass) return;
    if (st->auth == AUTH_BASIC) {
        strbuf sb = SB_INIT;
        sb_printf(&sb, "%s:%s", *user ? *user : "", *pass ? *pass : "");
        char *enc = b64(sb.data);
        sb_free(&sb);
        sb_printf(&sb, "Basic %s", enc);
        free(enc);
        update_header(H->h, "Authorization", json_string(sb.data));
        sb_free(&sb);
    } else if (st->auth == AUTH_DIGEST) {
        spec->auth = CRM_HTTP_AUTH_DIGEST;
        spec->user = *user ? *user : "";
        spec->password = *pass ? *pass : "";
    } else {
        strbuf sb = SB_INIT;
        sb_printf(&sb, "Bearer %s", *pass ? *pass : "");
        update_header(H->h, "Authorization", json_string(sb.data));
        sb_free(&sb);
    }
}

/* paytoqs query: the payload object appended as a query string. -1 on a
 * non-object payload (reported). */
static int append_query(crm_node *n, json_t *msg, char **url)
{
    json_t *p = json_object_get(msg, "payload");
    if (!json_is_object(p) && !json_is_array(p) && !json_is_null(p)) {
        crm_node_error(n, msg, "Invalid payload");
        crm_node_done(n, msg);
        return -1;
    }
    char *qs = crm_querystring(p);
    strbuf sb = SB_INIT;
    size_t ul = strlen(*url);
    sb_puts(&sb, *url);
    if (strchr(*url, '?')) {
        if (ul && (*url)[ul - 1] != '?') sb_putc(&sb, '&');
    } else {
        sb_putc(&sb, '?');
    }
    sb_puts(&sb, qs);
    free(qs);
    free(*url);
    *url = sb_take(&sb);
    return 0;
}

/* Everything one request needs, owned here until it is handed over. */
typedef struct {
    char *url;            /* as Node-RED reports it in errors */
    char *clean;          /* as it goes on the wire */
    char *method, *cookie, *user, *pass, *body;
    size_t body_len;
    hdrs H;
    json_t *headers;      /* for the client */
    crm_http_spec spec;
} prep;

static void prep_free(prep *p)
{
    free(p->url);
    free(p->clean);
    free(p->method);
    free(p->cookie);
    free(p->user);
    free(p->pass);
    free(p->body);
    json_decref(p->H.h);
    json_decref(p->headers);
}

/* Headers, cookies, auth and body, in Node-RED's order. -1 when an error was
 * already reported. */
static int prepare_content(crm_node *n, hr_state *st, json_t *msg, prep *p)
{
    p->H.h = json_object();
    headers_from_msg(&p->H, msg);
    headers_from_node(&p->H, n, st->headers, msg);
    const char *cookie_err = NULL;
    p->cookie = build_cookies(&p->H, msg, &cookie_err);
    if (cookie_err) {
        /* thrown inside the handler in Node-RED: an error, no output, no done */
        crm_node_error(n, msg, "%s", cookie_err);
        return -1;
    }
    apply_auth(st, &p->H, p->url, &p->spec, &p->user, &p->pass);
    json_t *payload = json_object_get(msg, "payload");
    bool get = !strcmp(p->method, "GET");
    if (!get && strcmp(p->method, "HEAD") && payload) p->body = make_body(&p->H, payload, &p->body_len);
    if (get && payload && st->paytoqs == QS_QUERY && append_query(n, msg, &p->url) < 0) return -1;
    if (get && payload && st->paytoqs == QS_BODY) p->body = get_body(payload, &p->body_len);
    return 0;
}

static int prepare(crm_node *n, hr_state *st, json_t *msg, prep *p)
{
    if (!(p->url = resolve_url(n, st, msg))) return -1;
    if (!(p->method = resolve_method(n, st, msg))) return -1;
    crm_http_spec *spec = &p->spec;
    spec->method = p->method;
    spec->timeout_ms = resolve_timeout(n, st, msg);
    spec->max_body = st->max_body;
    spec->follow_redirects = true;
    spec->max_redirects = 21;
    json_t *fr = json_object_get(msg, "followRedirects");
    if (fr) spec->follow_redirects = crm_truthy(fr);
    spec->keepalive = st->persist;
    if (prepare_content(n, st, msg, p) < 0) return -1;
    p->headers = headers_for_client(&p->H);
    spec->headers = p->headers;
    spec->cookie = p->cookie;
    spec->body = p->body;
    spec->body_len = p->body_len;
    spec->tls = find_tls(st);
    spec->proxy = find_proxy(st);
    spec->reject_unauthorized = spec->tls ? -1 : resolve_reject(n, msg);
    spec->url = p->clean = crm_url_clean(p->url, false);
    return 0;
}

/* Hands the request to the client; msg goes with it. */
static void submit(crm_node *n, hr_state *st, json_t *msg, prep *p)
{
    if (!st->group) st->group = crm_http_group_new();
    hr_req *r = st->group ? calloc(1, sizeof *r) : NULL;
    if (!r) {
        crm_node_error(n, msg, "Error: the HTTP client could not start");
        json_decref(msg);
        return;
    }
    r->st = st;
    r->msg = msg;
    r->url = p->url;
    p->url = NULL;
    st->refs++;
    char *err = NULL;
    if (crm_http_submit(st->group, &p->spec, on_done, r, &err) < 0) {
        /* new URL() threw in Node-RED: an error, no output */
        crm_node_error(n, msg, "%s", err ? err : "TypeError: Invalid URL");
        st->refs--;
        req_free(r);
    }
    free(err);
}

static void hr_input(crm_node *n, json_t *msg)
{
    hr_state *st = crm_node_data(n);
    crm_node_status(n, "blue", "dot", "httpin.status.requesting");
    prep p = {0};
    if (prepare(n, st, msg, &p) == 0) submit(n, st, msg, &p);
    else json_decref(msg);
    prep_free(&p);
}

const crm_node_type crm_type_http_request = {
    .abi = CRM_ABI_VERSION,
    .type = "http request",
    .create = hr_create,
    .input = hr_input,
    .close = hr_close,
};
