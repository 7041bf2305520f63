/* supervisor_int.h: the supervisor's state, shared by its main loop
 * (supervisor.c) and its HTTP API (supervisor_api.c). */
#ifndef CRM_SUPERVISOR_INT_H
#define CRM_SUPERVISOR_INT_H

#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <sys/types.h>

#include "httpd.h"
#include "runtime.h"
#include "supervisor.h"

#define MAX_REPLICAS 64

typedef enum { R_STARTING, R_READY, R_BACKOFF, R_DRAINING } replica_state;

typedef struct {
    bool free;            /* entry unused */
    int slot;             /* 1..N: the log tag and CARMINE_REPLICA */
    pid_t pid;            /* 0 while waiting out a backoff */
    int out;              /* read end of its stdout+stderr, -1 once closed */
    char line[4096];
    size_t llen;
    replica_state state;
    bool retiring;        /* replaced by a deploy or stopping: never restarted */
    unsigned gen;         /* flows generation it was started with */
    int restarts;
    double started, restart_at, backoff;
} replica;

typedef struct {
    json_t *settings;
    char *flows_path;
    char *state_dir, *settings_path, *lease_path;
    char exe[4096];
    int port, admin_port, n;
    double backoff_min, backoff_max, backoff_reset, ready_timeout, stop_timeout;
    double t0;
    crm_httpd *api;
    struct crm_admin_auth *auth; /* settings.adminAuth for the API, or NULL */
    struct crm_runtime *editor_rt; /* the editor served on the API (no flows run in it), or NULL */
    pthread_mutex_t deploy_mu; /* one deploy at a time, as Node-RED */

    pthread_mutex_t mu;   /* guards what follows: the main loop and the API threads */
    pthread_cond_t cv;    /* a deploy finished, or the supervisor stops */
    replica r[MAX_REPLICAS * 2];
    size_t nr;
    json_t *flows;        /* the flows in force */
    char rev[65];
    unsigned gen;
    json_t *pending;      /* flows handed over by POST /flows */
    json_t *pending_creds; /* the credentials before that deploy (NULL: none) */
    bool pending_rollback; /* pending is a roll back to the flows before a failed deploy */
    json_t *prev_flows;   /* while a deploy runs: the flows it replaces */
    json_t *prev_creds;   /* and their credentials, restored if it fails */
    bool rolling_back;    /* the deploy running is a roll back */
    unsigned deploy_seq, deploy_done;
    int deploy_slot;      /* slot being replaced (1..N), 0 when no deploy runs */
    replica *deploy_new;  /* the replacement starting for deploy_slot */
    double deploy_started;
    bool deploy_failed;
    char deploy_error[512];
    bool stopping;
    unsigned long slot_restarts[MAX_REPLICAS + 1]; /* /metrics: replicas restarted after dying, by slot */
} supervisor;

void sup_log(supervisor *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
replica *sup_spawn(supervisor *s, int slot);
int sup_write_flows(supervisor *s, const json_t *flows);

/* supervisor_api.c */
void sup_editor_stop(supervisor *s); /* before the API's server is freed */
int sup_load_flows(supervisor *s, const char *path, const json_t *settings);
int sup_api_start(supervisor *s, const char *host);
/* Main loop, mu held: takes s->pending as the flows in force and starts the roll. */
void sup_begin_deploy(supervisor *s);

#endif
