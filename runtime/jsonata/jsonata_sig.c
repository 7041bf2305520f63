/* jsonata_sig.c: function signatures ("<s-n?:s>"): parsing and argument
 * validation with jsonata-js's rules (context substitution for '-', singleton
 * wrapping for 'a', T0410/T0411/T0412 errors). Like jsonata-js, a signature
 * becomes a regular expression over one symbol per argument. */
#include <stdio.h>
#include <stdlib.h>

#include "jsonata_int.h"

static void sig_regex_append(jparam *pr, const char *s)
{
    size_t l = strlen(pr->regex);
    snprintf(pr->regex + l, sizeof pr->regex - l, "%s", s);
}

static int closing(const char *s, int start, char open, char close)
{
    int depth = 1, pos = start;
    while (s[pos]) {
        pos++;
        if (s[pos] == close) {
            if (--depth == 0) break;
        } else if (s[pos] == open) {
            depth++;
        }
    }
    return pos;
}

/* The accepted symbols and quantifier of a parameter's regex ("[sm]?",
 * "f", "[asnblfom]+"), for the direct matcher; anything else marks the
 * signature slow. */
static void compile_param(jsig *sg, jparam *pr)
{
    const char *r = pr->regex;
    size_t n = 0;
    if (r[0] == '[') {
        const char *e = strchr(r, ']');
        if (!e || (size_t)(e - r - 1) >= sizeof pr->set) {
            sg->slow = true;
            return;
        }
        n = (size_t)(e - r - 1);
        memcpy(pr->set, r + 1, n);
        r = e + 1;
    } else if (r[0] && r[0] != '?' && r[0] != '+') {
        pr->set[n++] = *r++;
    } else {
        sg->slow = true;
        return;
    }
    pr->set[n] = 0;
    for (size_t i = 0; i < n; i++) {
        if (pr->set[i] < 'a' || pr->set[i] > 'z') sg->slow = true;
        else pr->mask |= 1u << (pr->set[i] - 'a');
    }
    if (r[0] && (r[1] || (r[0] != '?' && r[0] != '+'))) sg->slow = true;
    pr->quant = r[0];
}

jsig *jsig_parse(const char *text, void **arena, int *errpos, jsonata_error *err)
{
    jsig *sg = ja_alloc(arena, sizeof *sg);
    sg->text = ja_strndup(arena, text, strlen(text));
    jparam *prev = NULL;
    int len = (int)strlen(text);
    for (int pos = 1; pos < len; pos++) {
        char c = text[pos];
        if (c == ':') break;
        jparam *cur = sg->nparams < 12 ? &sg->p[sg->nparams] : NULL;
        switch (c) {
        case 's': case 'n': case 'b': case 'l': case 'o':
            if (!cur) break;
            cur->type = c;
            snprintf(cur->regex, sizeof cur->regex, "[%cm]", c);
            prev = cur;
            sg->nparams++;
            break;
        case 'a': case 'f': case 'j': case 'x':
            if (!cur) break;
            cur->type = c;
            snprintf(cur->regex, sizeof cur->regex, "%s",
                     c == 'a' ? "[asnblfom]" : c == 'f' ? "f" : c == 'j' ? "[asnblom]" : "[asnblfom]");
            prev = cur;
            sg->nparams++;
            break;
        case '-':
            if (prev) {
                prev->context = true;
                sig_regex_append(prev, "?");
            }
            break;
        case '?':
        case '+':
            if (prev) sig_regex_append(prev, c == '?' ? "?" : "+");
            break;
        case '(': {
            int end = closing(text, pos, '(', ')');
            if (!cur) { pos = end; break; }
            int n = end - pos - 1;
            if (n < 0) n = 0;
            if (n > 14) n = 14;
            memcpy(cur->choice, text + pos + 1, (size_t)n);
            cur->choice[n] = 0;
            if (strchr(cur->choice, '<')) {
                *errpos = pos;
                jerr_std(err, "S0402", pos, NULL, NULL, 0);
                return NULL;
            }
            cur->type = '(';
            snprintf(cur->regex, sizeof cur->regex, "[%sm]", cur->choice);
            prev = cur;
            sg->nparams++;
            pos = end;
            break;
        }
        case '<':
            if (prev && (prev->type == 'a' || prev->type == 'f')) {
                int end = closing(text, pos, '<', '>');
                prev->subtype = text[pos + 1];
                pos = end;
            } else {
                *errpos = pos;
                json_t *v = prev ? json_stringn(&prev->type, 1) : NULL;
                jerr_std(err, "S0401", pos, NULL, v, 0);
                json_decref(v);
                return NULL;
            }
            break;
        default:
            break;
        }
    }
    for (int i = 0; i < sg->nparams; i++) compile_param(sg, &sg->p[i]);
    strbuf sb = SB_INIT;
    sb_putc(&sb, '^');
    for (int i = 0; i < sg->nparams; i++) sb_printf(&sb, "(%s)", sg->p[i].regex);
    sb_putc(&sb, '$');
    int ec;
    PCRE2_SIZE eo;
    sg->re = ja_track_re(arena, pcre2_compile((PCRE2_SPTR)sb.data, sb.len, 0, &ec, &eo, NULL));
    sb_free(&sb);
    if (!sg->re) {
        /* symbols no regex class takes ("(n)])", "(\\)"): jsonata-js's RegExp throws a SyntaxError */
        *errpos = 0;
        jerr_set(err, "S0401", 0, "Invalid function signature: %s", sg->text);
        return NULL;
    }
    return sg;
}

