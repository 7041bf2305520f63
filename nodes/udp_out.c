/* udp_out.c: Node-RED's `udp out` node (core/network/32-udp.js): sends
 * msg.payload as one datagram to the configured address and port, or to
 * msg.ip / msg.port. Like Node-RED it sets up its socket 75 ms after the
 * flow starts (messages before that are not handled), sends from the socket
 * of a `udp in` on its local port when there is one, and enables broadcast
 * (and a multicast group) when asked. Sends are non-blocking. */
#include <errno.h>
#include <arpa/inet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "carmine.h"
#include "net/netutil.h"
#include "net/udp_ports.h"

typedef struct {
    int fd;
    char *addr;
    int port;        /* 0: msg.port */
    char *outport;   /* local port, "" for any */
    bool v6, base64;
    char mcast;      /* 'f' false, 'b' broadcast, 'm' multicast */
    char iface[64], iface_name[64];
    bool has_iface, ready, registered;
    int reg_port;
    crm_timer *setup;
} udpout_state;

static void setup(crm_node *n, void *arg)
{
    (void)arg;
    udpout_state *s = crm_node_data(n);
    s->setup = NULL;
    s->ready = true;
    int p = *s->outport ? atoi(s->outport) : s->port;
    int shared = p ? crm_udp_port_dup(p) : -1;
    int one = 1, zero = 0;
    if (shared >= 0) {
        s->fd = shared;
        if (s->mcast != 'f') {
            setsockopt(s->fd, SOL_SOCKET, SO_BROADCAST, &one, sizeof one);
            setsockopt(s->fd, IPPROTO_IP, IP_MULTICAST_LOOP, &zero, sizeof zero);
        }
        crm_node_log(n, CRM_LOG_INFO, "udp re-use socket: %s -> %s:%d", s->outport, s->addr, s->port);
        return;
    }
    s->fd = socket(s->v6 ? AF_INET6 : AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (s->fd < 0) return;
    setsockopt(s->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    bool bind_it = s->mcast != 'f' || *s->outport;
    if (bind_it) {
        struct sockaddr_storage ss = {0};
        socklen_t len;
        int lp = atoi(s->outport);
        if (s->v6) {
            struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
            a->sin6_family = AF_INET6, a->sin6_port = htons((uint16_t)lp), a->sin6_addr = in6addr_any;
            len = sizeof *a;
        } else {
            struct sockaddr_in *a = (struct sockaddr_in *)&ss;
            a->sin_family = AF_INET, a->sin_port = htons((uint16_t)lp), a->sin_addr.s_addr = htonl(INADDR_ANY);
            len = sizeof *a;
        }
        if (bind(s->fd, (struct sockaddr *)&ss, len) < 0) crm_node_error(n, NULL, "error: %s", crm_errno_name(errno));
    }
    if (s->mcast != 'f') {
        setsockopt(s->fd, SOL_SOCKET, SO_BROADCAST, &one, sizeof one);
        if (s->v6) setsockopt(s->fd, IPPROTO_IPV6, IPV6_MULTICAST_LOOP, &zero, sizeof zero);
        else setsockopt(s->fd, IPPROTO_IP, IP_MULTICAST_LOOP, &zero, sizeof zero);
        if (s->mcast == 'm') {
            int ttl = 128, r;
            if (s->v6) {
                setsockopt(s->fd, IPPROTO_IPV6, IPV6_MULTICAST_HOPS, &ttl, sizeof ttl);
                struct ipv6_mreq mr = {0};
                if (inet_pton(AF_INET6, s->addr, &mr.ipv6mr_multiaddr) != 1) errno = EINVAL, r = -1;
                else {
                    const char *pct = s->has_iface ? strchr(s->iface, '%') : NULL;
                    mr.ipv6mr_interface = pct ? if_nametoindex(pct + 1) : 0;
                    r = setsockopt(s->fd, IPPROTO_IPV6, IPV6_ADD_MEMBERSHIP, &mr, sizeof mr);
                }
            } else {
                setsockopt(s->fd, IPPROTO_IP, IP_MULTICAST_TTL, &ttl, sizeof ttl);
                struct ip_mreq mr = {0};
                if (inet_pton(AF_INET, s->addr, &mr.imr_multiaddr) != 1) errno = EINVAL, r = -1;
                else {
                    mr.imr_interface.s_addr = htonl(INADDR_ANY);
                    if (s->has_iface) {
                        inet_pton(AF_INET, s->iface, &mr.imr_interface);
                        setsockopt(s->fd, IPPROTO_IP, IP_MULTICAST_IF, &mr.imr_interface, sizeof mr.imr_interface);
                    }
                    r = setsockopt(s->fd, IPPROTO_IP, IP_ADD_MEMBERSHIP, &mr, sizeof mr);
                }
            }
            if (r < 0) {
                if (errno == EINVAL) crm_node_error(n, NULL, "Bad Multicast Address");
                else if (errno == ENODEV) crm_node_error(n, NULL, "Must be ip address of the required interface");
                else crm_node_error(n, NULL, "error: %s", crm_errno_name(errno));
            } else {
                if (s->has_iface) {
                    char t[160];
                    snprintf(t, sizeof t, "%s : %s", s->iface_name, s->iface);
                    crm_node_status(n, NULL, NULL, t);
                }
                crm_node_log(n, CRM_LOG_INFO, "udp multicast ready: %s:%s -> %s:%d",
                             s->has_iface ? s->iface : "null", s->outport, s->addr, s->port);
            }
        } else crm_node_log(n, CRM_LOG_INFO, "udp broadcast ready: %s -> %s:%d", s->outport, s->addr, s->port);
    } else if (*s->outport) crm_node_log(n, CRM_LOG_INFO, "udp ready: %s -> %s:%d", s->outport, s->addr, s->port);
    else crm_node_log(n, CRM_LOG_INFO, "udp ready: %s:%d", s->addr, s->port);
    if (p && crm_udp_port_add(p, s->fd, s) == 0) s->registered = true, s->reg_port = p;
}

static void udpout_input(crm_node *n, json_t *msg)
{
    udpout_state *s = crm_node_data(n);
    json_t *payload = json_object_get(msg, "payload");
    if (!s->ready || !payload) { /* Node-RED has no input handler yet / ignores it */
        json_decref(msg);
        return;
    }
    const char *add = *s->addr ? s->addr : "";
    char *ipbuf = NULL;
    if (!*add) {
        json_t *ip = json_object_get(msg, "ip");
        if (ip && crm_truthy(ip)) add = ipbuf = crm_to_string(ip);
    }
    double por = s->port;
    if (!por) {
        json_t *mp = json_object_get(msg, "port");
        por = mp && crm_truthy(mp) ? crm_to_number(mp) : 0;
    }
    if (!*add) crm_node_warn(n, "udp: ip address not set");
    else if (por == 0) crm_node_warn(n, "udp: port not set");
    else if (por != por || por < 1 || por > 65535) crm_node_warn(n, "udp: port number not valid");
    else {
        strbuf data = SB_INIT;
        if (s->base64) {
            strbuf t = SB_INIT;
            crm_payload_bytes(payload, false, &t);
            if (crm_is_buf(payload)) sb_putn(&data, t.data, t.len);
            else crm_base64_decode(t.data, t.len, &data);
            sb_free(&t);
        } else crm_payload_bytes(payload, false, &data);
        struct sockaddr_storage ss;
        socklen_t len;
        if (s->fd < 0) crm_node_error(n, msg, "udp : Error: not running");
        else if (crm_resolve(add, (int)por, s->v6 ? AF_INET6 : AF_INET, &ss, &len) < 0)
            crm_node_error(n, msg, "udp : Error: getaddrinfo ENOTFOUND %s", add);
        else if (sendto(s->fd, data.data ? data.data : "", data.len, MSG_DONTWAIT, (struct sockaddr *)&ss, len) < 0)
            crm_node_error(n, msg, "udp : Error: send %s %s:%d", crm_errno_name(errno), add, (int)por);
        sb_free(&data);
    }
    free(ipbuf);
    crm_node_done(n, msg);
    json_decref(msg);
}

static int udpout_create(crm_node *n, const json_t *cfg)
{
    udpout_state *s = calloc(1, sizeof *s);
    s->fd = -1;
    s->addr = strdup(crm_cfg_str(cfg, "addr", ""));
    s->port = (int)crm_cfg_num(cfg, "port", 0);
    if (s->port < 0) s->port = 0;
    s->outport = strdup(crm_cfg_str(cfg, "outport", ""));
    s->v6 = !strcmp(crm_cfg_str(cfg, "ipv", "udp4"), "udp6");
    s->base64 = crm_cfg_bool(cfg, "base64", false);
    const char *mc = crm_cfg_str(cfg, "multicast", "false");
    s->mcast = !strcmp(mc, "false") ? 'f' : !strcmp(mc, "multi") ? 'm' : 'b';
    const char *iface = crm_cfg_str(cfg, "iface", "");
    if (*iface) {
        snprintf(s->iface_name, sizeof s->iface_name, "%s", iface);
        if (crm_iface_address(iface, s->v6 ? AF_INET6 : AF_INET, s->iface)) s->has_iface = true;
        else crm_node_warn(n, "udp: interface %s not found", iface);
    }
    crm_node_set_data(n, s);
    return 0;
}

static void udpout_start(crm_node *n)
{
    udpout_state *s = crm_node_data(n);
    s->setup = crm_timer_start(n, 75, 0, setup, NULL);
}

static void udpout_close(crm_node *n)
{
    udpout_state *s = crm_node_data(n);
    if (!s) return;
    crm_timer_cancel(s->setup);
    if (s->registered) crm_udp_port_remove(s->reg_port, s);
    if (s->fd >= 0) {
        close(s->fd);
        crm_node_log(n, CRM_LOG_INFO, "udp output stopped");
    }
    crm_node_status(n, NULL, NULL, NULL);
    free(s->addr);
    free(s->outport);
    free(s);
    crm_node_set_data(n, NULL);
}

const crm_node_type crm_type_udp_out = {
    .abi = CRM_ABI_VERSION,
    .type = "udp out",
    .create = udpout_create,
    .start = udpout_start,
    .input = udpout_input,
    .close = udpout_close,
};
