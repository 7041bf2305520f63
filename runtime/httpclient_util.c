/* httpclient_util.c: the JavaScript library behaviour the http request node
 * depends on, reproduced on jansson values: mustache.js rendering, npm
 * hash-sum, Node's querystring.stringify, npm cookie.parse, and the URL
 * clean-up that Node-RED plus WHATWG URL parsing apply to a request URL. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "httpclient.h"
#include "strbuf.h"
#include "value.h"

/* UTF-8 ------------------------------------------------------------------- */

/* One code point of UTF-8 (value.h's decoder): -1 (adv 1) for a bad sequence. */
static long utf8_next(const unsigned char *s, size_t n, size_t *adv) { return crm_utf8_decode((const char *)s, n, adv); }

json_t *crm_utf8_string(const void *data, size_t len)
{
    const unsigned char *s = data;
    size_t i = 0, adv;
    while (i < len && utf8_next(s + i, len - i, &adv) >= 0) i += adv;
    if (i == len) return json_stringn(data, len);
    strbuf sb = SB_INIT;
    for (i = 0; i < len; i += adv) {
        if (utf8_next(s + i, len - i, &adv) < 0) sb_puts(&sb, "\xEF\xBF\xBD");
        else sb_putn(&sb, (const char *)s + i, adv);
    }
    json_t *r = json_stringn(sb.data ? sb.data : "", sb.len);
    sb_free(&sb);
    return r;
}

/* mustache.js ------------------------------------------------------------ */

typedef enum { T_TEXT, T_NAME, T_RAW, T_SECTION, T_INVERTED } tok_type;

typedef struct tok {
    tok_type type;
    char *value;          /* text, or the tag name */
    struct tok *kids;     /* sections: the tokens inside */
    size_t nkids;
} tok;

typedef struct {
    tok *v;
    size_t n, cap;
} toklist;

static void toks_free(tok *t, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(t[i].value);
        toks_free(t[i].kids, t[i].nkids);
    }
    free(t);
}

static tok *toks_push(toklist *l, tok_type type, const char *s, size_t n)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 8;
        tok *nv = realloc(l->v, cap * sizeof *nv);
        if (!nv) return NULL;
        l->v = nv;
        l->cap = cap;
    }
    tok *t = &l->v[l->n++];
    memset(t, 0, sizeof *t);
    t->type = type;
    t->value = strndup(s, n);
    return t;
}

static const char *find(const char *s, const char *needle) { return strstr(s, needle); }

static bool is_ws(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }

static void trim(const char **b, const char **e)
{
    while (*b < *e && is_ws(**b)) (*b)++;
    while (*e > *b && is_ws((*e)[-1])) (*e)--;
}

/* Parses the template into a tree (mustache.js parseTemplate, without the
 * standalone-line whitespace rules). Returns 0 or -1 with *err set. */
