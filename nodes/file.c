/* file.c: Node-RED's `file` node (core/storage/10-file.js): writes, appends
 * to or deletes a file. The filename is a typed value (str, msg, env...);
 * a message is written before it is sent on, in arrival order.
 *
 * Writes are done at once on the loop: a message's payload is one write(2)
 * into the page cache. Append mode with a fixed filename keeps the file open
 * between messages (as Node-RED keeps its stream) and reopens it when the
 * file was deleted or replaced (its inode changed). Errors read as Node's
 * ("failed to write to file: Error: ENOENT: no such file or directory, open
 * '/x'"). */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "carmine.h"
#include "net/netutil.h"

typedef struct {
    crm_typed *filename;     /* NULL when the config's is unusable: err */
    char *filename_err;
    bool static_name;        /* str or env: the append stream is kept */
    bool empty_name;         /* the configured filename is "" */
    bool newline, create_dir;
    char mode;               /* 'w' overwrite, 'a' append, 'd' delete */
    char *encoding;          /* "none", "setbymsg" or an iconv-lite name */
    const char *workdir;     /* settings.fileWorkingDirectory */
    int fd;                  /* append: the open file */
    char *fd_path;
    ino_t fd_ino;
    crm_timer *status_timer;
    char *status_text;
} file_state;

static void close_stream(file_state *s)
{
    if (s->fd >= 0) close(s->fd);
    s->fd = -1;
    free(s->fd_path);
    s->fd_path = NULL;
}

/* fs-extra's ensureDirSync: mkdir -p. 0, or -1 with errno and the path. */
static int mkdir_p(const char *dir, char **failed)
{
    struct stat st;
    if (!stat(dir, &st)) {
        if (S_ISDIR(st.st_mode)) return 0;
        errno = EEXIST;
        *failed = strdup(dir);
        return -1;
    }
    char *copy = strdup(dir);
    char *parent = dirname(copy);
    int r = 0;
    if (strcmp(parent, dir) && strcmp(parent, "/") && strcmp(parent, ".")) r = mkdir_p(parent, failed);
    free(copy);
    if (r) return r;
    if (mkdir(dir, 0777) && errno != EEXIST) {
        *failed = strdup(dir);
        return -1;
    }
    return 0;
}

static void show_status(crm_node *n, void *arg)
{
    (void)arg;
    file_state *s = crm_node_data(n);
    s->status_timer = NULL;
    crm_node_status(n, "grey", "dot", s->status_text ? s->status_text : "");
}

/* The path the file operations use: relative names under fileWorkingDirectory. */
static char *full_path(const file_state *s, const char *name)
{
    char *p = NULL;
    if (s->workdir && *s->workdir && name[0] != '/') {
        if (asprintf(&p, "%s/%s", s->workdir, name) < 0) p = NULL;
    } else {
        p = strdup(name);
    }
    return p;
}

static void fail(crm_node *n, const json_t *msg, const char *what, int err, const char *syscall, const char *path)
{
    char *e = crm_sys_error(err, syscall, path);
    crm_node_error(n, msg, "%s: Error: %s", what, e ? e : "");
    free(e);
}

static bool write_all(int fd, const char *p, size_t len)
{
    while (len) {
        ssize_t w = write(fd, p, len);
        if (w < 0) {
            if (errno == EINTR) continue;
            return false;
        }
        p += w, len -= (size_t)w;
    }
    return true;
}

