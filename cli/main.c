/* main.c: the `carmine` command, a thin user of the engine library:
 *   carmine [options] FLOWS.json      run flows until SIGINT/SIGTERM
 *   carmine check FLOWS.json          validate, print every problem
 *   carmine test FILE|DIR...          run flow tests (FLOWTEST.md)
 *   carmine jsonata EXPR [FILE]       evaluate a JSONata expression
 *   carmine --replicas N FLOWS.json   a supervisor running N replicas (supervisor.c)
 *   carmine deploy FLOWS.json --to URL  a rolling deploy through a supervisor
 *   carmine install [-u DIR] PACKAGE  npm install a node module into the userDir
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "alloc.h"
#include "companion/companion.h"
#include "flowtest.h"
#include "jsonata.h"
#include "plugins.h"
#include "runtime.h"
#include "settings_js.h"
#include "supervisor.h"

static const char usage[] =
    "Usage: carmine [options] [FLOWS.json]     run the flows until SIGINT or SIGTERM; without\n"
    "                                          FLOWS.json, the userDir's flows file, as node-red\n"
    "       carmine check [options] FLOWS.json validate the flows and list every problem\n"
    "       carmine test [options] FILE|DIR... run flow tests (see carmine test --help)\n"
    "       carmine jsonata EXPR [FILE]        evaluate EXPR against JSON from FILE or stdin\n"
    "       carmine jsonata --suite DIR [--expect-failures FILE]\n"
    "       carmine --replicas N [options] FLOWS.json  N replicas under a supervisor (docs/ha.md)\n"
    "       carmine deploy FLOWS.json --to URL     rolling deploy through a supervisor's API\n"
    "       carmine install [-u DIR] PACKAGE   npm install a node module into the userDir;\n"
    "                                          its nodes run in the companion (docs/companion.md)\n"
    "\n"
    "Options:\n"
    "  -p, --port PORT        HTTP port for flows and the Admin API (default 1880)\n"
    "  -s, --settings FILE    settings: a JSON file (port, host, httpNodeRoot, httpAdminRoot,\n"
    "                         contextStorage, logLevel, functionGlobalContext, ...) or a\n"
    "                         Node-RED settings.js (its module.exports; what Carmine cannot\n"
    "                         honour is named in a warning). Default: DIR/settings.js when\n"
    "                         it exists and -u DIR is given or FLOWS.json is not\n"
    "  -u, --userDir DIR      the user's directory: context files, credentials key, settings.js\n"
    "                         and, without FLOWS.json, the flows file (settings.flowFile, else\n"
    "                         flows.json; flows_HOSTNAME.json when a settings.js lacks\n"
    "                         flowFile), created by the first deploy. Default: ~/.node-red\n"
    "                         without FLOWS.json, else the current directory\n"
    "  -P, --plugins DIR      load node types from the shared libraries in DIR\n"
    "                         (also the setting \"pluginsDir\")\n"
    "  -r, --replicas N       run N replica processes sharing the HTTP port, under a\n"
    "                         supervisor that restarts them and rolls deploys\n"
    "      --admin-port PORT  the supervisor's API (status, POST /flows); default port+1\n"
    "  -v, --verbose          log at debug level\n"
    "      --version          print the version and exit\n"
    "  -h, --help             print this help and exit\n"
    "\n"
    "Exit status: 0 on a clean stop, 1 on a refused flow file or bad usage,\n"
    "2 when the flows use node types that no built-in or plugin provides.\n";

static json_t *load_json(const char *path, const char *what)
{
    char err[512];
    json_t *v = crm_parse_file(path, err, sizeof err);
    if (!v) fprintf(stderr, "carmine: %s (%s)\n", err, what);
    return v;
}

typedef struct {
    json_t *settings;
    const char *flows;
    char *flows_owned; /* the userDir's flows file, when none was named */
    bool new_flows;    /* it does not exist yet: empty flows until the first deploy */
    int replicas;   /* 0: run the flows in this process */
    int admin_port; /* the supervisor's API; -1: its default */
} options;

static int load_settings(const char *path, json_t *settings);
static int use_userdir(options *o, const char *userdir, bool given_settings);

static int parse_options_into(int argc, char **argv, options *o);

/* What parse_options allocated (the settings, the userDir's flows file name). */
static void options_free(options *o)
{
    json_decref(o->settings);
    o->settings = NULL;
    free(o->flows_owned);
    o->flows_owned = NULL;
    o->flows = NULL;
}

/* The command line into o; 1 (said on stderr) when it cannot be used, and
 * then nothing is left allocated in o. */