static int mu_parse(const char **pp, const char *otag0, const char *ctag0, toklist *out, const char *section,
                    char **err)
{
    char otag[16], ctag[16];
    snprintf(otag, sizeof otag, "%s", otag0);
    snprintf(ctag, sizeof ctag, "%s", ctag0);
    const char *p = *pp;
    for (;;) {
        const char *o = find(p, otag);
        if (!o) {
            if (*p) toks_push(out, T_TEXT, p, strlen(p));
            p += strlen(p);
            break;
        }
        if (o > p) toks_push(out, T_TEXT, p, (size_t)(o - p));
        p = o + strlen(otag);
        char type = strchr("#^/>{&=!", *p) && *p ? *p++ : 0;
        while (is_ws(*p)) p++;
        const char *vb = p, *ve, *c;
        if (type == '=') {
            /* {{=<% %>=}}: the value ends at '=', the tag at the old ctag */
            const char *eq = strchr(p, '=');
            if (!eq) goto unclosed;
            ve = eq;
            c = find(eq + 1, ctag);
            if (!c) goto unclosed;
            trim(&vb, &ve);
            const char *sp = vb;
            while (sp < ve && !is_ws(*sp)) sp++;
            const char *w2 = sp;
            while (w2 < ve && is_ws(*w2)) w2++;
            if (sp == vb || w2 == ve || (size_t)(sp - vb) >= sizeof otag || (size_t)(ve - w2) >= sizeof ctag) {
                *err = strdup("Invalid tags");
                return -1;
            }
            p = c + strlen(ctag);
            snprintf(otag, sizeof otag, "%.*s", (int)(sp - vb), vb);
            snprintf(ctag, sizeof ctag, "%.*s", (int)(ve - w2), w2);
            continue;
        }
        if (type == '{') {
            char close[20];
            snprintf(close, sizeof close, "}%s", ctag);
            c = find(p, close);
            if (!c) goto unclosed;
            ve = c;
            c += 1;
        } else {
            c = find(p, ctag);
            if (!c) goto unclosed;
            ve = c;
        }
        trim(&vb, &ve);
        p = c + strlen(ctag);
        size_t vn = (size_t)(ve - vb);
        switch (type) {
        case '!':
        case '>':
            break;
        case '{':
        case '&':
            toks_push(out, T_RAW, vb, vn);
            break;
        case '#':
        case '^': {
            tok *t = toks_push(out, type == '#' ? T_SECTION : T_INVERTED, vb, vn);
            if (!t) break;
            toklist kids = {0};
            *pp = p;
            char *name = strndup(vb, vn);
            int rc = mu_parse(pp, otag, ctag, &kids, name, err);
            free(name);
            t = &out->v[out->n - 1];
            t->kids = kids.v;
            t->nkids = kids.n;
            if (rc < 0) return -1;
            p = *pp;
            break;
        }
        case '/':
            if (!section || strlen(section) != vn || strncmp(section, vb, vn)) {
                if (!section) {
                    *err = malloc(vn + 32);
                    if (*err) sprintf(*err, "Unopened section \"%.*s\"", (int)vn, vb);
                } else {
                    *err = malloc(strlen(section) + 32);
                    if (*err) sprintf(*err, "Unclosed section \"%s\"", section);
                }
                return -1;
            }
            *pp = p;
            return 0;
        default:
            toks_push(out, T_NAME, vb, vn);
        }
    }
    *pp = p;
    if (section) {
        *err = malloc(strlen(section) + 32);
        if (*err) sprintf(*err, "Unclosed section \"%s\"", section);
        return -1;
    }
    return 0;
unclosed:
    *err = strdup("Unclosed tag");
    return -1;
}

/* One step of a property walk, as JavaScript's v[key] on JSON-like values. */
static json_t *js_get(const json_t *v, const char *key, bool *has)
{
    *has = false;
    if (!v) return NULL;
    if (json_is_object(v) && !crm_is_buf(v)) {
        json_t *r = json_object_get(v, key);
        *has = r != NULL;
        return r;
    }
    /* arrays, strings and buffers: indices and length */
    size_t len = json_is_array(v) ? json_array_size(v) : json_is_string(v) ? json_string_length(v) : 0;
    if (crm_is_buf(v)) crm_buf_data(v, &len);
    if (!json_is_array(v) && !json_is_string(v) && !crm_is_buf(v)) return NULL;
    if (!strcmp(key, "length")) {
        *has = true;
        return crm_num((double)len); /* a new value: mu_lookup hands it back in *tmp */
    }
    char *end;
    unsigned long i = strtoul(key, &end, 10);
    if (!*key || *end || i >= len || (key[0] == '0' && key[1])) return NULL;
    *has = true;
    if (json_is_array(v)) return json_array_get(v, i);
    return NULL; /* characters / bytes: rare in templates, rendered as "" */
}

/* mustache.js Context.lookup over a stack of views (top last). Returns a
 * borrowed value, or NULL (undefined). Numbers made for "length" are kept
 * in *tmp so the caller can free them. */
static json_t *mu_lookup(json_t **stack, size_t depth, const char *name, json_t **tmp)
{
    *tmp = NULL;
    if (!strcmp(name, ".")) return stack[depth - 1];
    bool dotted = strchr(name, '.') && name[0] != '.';
    for (size_t d = depth; d-- > 0;) {
        json_t *v = stack[d];
        bool hit = false;
        json_t *made = NULL;
        if (dotted) {
            char *copy = strdup(name), *save = NULL;
            json_t *cur = v;
            for (char *part = strtok_r(copy, ".", &save); part; part = strtok_r(NULL, ".", &save)) {
                if (!cur || json_is_null(cur)) {
                    hit = false;
                    cur = NULL;
                    break;
                }
                bool last = save == NULL || *save == 0;
                bool has;
                json_t *next = js_get(cur, part, &has);
                if (has && !strcmp(part, "length") && !json_is_object(cur)) made = next;
                if (last) hit = has;
                cur = next;
            }
            free(copy);
            if (hit) {
                *tmp = made;
                return cur;
            }
        } else {
            bool has;
            json_t *r = js_get(json_is_object(v) ? v : NULL, name, &has);
            if (has) return r;
        }
        json_decref(made);
    }
    return NULL;
}

