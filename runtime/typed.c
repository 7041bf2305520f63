/* typed.c: TypedInput values (spec §2.10), compiled once per node and
 * evaluated per message, and the JSONata glue Node-RED adds (§7): the `msg`
 * binding ("legacy mode"), $flowContext, $globalContext, $env, $clone. */
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engine.h"
#include "jsonata.h"

struct crm_typed {
    char *type;
    json_t *raw;      /* the config value */
    json_t *value;    /* precomputed constant (str, num, bool, json, bin, env) */
    crm_path *path;   /* msg / flow / global */
    char *key;        /* flow / global: the key without store prefix */
    jsonata *expr;
    bool legacy_msg;  /* the expression names `msg` */
    jsonata_frame *frame;
    jsonata_limits limits; /* the deadline of one evaluation: setting jsonataTimeout */
    crm_node *node;
};

const char *crm_typed_type(const crm_typed *t) { return t->type; }

static char *raw_string(const json_t *v)
{
    if (!v) return strdup("");
    if (json_is_string(v)) return strdup(json_string_value(v));
    return crm_to_string(v);
}

/* `msg` as a standalone identifier: not after a letter, digit, _, quote or
 * dot, not before a letter, digit, _ or quote. */
static bool names_msg(const char *s)
{
    for (const char *p = strstr(s, "msg"); p; p = strstr(p + 1, "msg")) {
        char b = p > s ? p[-1] : 0, a = p[3];
        bool bad_before = b && (isalnum((unsigned char)b) || b == '_' || b == '\'' || b == '"' || b == '.');
        bool bad_after = a && (isalnum((unsigned char)a) || a == '_' || a == '\'' || a == '"');
        if (!bad_before && !bad_after) return true;
    }
    return false;
}

static json_t *ctx_fn(crm_node *n, crm_scope scope, json_t **args, size_t nargs)
{
    if (!n || nargs < 1 || !json_is_string(args[0])) return json_string("");
    const char *key = json_string_value(args[0]);
    if (nargs < 2 || !json_is_string(args[1])) return crm_context_get(n, scope, key);
    /* $flowContext(key, store): context.flow.get(key, store) */
    strbuf k = SB_INIT;
    sb_printf(&k, "#:(%s)::%s", json_string_value(args[1]), key);
    json_t *v = crm_context_get(n, scope, k.data);
    sb_free(&k);
    return v;
}

static json_t *fn_flow(void *ctx, json_t **args, size_t nargs, jsonata_error *err)
{
    (void)err;
    return ctx_fn(ctx, CRM_SCOPE_FLOW, args, nargs);
}

static json_t *fn_global(void *ctx, json_t **args, size_t nargs, jsonata_error *err)
{
    (void)err;
    return ctx_fn(ctx, CRM_SCOPE_GLOBAL, args, nargs);
}

static json_t *fn_env(void *ctx, json_t **args, size_t nargs, jsonata_error *err)
{
    (void)err;
    if (nargs < 1 || !json_is_string(args[0])) return json_string("");
    json_t *v = ctx ? crm_node_env(ctx, json_string_value(args[0])) : NULL;
    return v ? v : json_string("");
}

static json_t *fn_clone(void *ctx, json_t **args, size_t nargs, jsonata_error *err)
{
    (void)ctx;
    (void)err;
    return nargs ? crm_deep_copy(args[0]) : NULL;
}

static void bind_nodered(jsonata_frame *f, crm_node *n)
{
    jsonata_frame_bind_fn(f, "flowContext", "<s?s?:x>", fn_flow, n);
    jsonata_frame_bind_fn(f, "globalContext", "<s?s?:x>", fn_global, n);
    jsonata_frame_bind_fn(f, "env", "<s-:x>", fn_env, n);
    jsonata_frame_bind_fn(f, "clone", "<x-:x>", fn_clone, n);
}

