/* httpclient.c: the process-wide curl-multi client thread (see httpclient.h).
 *
 * Locking: one mutex guards the queue of new transfers, the list of live
 * transfers and the groups. Completion callbacks run with that mutex held so
 * that crm_http_group_close can promise that no callback of a closed group
 * runs after it returns; callbacks only hand the result to a loop. curl calls
 * on the multi handle happen on the client thread only (curl_multi_wakeup is
 * the thread-safe exception).
 */
#include "httpclient.h"

#include <curl/curl.h>
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "strbuf.h"

/* Idle connections kept in the multi handle's cache: enough for a load
 * tester hammering a few hosts, small enough to stay cheap. */
#define CACHE_CONNECTIONS 64
/* Open connections per host: past this, transfers wait in curl's queue for a
 * free connection instead of each opening its own socket, which keeps a
 * burst of thousands of requests from costing thousands of sockets and
 * buffers (and from tripping the server's overload limit). */
#define HOST_CONNECTIONS 64

struct crm_http_group {
    int refs;     /* 1 for the owner until closed, +1 per live transfer */
    bool closed;
};

typedef struct xfer {
    struct xfer *prev, *next; /* live list */
    struct xfer *qnext;       /* new-transfer queue */
    bool added;               /* handed to the multi handle */
    bool cancelled;
    crm_http_group *group;
    crm_http_done_fn fn;
    void *arg;
    CURL *easy;
    struct curl_slist *hdrs;
    char *body;               /* copy of the request body */
    double timeout_ms;
    double max_body;
    bool too_large;           /* stopped at max_body */
    char errbuf[CURL_ERROR_SIZE];
    /* response being read */
    strbuf resp;
    json_t *hops;             /* all responses so far: [{status, headers}] */
    json_t *cur_headers;      /* headers of the response being read */
    long cur_status;
} xfer;

static struct {
    pthread_mutex_t life;     /* serialises starting and stopping the thread */
    pthread_mutex_t mu;
    pthread_t thread;
    bool running, stop;
    int groups;               /* open groups */
    CURLM *multi;
    xfer *live;               /* every transfer not yet finished */
    xfer *qhead, *qtail;      /* submitted, not yet added */
    size_t ncancel;           /* cancelled transfers still in live */
    size_t inflight;
} C = {.life = PTHREAD_MUTEX_INITIALIZER, .mu = PTHREAD_MUTEX_INITIALIZER};

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static bool global_ok;

static void global_init(void) { global_ok = curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK; }

/* Transfers ------------------------------------------------------------- */

static void xfer_free(xfer *x)
{
    if (!x) return;
    if (x->easy) curl_easy_cleanup(x->easy);
    curl_slist_free_all(x->hdrs);
    free(x->body);
    sb_free(&x->resp);
    json_decref(x->hops);
    json_decref(x->cur_headers);
    free(x);
}

static void live_unlink(xfer *x)
{
    if (x->prev) x->prev->next = x->next;
    else C.live = x->next;
    if (x->next) x->next->prev = x->prev;
    x->prev = x->next = NULL;
}

/* Drops a group reference; mu held. */
static void group_unref(crm_http_group *g)
{
    if (--g->refs == 0) free(g);
}

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *ud)
{
    xfer *x = ud;
    size_t n = size * nmemb;
    if (x->max_body > 0 && (double)(x->resp.len + n) > x->max_body) {
        x->too_large = true;
        return 0; /* curl stops the transfer: CURLE_WRITE_ERROR */
    }
    sb_putn(&x->resp, ptr, n);
    return n;
}

/* Header names whose repeats Node's IncomingMessage drops. */
static bool header_single(const char *name)
{
    static const char *const names[] = {"content-type", "content-length", "user-agent", "referer", "host",
                                        "authorization", "proxy-authorization", "if-modified-since",
                                        "if-unmodified-since", "from", "location", "max-forwards",
                                        "retry-after", "etag", "last-modified", "server", "age", "expires",
                                        NULL};
    for (int i = 0; names[i]; i++)
        if (!strcmp(name, names[i])) return true;
    return false;
}

