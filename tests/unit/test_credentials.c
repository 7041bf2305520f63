/* test_credentials.c: flows_cred.json beside a flows file, read as Node-RED
 * writes it. The encrypted texts below were made by Node.js's crypto with
 * Node-RED's own recipe (AES-256-CTR, key SHA-256 of the secret, IV in hex
 * then base64), so a wrong key derivation, counter or decoding fails here.
 * Also: the generated key in .config.runtime.json, plain files with
 * credentialSecret false, inline credentials winning, refusals. */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "runtime.h"
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

static json_t *flows(void)
{
    return json_loads("[{\"id\":\"tab1\",\"type\":\"tab\"},"
                      "{\"id\":\"req1\",\"type\":\"http request\",\"z\":\"tab1\",\"authType\":\"basic\"}]",
                      0, NULL);
}

/* Applies with settings; returns the flows (or NULL when refused, the
 * reason in *why). */
static json_t *apply(json_t *settings, char **why)
{
    json_t *f = flows();
    char path[128];
    snprintf(path, sizeof path, "%s/flows.json", dir);
    strbuf err = SB_INIT;
    int rc = crm_credentials_apply(f, path, settings, &err);
    *why = err.data ? strdup(err.data) : NULL;
    sb_free(&err);
    json_decref(settings);
    if (rc < 0) {
        json_decref(f);
        return NULL;
    }
    return f;
}

static const char *cred(json_t *f, size_t i, const char *key)
{
    return json_string_value(json_object_get(json_object_get(json_array_get(f, i), "credentials"), key));
}

int main(void)
{
    snprintf(dir, sizeof dir, "/tmp/crm-cred-XXXXXX");
    CHECK(mkdtemp(dir) != NULL);
    char *why = NULL;

    /* no file: nothing changes */
    json_t *f = apply(json_pack("{s:s}", "credentialSecret", "s3cret"), &why);
    CHECK(f && !json_object_get(json_array_get(f, 1), "credentials"));
    json_decref(f);
    free(why);

    /* encrypted with credentialSecret */
    write_file("flows_cred.json", ENC_USER);
    f = apply(json_pack("{s:s, s:s}", "credentialSecret", "s3cret", "userDir", dir), &why);
    CHECK(f != NULL);
    CHECK_STR(cred(f, 1, "user"), "alice");
    CHECK_STR(cred(f, 1, "password"), "p@ss wörd");
    CHECK(json_is_object(json_object_get(json_object_get(json_array_get(f, 0), "credentials"), "map")));
    json_decref(f);
    free(why);

    /* the wrong secret refuses, naming the file and the setting */
    f = apply(json_pack("{s:s, s:s}", "credentialSecret", "nope", "userDir", dir), &why);
    CHECK(f == NULL);
    CHECK(why && strstr(why, "flows_cred.json") && strstr(why, "Failed to decrypt credentials") &&
          strstr(why, "credentialSecret"));
    free(why);

    /* encrypted, and no key at all */
    f = apply(json_pack("{s:s}", "userDir", dir), &why);
    CHECK(f == NULL);
    CHECK(why && strstr(why, "no key"));
    free(why);

    /* the key Node-RED generated, in userDir/.config.runtime.json */
    write_file("flows_cred.json", ENC_SYS);
    char cfg[160];
    snprintf(cfg, sizeof cfg, "{\"_credentialSecret\":\"%s\"}", SYS_KEY);
    write_file(".config.runtime.json", cfg);
    f = apply(json_pack("{s:s}", "userDir", dir), &why);
    CHECK(f != NULL);
    CHECK_STR(cred(f, 1, "user"), "bob");
    json_decref(f);
    free(why);
    /* with a credentialSecret too, the generated key still reads the file */
    f = apply(json_pack("{s:s, s:s}", "credentialSecret", "s3cret", "userDir", dir), &why);
    CHECK(f != NULL);
    CHECK_STR(cred(f, 1, "password"), "sys");
    json_decref(f);
    free(why);
    remove_file(".config.runtime.json");

    /* plain file with credentialSecret false; inline credentials win,
     * "__PWRD__" keeps the saved one */
    write_file("flows_cred.json", "{\"req1\":{\"user\":\"carol\",\"password\":\"plain\",\"n\":1}}");
    json_t *g = flows();
    json_object_set_new(json_array_get(g, 1), "credentials", json_pack("{s:s, s:s}", "user", "dave", "password", "__PWRD__"));
    char path[128];
    snprintf(path, sizeof path, "%s/flows.json", dir);
    strbuf err = SB_INIT;
    json_t *settings = json_pack("{s:b, s:s}", "credentialSecret", 0, "userDir", dir);
    CHECK(crm_credentials_apply(g, path, settings, &err) == 0);
    CHECK_STR(cred(g, 1, "user"), "dave");
    CHECK_STR(cred(g, 1, "password"), "plain");
    CHECK(json_is_real(json_object_get(json_object_get(json_array_get(g, 1), "credentials"), "n")));
    json_decref(settings);
    json_decref(g);
    sb_free(&err);

    /* not JSON: refused with the parser's reason */
    write_file("flows_cred.json", "{oops");
    f = apply(json_pack("{s:b}", "credentialSecret", 0), &why);
    CHECK(f == NULL);
    CHECK(why && strstr(why, "flows_cred.json"));
    free(why);

    remove_file("flows_cred.json");
    rmdir(dir);
    UNIT_DONE();
}
