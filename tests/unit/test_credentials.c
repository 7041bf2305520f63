/* test_credentials.c: flows_cred.json beside a flows file, read as Node-RED
 * writes it. The encrypted texts below were made by Node.js's crypto with
 * Node-RED's own recipe (AES-256-CTR, key SHA-256 of the secret, IV in hex
 * then base64), so a wrong key derivation, counter or decoding fails here.
 * Also: the generated key in .config.runtime.json, plain files with
 * credentialSecret false, nodes and "cred" env entries getting them (the
 * loaded flows unchanged), inline credentials winning, refusals. */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine.h"
#include "unit.h"

/* {"req1":{"user":"alice","password":"p@ss wörd"},"tab1":{"map":{"TOKEN":"x"}}} under "s3cret" */
static const char *ENC_USER =
    "{\"$\":\"9ff4e1c91ea2c8e828fe6e12502f87db7m6CRaE/WrcR4Ev1ygqKTpKnE0rP4m2gysnChdaV+7bl3GoFLoCivZABioOsgqmOIm/"
    "h8576KtWGOArp9wQ72qrVHI/IfkoUg7+pLnd5\"}";
/* {"req1":{"user":"bob","password":"sys"}} under SYS_KEY */
static const char *ENC_SYS = "{\"$\":\"e82e57df2fb609926d81aeaa37d8e982pK4qpv5+hqCbIQP8+JNRIJViloZbzwIPDPKyE79SCAfXBXBYGasVJw==\"}";
static const char *SYS_KEY = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

static char dir[64];

static void write_file(const char *name, const char *text)
{
    char p[256];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    FILE *f = fopen(p, "w");
    if (f) {
        fputs(text, f);
        fclose(f);
    }
}

static void remove_file(const char *name)
{
    char p[256];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    unlink(p);
}

/* What a probe node saw when created: its credentials and env TOKEN. */
static json_t *seen_creds, *seen_token;

static int probe_create(crm_node *n, const json_t *config)
{
    json_decref(seen_creds);
    json_decref(seen_token);
    seen_creds = json_deep_copy(json_object_get(config, "credentials"));
    seen_token = crm_node_env(n, "TOKEN");
    return 0;
}

static const crm_node_type probe = {.abi = CRM_ABI_VERSION, .type = "cred-probe", .create = probe_create};

/* Loads the credentials file in dir with settings (stolen); NULL when
 * refused, the reason in *why. */
static json_t *load(json_t *settings, char **why)
{
    char path[128];
    snprintf(path, sizeof path, "%s/flows.json", dir);
    strbuf err = SB_INIT;
    json_t *out = NULL;
    int rc = crm_credentials_load(path, settings, &out, &err);
    *why = err.data ? strdup(err.data) : NULL;
    sb_free(&err);
    json_decref(settings);
    if (rc < 0) CHECK(out == NULL);
    return rc < 0 ? NULL : (out ? out : json_object());
}

static const char *cred(const json_t *all, const char *id, const char *key)
{
    return json_string_value(json_object_get(json_object_get(all, id), key));
}

/* A runtime with these credentials and a tab whose env has a "cred" entry. */
static void run_probe(json_t *creds, const char *inline_creds)
{
    crm_runtime *rt = crm_runtime_new(NULL);
    crm_runtime_set_credentials(rt, creds);
    char text[512];
    snprintf(text, sizeof text,
             "[{\"id\":\"tab1\",\"type\":\"tab\",\"env\":[{\"name\":\"TOKEN\",\"type\":\"cred\",\"value\":\"\"}]},"
             "{\"id\":\"req1\",\"type\":\"cred-probe\",\"z\":\"tab1\",\"wires\":[]%s}]",
             inline_creds ? inline_creds : "");
    json_t *flows = json_loads(text, 0, NULL);
    json_t *before = json_deep_copy(flows);
    CHECK(crm_runtime_load(rt, flows, 0, NULL) == 0);
    CHECK(json_equal(flows, before));
    /* what GET /flows serves keeps no secret, inline ones included */
    size_t i;
    json_t *o;
    json_array_foreach(rt->flows_json, i, o) CHECK(!json_object_get(o, "credentials"));
    CHECK(json_array_size(rt->flows_json) == 2);
    json_decref(before);
    json_decref(flows);
    crm_runtime_free(rt);
}