/* Node reads header bytes as latin1: each byte is one character. */
static json_t *latin1_string(const char *s, size_t n)
{
    strbuf sb = SB_INIT;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x80) {
            sb_putc(&sb, (char)c);
        } else {
            sb_putc(&sb, (char)(0xC0 | (c >> 6)));
            sb_putc(&sb, (char)(0x80 | (c & 0x3F)));
        }
    }
    json_t *v = json_stringn(sb.data ? sb.data : "", sb.len);
    sb_free(&sb);
    return v;
}

static void add_header(json_t *obj, const char *name, const char *val, size_t vlen)
{
    json_t *old = json_object_get(obj, name);
    if (!strcmp(name, "set-cookie")) {
        if (!old) {
            old = json_array();
            json_object_set_new(obj, name, old);
        }
        json_array_append_new(old, latin1_string(val, vlen));
        return;
    }
    if (!old) {
        json_object_set_new(obj, name, latin1_string(val, vlen));
        return;
    }
    if (header_single(name)) return;
    strbuf sb = SB_INIT;
    sb_puts(&sb, json_string_value(old));
    sb_puts(&sb, !strcmp(name, "cookie") ? "; " : ", ");
    json_t *v = latin1_string(val, vlen);
    sb_puts(&sb, json_string_value(v));
    json_decref(v);
    json_object_set_new(obj, name, json_stringn(sb.data, sb.len));
    sb_free(&sb);
}

/* Ends the response being read: it joins the hop list. */
static void finish_hop(xfer *x)
{
    if (!x->cur_headers) return;
    json_array_append_new(x->hops, json_pack("{s:f,s:o}", "status", (double)x->cur_status, "headers",
                                             x->cur_headers));
    x->cur_headers = NULL;
}

static size_t on_header(char *line, size_t size, size_t nmemb, void *ud)
{
    xfer *x = ud;
    size_t len = size * nmemb, n = len;
    while (n && (line[n - 1] == '\r' || line[n - 1] == '\n')) n--;
    if (n >= 5 && !strncmp(line, "HTTP/", 5)) {
        finish_hop(x);
        const char *sp = memchr(line, ' ', n);
        x->cur_status = sp ? strtol(sp + 1, NULL, 10) : 0;
        x->cur_headers = json_object();
        return len;
    }
    if (!x->cur_headers || n == 0) return len;
    const char *colon = memchr(line, ':', n);
    if (!colon || colon == line) return len;
    char name[256]; /* Node lower-cases names; longer ones are dropped */
    size_t nl = (size_t)(colon - line);
    while (nl && (line[nl - 1] == ' ' || line[nl - 1] == '\t')) nl--;
    if (nl == 0 || nl >= sizeof name) return len;
    for (size_t i = 0; i < nl; i++) name[i] = (char)((line[i] >= 'A' && line[i] <= 'Z') ? line[i] + 32 : line[i]);
    name[nl] = 0;
    const char *v = colon + 1, *end = line + n;
    while (v < end && (*v == ' ' || *v == '\t')) v++;
    while (end > v && (end[-1] == ' ' || end[-1] == '\t')) end--;
    add_header(x->cur_headers, name, v, (size_t)(end - v));
    return len;
}

static void add_req_header(xfer *x, const char *name, const char *val)
{
    strbuf sb = SB_INIT;
    /* "Name;" is curl's syntax for a header with an empty value. */
    if (*val) sb_printf(&sb, "%s: %s", name, val);
    else sb_printf(&sb, "%s;", name);
    x->hdrs = curl_slist_append(x->hdrs, sb.data);
    sb_free(&sb);
}

static bool has_header(const json_t *headers, const char *name)
{
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)headers, k, v)
        if (!strcasecmp(k, name)) return true;
    return false;
}

