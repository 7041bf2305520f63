/* file_in.c: Node-RED's `file in` node (core/storage/10-file.js, "file
 * in"): reads a file whole (a string or a Buffer), as one message per line
 * or as a stream of 64 KiB Buffers, with msg.parts as Node-RED sets them.
 *
 * A read never blocks the loop for long: each one reads one 64 KiB chunk
 * (Node's read-stream highWaterMark) per loop turn, resuming from a 0 ms
 * timer, so several reads and everything else on the flow interleave.
 * Lines are decoded chunk by chunk as Node-RED does (a character cut by a
 * chunk border decodes as U+FFFD in both). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "carmine.h"
#include "net/netutil.h"

#define CHUNK 65536

typedef enum { F_UTF8, F_BUFFER, F_LINES, F_STREAM } fmt_t;

struct reader;

typedef struct {
    crm_typed *filename;
    char *filename_err;
    bool empty_name;
    fmt_t format;
    char *encoding;
    bool all_props, send_error;
    const char *workdir;
    struct reader *readers; /* reads in progress */
} filein_state;

typedef struct reader {
    struct reader *next;
    crm_node *n;
    json_t *msg;       /* the message that asked (filename set) */
    int fd;
    char *path;
    strbuf whole;      /* utf8/buffer: the bytes so far */
    strbuf spare;      /* lines: the text after the last newline */
    double count;
    bool sent_chunk;   /* stream: a full chunk was sent last */
    crm_timer *timer;
} reader;

static void reader_free(filein_state *s, reader *r)
{
    for (reader **pp = &s->readers; *pp; pp = &(*pp)->next)
        if (*pp == r) {
            *pp = r->next;
            break;
        }
    if (r->fd >= 0) close(r->fd);
    json_decref(r->msg);
    free(r->path);
    sb_free(&r->whole);
    sb_free(&r->spare);
    free(r);
}

/* A new message for one part: the whole message (allProps) or its topic
 * and filename only. */
static json_t *part_msg(filein_state *s, reader *r)
{
    if (s->all_props) return crm_deep_copy(r->msg);
    json_t *m = json_object();
    json_t *t = json_object_get(r->msg, "topic");
    if (t) json_object_set(m, "topic", t);
    json_object_set(m, "filename", json_object_get(r->msg, "filename"));
    return m;
}

static json_t *parts_of(reader *r, const char *ch, const char *type, bool with_count, double count)
{
    json_t *p = json_object();
    json_object_set_new(p, "index", json_real(r->count));
    if (with_count) json_object_set_new(p, "count", json_real(count));
    json_object_set_new(p, "ch", json_string(ch));
    json_object_set_new(p, "type", json_string(type));
    json_t *id = json_object_get(r->msg, "_msgid");
    if (id) json_object_set(p, "id", id);
    return p;
}

static void send_lines(filein_state *s, reader *r, const char *chunk, size_t len)
{
    json_t *text = crm_text_decode(s->encoding, chunk, len);
    if (!text) text = json_stringn(chunk, len);
    sb_putn(&r->spare, json_string_value(text), json_string_length(text));
    json_decref(text);
    const char *p = r->spare.data ? r->spare.data : "";
    size_t left = r->spare.len;
    const char *nl;
    while ((nl = memchr(p, '\n', left))) {
        json_t *m = part_msg(s, r);
        json_object_set_new(m, "payload", json_stringn(p, (size_t)(nl - p)));
        json_object_set_new(m, "parts", parts_of(r, "\n", "string", false, 0));
        r->count++;
        crm_node_send(r->n, 0, m);
        left -= (size_t)(nl - p) + 1;
        p = nl + 1;
    }
    memmove(r->spare.data, p, left);
    r->spare.len = left;
    if (r->spare.data) r->spare.data[left] = 0;
}

static void finish(filein_state *s, reader *r)
{
    crm_node *n = r->n;
    if (s->format == F_UTF8 || s->format == F_BUFFER) {
        const char *d = r->whole.data ? r->whole.data : "";
        json_t *pl = s->format == F_UTF8 ? crm_text_decode(s->encoding, d, r->whole.len) : NULL;
        if (!pl) pl = s->format == F_UTF8 ? crm_text_of(d, r->whole.len) : crm_buf_new(d, r->whole.len);
        json_object_set_new(r->msg, "payload", pl);
        crm_node_send(n, 0, json_incref(r->msg));
    } else if (s->format == F_LINES) {
        json_t *m = part_msg(s, r);
        json_object_set_new(m, "payload", json_stringn(r->spare.data ? r->spare.data : "", r->spare.len));
        json_object_set_new(m, "parts", parts_of(r, "\n", "string", true, r->count + 1));
        crm_node_send(n, 0, m);
    } else if (r->sent_chunk) {
        /* the file ended on a full chunk: Node-RED sends an extra part without payload */
        json_t *m = json_object();
        json_object_set_new(m, "parts", parts_of(r, "", "buffer", true, r->count));
        crm_node_send(n, 0, m);
    }
    crm_node_done(n, r->msg);
    reader_free(s, r);
}

static void read_error(filein_state *s, reader *r, int err, const char *syscall, const char *path)
{
    crm_node *n = r->n;
    char *e = crm_sys_error(err, syscall, path);
    /* node.error(err, msg) with Node's fs error: catch nodes get its code and
     * its stack (for an fs error, the text alone) beside the message */
    char *text = NULL;
    if (asprintf(&text, "Error: %s", e ? e : "") < 0) text = NULL;
    json_t *extra = json_pack("{s:s,s:s}", "code", crm_errno_name(err), "stack", text ? text : "Error");
    crm_node_error_with(n, json_is_object(r->msg) ? r->msg : NULL, text ? text : "Error", extra);
    json_decref(extra);
    free(text);
    free(e);
    if (s->send_error) {
        json_t *m = crm_deep_copy(r->msg);
        json_object_del(m, "payload");
        json_object_set_new(m, "error", crm_sys_error_obj(err, syscall, path));
        crm_node_send(n, 0, m);
    }
    crm_node_done(n, r->msg);
    reader_free(s, r);
}