static void escape_html(strbuf *sb, const char *s)
{
    for (; *s; s++) {
        switch (*s) {
        case '&': sb_puts(sb, "&amp;"); break;
        case '<': sb_puts(sb, "&lt;"); break;
        case '>': sb_puts(sb, "&gt;"); break;
        case '"': sb_puts(sb, "&quot;"); break;
        case '\'': sb_puts(sb, "&#39;"); break;
        case '/': sb_puts(sb, "&#x2F;"); break;
        case '`': sb_puts(sb, "&#x60;"); break;
        case '=': sb_puts(sb, "&#x3D;"); break;
        default: sb_putc(sb, *s);
        }
    }
}

static void mu_render(const tok *t, size_t n, json_t **stack, size_t depth, strbuf *sb)
{
    for (size_t i = 0; i < n; i++) {
        json_t *tmp = NULL, *v = NULL;
        if (t[i].type == T_TEXT) {
            sb_puts(sb, t[i].value);
            continue;
        }
        v = mu_lookup(stack, depth, t[i].value, &tmp);
        if (t[i].type == T_NAME || t[i].type == T_RAW) {
            if (v && !json_is_null(v)) {
                char *s = crm_to_string(v);
                if (t[i].type == T_RAW || json_is_number(v)) sb_puts(sb, s);
                else escape_html(sb, s);
                free(s);
            }
        } else if (t[i].type == T_SECTION) {
            if (crm_truthy(v)) {
                json_t **ns = malloc((depth + 1) * sizeof *ns);
                if (ns) {
                    memcpy(ns, stack, depth * sizeof *ns);
                    if (json_is_array(v)) {
                        size_t k;
                        json_t *e;
                        json_array_foreach(v, k, e) {
                            ns[depth] = e;
                            mu_render(t[i].kids, t[i].nkids, ns, depth + 1, sb);
                        }
                    } else if (json_is_boolean(v)) {
                        mu_render(t[i].kids, t[i].nkids, stack, depth, sb);
                    } else {
                        ns[depth] = v;
                        mu_render(t[i].kids, t[i].nkids, ns, depth + 1, sb);
                    }
                    free(ns);
                }
            }
        } else if (!crm_truthy(v) || (json_is_array(v) && json_array_size(v) == 0)) {
            mu_render(t[i].kids, t[i].nkids, stack, depth, sb);
        }
        json_decref(tmp);
    }
}

char *crm_mustache_render(const char *tmpl, const json_t *view, char **err)
{
    toklist l = {0};
    const char *p = tmpl;
    *err = NULL;
    if (mu_parse(&p, "{{", "}}", &l, NULL, err) < 0) {
        toks_free(l.v, l.n);
        if (!*err) *err = strdup("Invalid template");
        return NULL;
    }
    strbuf sb = SB_INIT;
    json_t *stack[1] = {(json_t *)view};
    mu_render(l.v, l.n, stack, 1, &sb);
    toks_free(l.v, l.n);
    return sb_take(&sb);
}

/* npm hash-sum ---------------------------------------------------------- */

static int32_t to_int32(int64_t v) { return (int32_t)(uint32_t)(uint64_t)v; }

/* fold(hash, text) over UTF-16 code units; hash may exceed int32 range. */
static int64_t fold(int64_t hash, const char *s, size_t n)
{
    if (n == 0) return hash;
    const unsigned char *u = (const unsigned char *)s;
    size_t adv;
    for (size_t i = 0; i < n; i += adv) {
        long cp = utf8_next(u + i, n - i, &adv);
        if (cp < 0) cp = 0xFFFD;
        unsigned units[2];
        int nu = 1;
        if (cp > 0xFFFF) {
            units[0] = 0xD800 + (unsigned)((cp - 0x10000) >> 10);
            units[1] = 0xDC00 + (unsigned)((cp - 0x10000) & 0x3FF);
            nu = 2;
        } else {
            units[0] = (unsigned)cp;
        }
        for (int k = 0; k < nu; k++) {
            int64_t shifted = to_int32((int64_t)((uint32_t)to_int32(hash) << 5));
            hash = to_int32(shifted - hash + units[k]);
        }
    }
    return hash < 0 ? hash * -2 : hash;
}

static int64_t folds(int64_t h, const char *s) { return fold(h, s, strlen(s)); }