static int parse_options(int argc, char **argv, options *o)
{
    int rc = parse_options_into(argc, argv, o);
    if (rc) options_free(o);
    return rc;
}

static int parse_options_into(int argc, char **argv, options *o)
{
    static const struct option longopts[] = {{"port", required_argument, 0, 'p'},
                                              {"settings", required_argument, 0, 's'},
                                              {"userDir", required_argument, 0, 'u'},
                                              {"plugins", required_argument, 0, 'P'},
                                              {"verbose", no_argument, 0, 'v'},
                                              {"replicas", required_argument, 0, 'r'},
                                              {"admin-port", required_argument, 0, 'A'},
                                              {"version", no_argument, 0, 'V'},
                                              {"help", no_argument, 0, 'h'},
                                              {0, 0, 0, 0}};
    o->settings = json_object();
    o->flows_owned = NULL;
    o->new_flows = false;
    const char *port = NULL, *userdir = NULL, *plugins = NULL;
    o->replicas = 0;
    o->admin_port = -1;
    bool verbose = false, given_settings = false;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "p:s:u:P:r:vh", longopts, NULL)) != -1) {
        switch (c) {
        case 'p': port = optarg; break;
        case 's':
            if (load_settings(optarg, o->settings) < 0) return 1;
            given_settings = true;
            break;
        case 'u': userdir = optarg; break;
        case 'P': plugins = optarg; break;
        case 'v': verbose = true; break;
        case 'r':
        case 'A': {
            char *end;
            long v = strtol(optarg, &end, 10);
            if (*end || v < (c == 'r' ? 1 : 0) || v > (c == 'r' ? 64 : 65535)) {
                fprintf(stderr, "carmine: %s %s: %s\n", c == 'r' ? "--replicas" : "--admin-port", optarg,
                        c == 'r' ? "a number of replicas from 1 to 64" : "not a port number");
                return 1;
            }
            if (c == 'r') o->replicas = (int)v;
            else o->admin_port = (int)v;
            break;
        }
        case 'V': printf("carmine %s (Node-RED 4.1.15 semantics)\n", CARMINE_VERSION); exit(0);
        case 'h': fputs(usage, stdout); exit(0);
        default: fputs(usage, stderr); return 1;
        }
    }
    if (port) {
        char *end;
        long p = strtol(port, &end, 10);
        if (*end || p < 0 || p > 65535) {
            fprintf(stderr, "carmine: --port %s: not a port number\n", port);
            return 1;
        }
        json_object_set_new(o->settings, "port", json_real((double)p));
    }
    o->flows = optind == argc - 1 ? argv[optind] : NULL;
    if ((userdir || !o->flows) && use_userdir(o, userdir, given_settings) < 0) return 1;
    json_object_del(o->settings, "_settingsJs");
    /* No settings file at all: node-red never runs so, it copies its default
     * settings.js into a new userDir first. Of what that file sets, only
     * mqttReconnectTime (15000) differs from the default in Node-RED's code
     * (5000) among the settings Carmine honours: without it an unreachable
     * broker would be retried (and logged) three times as often. */
    if (!json_object_get(o->settings, "_settingsRead") && !json_object_get(o->settings, "mqttReconnectTime"))
        json_object_set_new(o->settings, "mqttReconnectTime", json_real(15000));
    json_object_del(o->settings, "_settingsRead");
    if (userdir) json_object_set_new(o->settings, "userDir", json_string(userdir));
    if (plugins) json_object_set_new(o->settings, "pluginsDir", json_string(plugins));
    const char *pdir = json_string_value(json_object_get(o->settings, "pluginsDir"));
    if (pdir) {
        strbuf problems = SB_INIT;
        int rc = crm_plugins_load_dir(pdir, &problems);
        if (problems.len) fprintf(stderr, "carmine: plugins in %s:\n%s", pdir, problems.data);
        sb_free(&problems);
        if (rc < 0) return 1;
    }
    if (verbose) json_object_set_new(o->settings, "logLevel", json_string("debug"));
    if (optind < argc - 1 || (optind == argc && o->replicas)) {
        fprintf(stderr, "carmine: expected one flows file\n%s", usage);
        return 1;
    }
    if (optind == argc - 1) o->flows = argv[optind];
    return 0;
}

/* Settings from FILE merged into settings: a Node-RED settings.js (by its
 * name), else JSON. -1 (said on stderr) when it cannot be used. */