static char symbol_of(const json_t *v)
{
    if (!v) return 'm';
    if (jv_is_func(v)) return 'f';
    if (jv_is_arr(v)) return 'a';
    switch (json_typeof(v)) {
    case JSON_STRING: return 's';
    case JSON_INTEGER:
    case JSON_REAL: return 'n';
    case JSON_TRUE:
    case JSON_FALSE: return 'b';
    case JSON_NULL: return 'l';
    case JSON_OBJECT: return 'o';
    default: return 'm';
    }
}

/* Matches the supplied symbols against parameters i.. as the signature's
 * regex would (greedy, backtracking), recording each parameter's span. */
static bool match_from(const jsig *sg, int i, const char *sup, size_t pos, size_t ns, size_t *ov)
{
    if (i == sg->nparams) return pos == ns;
    const jparam *pr = &sg->p[i];
    size_t max = 0;
    while (pos + max < ns && ((pr->mask >> (sup[pos + max] - 'a')) & 1) && (pr->quant == '+' || max < 1)) max++;
    size_t min = pr->quant == '?' ? 0 : 1;
    for (size_t len = max + 1; len-- > min;) {
        if (match_from(sg, i + 1, sup, pos + len, ns, ov)) {
            ov[2 * (i + 1)] = pos;
            ov[2 * (i + 1) + 1] = pos + len;
            return true;
        }
    }
    return false;
}

static bool re_match_prefix(const char *pattern, const char *subject, size_t *matched)
{
    int ec;
    PCRE2_SIZE eo;
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)pattern, PCRE2_ZERO_TERMINATED, 0, &ec, &eo, NULL);
    if (!re) return false;
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(re, NULL);
    int rc = pcre2_match(re, (PCRE2_SPTR)subject, strlen(subject), 0, 0, md, NULL);
    if (rc > 0) *matched = pcre2_get_ovector_pointer(md)[1];
    pcre2_match_data_free(md);
    pcre2_code_free(re);
    return rc > 0;
}

static void validation_error(jeval *E, const jsig *sg, json_t **args, int nargs, const char *supplied,
                             const char *fname, int position)
{
    char pat[512] = "^";
    size_t good = 0;
    for (int i = 0; i < sg->nparams; i++) {
        strncat(pat, sg->p[i].regex, sizeof pat - strlen(pat) - 1);
        size_t m = 0;
        if (!re_match_prefix(pat, supplied, &m)) break;
        good = m;
    }
    jerr_std(E->err, "T0410", position, fname, (int)good < nargs ? args[good] : NULL, (int)good + 1);
    E->failed = true;
}

