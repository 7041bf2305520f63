/* flowtest_match.h: the value matchers of the flow test format
 * (../shared/FLOWTEST.md), apart from the runner so they can be unit-tested.
 *
 * Expected values are plain JSON that may hold matcher objects ($type,
 * $regex, $approx/$tol, $absent, $buffer); actual values are engine values
 * (value.h: reals, NaN/Infinity singletons, Buffers, handles; NULL is
 * undefined). Every function that can fail appends one human-readable reason
 * to `why` ("PATH: expected X, got Y") and returns false; it never prints.
 */
#ifndef CRM_FLOWTEST_MATCH_H
#define CRM_FLOWTEST_MATCH_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "strbuf.h"

/* Whether exp (borrowed) is a matcher object (has one of the $ keys). */
bool ftm_is_matcher(const json_t *exp);

/* Deep comparison of a value with matchers. act may be NULL (missing).
 * path names the value in the reason ("msg.payload"). */
bool ftm_match(const json_t *exp, const json_t *act, const char *path, strbuf *why);

/* An expected message against an actual one: only the properties exp lists,
 * _msgid never, and $t_ms [LO, HI] against t_ms (arrival, ms after the first
 * step). */
bool ftm_match_msg(const json_t *exp, const json_t *act, double t_ms, strbuf *why);

/* $t_ms bounds: true when bounds is NULL or LO <= t_ms <= HI. what names the
 * event in the reason ("arrived", "response"). */
bool ftm_check_time(const json_t *bounds, double t_ms, const char *what, strbuf *why);

/* A NEW copy of v with {"$buffer": HEX} objects turned into Buffers and
 * integers into reals (how sent messages and context values are revived). */
json_t *ftm_revive(const json_t *v);

/* A NEW copy of v with every occurrence of tok inside strings replaced by value
 * ("${FLOWTEST_PORT}" in steps, "${FLOWTEST_TMP}" in a whole case). */
json_t *ftm_subst(const json_t *v, const char *tok, const char *value);

/* Appends v as JSON for a report: Buffers as {"$buffer":"hex"}, NaN and
 * Infinity by name, handles as "[handle]", NULL as "(absent)"; cut after
 * max characters with "...". */
void ftm_show(strbuf *out, const json_t *v, size_t max);

/* A NEW JSON string from bytes decoded as UTF-8, each invalid byte becoming
 * U+FFFD (as Node's buffer.toString("utf8") roughly does). */
json_t *ftm_text(const char *bytes, size_t len);

/* ECMAScript regular expression test (unanchored). Returns 1 on a match, 0
 * on none, -1 when the pattern does not compile (*err malloc'd, may be NULL). */
int ftm_regex_test(const char *pattern, const char *subject, size_t len, char **err);

#endif
