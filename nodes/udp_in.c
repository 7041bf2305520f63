/* udp_in.c: Node-RED's `udp in` node (core/network/32-udp.js): listens on
 * a UDP port (IPv4 or IPv6, optionally joined to a multicast group) and
 * sends one message per datagram: {payload, fromip, ip, port}, the payload
 * a Buffer, a UTF-8 string or base64 text. The socket is non-blocking and
 * waited on with crm_watch_fd; it is registered in the process-wide port
 * table so a `udp out` bound to the same port sends from it. */
#include <errno.h>
#include <net/if.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "carmine.h"
#include "net/netutil.h"
#include "net/udp_ports.h"

typedef struct {
    int fd, port;
    bool v6, multicast, registered;
    char datatype; /* 'b' buffer, 'u' utf8, '6' base64 */
    char *group;
    char iface[64], iface_name[64];
    bool has_iface;
    crm_watch *watch;
    unsigned char *buf; /* a datagram's bytes; made on the first (static TLS would be resident in every thread) */
} udpin_state;

static void on_datagram(crm_node *n, int fd, unsigned revents, void *arg)
{
    (void)revents, (void)arg;
    udpin_state *s = crm_node_data(n);
    enum { DATAGRAM_MAX = 65536 };
    if (!s->buf && !(s->buf = malloc(DATAGRAM_MAX))) return;
    unsigned char *buf = s->buf;
    for (int i = 0; i < 64; i++) { /* a bounded batch per turn */
        struct sockaddr_storage from;
        socklen_t fl = sizeof from;
        ssize_t k = recvfrom(fd, buf, DATAGRAM_MAX, 0, (struct sockaddr *)&from, &fl);
        if (k < 0) break;
        char ip[64];
        int port;
        crm_addr_text((struct sockaddr *)&from, ip, &port);
        json_t *m = json_object();
        if (s->datatype == '6') {
            strbuf b = SB_INIT;
            crm_base64_encode(buf, (size_t)k, &b);
            json_object_set_new(m, "payload", json_stringn(b.data, b.len));
            sb_free(&b);
        } else if (s->datatype == 'u') json_object_set_new(m, "payload", crm_text_of(buf, (size_t)k));
        else json_object_set_new(m, "payload", crm_buf_new(buf, (size_t)k));
        char fromip[96];
        snprintf(fromip, sizeof fromip, "%s:%d", ip, port);
        json_object_set_new(m, "fromip", json_string(fromip));
        json_object_set_new(m, "ip", json_string(ip));
        json_object_set_new(m, "port", json_real(port));
        crm_node_send(n, 0, m);
    }
}

static void join_group(crm_node *n, udpin_state *s)
{
    int one = 1, ttl = 128, zero = 0;
    setsockopt(s->fd, SOL_SOCKET, SO_BROADCAST, &one, sizeof one);
    int r;
    if (!s->v6) {
        setsockopt(s->fd, IPPROTO_IP, IP_MULTICAST_LOOP, &zero, sizeof zero);
        setsockopt(s->fd, IPPROTO_IP, IP_MULTICAST_TTL, &ttl, sizeof ttl);
        struct ip_mreq mr = {0};
        if (inet_pton(AF_INET, s->group ? s->group : "", &mr.imr_multiaddr) != 1) {
            errno = EINVAL;
            r = -1;
        } else {
            mr.imr_interface.s_addr = htonl(INADDR_ANY);
            if (s->has_iface) inet_pton(AF_INET, s->iface, &mr.imr_interface);
            r = setsockopt(s->fd, IPPROTO_IP, IP_ADD_MEMBERSHIP, &mr, sizeof mr);
        }
    } else {
        setsockopt(s->fd, IPPROTO_IPV6, IPV6_MULTICAST_LOOP, &zero, sizeof zero);
        setsockopt(s->fd, IPPROTO_IPV6, IPV6_MULTICAST_HOPS, &ttl, sizeof ttl);
        struct ipv6_mreq mr = {0};
        if (inet_pton(AF_INET6, s->group ? s->group : "", &mr.ipv6mr_multiaddr) != 1) {
            errno = EINVAL;
            r = -1;
        } else {
            const char *pct = s->has_iface ? strchr(s->iface, '%') : NULL;
            mr.ipv6mr_interface = pct ? if_nametoindex(pct + 1) : 0;
            r = setsockopt(s->fd, IPPROTO_IPV6, IPV6_ADD_MEMBERSHIP, &mr, sizeof mr);
        }
    }
    if (r < 0) {
        if (errno == EINVAL) crm_node_error(n, NULL, "Bad Multicast Address");
        else if (errno == ENODEV) crm_node_error(n, NULL, "Must be ip address of the required interface");
        else crm_node_error(n, NULL, "error: %s", crm_errno_name(errno));
        return;
    }
    crm_node_log(n, CRM_LOG_INFO, "udp multicast group %s", s->group);
}