static void set_headers(xfer *x, const crm_http_spec *s)
{
    const char *k;
    json_t *v;
    if (s->headers) {
        json_object_foreach((json_t *)s->headers, k, v) {
            if (json_is_array(v)) {
                size_t i;
                json_t *e;
                json_array_foreach(v, i, e)
                    if (json_is_string(e)) add_req_header(x, k, json_string_value(e));
            } else if (json_is_string(v)) {
                add_req_header(x, k, json_string_value(v));
            }
        }
    }
    /* curl's own defaults that got (Node-RED's client) does not send. */
    if (!s->headers || !has_header(s->headers, "accept")) x->hdrs = curl_slist_append(x->hdrs, "Accept:");
    if (!s->headers || !has_header(s->headers, "expect")) x->hdrs = curl_slist_append(x->hdrs, "Expect:");
    if (s->body && (!s->headers || !has_header(s->headers, "content-type")))
        x->hdrs = curl_slist_append(x->hdrs, "Content-Type:");
    if (!s->headers || !has_header(s->headers, "user-agent"))
        x->hdrs = curl_slist_append(x->hdrs, "User-Agent: got (https://github.com/sindresorhus/got)");
}

static void set_method(xfer *x, const crm_http_spec *s)
{
    CURL *e = x->easy;
    const char *m = s->method ? s->method : "GET";
    if (s->body) {
        x->body = malloc(s->body_len ? s->body_len : 1);
        if (x->body && s->body_len) memcpy(x->body, s->body, s->body_len);
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)s->body_len);
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, x->body);
        /* got keeps POST across 301/302 and turns 303 into GET. */
        curl_easy_setopt(e, CURLOPT_POSTREDIR, (long)(CURL_REDIR_POST_301 | CURL_REDIR_POST_302));
        if (strcmp(m, "POST")) curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, m);
    } else if (!strcmp(m, "HEAD")) {
        curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
    } else if (strcmp(m, "GET")) {
        curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, m);
    }
}

static void set_tls(xfer *x, const crm_http_spec *s)
{
    CURL *e = x->easy;
    const crm_tls_options *t = s->tls;
    bool verify = true;
    if (t) verify = t->verify;
    else if (s->reject_unauthorized == 0) verify = false;
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, verify ? 1L : 0L);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, verify ? 2L : 0L);
    if (!t) return;
    if (t->ca_pem) {
        struct curl_blob b = {t->ca_pem, strlen(t->ca_pem), CURL_BLOB_COPY};
        curl_easy_setopt(e, CURLOPT_CAINFO_BLOB, &b);
    } else if (t->ca_file) {
        curl_easy_setopt(e, CURLOPT_CAINFO, t->ca_file);
    }
    if (t->cert_pem) {
        struct curl_blob b = {t->cert_pem, strlen(t->cert_pem), CURL_BLOB_COPY};
        curl_easy_setopt(e, CURLOPT_SSLCERT_BLOB, &b);
    } else if (t->cert_file) {
        curl_easy_setopt(e, CURLOPT_SSLCERT, t->cert_file);
    }
    if (t->key_pem) {
        struct curl_blob b = {t->key_pem, strlen(t->key_pem), CURL_BLOB_COPY};
        curl_easy_setopt(e, CURLOPT_SSLKEY_BLOB, &b);
    } else if (t->key_file) {
        curl_easy_setopt(e, CURLOPT_SSLKEY, t->key_file);
    }
    if (t->passphrase) curl_easy_setopt(e, CURLOPT_KEYPASSWD, t->passphrase);
}

static void set_proxy(xfer *x, const crm_http_spec *s)
{
    const crm_proxy_options *p = s->proxy;
    if (!p || !p->url) {
        /* curl reads http_proxy, https_proxy and no_proxy itself, but not
         * HTTP_PROXY, which Node-RED honours too */
        const char *up = getenv("HTTP_PROXY");
        if (!strncmp(s->url, "http://", 7) && !getenv("http_proxy") && up && *up)
            curl_easy_setopt(x->easy, CURLOPT_PROXY, up);
        return;
    }
    curl_easy_setopt(x->easy, CURLOPT_PROXY, p->url);
    if (p->user) curl_easy_setopt(x->easy, CURLOPT_PROXYUSERNAME, p->user);
    if (p->password) curl_easy_setopt(x->easy, CURLOPT_PROXYPASSWORD, p->password);
    if (p->noproxy) curl_easy_setopt(x->easy, CURLOPT_NOPROXY, p->noproxy);
}