/* Saves all with settings (stolen), then loads with the same settings. */
static void save_and_reload(const char *path, json_t *settings, const json_t *all)
{
    strbuf err = SB_INIT;
    CHECK(crm_credentials_save(path, settings, all, &err) == 0);
    sb_free(&err);
    char *why = NULL;
    json_t *c = load(json_incref(settings), &why);
    CHECK(c && json_equal(c, all));
    json_decref(c);
    free(why);
    json_decref(settings);
}

int main(void)
{
    CHECK(crm_register_type(&probe) == 0);
    snprintf(dir, sizeof dir, "/tmp/crm-cred-XXXXXX");
    CHECK(mkdtemp(dir) != NULL);
    char *why = NULL;

    /* no file: no credentials, no error */
    json_t *c = load(json_pack("{s:s}", "credentialSecret", "s3cret"), &why);
    CHECK(c && json_object_size(c) == 0);
    json_decref(c);
    free(why);

    /* encrypted with credentialSecret */
    write_file("flows_cred.json", ENC_USER);
    c = load(json_pack("{s:s, s:s}", "credentialSecret", "s3cret", "userDir", dir), &why);
    CHECK_STR(cred(c, "req1", "user"), "alice");
    CHECK_STR(cred(c, "req1", "password"), "p@ss wörd");
    CHECK_STR(json_string_value(json_object_get(json_object_get(json_object_get(c, "tab1"), "map"), "TOKEN")), "x");
    json_decref(c);
    free(why);

    /* the wrong secret refuses, naming the file and the setting */
    c = load(json_pack("{s:s, s:s}", "credentialSecret", "nope", "userDir", dir), &why);
    CHECK(c == NULL);
    CHECK(why && strstr(why, "flows_cred.json") && strstr(why, "Failed to decrypt credentials") &&
          strstr(why, "credentialSecret"));
    free(why);

    /* encrypted, and no key at all */
    c = load(json_pack("{s:s}", "userDir", dir), &why);
    CHECK(c == NULL);
    CHECK(why && strstr(why, "no key"));
    free(why);

    /* the key Node-RED generated, in userDir/.config.runtime.json */
    write_file("flows_cred.json", ENC_SYS);
    char cfg[160];
    snprintf(cfg, sizeof cfg, "{\"_credentialSecret\":\"%s\"}", SYS_KEY);
    write_file(".config.runtime.json", cfg);
    c = load(json_pack("{s:s}", "userDir", dir), &why);
    CHECK_STR(cred(c, "req1", "user"), "bob");
    json_decref(c);
    free(why);
    /* with a credentialSecret too, the generated key still reads the file */
    c = load(json_pack("{s:s, s:s}", "credentialSecret", "s3cret", "userDir", dir), &why);
    CHECK_STR(cred(c, "req1", "password"), "sys");
    json_decref(c);
    free(why);
    remove_file(".config.runtime.json");

    /* a plain file with credentialSecret false */
    write_file("flows_cred.json",
               "{\"req1\":{\"user\":\"carol\",\"password\":\"plain\",\"n\":1},\"tab1\":{\"TOKEN\":\"t0k\"}}");
    c = load(json_pack("{s:b, s:s}", "credentialSecret", 0, "userDir", dir), &why);
    CHECK_STR(cred(c, "req1", "user"), "carol");
    CHECK(json_is_real(json_object_get(json_object_get(c, "req1"), "n")));
    free(why);

    /* nodes get them as config.credentials, a tab's "cred" env entry its
     * value; inline credentials win, "__PWRD__" keeps the file's */
    run_probe(json_incref(c), NULL);
    CHECK_STR(json_string_value(json_object_get(seen_creds, "user")), "carol");
    CHECK_STR(json_string_value(seen_token), "t0k");
    run_probe(c, ",\"credentials\":{\"user\":\"dave\",\"password\":\"__PWRD__\"}");
    CHECK_STR(json_string_value(json_object_get(seen_creds, "user")), "dave");
    CHECK_STR(json_string_value(json_object_get(seen_creds, "password")), "plain");
    run_probe(NULL, NULL);
    CHECK(seen_creds == NULL && seen_token == NULL);

    /* not JSON: refused with the parser's reason */
    write_file("flows_cred.json", "{oops");
    c = load(json_pack("{s:b}", "credentialSecret", 0), &why);
    CHECK(c == NULL);
    CHECK(why && strstr(why, "flows_cred.json"));
    free(why);

    /* a deploy: inline credentials move out of the flows; "__PWRD__" keeps,
     * "" deletes; nodes gone take theirs along */
    json_t *all = json_pack("{s:{s:s, s:s}, s:{s:s}}", "req1", "user", "u0", "password", "p0", "gone", "k", "v");
    json_t *dep = json_pack("[{s:s, s:s, s:{s:s, s:s, s:s}}, {s:s, s:s}]", "id", "req1", "type", "http request",
                            "credentials", "user", "u1", "password", "__PWRD__", "token", " ", "id", "tab1", "type", "tab");
    CHECK(crm_credentials_extract(dep, all));
    CHECK(!json_object_get(json_array_get(dep, 0), "credentials"));
    CHECK_STR(cred(all, "req1", "user"), "u1");
    CHECK_STR(cred(all, "req1", "password"), "p0");
    CHECK(!json_object_get(all, "gone"));
    CHECK(!crm_credentials_extract(dep, all)); /* nothing new the second time */

    /* saved the way they load: under credentialSecret, under a generated key
     * (made in .config.runtime.json), plain */
    char path[128];
    snprintf(path, sizeof path, "%s/flows.json", dir);
    strbuf err = SB_INIT;
    save_and_reload(path, json_pack("{s:s, s:s}", "credentialSecret", "s3cret", "userDir", dir), all);
    c = load(json_pack("{s:s, s:s}", "credentialSecret", "other", "userDir", dir), &why);
    CHECK(c == NULL);
    free(why);
    save_and_reload(path, json_pack("{s:s}", "userDir", dir), all);
    char rc_path[160];
    snprintf(rc_path, sizeof rc_path, "%s/.config.runtime.json", dir);
    json_t *rcfg = json_load_file(rc_path, 0, NULL);
    CHECK(json_string_length(json_object_get(rcfg, "_credentialSecret")) == 64);
    json_decref(rcfg);
    /* then a credentialSecret is set: a deploy writes with it, the next
     * start still reads the file though the generated key is there too */
    save_and_reload(path, json_pack("{s:s, s:s}", "credentialSecret", "s3cret", "userDir", dir), all);
    remove_file(".config.runtime.json");
    json_t *st = json_pack("{s:b, s:s}", "credentialSecret", 0, "userDir", dir);
    CHECK(crm_credentials_save(path, st, all, &err) == 0);
    json_decref(st);
    char cred_path[160];
    snprintf(cred_path, sizeof cred_path, "%s/flows_cred.json", dir);
    json_t *plainf = json_load_file(cred_path, 0, NULL);
    CHECK(json_equal(plainf, all));
    json_decref(plainf);
    sb_free(&err);
    json_decref(all);
    json_decref(dep);

    json_decref(seen_creds);
    json_decref(seen_token);
    remove_file("flows_cred.json");
    rmdir(dir);
    UNIT_DONE();
}