static void file_input(crm_node *n, json_t *msg)
{
    file_state *s = crm_node_data(n);
    if (!s->filename) {
        crm_node_error(n, msg, "Error: %s", s->filename_err);
        crm_node_done(n, msg);
        json_decref(msg);
        return;
    }
    json_t *v = NULL;
    char *err = NULL;
    if (crm_typed_eval(n, s->filename, msg, &v, &err) < 0) {
        crm_node_error(n, msg, "%s", err ? err : "");
        free(err);
        crm_node_done(n, msg);
        json_decref(msg);
        return;
    }
    char *name = (!v || json_is_null(v)) ? strdup("") : json_is_string(v) ? strdup(json_string_value(v)) : crm_to_string(v);
    json_decref(v);
    json_object_set_new(msg, "filename", json_string(name));
    if (s->empty_name && !s->status_timer) {
        free(s->status_text);
        s->status_text = strdup(name);
        s->status_timer = crm_timer_start(n, 333, 0, show_status, NULL);
    }
    if (!*name) {
        crm_node_warn(n, "No filename specified");
        goto done;
    }
    char *path = full_path(s, name);
    if (s->mode == 'd') {
        if (unlink(path) < 0) fail(n, msg, "failed to delete file", errno, "unlink", path);
        else {
            crm_node_send(n, 0, json_incref(msg));
        }
        free(path);
        goto done;
    }
    json_t *payload = json_object_get(msg, "payload");
    if (!payload) {
        free(path);
        goto done;
    }
    if (s->create_dir) {
        char *copy = strdup(path), *failed = NULL;
        int r = mkdir_p(dirname(copy), &failed);
        free(copy);
        if (r < 0) {
            fail(n, msg, "failed to create file", errno, "mkdir", failed);
            free(failed);
            free(path);
            goto done;
        }
    }
    strbuf data = SB_INIT;
    bool is_buf = crm_is_buf(payload);
    crm_payload_bytes(payload, true, &data);
    json_t *parts = json_object_get(msg, "parts");
    bool last_part = json_is_object(parts) && json_is_string(json_object_get(parts, "type")) &&
                     !strcmp(json_string_value(json_object_get(parts, "type")), "string") &&
                     crm_is_num(json_object_get(parts, "count")) && crm_is_num(json_object_get(parts, "index")) &&
                     crm_num_value(json_object_get(parts, "count")) == crm_num_value(json_object_get(parts, "index")) + 1;
    if (s->newline && !is_buf && !last_part) sb_putc(&data, '\n');
    strbuf bytes = SB_INIT;
    const char *enc = s->encoding;
    if (!strcmp(enc, "setbymsg")) {
        json_t *me = json_object_get(msg, "encoding");
        enc = json_is_string(me) && *json_string_value(me) ? json_string_value(me) : "none";
    }
    if (is_buf) sb_putn(&bytes, data.data, data.len); /* Buffers are written as they are */
    else if (crm_text_encode(enc, data.data, data.len, &bytes) < 0) {
        crm_node_error(n, msg, "Encoding not recognized: '%s' (searched as: '%s')", enc, enc);
        sb_free(&data);
        sb_free(&bytes);
        free(path);
        goto done;
    }
    sb_free(&data);
    if (s->mode == 'w') {
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
        if (fd < 0) fail(n, msg, "failed to write to file", errno, "open", path);
        else if (!write_all(fd, bytes.data, bytes.len)) {
            fail(n, msg, "failed to write to file", errno, "write", NULL);
            close(fd);
        } else {
            close(fd);
            crm_node_send(n, 0, json_incref(msg));
        }
    } else {
        /* append: reuse the open file unless it was deleted or replaced */
        struct stat st;
        if (s->fd >= 0 && (strcmp(s->fd_path, path) || stat(path, &st) < 0 || st.st_ino != s->fd_ino)) close_stream(s);
        if (s->fd < 0) {
            s->fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0666);
            if (s->fd >= 0) {
                s->fd_path = strdup(path);
                s->fd_ino = fstat(s->fd, &st) == 0 ? st.st_ino : 0;
            }
        }
        if (s->fd < 0) fail(n, msg, "failed to append to file", errno, "open", path);
        else if (!write_all(s->fd, bytes.data, bytes.len)) {
            fail(n, msg, "failed to append to file", errno, "write", NULL);
            close_stream(s);
        } else {
            crm_node_send(n, 0, json_incref(msg));
            if (!s->static_name) close_stream(s);
        }
    }
    sb_free(&bytes);
    free(path);
done:
    free(name);
    crm_node_done(n, msg);
    json_decref(msg);
}

static int file_create(crm_node *n, const json_t *cfg)
{
    file_state *s = calloc(1, sizeof *s);
    s->fd = -1;
    const char *fname = crm_cfg_str(cfg, "filename", "");
    const char *ftype = crm_cfg_str(cfg, "filenameType", "");
    if (!*ftype) { /* before Node-RED 3: "" meant msg.filename */
        ftype = *fname ? "str" : "msg";
        if (!*fname) fname = "filename";
    }
    s->empty_name = !*fname;
    s->static_name = !strcmp(ftype, "str") || !strcmp(ftype, "env");
    json_t *fv = json_string(fname);
    s->filename = crm_typed_new(n, ftype, fv, &s->filename_err);
    json_decref(fv);
    s->newline = crm_cfg_bool(cfg, "appendNewline", false);
    s->create_dir = crm_cfg_bool(cfg, "createDir", false);
    const char *ow = crm_cfg_str(cfg, "overwriteFile", NULL);
    json_t *owv = json_object_get(cfg, "overwriteFile");
    if (!ow) ow = json_is_true(owv) ? "true" : "false";
    s->mode = !strcmp(ow, "true") ? 'w' : !strcmp(ow, "delete") ? 'd' : 'a';
    const char *enc = crm_cfg_str(cfg, "encoding", "");
    s->encoding = strdup(*enc ? enc : "none");
    s->workdir = crm_cfg_str(crm_node_settings(n), "fileWorkingDirectory", NULL);
    crm_node_set_data(n, s);
    return 0;
}

static void file_close(crm_node *n)
{
    file_state *s = crm_node_data(n);
    if (!s) return;
    close_stream(s);
    crm_timer_cancel(s->status_timer);
    crm_node_status(n, NULL, NULL, NULL);
    crm_typed_free(s->filename);
    free(s->filename_err);
    free(s->encoding);
    free(s->status_text);
    free(s);
    crm_node_set_data(n, NULL);
}

const crm_node_type crm_type_file = {
    .abi = CRM_ABI_VERSION,
    .type = "file",
    .create = file_create,
    .input = file_input,
    .close = file_close,
};
