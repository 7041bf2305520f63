/* watch.c: Node-RED's `watch` node (core/storage/23-watch.js, which uses
 * the node-watch package): one message per changed file or directory.
 *
 * inotify, waited on with crm_watch_fd. A watched file is watched through
 * its directory (so its deletion and re-creation are seen), a directory
 * directly, and with `recursive` every directory below it, including ones
 * created later. As node-watch does, raw events are gathered for 200 ms
 * from the first one, each path is reported once in the order it first
 * changed, and the event is "update" when the path exists then, "remove"
 * when it does not. */
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include "carmine.h"

#define DEBOUNCE_MS 200
#define MASK (IN_ATTRIB | IN_CREATE | IN_MODIFY | IN_DELETE | IN_DELETE_SELF | IN_MOVE_SELF | IN_MOVED_FROM | IN_MOVED_TO)

typedef struct {
    int wd;
    char *dir;      /* the watched directory, no trailing '/' */
    char *only;     /* a watched file: the one name reported, else NULL */
    bool recursive;
} wdir;

typedef struct {
    int fd;
    crm_watch *watch;
    char *topic;
    bool recursive;
    wdir *dirs;
    size_t ndirs, cap;
    char **pending;  /* changed paths, first-change order */
    size_t npending, pcap;
    crm_timer *timer;
} watch_state;

static void add_dir(watch_state *s, const char *dir, const char *only, bool recursive);

static void add_tree(watch_state *s, const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        char *p = NULL;
        if (asprintf(&p, "%s/%s", dir, e->d_name) < 0) continue;
        struct stat st;
        if (!lstat(p, &st) && S_ISDIR(st.st_mode)) add_dir(s, p, NULL, true);
        free(p);
    }
    closedir(d);
}

static void add_dir(watch_state *s, const char *dir, const char *only, bool recursive)
{
    int wd = inotify_add_watch(s->fd, dir, MASK);
    if (wd < 0) return;
    for (size_t i = 0; i < s->ndirs; i++)
        if (s->dirs[i].wd == wd && !s->dirs[i].only == !only &&
            (!only || !strcmp(s->dirs[i].only, only)))
            return;
    if (s->ndirs == s->cap) {
        s->cap = s->cap ? 2 * s->cap : 8;
        s->dirs = realloc(s->dirs, s->cap * sizeof *s->dirs);
    }
    s->dirs[s->ndirs++] = (wdir){wd, strdup(dir), only ? strdup(only) : NULL, recursive};
    if (recursive) add_tree(s, dir);
}

static void note(watch_state *s, const char *path)
{
    for (size_t i = 0; i < s->npending; i++)
        if (!strcmp(s->pending[i], path)) return;
    if (s->npending == s->pcap) {
        s->pcap = s->pcap ? 2 * s->pcap : 8;
        s->pending = realloc(s->pending, s->pcap * sizeof *s->pending);
    }
    s->pending[s->npending++] = strdup(path);
}

static void flush(crm_node *n, void *arg)
{
    (void)arg;
    watch_state *s = crm_node_data(n);
    s->timer = NULL;
    for (size_t i = 0; i < s->npending; i++) {
        const char *p = s->pending[i];
        struct stat st;
        bool exists = stat(p, &st) == 0;
        const char *base = strrchr(p, '/');
        base = base ? base + 1 : p;
        json_t *m = json_object();
        json_object_set_new(m, "payload", json_string(p));
        json_object_set_new(m, "topic", json_string(s->topic));
        json_object_set_new(m, "file", json_string(base));
        json_object_set_new(m, "filename", json_string(p));
        json_object_set_new(m, "event", json_string(exists ? "update" : "remove"));
        const char *type = "none";
        if (exists) {
            if (S_ISREG(st.st_mode)) {
                type = "file";
                json_object_set_new(m, "size", json_real((double)st.st_size));
            } else if (S_ISBLK(st.st_mode)) type = "blockdevice";
            else if (S_ISCHR(st.st_mode)) type = "characterdevice";
            else if (S_ISSOCK(st.st_mode)) type = "socket";
            else if (S_ISFIFO(st.st_mode)) type = "fifo";
            else if (S_ISDIR(st.st_mode)) type = "directory";
            else type = "n/a";
        }
        json_object_set_new(m, "type", json_string(type));
        crm_node_send(n, 0, m);
        free(s->pending[i]);
    }
    s->npending = 0;
}