static int udpin_create(crm_node *n, const json_t *cfg)
{
    udpin_state *s = calloc(1, sizeof *s);
    s->fd = -1;
    s->port = (int)crm_cfg_num(cfg, "port", 0);
    const char *dt = crm_cfg_str(cfg, "datatype", "buffer");
    s->datatype = !strcmp(dt, "utf8") ? 'u' : !strcmp(dt, "base64") ? '6' : 'b';
    s->v6 = !strcmp(crm_cfg_str(cfg, "ipv", "udp4"), "udp6");
    s->multicast = !strcmp(crm_cfg_str(cfg, "multicast", "false"), "true");
    const char *g = crm_cfg_str(cfg, "group", NULL);
    s->group = g ? strdup(g) : NULL;
    const char *iface = crm_cfg_str(cfg, "iface", "");
    if (*iface) {
        snprintf(s->iface_name, sizeof s->iface_name, "%s", iface);
        if (crm_iface_address(iface, s->v6 ? AF_INET6 : AF_INET, s->iface)) s->has_iface = true;
        else crm_node_warn(n, "udp: interface %s not found", iface);
    }
    crm_node_set_data(n, s);
    return 0;
}

static void udpin_start(crm_node *n)
{
    udpin_state *s = crm_node_data(n);
    int shared = crm_udp_port_dup(s->port);
    if (shared >= 0) {
        crm_node_log(n, CRM_LOG_INFO, "udp: port %d already in use", s->port);
        s->fd = shared;
        crm_set_nonblock(s->fd);
        s->watch = crm_watch_fd(n, s->fd, POLLIN, on_datagram, NULL);
        return;
    }
    s->fd = socket(s->v6 ? AF_INET6 : AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(s->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_storage ss = {0};
    socklen_t len;
    if (s->v6) {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
        a->sin6_family = AF_INET6;
        a->sin6_port = htons((uint16_t)s->port);
        a->sin6_addr = in6addr_any;
        len = sizeof *a;
    } else {
        struct sockaddr_in *a = (struct sockaddr_in *)&ss;
        a->sin_family = AF_INET;
        a->sin_port = htons((uint16_t)s->port);
        a->sin_addr.s_addr = htonl(INADDR_ANY);
        len = sizeof *a;
    }
    if (s->fd < 0 || bind(s->fd, (struct sockaddr *)&ss, len) < 0) {
        int e = errno;
        if (e == EACCES && s->port < 1024)
            crm_node_error(n, NULL, "UDP access error, you may need root access for ports below 1024");
        else crm_node_error(n, NULL, "error: %s", crm_errno_name(e));
        if (s->fd >= 0) close(s->fd);
        s->fd = -1;
        return;
    }
    if (s->multicast) join_group(n, s);
    if (s->multicast && s->has_iface) {
        char t[160];
        snprintf(t, sizeof t, "%s : %s", s->iface_name, s->iface);
        crm_node_status(n, NULL, NULL, t);
    }
    getsockname(s->fd, (struct sockaddr *)&ss, &len);
    char ip[64];
    int port;
    crm_addr_text((struct sockaddr *)&ss, ip, &port);
    crm_node_log(n, CRM_LOG_INFO, "udp listener at %s:%d", s->has_iface ? s->iface : ip, port);
    s->registered = crm_udp_port_add(s->port, s->fd, s) == 0;
    s->watch = crm_watch_fd(n, s->fd, POLLIN, on_datagram, NULL);
}

static void udpin_close(crm_node *n)
{
    udpin_state *s = crm_node_data(n);
    if (!s) return;
    crm_watch_cancel(s->watch);
    if (s->registered) crm_udp_port_remove(s->port, s);
    if (s->fd >= 0) {
        close(s->fd);
        crm_node_log(n, CRM_LOG_INFO, "udp listener stopped");
    }
    crm_node_status(n, NULL, NULL, NULL);
    free(s->group);
    free(s->buf);
    free(s);
    crm_node_set_data(n, NULL);
}

const crm_node_type crm_type_udp_in = {
    .abi = CRM_ABI_VERSION,
    .type = "udp in",
    .create = udpin_create,
    .start = udpin_start,
    .close = udpin_close,
};
