/* yaml_load.c: yaml.load() of js-yaml 4 on libyaml's event parser.
 *
 * libyaml is opened with dlopen on first use (as runtime/curl_shim.c does
 * for libcurl): a flow without a yaml node never maps it. Events build the
 * value with a stack; anchors keep a copy of their node for aliases;
 * plain scalars go through js-yaml's implicit types (yaml_types.c).
 * Errors are worded as js-yaml words them where libyaml's problem has a
 * js-yaml counterpart, with js-yaml's position and source snippet.
 */
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "strbuf.h"
#include "value.h"
#include "yaml/yaml.h"
#include "yaml/yaml_types.h"

static struct {
    int (*parser_initialize)(yaml_parser_t *);
    void (*parser_delete)(yaml_parser_t *);
    void (*set_input_string)(yaml_parser_t *, const unsigned char *, size_t);
    int (*parse)(yaml_parser_t *, yaml_event_t *);
    void (*event_delete)(yaml_event_t *);
} Y;
static pthread_once_t once = PTHREAD_ONCE_INIT;
static bool loaded;

static void load_lib(void)
{
    void *lib = dlopen("libyaml-0.so.2", RTLD_NOW | RTLD_LOCAL);
    if (!lib) return;
    *(void **)&Y.parser_initialize = dlsym(lib, "yaml_parser_initialize");
    *(void **)&Y.parser_delete = dlsym(lib, "yaml_parser_delete");
    *(void **)&Y.set_input_string = dlsym(lib, "yaml_parser_set_input_string");
    *(void **)&Y.parse = dlsym(lib, "yaml_parser_parse");
    *(void **)&Y.event_delete = dlsym(lib, "yaml_event_delete");
    loaded = Y.parser_initialize && Y.parser_delete && Y.set_input_string && Y.parse && Y.event_delete;
}

/* ---- js-yaml's error text ------------------------------------------------- */

/* makeSnippet(mark): up to 3 lines before, the line with a caret under the
 * position, up to 2 lines after, numbered. */
static void snippet(strbuf *sb, const char *buf, size_t len, size_t pos, size_t line)
{
    size_t starts[4096], ends[4096];
    size_t nl = 0;
    starts[0] = 0;
    long found = -1;
    for (size_t i = 0; i < len && nl + 1 < 4096; i++) {
        if (buf[i] == '\r' || buf[i] == '\n' || buf[i] == 0) {
            ends[nl] = i;
            size_t w = (buf[i] == '\r' && i + 1 < len && buf[i + 1] == '\n') ? 2 : 1;
            starts[nl + 1] = i + w;
            if (pos <= i && found < 0) found = (long)nl;
            nl++;
            i += w - 1;
        }
    }
    if (found < 0) found = (long)nl;
    ends[nl] = len; /* the last line (without a break) */
    size_t nends = nl; /* lineEnds.length */
    size_t after = line + 2 < nends ? line + 2 : nends;
    char tmp[32];
    int lnw = snprintf(tmp, sizeof tmp, "%zu", after);
    int maxline = 79 - (1 + lnw + 3);
    int half = maxline / 2 - 1;
    strbuf before = SB_INIT;
    sb_puts(&before, "");
#define GETLINE(out, ls, le, p, relpos)                                                 \
    do {                                                                               \
        long _ls = (long)(ls), _le = (long)(le), _p = (long)(p);                       \
        const char *_head = "", *_tail = "";                                           \
        if (_p - _ls > half) {                                                         \
            _head = " ... ";                                                           \
            _ls = _p - half + 5;                                                       \
        }                                                                              \
        if (_le - _p > half) {                                                         \
            _tail = " ...";                                                            \
            _le = _p + half - 4;                                                       \
        }                                                                              \
        sb_puts(out, _head);                                                           \
        for (long _i = _ls; _i < _le && _i < (long)len; _i++) {                        \
            if (buf[_i] == '\t') sb_puts(out, "\xe2\x86\x92");                         \
            else sb_putc(out, buf[_i]);                                                \
        }                                                                              \
        sb_puts(out, _tail);                                                           \
        relpos = _p - _ls + (long)strlen(_head);                                       \
    } while (0)
    long rp;
    for (long i = 1; i <= 3; i++) {
        if (found - i < 0) break;
        strbuf one = SB_INIT;
        sb_printf(&one, " %*zu | ", lnw, line - (size_t)i + 1);
        GETLINE(&one, starts[found - i], ends[found - i], (long)pos - (long)(starts[found] - starts[found - i]), rp);
        sb_putc(&one, '\n');
        sb_puts(&one, before.data);
        sb_free(&before);
        before = one;
    }
    sb_puts(sb, before.data);
    sb_free(&before);
    sb_printf(sb, " %*zu | ", lnw, line + 1);
    GETLINE(sb, starts[found], ends[found], pos, rp);
    sb_putc(sb, '\n');
    for (long i = 0; i < 1 + lnw + 3 + rp; i++) sb_putc(sb, '-');
    sb_puts(sb, "^");
    for (long i = 1; i <= 2; i++) {
        if (found + i >= (long)nends) break;
        sb_printf(sb, "\n %*zu | ", lnw, line + (size_t)i + 1);
        GETLINE(sb, starts[found + i], ends[found + i], (long)pos - (long)(starts[found] - starts[found + i]), rp);
    }
#undef GETLINE
}