static int load_settings(const char *path, json_t *settings)
{
    size_t n = strlen(path);
    json_t *s;
    if (n >= 3 && !strcmp(path + n - 3, ".js")) {
        strbuf unhonoured = SB_INIT;
        char *err = NULL;
        s = crm_settings_js_read(path, &unhonoured, &err);
        if (!s) {
            fprintf(stderr, "carmine: settings file %s\n", err ? err : path);
            free(err);
            sb_free(&unhonoured);
            return -1;
        }
        if (unhonoured.len)
            fprintf(stderr, "carmine: [warn] settings file %s: not honoured by Carmine: %s\n", path, unhonoured.data);
        sb_free(&unhonoured);
        json_object_set_new(settings, "_settingsJs", json_true());
    } else {
        s = load_json(path, "settings file");
        if (!json_is_object(s)) {
            if (s) fprintf(stderr, "carmine: settings file %s: must hold a JSON object\n", path);
            json_decref(s);
            return -1;
        }
    }
    json_object_update(settings, s);
    json_decref(s);
    json_object_set_new(settings, "_settingsRead", json_true());
    return 0;
}

/* Node-RED's user directory when there is no FLOWS.json (or -u DIR is
 * given): DIR/settings.js read when no -s named settings, and without
 * FLOWS.json the flows file node-red would run (created by the first
 * deploy). */
static int use_userdir(options *o, const char *userdir, bool given_settings)
{
    char *dflt = NULL;
    if (!userdir) userdir = json_string_value(json_object_get(o->settings, "userDir"));
    if (!userdir && !o->flows) userdir = dflt = crm_userdir_default();
    if (!userdir) {
        if (!o->flows) {
            fprintf(stderr, "carmine: no flows file and no user directory: HOME is not set (use --userDir)\n");
            return -1;
        }
        return 0;
    }
    if (!given_settings) {
        char *sjs;
        if (asprintf(&sjs, "%s/settings.js", userdir) < 0) sjs = NULL;
        int rc = sjs && access(sjs, R_OK) == 0 ? load_settings(sjs, o->settings) : 0;
        free(sjs);
        if (rc < 0) {
            free(dflt);
            return -1;
        }
    }
    if (!o->flows) {
        if (mkdir(userdir, 0755) < 0 && errno != EEXIST) {
            fprintf(stderr, "carmine: user directory %s: %s\n", userdir, strerror(errno));
            free(dflt);
            return -1;
        }
        json_object_set_new(o->settings, "userDir", json_string(userdir));
        bool by_host = json_is_true(json_object_get(o->settings, "_settingsJs"));
        o->flows = o->flows_owned = crm_userdir_flows_file(userdir, o->settings, by_host);
        o->new_flows = access(o->flows, F_OK) != 0;
    }
    json_object_del(o->settings, "_settingsJs");
    free(dflt);
    return 0;
}

static int load(crm_runtime *rt, const char *path, unsigned flags, bool new_flows)
{
    /* a user's directory without its flows file yet: nothing runs until the
     * first deploy writes it, as node-red starts */
    char err[512];
    json_t *flows = new_flows ? json_array() : crm_storage_read(path, false, err, sizeof err);
    if (!flows) fprintf(stderr, "carmine: %s (flows file)\n", err);
    if (new_flows) fprintf(stderr, "carmine: no flows file yet: the first deploy creates %s\n", path);
    if (!flows) return 1;
    strbuf problems = SB_INIT;
    json_t *creds = NULL;
    if (crm_credentials_load(path, crm_runtime_settings(rt), &creds, &problems) < 0) {
        fprintf(stderr, "carmine: refused: %s\n", problems.data);
        sb_free(&problems);
        json_decref(flows);
        return 1;
    }
    crm_runtime_set_credentials(rt, creds);
    int rc = crm_runtime_load(rt, flows, flags, &problems);
    json_decref(flows);
    if (rc) fprintf(stderr, "carmine: %s: %s\n%s", path,
                    rc == 2 ? "missing node types, nothing started:" : "refused:", problems.data ? problems.data : "");
    sb_free(&problems);
    return rc;
}

static int cmd_check(int argc, char **argv)
{
    options o;
    if (parse_options(argc, argv, &o)) return 1;
    json_object_set_new(o.settings, "_checkOnly", json_true()); /* no context store is opened */
    /* problems Node-RED only logs (a change or switch node's bad JSONata or
     * regex) are refusals here: nodes read this in create() */
    json_object_set_new(o.settings, "_checkStrict", json_true());
    crm_runtime *rt = crm_runtime_new(o.settings);
    if (!rt) {
        fprintf(stderr, "carmine: %s: refused: the settings cannot be used (see above)\n", o.flows);
        options_free(&o);
        return 1;
    }
    int rc = load(rt, o.flows, CRM_LOAD_CHECK_ONLY, o.new_flows);
    /* nodes the companion will host, modules missing from the userDir */
    crm_companion_report(stdout, json_string_value(json_object_get(crm_runtime_settings(rt), "userDir")));
    if (!rc) printf("%s: ok\n", o.flows);
    crm_runtime_free(rt);
    options_free(&o);
    return rc;
}

