/* httpd_msg.c: a node request's message (msg.req): the received headers as
 * Node.js gives them, the client address, the copy of the request the
 * node's loop builds the message from (req_snapshot). */
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

/* Request messages ------------------------------------------------------------------ */

static bool header_single(const char *k)
{
    static const char *single[] = {"age", "authorization", "content-length", "content-type", "etag", "expires",
                                   "from", "host", "if-modified-since", "if-unmodified-since", "last-modified",
                                   "location", "max-forwards", "proxy-authorization", "referer", "retry-after",
                                   "server", "user-agent"};
    for (size_t i = 0; i < sizeof single / sizeof *single; i++)
        if (!strcmp(k, single[i])) return true;
    return false;
}

/* Header bytes are latin1 to Node.js. */
json_t *httpd_latin1_string(const char *s)
{
    bool high = false;
    for (const char *p = s; *p; p++)
        if ((unsigned char)*p >= 0x80) high = true;
    if (!high) return json_string(s);
    strbuf sb = SB_INIT;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p < 0x80) sb_putc(&sb, (char)*p);
        else {
            sb_putc(&sb, (char)(0xC0 | (*p >> 6)));
            sb_putc(&sb, (char)(0x80 | (*p & 0x3F)));
        }
    }
    json_t *r = json_stringn(sb.data, sb.len);
    sb_free(&sb);
    return r;
}

/* Adds one received header to obj as Node.js does: lower-case names (given
 * so), Set-Cookie always an array, single-valued names keep the first,
 * others join with ", " ("; " for Cookie). */
static void add_header_value(json_t *obj, const char *name, const char *value)
{
    json_t *v = httpd_latin1_string(value ? value : "");
    bool ascii = true; /* a name jansson need not check (nearly all are) */
    for (const char *c = name; *c; c++)
        if ((unsigned char)*c >= 0x80) ascii = false;
    json_t *old = json_object_get(obj, name);
    if (!strcmp(name, "set-cookie")) {
        if (!old) {
            old = json_array();
            json_object_set_new(obj, name, old);
        }
        json_array_append_new(old, v);
    } else if (!old) {
        if (ascii) json_object_set_new_nocheck(obj, name, v);
        else json_object_set_new(obj, name, v);
    } else if (header_single(name)) {
        json_decref(v);
    } else {
        strbuf sb = SB_INIT;
        sb_puts(&sb, json_string_value(old));
        sb_puts(&sb, !strcmp(name, "cookie") ? "; " : ", ");
        sb_puts(&sb, json_string_value(v));
        json_object_set_new(obj, name, json_stringn(sb.data, sb.len));
        sb_free(&sb);
        json_decref(v);
    }
}


static enum MHD_Result collect_header(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
    (void)kind;
    char name[HEADER_NAME_MAX];
    size_t n = strlen(key);
    if (n >= sizeof name) return MHD_YES;
    for (size_t i = 0; i <= n; i++) name[i] = (char)tolower((unsigned char)key[i]);
    add_header_value(cls, name, value);
    return MHD_YES;
}

json_t *httpd_request_headers(struct MHD_Connection *c)
{
    json_t *obj = json_object();
    MHD_get_connection_values(c, MHD_HEADER_KIND, collect_header, obj);
    return obj;
}


enum MHD_Result httpd_pack_header(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
    (void)kind;
    header_packer *p = cls;
    size_t n = strlen(key), vn = value ? strlen(value) : 0;
    if (n >= HEADER_NAME_MAX) return MHD_YES;
    p->bytes += n + vn + 2;
    p->count++;
    if (!p->at) return MHD_YES;
    for (size_t i = 0; i < n; i++) p->at[i] = (char)tolower((unsigned char)key[i]);
    p->at[n] = 0;
    memcpy(p->at + n + 1, value ? value : "", vn + 1);
    p->at += n + vn + 2;
    return MHD_YES;
}

static json_t *headers_from_pack(const char *p, size_t count)
{
    json_t *obj = json_object();
    for (size_t i = 0; i < count; i++) {
        const char *v = p + strlen(p) + 1;
        add_header_value(obj, p, v);
        p = v + strlen(v) + 1;
    }
    return obj;
}

static void put_ipv4(char *buf, const unsigned char *a, const char *prefix)
{
    char *p = stpcpy(buf, prefix);
    for (int i = 0; i < 4; i++) {
        unsigned v = a[i];
        if (v >= 100) *p++ = (char)('0' + v / 100);
        if (v >= 10) *p++ = (char)('0' + v / 10 % 10);
        *p++ = (char)('0' + v % 10);
        if (i < 3) *p++ = '.';
    }
    *p = 0;
}


