/* udp_ports.h: the process-wide table of UDP ports in use (Node-RED's
 * udpInputPortsInUse): a `udp in` node registers the socket it listens on,
 * and a `udp out` node whose local port is that port sends from the very
 * same socket (so replies leave from the port the peer talks to).
 * Thread-safe: nodes of different flows run on different loops. */
#ifndef CRM_UDP_PORTS_H
#define CRM_UDP_PORTS_H

/* Registers fd for port; returns 0, or -1 when the port is already taken
 * (then the caller shares that socket: crm_udp_port_dup). */
int crm_udp_port_add(int port, int fd, const void *owner);
/* Removes the entry if owner registered it. */
void crm_udp_port_remove(int port, const void *owner);
/* A dup() of the socket registered for port, or -1. */
int crm_udp_port_dup(int port);

#endif
