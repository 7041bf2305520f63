/* credentials.c: Node-RED's credentials file beside a flows file (flows.json
 * -> flows_cred.json), so that flows moved from a Node-RED userDir keep the
 * passwords and tokens the editor stored apart from the flows (http request
 * auth, TLS keys). The file is either plain JSON {node id: {...}} or, as
 * Node-RED writes it by default, {"$": IV (32 hex) + base64 of the JSON
 * encrypted with AES-256-CTR under SHA-256(secret)}. The secret is
 * settings.credentialSecret, or when that is unset the key Node-RED generated
 * into userDir/.config.runtime.json (_credentialSecret); credentialSecret
 * false means the file is plain. A file that cannot be decrypted refuses the
 * flows, as Node-RED starts none ("Failed to decrypt credentials").
 *
 * libnettle is already in the process (libmicrohttpd's GnuTLS loads it), so
 * the cipher costs no memory. */
#include <errno.h>
#include <nettle/aes.h>
#include <nettle/base64.h>
#include <nettle/ctr.h>
#include <nettle/sha2.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine.h"
#include "value.h"

/* flows.json -> flows_cred.json, in the same directory (Node-RED's
 * localfilesystem: the extension kept, "_cred" before it). */
static char *credentials_path(const char *flows_path)
{
    const char *slash = strrchr(flows_path, '/');
    const char *dot = strrchr(flows_path, '.');
    size_t stem = dot && (!slash || dot > slash) ? (size_t)(dot - flows_path) : strlen(flows_path);
    strbuf sb = SB_INIT;
    sb_putn(&sb, flows_path, stem);
    sb_puts(&sb, "_cred");
    sb_puts(&sb, flows_path + stem);
    return sb_take(&sb);
}

/* Node-RED's key: SHA-256 of the secret, for AES-256 (CTR: encryption
 * both ways). */
static void cipher_for(const char *secret, struct aes256_ctx *aes)
{
    uint8_t key[SHA256_DIGEST_SIZE];
    struct sha256_ctx h;
    sha256_init(&h);
    sha256_update(&h, strlen(secret), (const uint8_t *)secret);
    sha256_digest(&h, sizeof key, key);
    aes256_set_encrypt_key(aes, key);
}

/* Node-RED's decryptCredentials: NULL when the text is not what the key
 * encrypted (the JSON does not parse). */
static json_t *decrypt(const char *secret, const char *text)
{
    size_t len = strlen(text);
    if (len < 32) return NULL;
    uint8_t iv[AES_BLOCK_SIZE];
    for (int i = 0; i < AES_BLOCK_SIZE; i++) {
        int hi = crm_hexval(text[2 * i]), lo = crm_hexval(text[2 * i + 1]);
        if (hi < 0 || lo < 0) return NULL;
        iv[i] = (uint8_t)(hi << 4 | lo);
    }
    const char *b64 = text + 32;
    size_t b64len = len - 32;
    uint8_t *data = malloc(BASE64_DECODE_LENGTH(b64len) + 1);
    if (!data) return NULL;
    struct base64_decode_ctx b;
    base64_decode_init(&b);
    size_t n = BASE64_DECODE_LENGTH(b64len);
    if (!base64_decode_update(&b, &n, data, b64len, b64) || !base64_decode_final(&b)) {
        free(data);
        return NULL;
    }
    struct aes256_ctx aes;
    cipher_for(secret, &aes);
    ctr_crypt(&aes, (nettle_cipher_func *)aes256_encrypt, AES_BLOCK_SIZE, iv, n, data, data);
    data[n] = 0;
    json_t *creds = crm_normalize_numbers(json_loadb((const char *)data, n, 0, NULL));
    free(data);
    if (creds && !json_is_object(creds)) {
        json_decref(creds);
        creds = NULL;
    }
    return creds;
}

/* Where Node-RED keeps the key it generated. */
#define RUNTIME_CONFIG ".config.runtime.json"

/* The key Node-RED generated when no credentialSecret was set, or NULL. */
static char *system_key(const json_t *settings)
{
    char *path = crm_userdir_file(settings, RUNTIME_CONFIG);
    json_t *cfg = json_load_file(path, 0, NULL);
    free(path);
    const char *k = json_string_value(json_object_get(cfg, "_credentialSecret"));
    char *key = k && *k ? strdup(k) : NULL;
    json_decref(cfg);
    return key;
}

/* Credentials written into a node of the flows file itself (an export made
 * "with credentials") win over the file's, as Node-RED's extract() does;
 * "__PWRD__" stands for "unchanged". */
