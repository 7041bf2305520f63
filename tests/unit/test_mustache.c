/* test_mustache.c: runtime/mustache.c against the official mustache spec
 * (github.com/mustache/spec, specs/interpolation, sections, inverted,
 * comments, delimiters: every case without lambdas or partials, written
 * from the spec's text), plus mustache.js's own error messages and the
 * Node-RED template hooks (fallback names, JSON escaping at the root).
 * Every expected value was checked against mustache.js 4.2 itself, which
 * differs from the spec in one case (marked). */
#include <stdlib.h>
#include <string.h>

#include "mustache.h"
#include "unit.h"
#include "value.h"

typedef struct {
    const char *spec, *name, *tmpl, *data, *expected;
} spec_case;

static const spec_case CASES[] = {
    {"interpolation", "No Interpolation", "Hello from {Mustache}!\n", "{}", "Hello from {Mustache}!\n"},
    {"interpolation", "Basic Interpolation", "Hello, {{subject}}!\n", "{\"subject\": \"world\"}", "Hello, world!\n"},
    {"interpolation", "HTML Escaping", "These characters should be HTML escaped: {{forbidden}}\n", "{\"forbidden\": \"& \\\" < >\"}", "These characters should be HTML escaped: &amp; &quot; &lt; &gt;\n"},
    {"interpolation", "Triple Mustache", "These characters should not be HTML escaped: {{{forbidden}}}\n", "{\"forbidden\": \"& \\\" < >\"}", "These characters should not be HTML escaped: & \" < >\n"},
    {"interpolation", "Ampersand", "These characters should not be HTML escaped: {{&forbidden}}\n", "{\"forbidden\": \"& \\\" < >\"}", "These characters should not be HTML escaped: & \" < >\n"},
    {"interpolation", "Basic Integer Interpolation", "\"{{mph}} miles an hour!\"", "{\"mph\": 85}", "\"85 miles an hour!\""},
    {"interpolation", "Triple Mustache Integer Interpolation", "\"{{{mph}}} miles an hour!\"", "{\"mph\": 85}", "\"85 miles an hour!\""},
    {"interpolation", "Basic Decimal Interpolation", "\"{{power}} jiggawatts!\"", "{\"power\": 1.21}", "\"1.21 jiggawatts!\""},
    {"interpolation", "Basic Null Interpolation", "I ({{cannot}}) be seen!", "{\"cannot\": null}", "I () be seen!"},
    {"interpolation", "Triple Mustache Null Interpolation", "I ({{{cannot}}}) be seen!", "{\"cannot\": null}", "I () be seen!"},
    {"interpolation", "Basic Context Miss Interpolation", "I ({{cannot}}) be seen!", "{}", "I () be seen!"},
    {"interpolation", "Dotted Names - Basic Interpolation", "\"{{person.name}}\" == \"{{#person}}{{name}}{{/person}}\"", "{\"person\": {\"name\": \"Joe\"}}", "\"Joe\" == \"Joe\""},
    {"interpolation", "Dotted Names - Arbitrary Depth", "\"{{a.b.c.d.e.name}}\" == \"Phil\"", "{\"a\": {\"b\": {\"c\": {\"d\": {\"e\": {\"name\": \"Phil\"}}}}}}", "\"Phil\" == \"Phil\""},
    {"interpolation", "Dotted Names - Broken Chains", "\"{{a.b.c}}\" == \"\"", "{\"a\": {}}", "\"\" == \"\""},
    {"interpolation", "Dotted Names - Broken Chain Resolution", "\"{{a.b.c.name}}\" == \"\"", "{\"a\": {\"b\": {}}, \"c\": {\"name\": \"Jim\"}}", "\"\" == \"\""},
    {"interpolation", "Dotted Names - Initial Resolution", "\"{{#a}}{{b.c.d.e.name}}{{/a}}\" == \"Phil\"", "{\"a\": {\"b\": {\"c\": {\"d\": {\"e\": {\"name\": \"Phil\"}}}}}, \"b\": {\"c\": {\"d\": {\"e\": {\"name\": \"Wrong\"}}}}}", "\"Phil\" == \"Phil\""},
    /* the spec wants "" here; mustache.js 4.2 (Node-RED's) falls through to the outer b.c */
    {"interpolation", "Dotted Names - Context Precedence", "{{#a}}{{b.c}}{{/a}}", "{\"a\": {\"b\": {}}, \"b\": {\"c\": \"ERROR\"}}", "ERROR"},
    {"interpolation", "Implicit Iterators - Basic Interpolation", "Hello, {{.}}!\n", "\"world\"", "Hello, world!\n"},
    {"interpolation", "Implicit Iterators - HTML Escaping", "These characters should be HTML escaped: {{.}}\n", "\"& \\\" < >\"", "These characters should be HTML escaped: &amp; &quot; &lt; &gt;\n"},
    {"interpolation", "Implicit Iterators - Basic Integer Interpolation", "\"{{.}} miles an hour!\"", "85", "\"85 miles an hour!\""},
    {"interpolation", "Interpolation - Surrounding Whitespace", "| {{string}} |", "{\"string\": \"---\"}", "| --- |"},
    {"interpolation", "Triple Mustache - Surrounding Whitespace", "| {{{string}}} |", "{\"string\": \"---\"}", "| --- |"},
    {"interpolation", "Interpolation - Standalone", "  {{string}}\n", "{\"string\": \"---\"}", "  ---\n"},
    {"interpolation", "Ampersand - Standalone", "  {{&string}}\n", "{\"string\": \"---\"}", "  ---\n"},
    {"interpolation", "Interpolation With Padding", "|{{ string }}|", "{\"string\": \"---\"}", "|---|"},
    {"interpolation", "Triple Mustache With Padding", "|{{{ string }}}|", "{\"string\": \"---\"}", "|---|"},
    {"interpolation", "Ampersand With Padding", "|{{& string }}|", "{\"string\": \"---\"}", "|---|"},
    {"sections", "Truthy", "\"{{#boolean}}This should be rendered.{{/boolean}}\"", "{\"boolean\": true}", "\"This should be rendered.\""},
    {"sections", "Falsey", "\"{{#boolean}}This should not be rendered.{{/boolean}}\"", "{\"boolean\": false}", "\"\""},
    {"sections", "Null is falsey", "\"{{#null}}This should not be rendered.{{/null}}\"", "{\"null\": null}", "\"\""},
    {"sections", "Context", "\"{{#context}}Hi {{name}}.{{/context}}\"", "{\"context\": {\"name\": \"Joe\"}}", "\"Hi Joe.\""},
    {"sections", "Parent contexts", "\"{{#sec}}{{a}}, {{b}}, {{c.d}}{{/sec}}\"", "{\"a\": \"foo\", \"b\": \"wrong\", \"sec\": {\"b\": \"bar\"}, \"c\": {\"d\": \"baz\"}}", "\"foo, bar, baz\""},
    {"sections", "Variable test", "\"{{#foo}}{{.}} is {{foo}}{{/foo}}\"", "{\"foo\": \"bar\"}", "\"bar is bar\""},
    {"sections", "List Context", "{{#tops}}{{#middles}}{{tname.lower}}{{mname}}.{{#bottoms}}{{tname.upper}}{{mname}}{{bname}}.{{/bottoms}}{{/middles}}{{/tops}}", "{\"tops\": [{\"tname\": {\"upper\": \"A\", \"lower\": \"a\"}, \"middles\": [{\"mname\": \"1\", \"bottoms\": [{\"bname\": \"x\"}, {\"bname\": \"y\"}]}]}]}", "a1.A1x.A1y."},
    {"sections", "Deeply Nested Contexts", "{{#a}}\n{{one}}\n{{#b}}\n{{one}}{{two}}{{one}}\n{{#c}}\n{{one}}{{two}}{{three}}{{two}}{{one}}\n{{/c}}\n{{/b}}\n{{/a}}\n", "{\"a\": {\"one\": 1}, \"b\": {\"two\": 2}, \"c\": {\"three\": 3}}", "1\n121\n12321\n"},
    {"sections", "List", "\"{{#list}}{{item}}{{/list}}\"", "{\"list\": [{\"item\": 1}, {\"item\": 2}, {\"item\": 3}]}", "\"123\""},
    {"sections", "Empty List", "\"{{#list}}Yay lists!{{/list}}\"", "{\"list\": []}", "\"\""},
    {"sections", "Doubled", "{{#bool}}\n* first\n{{/bool}}\n* {{two}}\n{{#bool}}\n* third\n{{/bool}}\n", "{\"bool\": true, \"two\": \"second\"}", "* first\n* second\n* third\n"},
    {"sections", "Nested (Truthy)", "| A {{#bool}}B {{#bool}}C{{/bool}} D{{/bool}} E |", "{\"bool\": true}", "| A B C D E |"},
    {"sections", "Nested (Falsey)", "| A {{#bool}}B {{#bool}}C{{/bool}} D{{/bool}} E |", "{\"bool\": false}", "| A  E |"},
    {"sections", "Context Misses", "[{{#missing}}Found key 'missing'!{{/missing}}]", "{}", "[]"},
    {"sections", "Implicit Iterator - String", "\"{{#list}}({{.}}){{/list}}\"", "{\"list\": [\"a\", \"b\", \"c\", \"d\", \"e\"]}", "\"(a)(b)(c)(d)(e)\""},
    {"sections", "Implicit Iterator - Integer", "\"{{#list}}({{.}}){{/list}}\"", "{\"list\": [1, 2, 3, 4, 5]}", "\"(1)(2)(3)(4)(5)\""},
    {"sections", "Implicit Iterator - Decimal", "\"{{#list}}({{.}}){{/list}}\"", "{\"list\": [1.1, 2.2, 3.3, 4.4, 5.5]}", "\"(1.1)(2.2)(3.3)(4.4)(5.5)\""},
    {"sections", "Implicit Iterator - Array", "\"{{#list}}({{#.}}{{.}}{{/.}}){{/list}}\"", "{\"list\": [[1, 2, 3], [\"a\", \"b\", \"c\"]]}", "\"(123)(abc)\""},
    {"sections", "Implicit Iterator - HTML Escaping", "\"{{#list}}({{.}}){{/list}}\"", "{\"list\": [\"&\", \"\\\"\", \"<\", \">\"]}", "\"(&amp;)(&quot;)(&lt;)(&gt;)\""},
    {"sections", "Implicit Iterator - Triple mustache", "\"{{#list}}({{{.}}}){{/list}}\"", "{\"list\": [\"&\", \"\\\"\", \"<\", \">\"]}", "\"(&)(\")(<)(>)\""},
    {"sections", "Dotted Names - Truthy", "\"{{#a.b.c}}Here{{/a.b.c}}\" == \"Here\"", "{\"a\": {\"b\": {\"c\": true}}}", "\"Here\" == \"Here\""},
    {"sections", "Dotted Names - Falsey", "\"{{#a.b.c}}Here{{/a.b.c}}\" == \"\"", "{\"a\": {\"b\": {\"c\": false}}}", "\"\" == \"\""},
    {"sections", "Dotted Names - Broken Chains", "\"{{#a.b.c}}Here{{/a.b.c}}\" == \"\"", "{\"a\": {}}", "\"\" == \"\""},
    {"sections", "Surrounding Whitespace", " | {{#boolean}}\t|\t{{/boolean}} | \n", "{\"boolean\": true}", " | \t|\t | \n"},
    {"sections", "Internal Whitespace", " | {{#boolean}} {{! Important Whitespace }}\n {{/boolean}} | \n", "{\"boolean\": true}", " |  \n  | \n"},
    {"sections", "Indented Inline Sections", " {{#boolean}}YES{{/boolean}}\n {{#boolean}}GOOD{{/boolean}}\n", "{\"boolean\": true}", " YES\n GOOD\n"},
    {"sections", "Standalone Lines", "| This Is\n{{#boolean}}\n|\n{{/boolean}}\n| A Line\n", "{\"boolean\": true}", "| This Is\n|\n| A Line\n"},
    {"sections", "Indented Standalone Lines", "| This Is\n  {{#boolean}}\n|\n  {{/boolean}}\n| A Line\n", "{\"boolean\": true}", "| This Is\n|\n| A Line\n"},
    {"sections", "Standalone Line Endings", "|\r\n{{#boolean}}\r\n{{/boolean}}\r\n|", "{\"boolean\": true}", "|\r\n|"},
    {"sections", "Standalone Without Previous Line", "  {{#boolean}}\n#{{/boolean}}\n/", "{\"boolean\": true}", "#\n/"},
    {"sections", "Standalone Without Newline", "#{{#boolean}}\n/\n  {{/boolean}}", "{\"boolean\": true}", "#\n/\n"},
    {"sections", "Padding", "|{{# boolean }}={{/ boolean }}|", "{\"boolean\": true}", "|=|"},
    {"inverted", "Falsey", "\"{{^boolean}}This should be rendered.{{/boolean}}\"", "{\"boolean\": false}", "\"This should be rendered.\""},
    {"inverted", "Truthy", "\"{{^boolean}}This should not be rendered.{{/boolean}}\"", "{\"boolean\": true}", "\"\""},
    {"inverted", "Null is falsey", "\"{{^null}}This should be rendered.{{/null}}\"", "{\"null\": null}", "\"This should be rendered.\""},
    {"inverted", "Context", "\"{{^context}}Hi {{name}}.{{/context}}\"", "{\"context\": {\"name\": \"Joe\"}}", "\"\""},
    {"inverted", "List", "\"{{^list}}{{n}}{{/list}}\"", "{\"list\": [{\"n\": 1}, {\"n\": 2}, {\"n\": 3}]}", "\"\""},
    {"inverted", "Empty List", "\"{{^list}}Yay lists!{{/list}}\"", "{\"list\": []}", "\"Yay lists!\""},
    {"inverted", "Doubled", "{{^bool}}\n* first\n{{/bool}}\n* {{two}}\n{{^bool}}\n* third\n{{/bool}}\n", "{\"bool\": false, \"two\": \"second\"}", "* first\n* second\n* third\n"},
    {"inverted", "Nested (Falsey)", "| A {{^bool}}B {{^bool}}C{{/bool}} D{{/bool}} E |", "{\"bool\": false}", "| A B C D E |"},
    {"inverted", "Nested (Truthy)", "| A {{^bool}}B {{^bool}}C{{/bool}} D{{/bool}} E |", "{\"bool\": true}", "| A  E |"},
    {"inverted", "Context Misses", "[{{^missing}}Found key 'missing'!{{/missing}}]", "{}", "[Found key 'missing'!]"},
    {"inverted", "Dotted Names - Truthy", "\"{{^a.b.c}}Not Here{{/a.b.c}}\" == \"\"", "{\"a\": {\"b\": {\"c\": true}}}", "\"\" == \"\""},
    {"inverted", "Dotted Names - Falsey", "\"{{^a.b.c}}Not Here{{/a.b.c}}\" == \"Not Here\"", "{\"a\": {\"b\": {\"c\": false}}}", "\"Not Here\" == \"Not Here\""},
    {"inverted", "Dotted Names - Broken Chains", "\"{{^a.b.c}}Not Here{{/a.b.c}}\" == \"Not Here\"", "{\"a\": {}}", "\"Not Here\" == \"Not Here\""},
    {"inverted", "Surrounding Whitespace", " | {{^boolean}}\t|\t{{/boolean}} | \n", "{\"boolean\": false}", " | \t|\t | \n"},
    {"inverted", "Internal Whitespace", " | {{^boolean}} {{! Important Whitespace }}\n {{/boolean}} | \n", "{\"boolean\": false}", " |  \n  | \n"},
    {"inverted", "Indented Inline Sections", " {{^boolean}}NO{{/boolean}}\n {{^boolean}}WAY{{/boolean}}\n", "{\"boolean\": false}", " NO\n WAY\n"},
    {"inverted", "Standalone Lines", "| This Is\n{{^boolean}}\n|\n{{/boolean}}\n| A Line\n", "{\"boolean\": false}", "| This Is\n|\n| A Line\n"},
    {"inverted", "Standalone Indented Lines", "| This Is\n  {{^boolean}}\n|\n  {{/boolean}}\n| A Line\n", "{\"boolean\": false}", "| This Is\n|\n| A Line\n"},
    {"inverted", "Standalone Line Endings", "|\r\n{{^boolean}}\r\n{{/boolean}}\r\n|", "{\"boolean\": false}", "|\r\n|"},
    {"inverted", "Standalone Without Previous Line", "  {{^boolean}}\n^{{/boolean}}\n/", "{\"boolean\": false}", "^\n/"},
    {"inverted", "Standalone Without Newline", "^{{^boolean}}\n/\n  {{/boolean}}", "{\"boolean\": false}", "^\n/\n"},
    {"inverted", "Padding", "|{{^ boolean }}={{/ boolean }}|", "{\"boolean\": false}", "|=|"},
    {"comments", "Inline", "12345{{! Comment Block! }}67890", "{}", "1234567890"},
    {"comments", "Multiline", "12345{{!\n  This is a\n  multi-line comment...\n}}67890\n", "{}", "1234567890\n"},
    {"comments", "Standalone", "Begin.\n{{! Comment Block! }}\nEnd.\n", "{}", "Begin.\nEnd.\n"},
    {"comments", "Indented Standalone", "Begin.\n  {{! Indented Comment Block! }}\nEnd.\n", "{}", "Begin.\nEnd.\n"},
    {"comments", "Standalone Line Endings", "|\r\n{{! Standalone Comment }}\r\n|", "{}", "|\r\n|"},
    {"comments", "Standalone Without Previous Line", "  {{! I'm Still Standalone }}\n!", "{}", "!"},
    {"comments", "Standalone Without Newline", "!\n  {{! I'm Still Standalone }}", "{}", "!\n"},
    {"comments", "Multiline Standalone", "Begin.\n{{!\nSomething's going on here...\n}}\nEnd.\n", "{}", "Begin.\nEnd.\n"},
    {"comments", "Indented Multiline Standalone", "Begin.\n  {{!\n    Something's going on here...\n  }}\nEnd.\n", "{}", "Begin.\nEnd.\n"},
    {"comments", "Indented Inline", "  12 {{! 34 }}\n", "{}", "  12 \n"},
    {"comments", "Surrounding Whitespace", "12345 {{! Comment Block! }} 67890", "{}", "12345  67890"},
    {"comments", "Variable Name Collision", "comments never show: >{{! comment }}<", "{\"! comment\": 1, \"! comment \": 2, \"!comment\": 3, \"comment\": 4}", "comments never show: ><"},
    {"delimiters", "Pair Behavior", "{{=<% %>=}}(<%text%>)", "{\"text\": \"Hey!\"}", "(Hey!)"},
    {"delimiters", "Special Characters", "({{=[ ]=}}[text])", "{\"text\": \"It worked!\"}", "(It worked!)"},
    {"delimiters", "Sections", "[\n{{#section}}\n  {{data}}\n  |data|\n{{/section}}\n\n{{= | | =}}\n|#section|\n  {{data}}\n  |data|\n|/section|\n]\n", "{\"section\": true, \"data\": \"I got interpolated.\"}", "[\n  I got interpolated.\n  |data|\n\n  {{data}}\n  I got interpolated.\n]\n"},
    {"delimiters", "Inverted Sections", "[\n{{^section}}\n  {{data}}\n  |data|\n{{/section}}\n\n{{= | | =}}\n|^section|\n  {{data}}\n  |data|\n|/section|\n]\n", "{\"section\": false, \"data\": \"I got interpolated.\"}", "[\n  I got interpolated.\n  |data|\n\n  {{data}}\n  I got interpolated.\n]\n"},
    {"delimiters", "Surrounding Whitespace", "| {{=@ @=}} |", "{}", "|  |"},
    {"delimiters", "Outlying Whitespace (Inline)", " | {{=@ @=}}\n", "{}", " | \n"},
    {"delimiters", "Standalone Tag", "Begin.\n{{=@ @=}}\nEnd.\n", "{}", "Begin.\nEnd.\n"},
    {"delimiters", "Indented Standalone Tag", "Begin.\n  {{=@ @=}}\nEnd.\n", "{}", "Begin.\nEnd.\n"},
    {"delimiters", "Standalone Line Endings", "|\r\n{{= @ @ =}}\r\n|", "{}", "|\r\n|"},
    {"delimiters", "Standalone Without Previous Line", "  {{=@ @=}}\n=", "{}", "="},
    {"delimiters", "Standalone Without Newline", "=\n  {{=@ @=}}", "{}", "=\n"},
    {"delimiters", "Pair with Padding", "|{{= @   @ =}}|", "{}", "||"},
};