static xfer *xfer_build(const crm_http_spec *s, char **err)
{
    xfer *x = calloc(1, sizeof *x);
    if (!x || !(x->easy = curl_easy_init())) {
        free(x);
        *err = strdup("out of memory");
        return NULL;
    }
    CURL *e = x->easy;
    x->hops = json_array();
    x->timeout_ms = s->timeout_ms;
    x->max_body = s->max_body;
    /* reject what WHATWG URL parsing would (bad host, port out of range)
     * before anything is queued */
    CURLU *u = curl_url();
    CURLUcode uc = u ? curl_url_set(u, CURLUPART_URL, s->url, 0) : CURLUE_OUT_OF_MEMORY;
    curl_url_cleanup(u);
    if (uc != CURLUE_OK || curl_easy_setopt(e, CURLOPT_URL, s->url) != CURLE_OK) {
        xfer_free(x);
        *err = strdup("TypeError: Invalid URL");
        return NULL;
    }
    curl_easy_setopt(e, CURLOPT_PRIVATE, x);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, x->errbuf);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, x);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, x);
    curl_easy_setopt(e, CURLOPT_HTTP_CONTENT_DECODING, 0L);
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, s->follow_redirects ? 1L : 0L);
    curl_easy_setopt(e, CURLOPT_MAXREDIRS, (long)(s->max_redirects > 0 ? s->max_redirects : 21));
    if (s->timeout_ms > 0) curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)(s->timeout_ms + 0.5));
    /* Without persist, idle connections still get reused for a short while,
     * as Node's default agent (keepAlive since Node 19) does. */
    curl_easy_setopt(e, CURLOPT_MAXAGE_CONN, s->keepalive ? 118L : 5L);
    curl_easy_setopt(e, CURLOPT_COOKIEFILE, ""); /* a fresh jar, fed by redirects */
    if (s->cookie && *s->cookie) curl_easy_setopt(e, CURLOPT_COOKIE, s->cookie);
    if (s->auth == CRM_HTTP_AUTH_DIGEST) {
        curl_easy_setopt(e, CURLOPT_HTTPAUTH, (long)CURLAUTH_DIGEST);
        curl_easy_setopt(e, CURLOPT_USERNAME, s->user ? s->user : "");
        curl_easy_setopt(e, CURLOPT_PASSWORD, s->password ? s->password : "");
    }
    set_method(x, s);
    set_headers(x, s);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, x->hdrs);
    set_tls(x, s);
    set_proxy(x, s);
    return x;
}

/* Errors as Node's client library names them ------------------------------ */

static const char *errno_code(long e)
{
    switch (e) {
    case ECONNREFUSED: return "ECONNREFUSED";
    case EHOSTUNREACH: return "EHOSTUNREACH";
    case ENETUNREACH: return "ENETUNREACH";
    case ETIMEDOUT: return "ETIMEDOUT";
    case ECONNRESET: return "ECONNRESET";
    case EADDRNOTAVAIL: return "EADDRNOTAVAIL";
    default: return "ECONNREFUSED";
    }
}

/* host:port the transfer tried, for "connect ECONNREFUSED 127.0.0.1:1". */
static void target_addr(xfer *x, strbuf *sb)
{
    char *ip = NULL;
    long port = 0;
    curl_easy_getinfo(x->easy, CURLINFO_PRIMARY_IP, &ip);
    curl_easy_getinfo(x->easy, CURLINFO_PRIMARY_PORT, &port);
    if (ip && *ip && port) {
        sb_printf(sb, "%s:%ld", ip, port);
        return;
    }
    char *url = NULL, *host = NULL, *ports = NULL;
    curl_easy_getinfo(x->easy, CURLINFO_EFFECTIVE_URL, &url);
    CURLU *u = curl_url();
    if (u && url && curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK) {
        curl_url_get(u, CURLUPART_HOST, &host, 0);
        curl_url_get(u, CURLUPART_PORT, &ports, CURLU_DEFAULT_PORT);
    }
    /* curl names no address when it resolved the name itself (localhost):
     * Node names the first one dns.lookup gives, as getaddrinfo orders them */
    char addr[INET6_ADDRSTRLEN] = "";
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *ai = NULL;
    const char *h = host && host[0] == '[' ? NULL : host; /* [v6] literals are named as they are */
    if (h && getaddrinfo(h, NULL, &hints, &ai) == 0 && ai) {
        const void *a = ai->ai_family == AF_INET6 ? (const void *)&((struct sockaddr_in6 *)ai->ai_addr)->sin6_addr
                                                   : (const void *)&((struct sockaddr_in *)ai->ai_addr)->sin_addr;
        if (!inet_ntop(ai->ai_family, a, addr, sizeof addr)) addr[0] = 0;
    }
    if (ai) freeaddrinfo(ai);
    sb_printf(sb, "%s:%s", addr[0] ? addr : host ? host : "", ports ? ports : "");
    curl_free(host);
    curl_free(ports);
    curl_url_cleanup(u);
}