json_t **jsig_validate(jeval *E, const jsig *sg, json_t **args, int nargs, json_t *context, int *out_n,
                       const char *fname, int position, json_t **buf, int bufn)
{
    char supplied[64];
    int ns = 0;
    for (int i = 0; i < nargs && ns < 63; i++) supplied[ns++] = symbol_of(args[i]);
    supplied[ns] = 0;
    size_t ovbuf[2 * 13];
    PCRE2_SIZE *ov;
    pcre2_match_data *md = NULL;
    if (!sg->slow) {
        if (!match_from(sg, 0, supplied, 0, (size_t)ns, ovbuf)) {
            validation_error(E, sg, args, nargs, supplied, fname, position);
            return NULL;
        }
        ov = ovbuf;
    } else {
        md = pcre2_match_data_create_from_pattern(sg->re, NULL);
        int rc = pcre2_match(sg->re, (PCRE2_SPTR)supplied, (size_t)ns, 0, 0, md, NULL);
        if (rc < 0) {
            pcre2_match_data_free(md);
            validation_error(E, sg, args, nargs, supplied, fname, position);
            return NULL;
        }
        ov = pcre2_get_ovector_pointer(md);
    }
    int need = sg->nparams + nargs + 1;
    json_t **out = need <= bufn ? buf : calloc((size_t)need, sizeof(json_t *));
    int no = 0, ai = 0;
    for (int i = 0; i < sg->nparams; i++) {
        const jparam *pr = &sg->p[i];
        size_t ms = ov[2 * (i + 1)], me = ov[2 * (i + 1) + 1];
        if (ms == PCRE2_UNSET || ms == me) {
            if (pr->context && !sg->slow) {
                if ((pr->mask >> (symbol_of(context) - 'a')) & 1) {
                    out[no++] = jv_incref(context);
                } else {
                    jerr_std(E->err, "T0411", position, fname, context, ai + 1);
                    E->failed = true;
                    goto fail;
                }
            } else if (pr->context) {
                char ct = symbol_of(context);
                char one[24];
                snprintf(one, sizeof one, "%s", pr->regex);
                size_t l = strlen(one);
                if (l && one[l - 1] == '?') one[l - 1] = 0;
                char subj[2] = {ct, 0};
                size_t mm;
                char full[32];
                snprintf(full, sizeof full, "^%s$", one);
                if (re_match_prefix(full, subj, &mm)) {
                    out[no++] = jv_incref(context);
                } else {
                    jerr_std(E->err, "T0411", position, fname, context, ai + 1);
                    E->failed = true;
                    goto fail;
                }
            } else {
                out[no++] = ai < nargs ? jv_incref(args[ai]) : NULL;
                ai++;
            }
            continue;
        }
        for (size_t k = ms; k < me; k++) {
            char single = supplied[k];
            json_t *arg = ai < nargs ? args[ai] : NULL;
            if (pr->type == 'a') {
                if (single == 'm') {
                    out[no++] = NULL;
                } else {
                    bool ok = true;
                    if (pr->subtype) {
                        if (single != 'a' && (me - ms != 1 || single != pr->subtype)) {
                            ok = false;
                        } else if (single == 'a' && jv_len(arg) > 0) {
                            char it = symbol_of(jv_at(arg, 0));
                            if (it != pr->subtype) ok = false;
                            for (size_t j = 0; ok && j < jv_len(arg); j++)
                                if (symbol_of(jv_at(arg, j)) != it) ok = false;
                        }
                    }
                    if (!ok) {
                        static const char *plural[] = {"a", "arrays", "b", "booleans", "f", "functions",
                                                       "n", "numbers", "o", "objects", "s", "strings"};
                        const char *tn = "";
                        for (int q = 0; q < 12; q += 2)
                            if (plural[q][0] == pr->subtype) tn = plural[q + 1];
                        jerr_std(E->err, "T0412", position, fname, arg, ai + 1);
                        char msg[256];
                        snprintf(msg, sizeof msg, "Argument %d of function \"%s\" must be an array of %s", ai + 1,
                                 fname ? fname : "", tn);
                        snprintf(E->err->message, sizeof E->err->message, "%s", msg);
                        E->failed = true;
                        goto fail;
                    }
                    if (single != 'a') {
                        jarr *w = jarr_new(1);
                        jarr_push_ref(w, arg);
                        out[no++] = &w->h;
                    } else {
                        out[no++] = jv_incref(arg);
                    }
                }
            } else {
                out[no++] = jv_incref(arg);
            }
            ai++;
        }
    }
    pcre2_match_data_free(md);
    *out_n = no;
    return out;
fail:
    pcre2_match_data_free(md);
    for (int i = 0; i < no; i++) jv_decref(out[i]);
    if (out != buf) free(out);
    return NULL;
}