static void read_step(crm_node *n, void *arg)
{
    reader *r = arg;
    filein_state *s = crm_node_data(n);
    r->timer = NULL;
    char *buf = malloc(CHUNK);
    size_t got = 0;
    while (got < CHUNK) {
        ssize_t k = read(r->fd, buf + got, CHUNK - got);
        if (k < 0 && errno == EINTR) continue;
        if (k < 0) {
            int e = errno;
            free(buf);
            read_error(s, r, e, "read", NULL);
            return;
        }
        if (k == 0) break;
        got += (size_t)k;
    }
    if (got) {
        if (s->format == F_LINES) send_lines(s, r, buf, got);
        else if (s->format == F_STREAM) {
            json_t *m = part_msg(s, r);
            json_object_set_new(m, "payload", crm_buf_new(buf, got));
            bool last = got < CHUNK;
            json_object_set_new(m, "parts", parts_of(r, "", "buffer", last, r->count + 1));
            r->count++;
            r->sent_chunk = !last;
            crm_node_send(n, 0, m);
            if (last) { /* a short chunk is the end for Node-RED too */
                free(buf);
                crm_node_done(n, r->msg);
                reader_free(s, r);
                return;
            }
        } else sb_putn(&r->whole, buf, got);
    }
    free(buf);
    if (got < CHUNK) finish(s, r);
    else r->timer = crm_timer_start(n, 0, 0, read_step, r);
}

static void filein_input(crm_node *n, json_t *msg)
{
    filein_state *s = crm_node_data(n);
    if (!s->filename) {
        crm_node_error(n, msg, "Error: %s", s->filename_err);
        json_decref(msg);
        return;
    }
    json_t *v = NULL;
    char *err = NULL;
    if (crm_typed_eval(n, s->filename, msg, &v, &err) < 0) {
        crm_node_error(n, msg, "%s", err ? err : "");
        free(err);
        json_decref(msg);
        return;
    }
    char *raw = (!v || json_is_null(v)) ? strdup("") : json_is_string(v) ? strdup(json_string_value(v)) : crm_to_string(v);
    json_decref(v);
    /* tabs, CR and LF are dropped from the name */
    size_t j = 0;
    for (size_t i = 0; raw[i]; i++)
        if (raw[i] != '\t' && raw[i] != '\r' && raw[i] != '\n') raw[j++] = raw[i];
    raw[j] = 0;
    if (s->empty_name) crm_node_status(n, "grey", "dot", raw);
    if (!*raw) {
        crm_node_warn(n, "No filename specified");
        crm_node_done(n, msg);
        json_decref(msg);
        free(raw);
        return;
    }
    json_object_set_new(msg, "filename", json_string(raw));
    reader *r = calloc(1, sizeof *r);
    r->n = n;
    r->msg = msg;
    if (s->workdir && *s->workdir && raw[0] != '/') {
        if (asprintf(&r->path, "%s/%s", s->workdir, raw) < 0) r->path = NULL;
        free(raw);
    } else r->path = raw;
    r->next = s->readers;
    s->readers = r;
    r->fd = open(r->path, O_RDONLY | O_CLOEXEC);
    if (r->fd < 0) {
        read_error(s, r, errno, "open", r->path);
        return;
    }
    /* the first chunk is read on a later turn, as a stream's first 'readable' */
    r->timer = crm_timer_start(n, 0, 0, read_step, r);
}

static int filein_create(crm_node *n, const json_t *cfg)
{
    filein_state *s = calloc(1, sizeof *s);
    const char *fname = crm_cfg_str(cfg, "filename", "");
    const char *ftype = crm_cfg_str(cfg, "filenameType", "");
    if (!*ftype) {
        ftype = *fname ? "str" : "msg";
        if (!*fname) fname = "filename";
    }
    s->empty_name = !*fname;
    json_t *fv = json_string(fname);
    s->filename = crm_typed_new(n, ftype, fv, &s->filename_err);
    json_decref(fv);
    const char *f = crm_cfg_str(cfg, "format", "");
    s->format = !strcmp(f, "utf8") ? F_UTF8 : !strcmp(f, "lines") ? F_LINES : !strcmp(f, "stream") ? F_STREAM : F_BUFFER;
    const char *enc = crm_cfg_str(cfg, "encoding", "");
    s->encoding = strdup(*enc ? enc : "none");
    s->all_props = crm_cfg_bool(cfg, "allProps", false);
    json_t *se = json_object_get(cfg, "sendError");
    s->send_error = se ? crm_truthy(se) : true;
    s->workdir = crm_cfg_str(crm_node_settings(n), "fileWorkingDirectory", NULL);
    crm_node_set_data(n, s);
    return 0;
}

static void filein_close(crm_node *n)
{
    filein_state *s = crm_node_data(n);
    if (!s) return;
    while (s->readers) {
        crm_timer_cancel(s->readers->timer);
        reader_free(s, s->readers);
    }
    crm_node_status(n, NULL, NULL, NULL);
    crm_typed_free(s->filename);
    free(s->filename_err);
    free(s->encoding);
    free(s);
    crm_node_set_data(n, NULL);
}

const crm_node_type crm_type_file_in = {
    .abi = CRM_ABI_VERSION,
    .type = "file in",
    .create = filein_create,
    .input = filein_input,
    .close = filein_close,
};