static char *js_error(const char *text, size_t len, const char *reason, size_t pos)
{
    size_t line = 0, ls = 0;
    for (size_t i = 0; i < pos && i < len; i++)
        if (text[i] == '\n') {
            line++;
            ls = i + 1;
        }
    strbuf sb = SB_INIT;
    sb_printf(&sb, "%s (%zu:%zu)\n\n", reason, line + 1, pos - ls + 1);
    snippet(&sb, text, len, pos, line);
    return sb_take(&sb);
}

/* libyaml's problem as js-yaml would report it. */
static char *parser_error(const char *text, size_t len, yaml_parser_t *p, size_t last_start, size_t last_end)
{
    const char *prob = p->problem ? p->problem : "unknown error";
    const char *ctx = p->context ? p->context : "";
    size_t pos = p->problem_mark.index;
    const char *reason = prob;
    if (strstr(prob, "did not find expected ',' or ']'") || strstr(prob, "did not find expected ',' or '}'")) {
        reason = "missed comma between flow collection entries";
        /* js-yaml stops at the start of the entry after the last one; a
         * plain scalar libyaml read across lines ends, for js-yaml, at
         * its first line break */
        pos = last_end;
        for (size_t i = last_start; i < last_end && i < len; i++)
            if (text[i] == '\n') {
                pos = i;
                break;
            }
        while (pos < len) {
            if (text[pos] == ' ' || text[pos] == '\t' || text[pos] == '\n' || text[pos] == '\r') pos++;
            else if (text[pos] == '#') while (pos < len && text[pos] != '\n') pos++;
            else break;
        }
    } else if (strstr(prob, "found unexpected end of stream") && strstr(ctx, "quoted scalar")) {
        reason = "unexpected end of the stream within a single quoted scalar";
        if (strstr(ctx, "double")) reason = "unexpected end of the stream within a double quoted scalar";
    } else if (strstr(prob, "mapping values are not allowed")) {
        reason = "bad indentation of a mapping entry";
    } else if (strstr(prob, "did not find expected key") || strstr(prob, "did not find expected '-' indicator")) {
        reason = "bad indentation of a mapping entry";
    } else if (strstr(prob, "found character that cannot start any token")) {
        reason = "end of the stream or a document separator is expected";
    } else if (strstr(prob, "found undefined tag handle")) {
        reason = "undeclared tag handle";
    }
    return js_error(text, len, reason, pos);
}

/* ---- building values ---------------------------------------------------------- */

typedef struct {
    json_t *v;       /* the container */
    json_t *key;     /* a mapping's pending key (NULL: next scalar is a key) */
    bool has_key;
    char *anchor;    /* the container's anchor, bound when it closes */
    size_t key_pos;  /* where the pending key started */
    json_t *overridable; /* keys a merge brought in: an explicit key may replace them */
} frame;

typedef struct {
    const char *text;
    size_t len;
    frame *st;
    size_t n, cap;
    json_t *anchors; /* name -> value */
    json_t *root;
    bool have_root;
    int docs;
    char *err;
} builder;

/* String(key) as JavaScript makes a property name of it. */
static char *key_string(const json_t *k)
{
    if (json_is_string(k)) return strndup(json_string_value(k), json_string_length(k));
    if (json_is_object(k) && !crm_is_buf(k)) return strdup("[object Object]");
    return crm_to_string(k);
}