/* req.ip as Express gives it ("::ffff:127.0.0.1" on a dual-stack socket). */
void httpd_client_ip(struct MHD_Connection *c, char buf[IP_TEXT_MAX])
{
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    buf[0] = 0;
    if (ci && ci->client_addr) {
        const struct sockaddr *sa = ci->client_addr;
        if (sa->sa_family == AF_INET) {
            put_ipv4(buf, (const unsigned char *)&((const struct sockaddr_in *)(const void *)sa)->sin_addr, "");
        } else if (sa->sa_family == AF_INET6) {
            const unsigned char *a = ((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr.s6_addr;
            static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
            if (!memcmp(a, mapped, 12)) put_ipv4(buf, a + 12, "::ffff:"); /* what inet_ntop writes, faster */
            else inet_ntop(AF_INET6, a, buf, IP_TEXT_MAX);
        }
    }
}

/* req.hostname's length in a Host header's text: without the port */
static size_t hostname_len(const char *host)
{
    size_t n = strlen(host);
    if (host[0] == '[') {
        const char *e = strchr(host, ']');
        n = e ? (size_t)(e - host) + 1 : n;
    } else {
        const char *colon = strchr(host, ':');
        if (colon) n = (size_t)(colon - host);
    }
    return n;
}

static json_t *hostname_of(const json_t *headers)
{
    const char *host = json_string_value(json_object_get(headers, "host"));
    if (!host) return NULL;
    return json_stringn_nocheck(host, hostname_len(host)); /* made of a header's text, UTF-8 already (latin1 converted) */
}



req_snapshot *httpd_snapshot_new(req_state *r, const char *method, size_t plen)
{
    header_packer count = {NULL, 0, 0};
    MHD_get_connection_values(r->conn, MHD_HEADER_KIND, httpd_pack_header, &count);
    size_t ml = strlen(method) + 1, ul = strlen(r->uri) + 1;
    req_snapshot *s = malloc(sizeof *s + ml + ul + count.bytes);
    if (!s) return NULL;
    *s = (req_snapshot){.h = r->h, .plen = plen, .nheaders = count.count};
    char *at = s->data;
    s->method = memcpy(at, method, ml);
    s->uri = memcpy(at + ml, r->uri, ul);
    s->headers = at + ml + ul;
    header_packer fill = {at + ml + ul, 0, 0};
    MHD_get_connection_values(r->conn, MHD_HEADER_KIND, httpd_pack_header, &fill);
    httpd_client_ip(r->conn, s->ip);
    return s;
}

void httpd_snapshot_free(req_snapshot *s)
{
    json_decref(s->params);
    json_decref(s->body);
    json_decref(s->files);
    free(s);
}

/* Strings every request's msg.req holds, made once and shared (never
 * freed, never counted; nothing changes a string in place: a flow
 * that sets msg.req.method replaces the value): each one a request saves is
 * two allocations and two frees on the loop. */
enum { SH_EMPTY, SH_HTTP, SH_HTTPS, SH_GET, SH_POST, SH_PUT, SH_DELETE, SH_PATCH, SH_HEAD, SH_OPTIONS, SH_N };
static json_t *shared_str[SH_N];
static pthread_once_t shared_once = PTHREAD_ONCE_INIT;

static void shared_init(void)
{
    static const char *text[SH_N] = {"", "http", "https", "GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"};
    for (int i = 0; i < SH_N; i++) {
        shared_str[i] = json_string_nocheck(text[i]);
        /* immortal, as jansson's true/false/null: loop threads then only read
         * the count, none writes it (a count shared by threads is a data
         * race on its unlocked read in json_incref/json_decref) */
        if (shared_str[i]) shared_str[i]->refcount = (size_t)-1;
    }
}

static json_t *shared(int which)
{
    pthread_once(&shared_once, shared_init);
    return shared_str[which] ? json_incref(shared_str[which]) : json_string_nocheck("");
}

static json_t *method_string(const char *m)
{
    static const char *known[] = {"GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"};
    for (int i = 0; i < 7; i++)
        if (!strcmp(m, known[i])) {
            pthread_once(&shared_once, shared_init);
            if (shared_str[SH_GET + i]) return json_incref(shared_str[SH_GET + i]);
        }
    return json_string(m);
}

/* a member whose name is a literal: its length known, not measured */
#define SET_KEY(obj, key, v) json_object_setn_new_nocheck(obj, key, sizeof key - 1, v)

static json_t *build_req(req_snapshot *s, json_t *headers)
{
    crm_httpd *h = s->h;
    json_t *req = json_object();
    size_t base = strlen(h->node_root) - 1; /* the mount path, without its trailing slash */
    size_t plen = s->plen, ulen = strlen(s->uri);
    const char *uri = s->uri, *path = uri;
    const char *query = uri[plen] == '?' ? uri + plen + 1 : NULL;
    SET_KEY(req, "headers", headers);
    SET_KEY(req, "params", s->params ? s->params : json_object());
    s->params = NULL;
    SET_KEY(req, "query", query ? crm_http_parse_query(query, ulen - plen - 1) : json_object());
    SET_KEY(req, "cookies", http_cookies_parse(json_string_value(json_object_get(headers, "cookie"))));
    SET_KEY(req, "method", method_string(s->method));
    /* under the root "/" url is originalUrl, and path too without a query:
     * one string for the equal ones */
    json_t *original = http_string_lossy(uri, ulen);
    const char *rel = uri + (plen >= base ? base : 0);
    json_t *url = base == 0 && *rel ? json_incref(original)
                                    : http_string_lossy(*rel ? rel : "/", *rel ? strlen(rel) : 1);
    SET_KEY(req, "url", url);
    SET_KEY(req, "originalUrl", original);
    json_t *p = base == 0 && plen == ulen && plen > 0
                    ? json_incref(original)
                    : http_string_lossy(plen > base ? path + base : "/", plen > base ? plen - base : 1);
    SET_KEY(req, "path", p);
    SET_KEY(req, "baseUrl", base == 0 ? shared(SH_EMPTY) : http_string_lossy(path, plen >= base ? base : 0));
    SET_KEY(req, "ip", json_stringn_nocheck(s->ip, strlen(s->ip)));
    json_t *hn = hostname_of(headers);
    if (hn) SET_KEY(req, "hostname", hn);
    SET_KEY(req, "protocol", shared(h->tls_key ? SH_HTTPS : SH_HTTP));
    SET_KEY(req, "secure", json_boolean(h->tls_key != NULL));
    return req;
}

/* msg.req filled again ---------------------------------------------------------------
 *
 * Building msg.req is a dozen jansson members (a hashing, an allocation and,
 * at the 9th, a rehash of the table each) and as many values, all freed
 * again when the message is done with: most of what Carmine adds to a
 * request beyond libmicrohttpd. So each loop thread keeps a reference to the
 * last msg.req it built (for a request without a body). When the next
 * request comes and that reference is the only one left (the message and
 * everything it reached are gone: nobody else can see the object), the
 * object is filled again in place: its members found by position (no
 * hashing), each value replaced, or kept when it is already equal and held
 * by nobody else (the host header, the url, the client address of a
 * connection's next request; strings are never changed in place). It is
 * only done when the object still has exactly the members it was built
 * with, in the same order; the nested objects (headers, params, query,
 * cookies) likewise, else they are made anew. What a flow sees is the same
 * as with a new object: a request's msg.req is never visible to another
 * request's flow (a reference anywhere, a context store, a JavaScript
 * holder, a message still queued, keeps it out of reuse). */

static pthread_key_t reuse_key;
static pthread_once_t reuse_once = PTHREAD_ONCE_INIT;

static void reuse_drop(void *v) { json_decref(v); }
static pthread_key_t handle_key;
static void reuse_init(void)
{
    if (pthread_key_create(&reuse_key, reuse_drop) || pthread_key_create(&handle_key, reuse_drop)) abort();
}

/* v's reference count (read as jansson's atomic decrements write it) */
static size_t refs_of(json_t *v) { return __atomic_load_n(&v->refcount, __ATOMIC_ACQUIRE); }

/* text as a string value: old itself when it holds exactly those bytes and
 * only the holders the caller counted reference it; text is valid UTF-8
 * when it equals a string's bytes, so nothing is lost by keeping it. */
static json_t *keep_or_new(json_t *old, size_t holders, const char *text, size_t len, json_t *(*make)(const char *, size_t))
{
    if (old && json_is_string(old) && refs_of(old) == holders && json_string_length(old) == len &&
        !memcmp(json_string_value(old), text, len))
        return json_incref(old);
    return make(text, len);
}

static json_t *make_nocheck(const char *s, size_t n) { return json_stringn_nocheck(s, n); }

static bool ascii_text(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s >= 0x80) return false;
    return true;
}

/* The received headers into old (a headers object of an earlier request,
 * held by old's msg.req only) when they have the same names in the same
 * order, no name twice and no Set-Cookie (those are joined or arrays); the
 * values set by position. False (old untouched) otherwise. */
static bool refill_headers(json_t *old, const char *p, size_t count, json_t **host, json_t **cookie)
{
    if (refs_of(old) != 1 || json_object_size(old) != count || count > 64) return false;
    void *its[64];
    const char *vals[64];
    void *it = json_object_iter(old);
    for (size_t i = 0; i < count; i++) {
        const char *v = p + strlen(p) + 1;
        if (!it || strcmp(json_object_iter_key(it), p) || !strcmp(p, "set-cookie")) return false;
        its[i] = it;
        vals[i] = v;
        it = json_object_iter_next(old, it);
        p = v + strlen(v) + 1;
    }
    for (size_t i = 0; i < count; i++) {
        json_t *ov = json_object_iter_value(its[i]);
        size_t vn = strlen(vals[i]);
        if (json_is_string(ov) && refs_of(ov) == 1 && json_string_length(ov) == vn &&
            !memcmp(json_string_value(ov), vals[i], vn) && ascii_text(vals[i]))
            continue; /* the same value (latin1 text is its own UTF-8 when ASCII) */
        json_object_iter_set_new(old, its[i], httpd_latin1_string(vals[i]));
    }
    *host = *cookie = NULL;
    for (size_t i = 0; i < count; i++) {
        const char *k = json_object_iter_key(its[i]);
        if (!strcmp(k, "host")) *host = json_object_iter_value(its[i]);
        else if (!strcmp(k, "cookie")) *cookie = json_object_iter_value(its[i]);
    }
    return true;
}

/* An empty object: old when it is one held by its msg.req only. */
static json_t *empty_or_new(json_t *old)
{
    if (json_is_object(old) && refs_of(old) == 1 && json_object_size(old) == 0) return json_incref(old);
    return json_object();
}

enum { RQ_HEADERS, RQ_PARAMS, RQ_QUERY, RQ_COOKIES, RQ_METHOD, RQ_URL, RQ_ORIGINAL, RQ_PATH, RQ_BASE, RQ_IP,
       RQ_HOSTNAME, RQ_PROTOCOL, RQ_SECURE, RQ_N };
static const char *const rq_keys[RQ_N] = {"headers", "params", "query", "cookies", "method", "url", "originalUrl",
                                           "path", "baseUrl", "ip", "hostname", "protocol", "secure"};

/* build_req's values put into req, a msg.req of an earlier request without
 * a body that only the thread's reference holds. False (req as it was, or
 * with nothing a flow could tell apart) when its members are not exactly
 * those build_req makes. */
static bool refill_req(json_t *req, req_snapshot *s, json_t **query_out)
{
    crm_httpd *h = s->h;
    size_t n = json_object_size(req);
    if (n != RQ_N && n != RQ_N - 1) return false;
    void *its[RQ_N] = {0};
    void *it = json_object_iter(req);
    for (int k = 0; k < RQ_N; k++) {
        if (k == RQ_HOSTNAME && n == RQ_N - 1) continue;
        if (!it || strcmp(json_object_iter_key(it), rq_keys[k])) return false;
        its[k] = it;
        it = json_object_iter_next(req, it);
    }
#define OLD(k) (its[k] ? json_object_iter_value(its[k]) : NULL)
    /* headers first: hostname and cookies come from them */
    json_t *headers = OLD(RQ_HEADERS);
    json_t *host, *cookie_v;
    if (!json_is_object(headers) || !refill_headers(headers, s->headers, s->nheaders, &host, &cookie_v)) return false;
    bool has_host = json_is_string(host);
    if (has_host != (n == RQ_N)) return false; /* hostname there or not as before */
    json_t *v[RQ_N] = {0};
    v[RQ_HEADERS] = json_incref(headers);
    v[RQ_PARAMS] = s->params ? s->params : empty_or_new(OLD(RQ_PARAMS));
    s->params = NULL;
    size_t base = strlen(h->node_root) - 1;
    size_t plen = s->plen, ulen = strlen(s->uri);
    const char *uri = s->uri, *path = uri;
    const char *query = uri[plen] == '?' ? uri + plen + 1 : NULL;
    v[RQ_QUERY] = query ? crm_http_parse_query(query, ulen - plen - 1) : empty_or_new(OLD(RQ_QUERY));
    const char *cookie = json_string_value(cookie_v);
    v[RQ_COOKIES] = cookie ? http_cookies_parse(cookie) : empty_or_new(OLD(RQ_COOKIES));
    v[RQ_METHOD] = method_string(s->method);
    /* url, originalUrl and path: one string when equal, as build_req makes them */
    json_t *ou = OLD(RQ_URL), *oo = OLD(RQ_ORIGINAL), *op = OLD(RQ_PATH);
    size_t holders = (ou == oo) + 1 + (op == oo);
    json_t *original = keep_or_new(oo, holders, uri, ulen, http_string_lossy);
    const char *rel = uri + (plen >= base ? base : 0);
    v[RQ_URL] = base == 0 && *rel ? json_incref(original)
                                  : keep_or_new(ou, 1, *rel ? rel : "/", *rel ? strlen(rel) : 1, http_string_lossy);
    v[RQ_ORIGINAL] = original;
    v[RQ_PATH] = base == 0 && plen == ulen && plen > 0
                     ? json_incref(original)
                     : keep_or_new(op, 1, plen > base ? path + base : "/", plen > base ? plen - base : 1,
                                   http_string_lossy);
    v[RQ_BASE] = base == 0 ? shared(SH_EMPTY) : http_string_lossy(path, plen >= base ? base : 0);
    v[RQ_IP] = keep_or_new(OLD(RQ_IP), 1, s->ip, strlen(s->ip), make_nocheck);
    if (has_host) {
        const char *ht = json_string_value(host);
        size_t hl = hostname_len(ht);
        v[RQ_HOSTNAME] = keep_or_new(OLD(RQ_HOSTNAME), 1, ht, hl, make_nocheck);
    }
    v[RQ_PROTOCOL] = shared(h->tls_key ? SH_HTTPS : SH_HTTP);
    v[RQ_SECURE] = json_boolean(h->tls_key != NULL);
#undef OLD
    *query_out = v[RQ_QUERY];
    for (int k = 0; k < RQ_N; k++)
        if (its[k]) json_object_iter_set_new(req, its[k], v[k]);
    return true;
}

/* msg.res: the thread's last handle object given the new id, when nothing
 * but the thread's reference holds it (and its number) any more. */

static json_t *handle_for(long long id)
{
    json_t *kept = pthread_getspecific(handle_key);
    if (kept && refs_of(kept) == 1 && json_object_size(kept) == 1) {
        void *it = json_object_iter(kept);
        json_t *v = json_object_iter_value(it);
        if (!strcmp(json_object_iter_key(it), CRM_HANDLE_KEY) && json_is_integer(v) && refs_of(v) == 1) {
            json_integer_set(v, id);
            return json_incref(kept);
        }
    }
    json_decref(kept);
    json_t *hd = crm_handle_new(id);
    pthread_setspecific(handle_key, json_incref(hd));
    return hd;
}

/* On the node's loop: the message {req, res, payload} and the node's handler. */
void httpd_run_handoff(crm_node *n, void *arg)
{
    req_snapshot *s = arg;
    crm_node_stats_take(&n->stats);
    pthread_once(&reuse_once, reuse_init);
    json_t *kept = pthread_getspecific(reuse_key);
    json_t *req = NULL, *query = NULL;
    if (!s->body) {
        if (kept && refs_of(kept) == 1 && refill_req(kept, s, &query)) {
            req = json_incref(kept);
        } else {
            json_decref(kept);
            req = build_req(s, headers_from_pack(s->headers, s->nheaders));
            pthread_setspecific(reuse_key, json_incref(req));
        }
    } else {
        req = build_req(s, headers_from_pack(s->headers, s->nheaders));
    }
    json_t *payload;
    if (s->body) {
        if (s->files) SET_KEY(req, "files", s->files);
        SET_KEY(req, "body", s->body);
        payload = json_incref(s->body);
        s->body = s->files = NULL;
    } else {
        payload = json_incref(query ? query : json_object_get(req, "query"));
    }
    json_t *msg = json_object();
    SET_KEY(msg, "req", req);
    SET_KEY(msg, "res", handle_for(s->id));
    SET_KEY(msg, "payload", payload);
    crm_http_request_fn fn = s->fn;
    httpd_req_release(s->r); /* the snapshot goes with the request, freed where it was made */
    fn(n, msg);
}

/* The node closed before its loop took the request (a redeploy). */
void httpd_drop_handoff(void *arg)
{
    req_snapshot *s = arg;
    CRM_STAT_ADD(s->node->stats.in, 1);
    req_state *r = httpd_slot_claim(s->h, s->id);
    if (r) httpd_deliver(r, 503, httpd_status_response(503));
    httpd_req_release(s->r);
}