static void on_events(crm_node *n, int fd, unsigned revents, void *arg)
{
    (void)revents, (void)arg;
    watch_state *s = crm_node_data(n);
    char buf[8192] __attribute__((aligned(__alignof__(struct inotify_event))));
    for (;;) {
        ssize_t len = read(fd, buf, sizeof buf);
        if (len <= 0) break;
        for (char *p = buf; p < buf + len;) {
            struct inotify_event *ev = (struct inotify_event *)p;
            p += sizeof *ev + ev->len;
            /* the same wd may serve a directory watch and file watches in it */
            size_t nd = s->ndirs;
            for (size_t i = 0; i < nd; i++) {
                wdir *w = &s->dirs[i];
                if (w->wd != ev->wd) continue;
                char *path = NULL;
                if (ev->len && ev->name[0]) {
                    if (w->only && strcmp(w->only, ev->name)) continue;
                    if (asprintf(&path, "%s/%s", w->dir, ev->name) < 0) continue;
                } else {
                    if (w->only) continue;
                    path = strdup(w->dir);
                }
                if (w->recursive && (ev->mask & IN_ISDIR) && (ev->mask & (IN_CREATE | IN_MOVED_TO)))
                    add_dir(s, path, NULL, true);
                note(s, path);
                free(path);
                w = NULL; /* add_dir may have moved the array */
            }
        }
    }
    if (s->npending && !s->timer) s->timer = crm_timer_start(n, DEBOUNCE_MS, 0, flush, NULL);
}

static char *trim_dup(const char *s, size_t len)
{
    while (len && (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r')) s++, len--;
    while (len && (s[len - 1] == ' ' || s[len - 1] == '\t' || s[len - 1] == '\n' || s[len - 1] == '\r')) len--;
    return strndup(s, len);
}

static int watch_create(crm_node *n, const json_t *cfg)
{
    watch_state *s = calloc(1, sizeof *s);
    s->fd = -1;
    s->recursive = crm_cfg_bool(cfg, "recursive", false);
    const char *files = crm_cfg_str(cfg, "files", "");
    json_t *list = json_array();
    for (const char *p = files;;) {
        const char *c = strchr(p, ',');
        size_t len = c ? (size_t)(c - p) : strlen(p);
        char *f = trim_dup(p, len);
        json_array_append_new(list, json_string(f));
        free(f);
        if (!c) break;
        p = c + 1;
    }
    if (json_array_size(list) == 1) s->topic = strdup(json_string_value(json_array_get(list, 0)));
    else s->topic = crm_stringify(list, 0);
    /* the paths are kept in the state until start() */
    crm_node_set_data(n, s);
    s->pending = NULL;
    json_t *keep = list;
    s->dirs = NULL;
    /* stash the list in pending as strings for start() */
    size_t i;
    json_t *v;
    json_array_foreach(keep, i, v) note(s, json_string_value(v));
    json_decref(keep);
    return 0;
}

static void watch_start(crm_node *n)
{
    watch_state *s = crm_node_data(n);
    size_t np = s->npending;
    char **paths = s->pending;
    s->pending = NULL;
    s->npending = s->pcap = 0;
    s->fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (s->fd < 0) {
        crm_node_error(n, NULL, "Error: %s", strerror(errno));
    }
    for (size_t i = 0; i < np; i++) {
        const char *p = paths[i];
        char *copy = strdup(p);
        size_t l = strlen(copy);
        while (l > 1 && copy[l - 1] == '/') copy[--l] = 0;
        struct stat st;
        if (stat(copy, &st) < 0) {
            /* node-watch: "does not exist", nothing watched */
            json_t *m = json_pack("{s:s}", "payload", "");
            crm_node_error(n, m, "Error: %s does not exist.", p);
            json_decref(m);
        } else if (s->fd >= 0) {
            if (S_ISDIR(st.st_mode)) add_dir(s, copy, NULL, s->recursive);
            else {
                char *slash = strrchr(copy, '/');
                char *dir = slash ? (slash == copy ? strdup("/") : strndup(copy, (size_t)(slash - copy))) : strdup(".");
                add_dir(s, dir, slash ? slash + 1 : copy, false);
                free(dir);
            }
        }
        free(copy);
        free(paths[i]);
    }
    free(paths);
    if (s->fd >= 0) s->watch = crm_watch_fd(n, s->fd, POLLIN, on_events, NULL);
}

static void watch_close(crm_node *n)
{
    watch_state *s = crm_node_data(n);
    if (!s) return;
    crm_watch_cancel(s->watch);
    crm_timer_cancel(s->timer);
    if (s->fd >= 0) close(s->fd);
    for (size_t i = 0; i < s->ndirs; i++) {
        free(s->dirs[i].dir);
        free(s->dirs[i].only);
    }
    free(s->dirs);
    for (size_t i = 0; i < s->npending; i++) free(s->pending[i]);
    free(s->pending);
    free(s->topic);
    free(s);
    crm_node_set_data(n, NULL);
}

const crm_node_type crm_type_watch = {
    .abi = CRM_ABI_VERSION,
    .type = "watch",
    .create = watch_create,
    .start = watch_start,
    .close = watch_close,
};
