"""What every e2e test server here does once it is built: TLS on its listening socket, a
bounded lifetime, its port announced. Used by faultserver.py, regproxy.py, regtoken.py,
gcs_standin.py and kubeapi_standin.py, which import it from their own directory."""

import os
import ssl
import threading


def serve(server, tls_cert=None, tls_key=None, lifetime=900, port_file=None,
          handshake_on_accept=True):
    """Serve `server` (bound to 127.0.0.1) until the process is killed or `lifetime`
    seconds pass: a forgotten server must not outlive its test. With tls_cert it speaks
    TLS with that certificate and key. The handshake runs in accept(), where a client
    that refuses the certificate only makes accept() raise, which serve_forever()
    ignores; handshake_on_accept=False moves it to the handler's first read, for a
    server whose clients may stall in it. The port goes to port_file, written whole (a
    reader polling for it never sees half), or to stdout."""
    if tls_cert:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(tls_cert, tls_key)
        server.socket = ctx.wrap_socket(server.socket, server_side=True,
                                        do_handshake_on_connect=handshake_on_accept)
    timer = threading.Timer(lifetime, lambda: os._exit(0))
    timer.daemon = True
    timer.start()
    port = server.server_address[1]
    if port_file:
        with open(port_file + ".tmp", "w") as f:
            f.write("%d\n" % port)
        os.replace(port_file + ".tmp", port_file)
    else:
        print(port, flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0