static void merge_into(frame *f, const json_t *src)
{
    const char *k;
    json_t *v;
    if (!json_is_object(src)) return;
    json_object_foreach((json_t *)src, k, v)
        if (!json_object_get(f->v, k)) {
            json_object_set_new(f->v, k, crm_deep_copy(v));
            if (!f->overridable) f->overridable = json_object();
            json_object_set_new(f->overridable, k, json_true());
        }
}

/* Adds a finished value (stolen) to the open container or makes it the root. */
static int add_value(builder *b, json_t *v, size_t pos, bool merge)
{
    if (!b->n) {
        b->root = v;
        b->have_root = true;
        return 0;
    }
    frame *f = &b->st[b->n - 1];
    if (json_is_array(f->v)) {
        json_array_append_new(f->v, v);
        return 0;
    }
    if (!f->has_key) {
        f->key = v;
        f->has_key = true;
        f->key_pos = pos;
        if (merge) {
            json_decref(f->key);
            f->key = json_string("\x01<<");
        }
        return 0;
    }
    json_t *key = f->key;
    f->key = NULL;
    f->has_key = false;
    if (json_is_string(key) && !strcmp(json_string_value(key), "\x01<<")) {
        json_decref(key);
        if (json_is_array(v)) {
            size_t i;
            json_t *e;
            json_array_foreach(v, i, e) {
                if (!json_is_object(e) || crm_is_buf(e)) {
                    json_decref(v);
                    b->err = js_error(b->text, b->len, "cannot merge mappings; the provided source object is unacceptable", pos);
                    return -1;
                }
                merge_into(f, e);
            }
        } else if (json_is_object(v) && !crm_is_buf(v)) {
            merge_into(f, v);
        } else {
            json_decref(v);
            b->err = js_error(b->text, b->len, "cannot merge mappings; the provided source object is unacceptable", pos);
            return -1;
        }
        json_decref(v);
        return 0;
    }
    char *k = key_string(key);
    json_decref(key);
    if (json_object_get(f->v, k) && !json_object_get(f->overridable, k)) {
        free(k);
        json_decref(v);
        b->err = js_error(b->text, b->len, "duplicated mapping key", f->key_pos);
        return -1;
    }
    json_object_set_new(f->v, k, v);
    json_object_del(f->overridable, k);
    free(k);
    return 0;
}

static const char *short_tag(const char *tag)
{
    if (tag && !strncmp(tag, "tag:yaml.org,2002:", 18)) return tag + 18;
    return NULL;
}