static void map_error(xfer *x, CURLcode rc, crm_http_result *r)
{
    strbuf sb = SB_INIT;
    long oserr = 0;
    curl_easy_getinfo(x->easy, CURLINFO_OS_ERRNO, &oserr);
    switch (rc) {
    case CURLE_COULDNT_CONNECT:
        r->err_code = errno_code(oserr);
        sb_printf(&sb, "RequestError: connect %s ", r->err_code);
        target_addr(x, &sb);
        break;
    case CURLE_COULDNT_RESOLVE_HOST: {
        char *url = NULL, *host = NULL;
        curl_easy_getinfo(x->easy, CURLINFO_EFFECTIVE_URL, &url);
        CURLU *u = curl_url();
        if (u && url && curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK) curl_url_get(u, CURLUPART_HOST, &host, 0);
        r->err_code = "ENOTFOUND";
        sb_printf(&sb, "RequestError: getaddrinfo ENOTFOUND %s", host ? host : "");
        curl_free(host);
        curl_url_cleanup(u);
        break;
    }
    case CURLE_OPERATION_TIMEDOUT:
        r->err_code = "ETIMEDOUT";
        sb_printf(&sb, "TimeoutError: Timeout awaiting 'request' for %.0fms", x->timeout_ms);
        break;
    case CURLE_GOT_NOTHING:
        r->err_code = "ECONNRESET";
        sb_puts(&sb, "RequestError: socket hang up");
        break;
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
        r->err_code = "ECONNRESET";
        sb_puts(&sb, "RequestError: read ECONNRESET");
        break;
    case CURLE_TOO_MANY_REDIRECTS:
        r->err_code = "ERR_TOO_MANY_REDIRECTS";
        sb_puts(&sb, "MaxRedirectsError: Redirected 21 times. Aborting.");
        break;
    case CURLE_WRITE_ERROR:
        if (!x->too_large) goto other;
        r->err_code = "ERR_BODY_TOO_LARGE";
        sb_printf(&sb, "RequestError: the response body is larger than httpRequestMaxBody (%.0f bytes)", x->max_body);
        break;
    case CURLE_WEIRD_SERVER_REPLY:
    bad_reply:
        /* what Node's HTTP parser (llhttp) says of a reply that is not
         * HTTP; got passes it on as a RequestError */
        r->err_code = "HPE_INVALID_CONSTANT";
        sb_puts(&sb, "RequestError: Parse Error: Expected HTTP/");
        break;
    case CURLE_UNSUPPORTED_PROTOCOL:
        if (strstr(x->errbuf, "HTTP/0.9")) goto bad_reply; /* a reply without a status line */
        /* fallthrough */
    case CURLE_URL_MALFORMAT:
        r->err_code = "ERR_INVALID_URL";
        sb_puts(&sb, "TypeError: Invalid URL");
        break;
    case CURLE_PEER_FAILED_VERIFICATION:
        if (strstr(x->errbuf, "self-signed") || strstr(x->errbuf, "self signed")) {
            r->err_code = "DEPTH_ZERO_SELF_SIGNED_CERT";
            sb_puts(&sb, "RequestError: self-signed certificate");
        } else if (strstr(x->errbuf, "expired")) {
            r->err_code = "CERT_HAS_EXPIRED";
            sb_puts(&sb, "RequestError: certificate has expired");
        } else if (strstr(x->errbuf, "name")) {
            r->err_code = "ERR_TLS_CERT_ALTNAME_INVALID";
            sb_printf(&sb, "RequestError: %s", x->errbuf);
        } else {
            r->err_code = "UNABLE_TO_VERIFY_LEAF_SIGNATURE";
            sb_puts(&sb, "RequestError: unable to verify the first certificate");
        }
        break;
    case CURLE_SSL_CONNECT_ERROR:
        r->err_code = "EPROTO";
        sb_printf(&sb, "RequestError: %s", x->errbuf[0] ? x->errbuf : curl_easy_strerror(rc));
        break;
    default:
    other:
        r->err_code = "ERR_HTTP_REQUEST";
        sb_printf(&sb, "RequestError: %s", x->errbuf[0] ? x->errbuf : curl_easy_strerror(rc));
        break;
    }
    r->err_text = sb_take(&sb);
}

