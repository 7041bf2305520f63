/* test_json_error.c: crm_json_error against Node 20's JSON.parse. Every
 * expected message below was printed by Node 20.20 (V8 11.3). */
#include <stdlib.h>
#include <string.h>

#include "carmine.h"
#include "unit.h"

static void check(const char *text, const char *want)
{
    char *m = crm_json_error(text, strlen(text));
    CHECK_STR(m, want);
    free(m);
}

int main(void)
{
    check("b", "Unexpected token 'b', \"b\" is not valid JSON");
    check("", "Unexpected end of JSON input");
    check("  ", "Unexpected end of JSON input");
    check("[1,", "Unexpected end of JSON input");
    check("{\"a\":1,}", "Expected double-quoted property name in JSON at position 7");
    check("{a:1}", "Expected property name or '}' in JSON at position 1");
    check("[1 2]", "Expected ',' or ']' after array element in JSON at position 3");
    check("1 2", "Unexpected non-whitespace character after JSON at position 2");
    check("\"abc", "Unterminated string in JSON at position 4");
    check("-", "No number after minus sign in JSON at position 1");
    check("1e", "Exponent part is missing a number in JSON at position 2");
    check("1.", "Unterminated fractional number in JSON at position 2");
    check("tru", "Unexpected end of JSON input");
    check("trux", "Unexpected token 'x', \"trux\" is not valid JSON");
    check("tr1e", "Unexpected number in JSON at position 2");
    check("[01]", "Unexpected number in JSON at position 2");
    check("{\"a\" 1}", "Expected ':' after property name in JSON at position 5");
    check("{\"a\":1,\"b\" 2}", "Unexpected number in JSON at position 11");
    check("\"\\x\"", "Bad escaped character in JSON at position 2");
    check("\"\\u12g4\"", "Bad Unicode escape in JSON at position 5");
    check("\"\\u12", "Bad Unicode escape in JSON at position 5");
    check("\"abc\\\\", "Unterminated string in JSON at position 6");
    check("NaN", "\"NaN\" is not valid JSON");
    check("undefined", "\"undefined\" is not valid JSON");
    check("[object Object]", "\"[object Object]\" is not valid JSON");
    check("abcdefghijklmnopqrstuvwxyz", "Unexpected token 'a', \"abcdefghij\"... is not valid JSON");
    check("{\"aaaaaaaaaaaaaaa\":bbbbbbbbbbbbbbbbbbb}", "Unexpected token 'b', ...\"aaaaaaaa\":bbbbbbbbbb\"... is not valid JSON");
    check("[\"a\",\"bbbbbbbbbbbbbbbbbbb\", x]", "Unexpected token 'x', ...\"bbbbbbb\", x]\" is not valid JSON");
    check("[1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,x]", "Unexpected token 'x', ...\",13,14,15,x]\" is not valid JSON");
    check("{\"a\":1}x", "Unexpected non-whitespace character after JSON at position 7");
    check("é", "Unexpected token 'é', \"é\" is not valid JSON");
    check("\"\t\"", "Bad control character in string literal in JSON at position 1");
    check("[\"\\Ā\"]", "Unexpected token 'Ā', \"[\"\\Ā\"]\" is not valid JSON");
    check("{\"a\":1", "Expected ',' or '}' after property value in JSON at position 6");
    check("{", "Expected property name or '}' in JSON at position 1");
    const char *valid = "{\"a\":[1,2.5e3,true,null,\"\\u00e9\"]}";
    char *ok = crm_json_error(valid, strlen(valid));
    CHECK(ok == NULL);
    free(ok);
    /* body-parser's strict mode: the first character, whatever it is */
    char *m = crm_json_token_error("  \"abc\"", 7, 2);
    CHECK_STR(m, "Unexpected token '\"', \"  \"abc\"\" is not valid JSON");
    free(m);
    UNIT_DONE();
}