static json_t *b64decode(const char *s)
{
    static const char map[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t n = strlen(s);
    unsigned char *out = malloc(n + 1);
    size_t o = 0;
    unsigned bits = 0;
    int nb = 0;
    for (size_t i = 0; i < n; i++) {
        const char *p = strchr(map, s[i]);
        if (!p || !s[i]) continue;
        bits = (bits << 6) | (unsigned)(p - map);
        nb += 6;
        if (nb >= 8) {
            nb -= 8;
            out[o++] = (unsigned char)(bits >> nb);
        }
    }
    json_t *r = crm_buf_new(out, o);
    free(out);
    return r;
}

static json_t *scalar_value(builder *b, yaml_event_t *e, bool *merge)
{
    const char *s = (const char *)e->data.scalar.value;
    size_t len = e->data.scalar.length;
    const char *tag = (const char *)e->data.scalar.tag;
    *merge = false;
    if (tag && strcmp(tag, "!")) {
        const char *t = short_tag(tag);
        json_t *v = NULL;
        if (t && !strcmp(t, "str")) return json_stringn(s, len);
        if (t && !strcmp(t, "null")) v = *s ? crm_yaml_null(s) : NULL;
        else if (t && !strcmp(t, "bool")) v = crm_yaml_bool(s);
        else if (t && !strcmp(t, "int")) v = crm_yaml_int(s);
        else if (t && !strcmp(t, "float")) v = crm_yaml_float(s);
        else if (t && !strcmp(t, "timestamp")) v = crm_yaml_timestamp(s);
        else if (t && !strcmp(t, "binary")) return b64decode(s);
        else {
            char reason[512];
            snprintf(reason, sizeof reason, "unknown tag !<%s>", tag);
            b->err = js_error(b->text, b->len, reason, e->end_mark.index);
            return NULL;
        }
        if (!v) {
            char reason[512];
            snprintf(reason, sizeof reason, "cannot resolve a node with !<%s> explicit tag", tag);
            b->err = js_error(b->text, b->len, reason, e->end_mark.index);
        }
        return v;
    }
    if (e->data.scalar.style == YAML_PLAIN_SCALAR_STYLE && !tag) {
        json_t *v = crm_yaml_implicit(s, merge);
        if (v) return v;
    }
    return json_stringn(s, len);
}

static void push(builder *b, json_t *v, const yaml_char_t *anchor)
{
    if (b->n == b->cap) {
        b->cap = b->cap ? b->cap * 2 : 16;
        b->st = realloc(b->st, b->cap * sizeof *b->st);
    }
    b->st[b->n++] = (frame){v, NULL, false, anchor ? strdup((const char *)anchor) : NULL, 0, NULL};
}

json_t *crm_yaml_load(const char *text, size_t len, char **err)
{
    *err = NULL;
    pthread_once(&once, load_lib);
    if (!loaded) {
        *err = strdup("libyaml-0.so.2 is not available");
        return NULL;
    }
    yaml_parser_t p;
    Y.parser_initialize(&p);
    Y.set_input_string(&p, (const unsigned char *)text, len);
    builder b = {text, len, NULL, 0, 0, json_object(), NULL, false, 0, NULL};
    bool done = false;
    size_t last_end = 0, last_start = 0;
    while (!done) {
        yaml_event_t e;
        if (!Y.parse(&p, &e)) {
            b.err = parser_error(text, len, &p, last_start, last_end);
            break;
        }
        bool merge = false;
        switch (e.type) {
        case YAML_STREAM_END_EVENT:
            done = true;
            break;
        case YAML_DOCUMENT_START_EVENT:
            if (++b.docs > 1) b.err = strdup("expected a single document in the stream, but found more");
            break;
        case YAML_SCALAR_EVENT: {
            json_t *v = scalar_value(&b, &e, &merge);
            if (!v) break;
            if (e.data.scalar.anchor) json_object_set_new(b.anchors, (const char *)e.data.scalar.anchor, crm_deep_copy(v));
            add_value(&b, v, e.start_mark.index, merge);
            break;
        }
        case YAML_ALIAS_EVENT: {
            json_t *v = json_object_get(b.anchors, (const char *)e.data.alias.anchor);
            if (!v) {
                char reason[300];
                snprintf(reason, sizeof reason, "unidentified alias \"%s\"", (const char *)e.data.alias.anchor);
                b.err = js_error(text, len, reason, e.end_mark.index);
                break;
            }
            add_value(&b, crm_deep_copy(v), e.start_mark.index, false);
            break;
        }
        case YAML_SEQUENCE_START_EVENT:
            push(&b, json_array(), e.data.sequence_start.anchor);
            break;
        case YAML_MAPPING_START_EVENT:
            push(&b, json_object(), e.data.mapping_start.anchor);
            break;
        case YAML_SEQUENCE_END_EVENT:
        case YAML_MAPPING_END_EVENT: {
            frame f = b.st[--b.n];
            json_decref(f.key);
            json_decref(f.overridable);
            if (f.anchor) json_object_set_new(b.anchors, f.anchor, crm_deep_copy(f.v));
            free(f.anchor);
            add_value(&b, f.v, e.start_mark.index, false);
            break;
        }
        default:
            break;
        }
        last_end = e.end_mark.index;
        last_start = e.start_mark.index;
        Y.event_delete(&e);
        if (b.err) break;
    }
    Y.parser_delete(&p);
    while (b.n) {
        frame f = b.st[--b.n];
        json_decref(f.key);
        json_decref(f.overridable);
        json_decref(f.v);
        free(f.anchor);
    }
    free(b.st);
    json_decref(b.anchors);
    if (b.err) {
        json_decref(b.root);
        *err = b.err;
        return NULL;
    }
    if (!b.have_root) {
        /* js-yaml reads a (null) document from anything but leading
         * spaces and one line break */
        size_t i = 0, n = len;
        if (n >= 3 && !memcmp(text, "\xef\xbb\xbf", 3)) i = 3;
        bool ends_nl = n > i && (text[n - 1] == '\n' || text[n - 1] == '\r');
        size_t total = n - i + (n > i && !ends_nl ? 1 : 0);
        size_t sp = 0;
        while (i + sp < n && text[i + sp] == ' ') sp++;
        if (n > i && sp < total - 1) return json_null();
    }
    return b.root;
}
