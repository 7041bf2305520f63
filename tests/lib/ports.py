"""free_port(): one free local port for a test's server, shared by the test
scripts (tests/companion, tests/dashboard, tests/net, tests/deploy,
tools/bench). Ports come from 20000-31999, below Linux's ephemeral range
(32768+): a port taken from there can be handed to some client's socket
before the test's server binds it. Import it with
    sys.path.insert(0, os.path.join(ROOT, "tests", "lib")); from ports import free_port
"""
import random
import socket


def free_port(kind=socket.SOCK_STREAM):
    """A port of 127.0.0.1 that nothing holds now (kind: SOCK_STREAM or
    SOCK_DGRAM). Raises RuntimeError after 200 tries."""
    for _ in range(200):
        p = random.randrange(20000, 32000)
        s = socket.socket(socket.AF_INET, kind)
        try:
            s.bind(("127.0.0.1", p))
            return p
        except OSError:
            continue
        finally:
            s.close()
    raise RuntimeError("no free port in 20000-31999")