json_t *crm_credentials_of(const crm_runtime *rt, const json_t *o, const char *template_id)
{
    const char *id = template_id ? template_id : json_string_value(json_object_get(o, "id"));
    const json_t *saved = id && rt->credentials ? json_object_get(rt->credentials, id) : NULL;
    const json_t *inline_creds = json_object_get(o, "credentials");
    if (!json_is_object(saved) && !json_is_object(inline_creds)) return NULL;
    json_t *out = json_is_object(saved) ? json_deep_copy(saved) : json_object();
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)inline_creds, k, v) {
        if (json_is_string(v) && !strcmp(json_string_value(v), "__PWRD__")) continue;
        json_object_set(out, k, v);
    }
    return out;
}

void crm_runtime_set_credentials(crm_runtime *rt, json_t *creds)
{
    json_decref(rt->credentials);
    rt->credentials = creds;
}

json_t *crm_storage_read(const char *path, bool creds, char *err, size_t errlen)
{
    const char *type = creds ? "credentials" : "flow";
    size_t len;
    char *text = crm_read_file(path, &len);
    if (!text) {
        snprintf(err, errlen, "cannot read %s: %s", path, strerror(errno));
        return NULL;
    }
    json_t *v = NULL;
    if (len == 0) { /* its backup when that has something, else nothing */
        crm_log(NULL, CRM_LOG_WARN, NULL, "Existing %s file is empty", type);
        free(text);
        const char *slash = strrchr(path, '/');
        strbuf backup = SB_INIT;
        if (slash) sb_printf(&backup, "%.*s/.%s.backup", (int)(slash - path), path, slash + 1);
        else sb_printf(&backup, ".%s.backup", path);
        struct stat st;
        if (stat(backup.data, &st) == 0 && st.st_size > 0) {
            crm_log(NULL, CRM_LOG_WARN, NULL, "Restoring %s file backup : %s", type, backup.data);
            v = crm_storage_read(backup.data, creds, err, errlen);
        } else {
            v = creds ? json_object() : json_array();
        }
        sb_free(&backup);
        return v;
    }
    size_t skip = len >= 3 && !memcmp(text, "\xEF\xBB\xBF", 3) ? 3 : 0; /* a byte order mark */
    char perr[256];
    v = crm_parse(text + skip, len - skip, perr, sizeof perr);
    if (!v) snprintf(err, errlen, "%s: %s", path, perr);
    free(text);
    return v;
}

int crm_credentials_load(const char *flows_path, const json_t *settings, json_t **out, strbuf *err)
{
    *out = NULL;
    char *path = credentials_path(flows_path);
    struct stat st;
    if (stat(path, &st) < 0) { /* none: the flows carry no credentials, or inline ones */
        free(path);
        return 0;
    }
    char perr[256];
    json_t *file = crm_storage_read(path, true, perr, sizeof perr);
    if (!json_is_object(file)) {
        sb_printf(err, "%s: %s", path, file ? "not a JSON object" : perr);
        json_decref(file);
        free(path);
        return -1;
    }
    json_t *creds = file;
    const char *enc = json_string_value(json_object_get(file, "$"));
    if (enc && json_object_size(file) == 1) {
        const char *user = json_string_value(json_object_get(settings, "credentialSecret"));
        char *sys = system_key(settings);
        /* with both keys Node-RED decrypts with the generated one (it then
         * migrates the file to credentialSecret, which a deploy here writes
         * it with: so that one next); false: only a generated key can still
         * read it */
        const char *key = sys ? sys : user;
        creds = key ? decrypt(key, enc) : NULL;
        if (!creds && sys && user) creds = decrypt(key = user, enc);
        if (!creds) {
            if (!key)
                sb_printf(err, "%s: Failed to decrypt credentials: the file is encrypted and there is no key "
                               "(set credentialSecret in the settings to the one Node-RED used)", path);
            else
                sb_printf(err, "%s: Failed to decrypt credentials: wrong %s", path,
                          sys && user ? "credentialSecret and _credentialSecret in .config.runtime.json"
                          : sys       ? "_credentialSecret in .config.runtime.json"
                                      : "credentialSecret");
        }
        free(sys);
        json_decref(file);
        if (!creds) {
            free(path);
            return -1;
        }
    }
    free(path);
    *out = creds;
    return 0;
}

/* Deploys ----------------------------------------------------------------------- */

static bool blank(const json_t *v)
{
    if (!json_is_string(v)) return false;
    for (const char *p = json_string_value(v); *p; p++)
        if (*p != ' ' && *p != '\t' && *p != '\n' && *p != '\r' && *p != '\f' && *p != '\v') return false;
    return true;
}