static json_t *parse_bin(const char *s, char **err)
{
    char perr[200];
    json_t *v = crm_parse(s, strlen(s), perr, sizeof perr);
    json_t *buf = NULL;
    if (json_is_string(v)) {
        buf = crm_buf_new(json_string_value(v), json_string_length(v));
    } else if (json_is_array(v)) {
        size_t n = json_array_size(v);
        unsigned char *b = malloc(n ? n : 1);
        for (size_t i = 0; i < n; i++) b[i] = (unsigned char)(long)crm_num_value(json_array_get(v, i));
        buf = crm_buf_new(b, n);
        free(b);
    } else if (err) {
        *err = v ? strdup("Not string or array") : crm_json_syntax_error(s, strlen(s));
    }
    json_decref(v);
    return buf;
}

crm_typed *crm_typed_new(crm_node *n, const char *type, const json_t *value, char **err)
{
    crm_typed *t = calloc(1, sizeof *t);
    t->type = strdup(type && *type ? type : "str");
    t->raw = value ? json_incref((json_t *)value) : NULL;
    t->node = n;
    char *s = raw_string(value);
    const char *ty = t->type;
    if (!strcmp(ty, "str")) {
        t->value = json_string(s);
    } else if (!strcmp(ty, "num")) {
        t->value = crm_num(json_is_number(value) ? crm_num_value(value) : crm_str_to_number(s));
    } else if (!strcmp(ty, "bool")) {
        t->value = json_boolean(json_is_true(value) || !strcasecmp(s, "true"));
    } else if (!strcmp(ty, "json")) {
        if (json_is_string(value)) {
            t->value = json_loads(s, JSON_DECODE_ANY | JSON_DECODE_INT_AS_REAL | JSON_ALLOW_NUL, NULL);
            if (!t->value) {
                if (err) *err = crm_json_syntax_error(s, strlen(s));
                goto fail;
            }
        } else {
            t->value = crm_deep_copy(value);
        }
    } else if (!strcmp(ty, "bin")) {
        if (!(t->value = parse_bin(s, err))) goto fail;
    } else if (!strcmp(ty, "msg")) {
        if (!(t->path = crm_path_parse(s, err))) goto fail;
    } else if (!strcmp(ty, "flow") || !strcmp(ty, "global")) {
        const char *k = s;
        if (!strncmp(k, "#:(", 3) && strstr(k, ")::")) k = strstr(k, ")::") + 3;
        t->key = strdup(k);
        if (!(t->path = crm_path_parse(k, err))) goto fail;
    } else if (!strcmp(ty, "jsonata")) {
        jsonata_error je;
        memset(&je, 0, sizeof je);
        t->expr = jsonata_compile(s, &je);
        if (!t->expr) {
            if (err) {
                if (asprintf(err, "Invalid JSONata expression: %s", je.message) < 0) *err = NULL;
            }
            goto fail;
        }
        t->legacy_msg = names_msg(s);
        /* Carmine's own setting (Node-RED has none): a runaway expression
         * fails with U1001 instead of holding the node's loop forever */
        double ms = JSONATA_DEFAULT_TIMEOUT_MS;
        if (n && crm_node_runtime(n)) ms = crm_cfg_num(crm_node_settings(n), "jsonataTimeout", ms);
        t->limits.timeout_ms = ms > 0 ? ms : 0;
        t->frame = jsonata_frame_new();
        bind_nodered(t->frame, n);
    } else if (!strcmp(ty, "env")) {
        t->value = n ? crm_env_typed(n, s) : json_string("");
    }
    free(s);
    return t;
fail:
    free(s);
    crm_typed_free(t);
    return NULL;
}

void crm_typed_free(crm_typed *t)
{
    if (!t) return;
    free(t->type);
    json_decref(t->raw);
    json_decref(t->value);
    crm_path_free(t->path);
    free(t->key);
    if (t->expr) jsonata_free(t->expr);
    if (t->frame) jsonata_frame_free(t->frame);
    free(t);
}