static int cmd_run(int argc, char **argv)
{
    options o;
    if (parse_options(argc, argv, &o)) return 1;
    if (o.replicas) {
        int rc = crm_supervisor_main(o.settings, o.flows, o.replicas, o.admin_port);
        options_free(&o);
        return rc;
    }
    /* every thread inherits the mask, so only sigwait below sees the signals */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    crm_runtime *rt = crm_runtime_new(o.settings);
    if (!rt) { /* a context store that cannot be used: its error is logged */
        fprintf(stderr, "carmine: %s: not started: a context store cannot be used (the error above names it)\n",
                o.flows);
        options_free(&o);
        return 1;
    }
    int rc = load(rt, o.flows, 0, o.new_flows);
    if (rc) {
        crm_runtime_free(rt);
        options_free(&o);
        return rc;
    }
    crm_runtime_set_flows_file(rt, o.flows);
    if (crm_runtime_start(rt) < 0) {
        crm_runtime_free(rt);
        options_free(&o);
        return 1;
    }
    fprintf(stderr, "carmine: running %s, HTTP on port %d\n", o.flows, crm_runtime_http_port(rt));
    crm_alloc_idle(); /* what loading the flows freed on this thread, before it sleeps */
    int sig;
    sigwait(&set, &sig);
    fprintf(stderr, "carmine: stopping (%s)\n", sig == SIGINT ? "SIGINT" : "SIGTERM");
    crm_runtime_stop(rt);
    crm_runtime_free(rt);
    options_free(&o);
    return 0;
}

static int cmd_jsonata(int argc, char **argv)
{
    if (argc >= 3 && !strcmp(argv[1], "--suite")) {
        const char *expected = NULL;
        if (argc >= 5 && !strcmp(argv[3], "--expect-failures")) expected = argv[4];
        return jsonata_run_suite(argv[2], expected);
    }
    if (argc < 2 || argc > 3 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        fputs("Usage: carmine jsonata EXPR [FILE]\n"
              "       carmine jsonata --suite DIR [--expect-failures FILE]\n"
              "Evaluates EXPR against the JSON in FILE (or stdin) and prints the result.\n",
              argc < 2 ? stderr : stdout);
        return argc < 2 ? 1 : 0;
    }
    return jsonata_cli(argv[1], argc == 3 ? argv[2] : NULL);
}

/* Every tab's loop holds two descriptors and every connection one: the soft
 * limit on open files goes up to the hard one (the loader names the limit
 * when a flows file needs more). */
static void raise_fd_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

static int cmd_install(int argc, char **argv)
{
    const char *userdir = NULL;
    int i = 1;
    if (argc >= 3 && (!strcmp(argv[1], "-u") || !strcmp(argv[1], "--userDir"))) {
        userdir = argv[2];
        i = 3;
    }
    if (argc != i + 1 || argv[i][0] == '-') {
        fputs("Usage: carmine install [-u DIR] PACKAGE\n"
              "Installs an npm node module into DIR (default: the current directory) as Node-RED's\n"
              "palette manager does; flows run its nodes in the companion (docs/companion.md).\n",
              argc == 2 && argv[1][0] == '-' && strcmp(argv[1], "-u") ? stdout : stderr);
        return argc == 2 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) ? 0 : 1;
    }
    return crm_companion_install(userdir, argv[i]);
}

int main(int argc, char **argv)
{
    raise_fd_limit();
    if (argc >= 2 && !strcmp(argv[1], "check")) return cmd_check(argc - 1, argv + 1);
    if (argc >= 2 && !strcmp(argv[1], "test")) return crm_flowtest_main(argc - 1, argv + 1);
    if (argc >= 2 && !strcmp(argv[1], "deploy")) return crm_deploy_main(argc - 1, argv + 1);
    if (argc >= 2 && !strcmp(argv[1], "jsonata")) return cmd_jsonata(argc - 1, argv + 1);
    if (argc >= 2 && !strcmp(argv[1], "install")) return cmd_install(argc - 1, argv + 1);
    return cmd_run(argc, argv);
}