static const char *obj_tag(const json_t *v)
{
    if (!v) return "[object Undefined]";
    if (json_is_null(v)) return "[object Null]";
    if (json_is_string(v)) return "[object String]";
    if (json_is_number(v)) return "[object Number]";
    if (json_is_boolean(v)) return "[object Boolean]";
    if (json_is_array(v)) return "[object Array]";
    if (crm_is_buf(v)) return "[object Uint8Array]";
    return "[object Object]";
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static int64_t fold_value(int64_t h, const json_t *v, const char *key);

static int64_t fold_object(int64_t h, const json_t *v)
{
    size_t n = 0;
    const unsigned char *bytes = NULL;
    if (json_is_array(v)) n = json_array_size(v);
    else if (crm_is_buf(v)) bytes = crm_buf_data(v, &n);
    else n = json_object_size(v);
    char **keys = calloc(n ? n : 1, sizeof *keys);
    if (!keys) return h;
    size_t i = 0;
    if (json_is_object(v) && !crm_is_buf(v)) {
        const char *k;
        json_t *e;
        json_object_foreach((json_t *)v, k, e) keys[i++] = strdup(k);
    } else {
        for (i = 0; i < n; i++) {
            keys[i] = malloc(24);
            if (keys[i]) snprintf(keys[i], 24, "%zu", i);
        }
    }
    qsort(keys, n, sizeof *keys, cmp_str);
    for (i = 0; i < n; i++) {
        if (!keys[i]) continue;
        if (bytes) {
            json_t *b = crm_num(bytes[strtoul(keys[i], NULL, 10)]);
            h = fold_value(h, b, keys[i]);
            json_decref(b);
        } else if (json_is_array(v)) {
            h = fold_value(h, json_array_get(v, strtoul(keys[i], NULL, 10)), keys[i]);
        } else {
            h = fold_value(h, json_object_get(v, keys[i]), keys[i]);
        }
        free(keys[i]);
    }
    free(keys);
    return h;
}

static int64_t fold_value(int64_t input, const json_t *v, const char *key)
{
    int64_t h = folds(folds(folds(input, key), obj_tag(v)), crm_typeof(v));
    if (v && json_is_null(v)) return folds(h, "null");
    if (!v) return folds(h, "undefined");
    char *s = crm_to_string(v);
    if (json_is_object(v) || json_is_array(v)) h = fold_object(h, v);
    h = fold(h, s ? s : "", s ? strlen(s) : 0);
    free(s);
    return h;
}

char *crm_hash_sum(const json_t *v, char *buf)
{
    snprintf(buf, 17, "%08llx", (unsigned long long)fold_value(0, v, ""));
    return buf;
}

bool crm_http_drop_echoed_headers(json_t *msg)
{
    json_t *mh = json_object_get(msg, "headers");
    json_t *mark = json_is_object(mh) ? json_object_get(mh, "x-node-red-request-node") : NULL;
    if (!mark) return false;
    json_incref(mark);
    json_object_del(mh, "x-node-red-request-node");
    char hash[17];
    crm_hash_sum(mh, hash);
    bool same = json_is_string(mark) && !strcmp(json_string_value(mark), hash);
    json_decref(mark);
    if (same) json_object_del(msg, "headers");
    return same;
}

/* querystring / encodeURIComponent ----------------------------------------- */

static void uri_escape(strbuf *sb, const char *s, size_t n)
{
    static const char hex[] = "0123456789ABCDEF";
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || strchr("-._~!'()*", c)) {
            if (c) sb_putc(sb, (char)c);
            else sb_puts(sb, "%00");
        } else {
            sb_putc(sb, '%');
            sb_putc(sb, hex[c >> 4]);
            sb_putc(sb, hex[c & 15]);
        }
    }
}

char *crm_uri_component(const char *s, size_t len)
{
    strbuf sb = SB_INIT;
    uri_escape(&sb, s, len);
    return sb_take(&sb);
}

/* querystring's stringifyPrimitive, escaped. */
static void qs_primitive(strbuf *sb, const json_t *v)
{
    if (json_is_string(v)) {
        uri_escape(sb, json_string_value(v), json_string_length(v));
    } else if (json_is_number(v)) {
        double d = crm_num_value(v);
        if (isfinite(d)) {
            char buf[32];
            sb_puts(sb, crm_fmt_number(d, buf));
        }
    } else if (json_is_boolean(v)) {
        sb_puts(sb, json_is_true(v) ? "true" : "false");
    }
}

