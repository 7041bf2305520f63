/* test_context_redis.c: the redis context store against a real redis-server
 * that the test starts on a loopback port (skipped, saying why, when
 * redis-server is missing or does not start): context set on one runtime
 * (a replica) is read on another, nested sets made at once on two replicas
 * both survive (read-modify-write in Redis), deletes travel, a new replica
 * starts with what Redis holds, and an unreachable Redis refuses to start. */
#include <hiredis/hiredis.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "engine.h"
#include "unit.h"

static const char *flows = "[{\"id\":\"t1\",\"type\":\"tab\",\"label\":\"T\"},"
                           "{\"id\":\"j1\",\"type\":\"junction\",\"z\":\"t1\",\"x\":1,\"y\":1,\"wires\":[]}]";
static int redis_port;
static char prefix[64];

static pid_t start_redis(void)
{
    const char *bin = "/usr/bin/redis-server";
    if (access(bin, X_OK) != 0) {
        printf("skipped: %s is not installed (tools/setup.sh installs redis-server)\n", bin);
        return -1;
    }
    srand((unsigned)(getpid() ^ time(NULL)));
    redis_port = 20000 + rand() % 30000;
    char port[16];
    snprintf(port, sizeof port, "%d", redis_port);
    pid_t pid = fork();
    if (pid == 0) {
        freopen("/dev/null", "w", stdout);
        execl(bin, "redis-server", "--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
              (char *)NULL);
        _exit(127);
    }
    for (int i = 0; i < 100; i++) {
        struct timeval tv = {0, 200000};
        redisContext *c = redisConnectWithTimeout("127.0.0.1", redis_port, tv);
        bool ok = c && !c->err;
        if (c) redisFree(c);
        if (ok) return pid;
        usleep(30000);
    }
    printf("skipped: redis-server did not start on 127.0.0.1:%d\n", redis_port);
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    return -1;
}

static crm_runtime *replica(int port)
{
    json_t *settings = json_pack("{s:i,s:{s:{s:s,s:{s:s,s:i,s:s}}}}", "port", 0, "contextStorage", "default", "module",
                                 "redis", "config", "host", "127.0.0.1", "port", port, "prefix", prefix);
    crm_normalize_numbers(settings);
    crm_runtime *rt = crm_runtime_new(settings);
    json_decref(settings);
    if (!rt) return NULL;
    json_t *f = crm_parse(flows, strlen(flows), NULL, 0);
    CHECK(crm_runtime_load(rt, f, 0, NULL) == 0);
    json_decref(f);
    return rt;
}

/* The value of key on node j as JSON text once it equals want (polls up to 3 s). */
static bool sees(crm_node *j, crm_scope scope, const char *key, const char *want)
{
    for (int i = 0; i < 300; i++) {
        json_t *v = crm_context_get(j, scope, key);
        char *text = v ? crm_stringify(v, 0) : strdup("undefined");
        bool eq = !strcmp(text, want);
        if (!eq && i == 299) fprintf(stderr, "%s: expected %s, got %s\n", key, want, text);
        free(text);
        json_decref(v);
        if (eq) return true;
        usleep(10000);
    }
    return false;
}

int main(void)
{
    pid_t redis = start_redis();
    if (redis < 0) UNIT_DONE();
    snprintf(prefix, sizeof prefix, "test%d", (int)getpid());

    crm_runtime *a = replica(redis_port), *b = replica(redis_port);
    CHECK(a && b);
    if (!a || !b) goto out;
    crm_node *ja = crm_runtime_find(a, "j1"), *jb = crm_runtime_find(b, "j1");

    /* set on one replica, read on the other */
    CHECK(crm_context_set(ja, CRM_SCOPE_FLOW, "stop", json_true()) == 0);
    CHECK(sees(ja, CRM_SCOPE_FLOW, "stop", "true")); /* at once where it was set */
    CHECK(sees(jb, CRM_SCOPE_FLOW, "stop", "true"));
    CHECK(crm_context_set(jb, CRM_SCOPE_GLOBAL, "cfg", json_pack("{s:s,s:[i,i]}", "name", "x", "list", 1, 2)) == 0);
    CHECK(sees(ja, CRM_SCOPE_GLOBAL, "cfg.list[1]", "2"));

    /* nested sets of one top-level key made at once on both replicas */
    for (int i = 0; i < 20; i++) {
        char ka[32], kb[32];
        snprintf(ka, sizeof ka, "obj.a%d", i);
        snprintf(kb, sizeof kb, "obj.b%d", i);
        crm_context_set(ja, CRM_SCOPE_GLOBAL, ka, json_real(i));
        crm_context_set(jb, CRM_SCOPE_GLOBAL, kb, json_real(i));
    }
    CHECK(sees(ja, CRM_SCOPE_GLOBAL, "obj.a19", "19") && sees(ja, CRM_SCOPE_GLOBAL, "obj.b19", "19"));
    CHECK(sees(jb, CRM_SCOPE_GLOBAL, "obj.a0", "0") && sees(jb, CRM_SCOPE_GLOBAL, "obj.b0", "0"));
    json_t *oa = crm_context_get(ja, CRM_SCOPE_GLOBAL, "obj"), *ob = crm_context_get(jb, CRM_SCOPE_GLOBAL, "obj");
    CHECK(json_object_size(oa) == 40 && json_equal(oa, ob));
    json_decref(oa);
    json_decref(ob);

    /* the node scope and deletes travel too */
    CHECK(crm_context_set(ja, CRM_SCOPE_NODE, "n", json_string("x")) == 0);
    CHECK(sees(jb, CRM_SCOPE_NODE, "n", "\"x\""));
    CHECK(crm_context_set(jb, CRM_SCOPE_FLOW, "stop", NULL) == 0);
    CHECK(sees(ja, CRM_SCOPE_FLOW, "stop", "undefined"));

    /* what Redis holds: one hash per context id, JSON text per key */
    struct timeval tv = {1, 0};
    redisContext *c = redisConnectWithTimeout("127.0.0.1", redis_port, tv);
    redisReply *r = c ? redisCommand(c, "HGET %s:ctx:global cfg", prefix) : NULL;
    CHECK(r && r->type == REDIS_REPLY_STRING && !strcmp(r->str, "{\"name\":\"x\",\"list\":[1,2]}"));
    if (r) freeReplyObject(r);
    if (c) redisFree(c);

    /* a replica started later begins with the shared state */
    crm_runtime_free(a);
    crm_runtime *d = replica(redis_port);
    CHECK(d != NULL);
    if (d) {
        crm_node *jd = crm_runtime_find(d, "j1");
        CHECK(sees(jd, CRM_SCOPE_GLOBAL, "cfg.name", "\"x\""));
        CHECK(sees(jd, CRM_SCOPE_NODE, "n", "\"x\""));
        json_t *keys = crm_context_keys(jd, CRM_SCOPE_GLOBAL, NULL);
        CHECK(json_array_size(keys) == 2);
        json_decref(keys);
        crm_runtime_free(d);
    }
    crm_runtime_free(b);

    /* an unreachable Redis: the runtime refuses to start */
    kill(redis, SIGTERM);
    waitpid(redis, NULL, 0);
    redis = -1;
    CHECK(replica(redis_port) == NULL);
out:
    if (redis > 0) {
        kill(redis, SIGTERM);
        waitpid(redis, NULL, 0);
    }
    UNIT_DONE();
}