static json_t *date_value(const char *fmt)
{
    double now = crm_wall_ms();
    if (!*fmt || !strcmp(fmt, "object")) return crm_num(now);
    time_t secs = (time_t)(now / 1000);
    int ms = (int)fmod(now, 1000);
    struct tm tm;
    char buf[128];
    if (!strcmp(fmt, "iso")) {
        gmtime_r(&secs, &tm);
        size_t k = strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
        snprintf(buf + k, sizeof buf - k, ".%03dZ", ms);
        return json_string(buf);
    }
    /* moment.js tokens, the common ones */
    localtime_r(&secs, &tm);
    strbuf sb = SB_INIT;
    for (const char *p = fmt; *p;) {
        struct {
            const char *tok;
            int val, width;
        } toks[] = {{"YYYY", tm.tm_year + 1900, 4}, {"MM", tm.tm_mon + 1, 2}, {"DD", tm.tm_mday, 2},
                    {"HH", tm.tm_hour, 2},          {"mm", tm.tm_min, 2},     {"ss", tm.tm_sec, 2},
                    {"SSS", ms, 3},                 {"YY", tm.tm_year % 100, 2}};
        bool hit = false;
        for (size_t i = 0; i < sizeof toks / sizeof *toks; i++) {
            size_t l = strlen(toks[i].tok);
            if (!strncmp(p, toks[i].tok, l)) {
                sb_printf(&sb, "%0*d", toks[i].width, toks[i].val);
                p += l;
                hit = true;
                break;
            }
        }
        if (!hit) sb_putc(&sb, *p++);
    }
    char *s = sb_take(&sb);
    json_t *r = json_string(s);
    free(s);
    return r;
}

int crm_typed_eval_with(crm_node *n, const crm_typed *t, const json_t *msg, json_t *vars, json_t **out, char **err)
{
    const char *ty = t->type;
    *out = NULL;
    if (t->value && strcmp(ty, "json") && strcmp(ty, "bin")) {
        *out = json_incref(t->value);
        return 0;
    }
    if (!strcmp(ty, "json") || !strcmp(ty, "bin")) {
        *out = crm_deep_copy(t->value);
        return 0;
    }
    if (!strcmp(ty, "msg")) {
        bool throws = false;
        json_t *v = crm_path_get(t->path, msg, msg, &throws);
        *out = json_incref(v);
        return 0;
    }
    if (!strcmp(ty, "flow") || !strcmp(ty, "global")) {
        const char *raw = json_string_value(t->raw);
        *out = crm_context_get_msg(n, !strcmp(ty, "flow") ? CRM_SCOPE_FLOW : CRM_SCOPE_GLOBAL, raw ? raw : "", msg);
        return 0;
    }
    if (!strcmp(ty, "date")) {
        *out = date_value(json_string_value(t->raw) ? json_string_value(t->raw) : "");
        return 0;
    }
    if (!strcmp(ty, "jsonata")) {
        const jsonata_frame *frame = t->frame;
        jsonata_frame *tmp = NULL;
        if (vars && json_object_size(vars)) {
            tmp = jsonata_frame_new();
            bind_nodered(tmp, n);
            const char *k;
            json_t *v;
            json_object_foreach(vars, k, v) jsonata_frame_bind(tmp, k, v);
            frame = tmp;
        }
        json_t *input = (json_t *)msg;
        json_t *wrap = NULL;
        if (t->legacy_msg) {
            wrap = json_object();
            if (msg) json_object_set(wrap, "msg", (json_t *)msg);
            input = wrap;
        }
        jsonata_error je;
        memset(&je, 0, sizeof je);
        int rc = jsonata_eval(t->expr, input, frame, &t->limits, out, &je);
        json_decref(wrap);
        if (tmp) jsonata_frame_free(tmp);
        if (rc) {
            if (err && asprintf(err, "%s", je.message) < 0) *err = NULL;
            return -1;
        }
        return 0;
    }
    if (!strcmp(ty, "re")) {
        *out = json_incref(t->raw);
        return 0;
    }
    /* any other type: the raw value (switch uses this for istype names, prev) */
    *out = json_incref(t->raw);
    return 0;
}

int crm_typed_eval(crm_node *n, const crm_typed *t, const json_t *msg, json_t **out, char **err)
{
    return crm_typed_eval_with(n, t, msg, NULL, out, err);
}