static char *render(const char *tmpl, const char *data, const crm_mustache_opts *o, char **err)
{
    crm_mustache *m = crm_mustache_parse(tmpl, strlen(tmpl), err);
    if (!m) return NULL;
    json_t *view = crm_parse(data, strlen(data), NULL, 0);
    char *r = crm_mustache_write(m, view, o);
    json_decref(view);
    crm_mustache_free(m);
    return r;
}

static const json_t *fb(const char *name, void *arg)
{
    return !strcmp(name, "flow.x") ? (const json_t *)arg : NULL;
}

int main(void)
{
    for (size_t i = 0; i < sizeof CASES / sizeof *CASES; i++) {
        char *err = NULL;
        char *r = render(CASES[i].tmpl, CASES[i].data, NULL, &err);
        unit_checks++;
        if (!r || strcmp(r, CASES[i].expected)) {
            unit_failures++;
            fprintf(stderr, "spec %s: %s: expected \"%s\", got \"%s\" %s\n", CASES[i].spec, CASES[i].name,
                    CASES[i].expected, r ? r : "(null)", err ? err : "");
        }
        free(r);
        free(err);
    }
    /* mustache.js's parse errors, positions in UTF-16 units */
    static const struct {
        const char *tmpl, *err;
    } E[] = {
        {"Hello {{name", "Unclosed tag at 12"},
        {"\xc3\xa9{{#a}}x", "Unclosed section \"a\" at 8"},
        {"x{{/a}}", "Unopened section \"a\" at 1"},
        {"{{#a}}{{/b}}", "Unclosed section \"a\" at 6"},
        {"{{=<%=}}", "Invalid tags: <%"},
    };
    for (size_t i = 0; i < sizeof E / sizeof *E; i++) {
        char *err = NULL;
        crm_mustache *m = crm_mustache_parse(E[i].tmpl, strlen(E[i].tmpl), &err);
        CHECK(m == NULL);
        CHECK_STR(err, E[i].err);
        crm_mustache_free(m);
        free(err);
    }
    /* mustache.js escapes more than the spec asks */
    char *r = render("{{v}}", "{\"v\": \"/'`=\"}", NULL, NULL);
    CHECK_STR(r, "&#x2F;&#39;&#x60;&#x3D;");
    free(r);
    /* the fallback answers names no view has; JSON escaping only at the root */
    json_t *x = json_string("F");
    crm_mustache_opts o = {.fallback = fb, .arg = x, .json_escape_root = true};
    r = render("{{flow.x}}|{{s}}|{{#o}}{{s}}{{/o}}", "{\"s\": \"a\\nb\", \"o\": {\"s\": \"c\\td\"}}", &o, NULL);
    CHECK_STR(r, "F|a\\nb|c\td");
    free(r);
    json_decref(x);
    UNIT_DONE();
}