bool crm_credentials_extract(json_t *flows, json_t *creds)
{
    bool changed = false;
    json_t *ids = json_object();
    size_t i;
    json_t *node;
    json_array_foreach(flows, i, node) {
        const char *id = json_string_value(json_object_get(node, "id"));
        if (!id) continue;
        json_object_set_new(ids, id, json_true());
        json_t *fresh = json_object_get(node, "credentials");
        if (!fresh) continue;
        json_t *saved = json_object_get(creds, id);
        if (!json_is_object(saved)) json_object_set_new(creds, id, saved = json_object());
        const char *k;
        json_t *v;
        json_object_foreach(fresh, k, v) {
            if (json_is_string(v) && !strcmp(json_string_value(v), "__PWRD__")) continue;
            if (blank(v)) {
                if (json_object_get(saved, k)) changed = true;
                json_object_del(saved, k);
            } else if (!json_equal(json_object_get(saved, k), v)) {
                json_object_set(saved, k, v);
                changed = true;
            }
        }
        json_object_del(node, "credentials");
    }
    /* and those of nodes the flows no longer have */
    const char *k;
    json_t *v, *tmp;
    json_object_foreach_safe(creds, tmp, k, v) {
        if (!json_object_get(ids, k)) {
            json_object_del(creds, k);
            changed = true;
        }
    }
    json_decref(ids);
    return changed;
}

/* Secrets and keys: readable by their owner only. */
static int write_file_atomic(const char *path, const char *text, strbuf *err)
{
    if (crm_write_file(path, text, 0600) == 0) return 0;
    sb_printf(err, "cannot write %s: %s", path, strerror(errno));
    return -1;
}

/* The key Node-RED would encrypt with: credentialSecret, else the generated
 * one, made and kept in .config.runtime.json (as Node-RED does) when there is
 * none. NULL with *plain set: credentialSecret false. */
static char *saving_key(const json_t *settings, bool *plain, strbuf *err)
{
    const json_t *user = json_object_get(settings, "credentialSecret");
    *plain = json_is_false(user);
    if (*plain) return NULL;
    if (json_is_string(user)) return strdup(json_string_value(user));
    char *sys = system_key(settings);
    if (sys) return sys;
    uint8_t raw[32];
    if (getrandom(raw, sizeof raw, 0) != (ssize_t)sizeof raw) {
        sb_printf(err, "no random bytes for a credentials key: %s", strerror(errno));
        return NULL;
    }
    char hex[65];
    for (size_t i = 0; i < sizeof raw; i++) snprintf(hex + 2 * i, 3, "%02x", raw[i]);
    char *path = crm_userdir_file(settings, RUNTIME_CONFIG);
    json_t *cfg = json_load_file(path, 0, NULL);
    if (!json_is_object(cfg)) {
        json_decref(cfg);
        cfg = json_object();
    }
    json_object_set_new(cfg, "_credentialSecret", json_string(hex));
    char *text = json_dumps(cfg, JSON_INDENT(4));
    json_decref(cfg);
    int rc = write_file_atomic(path, text, err);
    free(text);
    free(path);
    return rc < 0 ? NULL : strdup(hex);
}

static char *encrypt(const char *secret, const char *text)
{
    uint8_t iv[AES_BLOCK_SIZE];
    if (getrandom(iv, sizeof iv, 0) != (ssize_t)sizeof iv) return NULL;
    size_t n = strlen(text);
    uint8_t *ct = malloc(n ? n : 1);
    char *out = malloc(32 + BASE64_ENCODE_RAW_LENGTH(n) + 1);
    if (!ct || !out) {
        free(ct);
        free(out);
        return NULL;
    }
    for (int i = 0; i < AES_BLOCK_SIZE; i++) snprintf(out + 2 * i, 3, "%02x", iv[i]);
    struct aes256_ctx aes;
    cipher_for(secret, &aes);
    ctr_crypt(&aes, (nettle_cipher_func *)aes256_encrypt, AES_BLOCK_SIZE, iv, n, ct, (const uint8_t *)text);
    base64_encode_raw(out + 32, n, ct);
    out[32 + BASE64_ENCODE_RAW_LENGTH(n)] = 0;
    free(ct);
    return out;
}

int crm_credentials_save(const char *flows_path, const json_t *settings, const json_t *creds, strbuf *err)
{
    bool plain;
    char *key = saving_key(settings, &plain, err);
    if (!key && !plain) return -1;
    char *text = NULL;
    char *json = json_dumps(creds, plain ? JSON_INDENT(4) : JSON_COMPACT);
    if (plain) {
        text = json;
        json = NULL;
    } else {
        char *sealed = json ? encrypt(key, json) : NULL;
        json_t *wrap = sealed ? json_pack("{s:s}", "$", sealed) : NULL;
        text = wrap ? json_dumps(wrap, JSON_COMPACT) : NULL;
        json_decref(wrap);
        free(sealed);
    }
    free(json);
    free(key);
    char *path = credentials_path(flows_path);
    int rc = text ? write_file_atomic(path, text, err) : (sb_printf(err, "cannot encrypt the credentials"), -1);
    free(text);
    free(path);
    return rc;
}