static void qs_field(strbuf *sb, const char *k, const json_t *v)
{
    if (json_is_array(v)) {
        if (json_array_size(v) == 0) return;
        size_t i;
        json_t *e;
        json_array_foreach(v, i, e) {
            if (sb->len) sb_putc(sb, '&');
            uri_escape(sb, k, strlen(k));
            sb_putc(sb, '=');
            qs_primitive(sb, e);
        }
        return;
    }
    if (sb->len) sb_putc(sb, '&');
    uri_escape(sb, k, strlen(k));
    sb_putc(sb, '=');
    qs_primitive(sb, v);
}

char *crm_querystring(const json_t *obj)
{
    strbuf sb = SB_INIT;
    char key[24];
    if (crm_is_buf(obj)) {
        size_t n;
        const unsigned char *b = crm_buf_data(obj, &n);
        for (size_t i = 0; i < n; i++) {
            json_t *num = crm_num(b[i]);
            snprintf(key, sizeof key, "%zu", i);
            qs_field(&sb, key, num);
            json_decref(num);
        }
    } else if (json_is_object(obj)) {
        const char *k;
        json_t *v;
        json_object_foreach((json_t *)obj, k, v) qs_field(&sb, k, v);
    } else if (json_is_array(obj)) {
        size_t i;
        json_t *v;
        json_array_foreach(obj, i, v) {
            snprintf(key, sizeof key, "%zu", i);
            qs_field(&sb, key, v);
        }
    }
    if (!sb.data) return strdup("");
    return sb_take(&sb);
}

/* cookies ----------------------------------------------------------------- */

char *crm_uri_decode(const char *s, size_t n)
{
    strbuf sb = SB_INIT;
    for (size_t i = 0; i < n; i++) {
        if (s[i] != '%') {
            sb_putc(&sb, s[i]);
            continue;
        }
        if (i + 2 >= n) goto bad;
        int h = crm_hexval(s[i + 1]), l = crm_hexval(s[i + 2]);
        if (h < 0 || l < 0) goto bad;
        sb_putc(&sb, (char)(h * 16 + l));
        i += 2;
    }
    if (!sb.data) return strdup("");
    size_t adv;
    for (size_t i = 0; i < sb.len; i += adv)
        if (utf8_next((unsigned char *)sb.data + i, sb.len - i, &adv) < 0) goto bad;
    return sb_take(&sb);
bad:
    sb_free(&sb);
    return NULL;
}

json_t *crm_cookie_parse(const char *str)
{
    json_t *obj = json_object();
    size_t len = strlen(str), index = 0;
    if (len < 2) return obj;
    do {
        const char *eq = strchr(str + index, '=');
        if (!eq) break;
        size_t eqi = (size_t)(eq - str);
        const char *semi = strchr(str + index, ';');
        size_t endi = semi ? (size_t)(semi - str) : len;
        if (eqi > endi) {
            /* a part without '=': resume after the last ';' before the '=' */
            size_t j = eqi;
            while (j > index && str[j - 1] != ';') j--;
            index = j;
            continue;
        }
        size_t ks = index, ke = eqi;
        while (ks < ke && (str[ks] == ' ' || str[ks] == '\t')) ks++;
        while (ke > ks && (str[ke - 1] == ' ' || str[ke - 1] == '\t')) ke--;
        char *key = strndup(str + ks, ke - ks);
        if (key && !json_object_get(obj, key)) {
            size_t vs = eqi + 1, ve = endi;
            while (vs < ve && (str[vs] == ' ' || str[vs] == '\t')) vs++;
            while (ve > vs && (str[ve - 1] == ' ' || str[ve - 1] == '\t')) ve--;
            if (ve - vs >= 2 && str[vs] == '"' && str[ve - 1] == '"') vs++, ve--;
            char *dec = memchr(str + vs, '%', ve - vs) ? crm_uri_decode(str + vs, ve - vs) : NULL;
            json_object_set_new(obj, key, dec ? crm_utf8_string(dec, strlen(dec)) : crm_utf8_string(str + vs, ve - vs));
            free(dec);
        }
        free(key);
        index = endi + 1;
    } while (index < len);
    return obj;
}

json_t *crm_extract_cookies(const json_t *set_cookie)
{
    json_t *cookies = json_object();
    size_t i;
    json_t *c;
    json_array_foreach(set_cookie, i, c) {
        const char *s = json_string_value(c);
        if (!s) continue;
        json_t *parsed = crm_cookie_parse(s);
        const char *eq = strchr(s, '=');
        size_t kl = eq ? (size_t)(eq - s) : (strlen(s) ? strlen(s) - 1 : 0);
        const char *kb = s, *ke = s + kl;
        trim(&kb, &ke);
        char *key = strndup(kb, (size_t)(ke - kb));
        json_t *v = json_incref(json_object_get(parsed, key));
        if (v) json_object_set_new(parsed, "value", v);
        else json_object_del(parsed, "value");
        json_object_del(parsed, key);
        json_object_set_new(cookies, key, parsed);
        free(key);
    }
    return cookies;
}

