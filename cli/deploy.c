/* deploy.c: `carmine deploy FLOWS.json --to URL`, the pipeline step of the
 * article: reads the rev in force (GET /flows, v2), then posts the new
 * flows with it (POST /flows, v2, a full deploy), so a deploy made by
 * someone else in between is refused (409) instead of overwritten. URL is
 * the supervisor's API (or any Node-RED Admin API root). With adminAuth on,
 * it logs in first (--user, the password from CARMINE_PASSWORD, never the
 * command line) or uses a token (--token or CARMINE_TOKEN). */
#include <curl/curl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "supervisor.h"
#include "runtime.h"

static const char usage[] =
    "Usage: carmine deploy FLOWS.json --to URL [--rev REV | --force]\n"
    "       carmine deploy FLOWS.json --to URL --user NAME   (password: $CARMINE_PASSWORD)\n"
    "       carmine deploy FLOWS.json --to URL --token TOKEN (or $CARMINE_TOKEN)\n"
    "Deploys FLOWS.json through the Admin API at URL (a supervisor started\n"
    "with --replicas rolls it out one replica at a time). The rev in force is\n"
    "read first, unless given with --rev; --force deploys without a rev check.\n"
    "With adminAuth in the settings, log in with --user (the password is read\n"
    "from CARMINE_PASSWORD) or pass a token from POST /auth/token.\n"
    "Exit status: 0 deployed, 1 refused or failed, 3 rev mismatch (409).\n";

static size_t collect(char *p, size_t size, size_t n, void *ud)
{
    sb_putn(ud, p, size * n);
    return size * n;
}

static char *authorization; /* "Authorization: Bearer ..." or NULL */

/* One request; returns the HTTP status (0 on a transport error, printed). */
static long request(const char *url, const char *body, strbuf *out)
{
    CURL *c = curl_easy_init();
    struct curl_slist *h = curl_slist_append(NULL, "Node-RED-API-Version: v2");
    if (authorization) h = curl_slist_append(h, authorization);
    h = curl_slist_append(h, "Content-Type: application/json");
    h = curl_slist_append(h, "Node-RED-Deployment-Type: full");
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, out);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 600L);
    if (body) curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    long status = 0;
    CURLcode rc = curl_easy_perform(c);
    if (rc == CURLE_OK) curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    else fprintf(stderr, "carmine deploy: %s: %s\n", url, curl_easy_strerror(rc));
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    return status;
}

static json_t *read_flows(const char *path)
{
    char err[512];
    json_t *v = crm_parse_file(path, err, sizeof err);
    if (!v) fprintf(stderr, "carmine deploy: %s\n", err);
    else if (!json_is_array(v)) fprintf(stderr, "carmine deploy: %s: not a flows array\n", path);
    if (v && !json_is_array(v)) {
        json_decref(v);
        v = NULL;
    }
    return v;
}

/* One request whose JSON answer has the string field key: a copy of it,
 * or NULL with what failed printed (what: "GET URL", ...). */
static char *request_field(const char *url, const char *body, const char *key, const char *what)
{
    strbuf out = SB_INIT;
    long st = request(url, body, &out);
    json_t *v = st == 200 ? crm_parse(out.data ? out.data : "", out.len, NULL, 0) : NULL;
    const char *field = json_string_value(json_object_get(v, key));
    char *res = field ? strdup(field) : NULL;
    if (!res && st) fprintf(stderr, "carmine deploy: %s: %ld %s\n", what, st, out.data ? out.data : "");
    json_decref(v);
    sb_free(&out);
    return res;
}

static char *current_rev(const char *flows_url)
{
    char what[2100];
    snprintf(what, sizeof what, "GET %s", flows_url);
    return request_field(flows_url, NULL, "rev", what);
}

/* POST /auth/token (the password grant of node-red-admin); the token. */
static char *log_in(const char *root, const char *user, const char *password)
{
    char url[2048];
    snprintf(url, sizeof url, "%s%sauth/token", root, root[strlen(root) - 1] == '/' ? "" : "/");
    json_t *body = json_pack("{s:s,s:s,s:s,s:s,s:s}", "client_id", "node-red-admin", "grant_type", "password",
                             "scope", "*", "username", user, "password", password);
    char *text = crm_stringify(body, 0);
    char what[300];
    snprintf(what, sizeof what, "log in as %s", user);
    char *token = request_field(url, text, "access_token", what);
    free(text);
    json_decref(body);
    return token;
}

int crm_deploy_main(int argc, char **argv)
{
    static const struct option longopts[] = {{"to", required_argument, 0, 't'},
                                              {"rev", required_argument, 0, 'r'},
                                              {"force", no_argument, 0, 'f'},
                                              {"user", required_argument, 0, 'u'},
                                              {"token", required_argument, 0, 'k'},
                                              {"help", no_argument, 0, 'h'},
                                              {0, 0, 0, 0}};
    const char *to = NULL, *rev_opt = NULL, *user = NULL, *token = getenv("CARMINE_TOKEN");
    bool force = false;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "t:r:fu:k:h", longopts, NULL)) != -1) {
        switch (c) {
        case 't': to = optarg; break;
        case 'r': rev_opt = optarg; break;
        case 'f': force = true; break;
        case 'u': user = optarg; break;
        case 'k': token = optarg; break;
        case 'h': fputs(usage, stdout); return 0;
        default: fputs(usage, stderr); return 1;
        }
    }
    if (!to || optind != argc - 1) {
        fputs(usage, stderr);
        return 1;
    }
    json_t *flows = read_flows(argv[optind]);
    if (!flows) return 1;
    curl_global_init(CURL_GLOBAL_DEFAULT);
    char *fresh = NULL;
    if (user) {
        const char *pw = getenv("CARMINE_PASSWORD");
        if (!pw) fprintf(stderr, "carmine deploy: --user %s: set CARMINE_PASSWORD to the password\n", user);
        token = fresh = pw ? log_in(to, user, pw) : NULL;
        if (!token) {
            json_decref(flows);
            curl_global_cleanup();
            return 1;
        }
    }
    if (token && asprintf(&authorization, "Authorization: Bearer %s", token) < 0) authorization = NULL;
    free(fresh);
    char url[2048];
    snprintf(url, sizeof url, "%s%sflows", to, to[strlen(to) - 1] == '/' ? "" : "/");
    char *rev = force ? NULL : rev_opt ? strdup(rev_opt) : current_rev(url);
    int rc = 1;
    if (force || rev) {
        json_t *body = json_pack("{s:O}", "flows", flows);
        if (rev) json_object_set_new(body, "rev", json_string(rev));
        char *text = crm_stringify(body, 0);
        strbuf out = SB_INIT;
        long st = request(url, text, &out);
        if (st == 200 || st == 204) {
            json_t *v = crm_parse(out.data ? out.data : "", out.len, NULL, 0);
            printf("deployed %s to %s: rev %s\n", argv[optind], to, json_string_value(json_object_get(v, "rev")) ?: "?");
            json_decref(v);
            rc = 0;
        } else if (st) {
            fprintf(stderr, "carmine deploy: POST %s: %ld %s\n", url, st, out.data ? out.data : "");
            rc = st == 409 ? 3 : 1;
        }
        sb_free(&out);
        free(text);
        json_decref(body);
    }
    free(rev);
    free(authorization);
    authorization = NULL;
    json_decref(flows);
    curl_global_cleanup();
    return rc;
}