/* Turns a finished transfer into a result (client thread, no lock). */
static crm_http_result *make_result(xfer *x, CURLcode rc)
{
    crm_http_result *r = calloc(1, sizeof *r);
    if (!r) return NULL;
    finish_hop(x);
    size_t nh = json_array_size(x->hops);
    json_t *last = nh ? json_array_get(x->hops, nh - 1) : NULL;
    if (rc != CURLE_OK) map_error(x, rc, r);
    if (last) {
        r->status = (long)json_number_value(json_object_get(last, "status"));
        r->headers = json_incref(json_object_get(last, "headers"));
        json_array_remove(x->hops, nh - 1);
    } else {
        r->headers = json_object();
    }
    r->hops = x->hops;
    x->hops = NULL;
    r->body_len = x->resp.len;
    r->body = (unsigned char *)sb_take(&x->resp);
    char *eff = NULL;
    curl_easy_getinfo(x->easy, CURLINFO_EFFECTIVE_URL, &eff);
    r->url = strdup(eff ? eff : "");
    return r;
}

void crm_http_result_free(crm_http_result *r)
{
    if (!r) return;
    free(r->err_text);
    json_decref(r->headers);
    json_decref(r->hops);
    free(r->body);
    free(r->url);
    free(r);
}

/* The client thread ------------------------------------------------------ */

/* mu held. Adds queued transfers and removes cancelled ones. */
static void sync_multi(void)
{
    xfer *q = C.qhead;
    C.qhead = C.qtail = NULL;
    for (; q; q = q->qnext) {
        if (q->cancelled) continue; /* freed below with the cancelled ones */
        q->added = true;
        curl_multi_add_handle(C.multi, q->easy);
    }
    if (!C.ncancel) return;
    for (xfer *x = C.live, *nx; x; x = nx) {
        nx = x->next;
        if (!x->cancelled) continue;
        if (x->added) curl_multi_remove_handle(C.multi, x->easy);
        live_unlink(x);
        group_unref(x->group);
        C.inflight--;
        xfer_free(x);
    }
    C.ncancel = 0;
}

/* Reads finished transfers and hands their results over. */
static void reap(void)
{
    CURLMsg *m;
    int left;
    while ((m = curl_multi_info_read(C.multi, &left))) {
        if (m->msg != CURLMSG_DONE) continue;
        xfer *x = NULL;
        curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&x);
        CURLcode rc = m->data.result;
        curl_multi_remove_handle(C.multi, m->easy_handle);
        crm_http_result *r = make_result(x, rc);
        pthread_mutex_lock(&C.mu);
        live_unlink(x);
        bool cancelled = x->cancelled;
        if (cancelled) C.ncancel--;
        else if (r) x->fn(r, x->arg);
        group_unref(x->group);
        C.inflight--;
        pthread_mutex_unlock(&C.mu);
        if (cancelled) crm_http_result_free(r);
        xfer_free(x);
    }
}