/* URL clean-up -------------------------------------------------------------- */

static bool is_hex(char c) { return crm_hexval((unsigned char)c) >= 0; }

static void pct(strbuf *sb, unsigned char c)
{
    static const char hex[] = "0123456789ABCDEF";
    sb_putc(sb, '%');
    sb_putc(sb, hex[c >> 4]);
    sb_putc(sb, hex[c & 15]);
}

char *crm_url_clean(const char *url, bool keep_fragment)
{
    /* WHATWG: strip leading/trailing C0 and space, drop tabs and newlines. */
    while (*url && (unsigned char)*url <= 0x20) url++;
    size_t n = strlen(url);
    while (n && (unsigned char)url[n - 1] <= 0x20) n--;
    strbuf sb = SB_INIT;
    const char *q = memchr(url, '?', n);
    const char *hash = memchr(url, '#', n);
    if (hash && q && hash < q) q = NULL;
    const char *end_path = q ? q : hash ? hash : url + n;
    /* scheme://authority: lower-case it; drop the default port */
    const char *auth = strstr(url, "://");
    const char *path = url;
    if (auth && auth < end_path) {
        const char *as = auth + 3, *ae = as;
        while (ae < end_path && *ae != '/') ae++;
        bool https = (size_t)(auth - url) == 5 && !strncasecmp(url, "https", 5);
        for (const char *c = url; c < as; c++) sb_putc(&sb, (char)((*c >= 'A' && *c <= 'Z') ? *c + 32 : *c));
        const char *at = NULL;
        for (const char *c = as; c < ae; c++)
            if (*c == '@') at = c;
        const char *hs = at ? at + 1 : as;
        if (at) sb_putn(&sb, as, (size_t)(hs - as));
        const char *colon = NULL;
        for (const char *c = hs; c < ae; c++) {
            if (*c == ']') colon = NULL;
            if (*c == ':') colon = c;
        }
        const char *he = colon ? colon : ae;
        for (const char *c = hs; c < he; c++) sb_putc(&sb, (char)((*c >= 'A' && *c <= 'Z') ? *c + 32 : *c));
        if (colon) {
            size_t pl = (size_t)(ae - colon - 1);
            bool dflt = (pl == 2 && !strncmp(colon + 1, "80", 2) && !https) ||
                        (pl == 3 && !strncmp(colon + 1, "443", 3) && https) || pl == 0;
            if (!dflt) sb_putn(&sb, colon, (size_t)(ae - colon));
        }
        path = ae;
        if (path == end_path) sb_putc(&sb, '/');
    }
    for (const char *c = path; c < end_path; c++) {
        unsigned char ch = (unsigned char)*c;
        if (ch == '\t' || ch == '\n' || ch == '\r') continue;
        if (ch < 0x21 || ch >= 0x7F || strchr("\"<>`{}", ch)) pct(&sb, ch);
        else sb_putc(&sb, (char)ch);
    }
    if (q) {
        const char *qe = hash && hash > q ? hash : url + n;
        sb_putc(&sb, '?');
        for (const char *c = q + 1; c < qe; c++) {
            unsigned char ch = (unsigned char)*c;
            if (ch == '\t' || ch == '\n' || ch == '\r') continue;
            /* Node-RED: a % not followed by two hex digits is a literal % */
            if (ch == '%' && !(c + 2 < qe && is_hex(c[1]) && is_hex(c[2]))) sb_puts(&sb, "%25");
            else if (ch < 0x21 || ch >= 0x7F || strchr("\"<>'", ch)) pct(&sb, ch);
            else sb_putc(&sb, (char)ch);
        }
    }
    if (hash && keep_fragment) {
        for (const char *c = hash; c < url + n; c++) {
            unsigned char ch = (unsigned char)*c;
            if (ch == '\t' || ch == '\n' || ch == '\r') continue;
            if (ch < 0x20 || ch >= 0x7F || strchr(" \"<>`", ch)) pct(&sb, ch);
            else sb_putc(&sb, (char)ch);
        }
    }
    if (!sb.data) return strdup("");
    return sb_take(&sb);
}
