/* test_function_runaway.c: a function node that never returns (a loop
 * without a timeout, as Node-RED leaves it running) holds its own tab only:
 * another tab's function node and the HTTP server keep answering, and
 * stopping the flows stops the loop (runtime/js/sandbox.c: a call that has
 * run CRM_JS_STOP_MS when the flows stop is ended) instead of waiting for
 * it for ever. A chain of function nodes on one tab (one VM entry for the
 * messages queued behind each other, sandbox.c) keeps its order. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "runtime.h"
#include "unit.h"
#include "unit_http.h"


static const char *flows =
    "[{\"id\":\"a\",\"type\":\"tab\"},{\"id\":\"b\",\"type\":\"tab\"},"
    "{\"id\":\"in1\",\"type\":\"http in\",\"z\":\"a\",\"url\":\"/spin\",\"method\":\"get\",\"wires\":[[\"spin\"]]},"
    "{\"id\":\"spin\",\"type\":\"function\",\"z\":\"a\",\"func\":\"while (true) {}\\nreturn msg;\",\"outputs\":1,"
    "\"timeout\":0,\"wires\":[[\"out1\"]]},"
    "{\"id\":\"out1\",\"type\":\"http response\",\"z\":\"a\",\"wires\":[]},"
    "{\"id\":\"in2\",\"type\":\"http in\",\"z\":\"b\",\"url\":\"/ok\",\"method\":\"get\",\"wires\":[[\"f1\"]]},"
    "{\"id\":\"f1\",\"type\":\"function\",\"z\":\"b\",\"func\":\"msg.payload = [1];\\nreturn msg;\",\"outputs\":1,"
    "\"wires\":[[\"f2\"]]},"
    "{\"id\":\"f2\",\"type\":\"function\",\"z\":\"b\",\"func\":\"msg.payload.push(2);\\nreturn [msg, null];\",\"outputs\":2,"
    "\"wires\":[[\"f3\"],[]]},"
    "{\"id\":\"f3\",\"type\":\"function\",\"z\":\"b\",\"func\":\"msg.payload.push(3);\\nmsg.payload = msg.payload.join('-');\\nreturn msg;\","
    "\"outputs\":1,\"wires\":[[\"out2\"]]},"
    "{\"id\":\"out2\",\"type\":\"http response\",\"z\":\"b\",\"wires\":[]}]";

int main(void)
{
    crm_runtime *rt = unit_start_flows(flows);
    CHECK(rt != NULL);
    if (!rt) UNIT_DONE();
    int port = crm_runtime_http_port(rt);

    char *r = unit_get(port, "/ok");
    CHECK(strstr(r, "\r\n\r\n1-2-3") != NULL);
    free(r);

    /* tab a spins for ever */
    int spin = unit_connect(port, 10);
    CHECK(spin >= 0);
    const char *req = "GET /spin HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    CHECK(write(spin, req, strlen(req)) == (ssize_t)strlen(req));
    usleep(300 * 1000);

    /* tab b and the server answer meanwhile, and in time */
    for (int i = 0; i < 3; i++) {
        double t0 = crm_now_ms();
        r = unit_get(port, "/ok");
        CHECK(strstr(r, "\r\n\r\n1-2-3") != NULL);
        CHECK(crm_now_ms() - t0 < 2000);
        free(r);
    }

    /* a stop ends the loop: not the 30 s watchdog, not for ever */
    double t0 = crm_now_ms();
    crm_runtime_stop(rt);
    double took = crm_now_ms() - t0;
    CHECK(took < 10000);
    if (took >= 10000) fprintf(stderr, "stop took %.0f ms\n", took);
    close(spin);
    crm_runtime_free(rt);
    /* _exit: in sanitizer builds LeakSanitizer's scan at exit crashes once
     * JavaScriptCore is loaded (its heap), as carmine test knows */
    printf("%d checks, %d failed\n", unit_checks, unit_failures);
    fflush(stdout);
    _exit(unit_failures ? 1 : 0);
}