static void *client_main(void *unused)
{
    (void)unused;
    pthread_mutex_lock(&C.mu);
    while (!C.stop) {
        sync_multi();
        pthread_mutex_unlock(&C.mu);
        int running = 0;
        curl_multi_perform(C.multi, &running);
        reap();
        curl_multi_poll(C.multi, NULL, 0, 1000, NULL);
        pthread_mutex_lock(&C.mu);
    }
    /* Stopping: every group is closed, so every transfer is cancelled. */
    sync_multi();
    pthread_mutex_unlock(&C.mu);
    return NULL;
}

static int client_start(void)
{
    pthread_once(&global_once, global_init);
    if (!global_ok) return -1;
    C.multi = curl_multi_init();
    if (!C.multi) return -1;
    curl_multi_setopt(C.multi, CURLMOPT_MAXCONNECTS, (long)CACHE_CONNECTIONS);
    curl_multi_setopt(C.multi, CURLMOPT_MAX_HOST_CONNECTIONS, (long)HOST_CONNECTIONS);
    C.stop = false;
    if (pthread_create(&C.thread, NULL, client_main, NULL)) {
        curl_multi_cleanup(C.multi);
        C.multi = NULL;
        return -1;
    }
    C.running = true;
    return 0;
}

crm_http_group *crm_http_group_new(void)
{
    crm_http_group *g = calloc(1, sizeof *g);
    if (!g) return NULL;
    g->refs = 1;
    pthread_mutex_lock(&C.life);
    pthread_mutex_lock(&C.mu);
    int rc = C.running ? 0 : client_start();
    if (rc == 0) C.groups++;
    pthread_mutex_unlock(&C.mu);
    pthread_mutex_unlock(&C.life);
    if (rc < 0) {
        free(g);
        return NULL;
    }
    return g;
}

int crm_http_submit(crm_http_group *g, const crm_http_spec *spec, crm_http_done_fn fn, void *arg, char **err)
{
    *err = NULL;
    xfer *x = xfer_build(spec, err);
    if (!x) return -1;
    x->fn = fn;
    x->arg = arg;
    x->group = g;
    pthread_mutex_lock(&C.mu);
    if (g->closed) {
        pthread_mutex_unlock(&C.mu);
        xfer_free(x);
        *err = strdup("closed");
        return -1;
    }
    g->refs++;
    x->next = C.live;
    if (C.live) C.live->prev = x;
    C.live = x;
    bool wake = !C.qhead; /* one wake-up per batch */
    if (C.qtail) C.qtail->qnext = x;
    else C.qhead = x;
    C.qtail = x;
    C.inflight++;
    CURLM *multi = C.multi;
    pthread_mutex_unlock(&C.mu);
    if (wake) curl_multi_wakeup(multi);
    return 0;
}

void crm_http_group_close(crm_http_group *g, void (*drop)(void *arg))
{
    if (!g) return;
    size_t n = 0, cap = 0;
    void **args = NULL;
    pthread_mutex_lock(&C.life);
    pthread_mutex_lock(&C.mu);
    g->closed = true;
    for (xfer *x = C.live; x; x = x->next) {
        if (x->group != g || x->cancelled) continue;
        x->cancelled = true;
        C.ncancel++;
        if (n == cap) {
            cap = cap ? cap * 2 : 8;
            void **na = realloc(args, cap * sizeof *na);
            if (!na) continue; /* the arg leaks rather than crash */
            args = na;
        }
        args[n++] = x->arg;
    }
    bool last = --C.groups == 0;
    group_unref(g);
    pthread_t th = C.thread;
    if (last) C.stop = true;
    CURLM *multi = C.multi;
    pthread_mutex_unlock(&C.mu);
    if (n || last) curl_multi_wakeup(multi);
    if (drop)
        for (size_t i = 0; i < n; i++) drop(args[i]);
    free(args);
    if (last) {
        pthread_join(th, NULL);
        pthread_mutex_lock(&C.mu);
        curl_multi_cleanup(C.multi);
        C.multi = NULL;
        C.running = false;
        pthread_mutex_unlock(&C.mu);
    }
    pthread_mutex_unlock(&C.life);
}

size_t crm_http_in_flight(void)
{
    pthread_mutex_lock(&C.mu);
    size_t n = C.inflight;
    pthread_mutex_unlock(&C.mu);
    return n;
}
