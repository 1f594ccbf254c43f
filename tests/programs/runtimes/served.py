"""A real HTTP server (the standard library's ThreadingHTTPServer serving a
directory) under steady load from a real client for SECONDS seconds: the
client, a separate process, fetches the same small file in a loop over
fresh connections. Nothing is kept between requests: not a leak.
Usage: served.py SECONDS DIR    (prints "server PID" and "client PID")"""
import http.server
import os
import subprocess
import sys
import threading
import time

seconds, root = float(sys.argv[1]), sys.argv[2]
with open(os.path.join(root, "page.html"), "w") as f:
    f.write("<p>" + "hello " * 2000 + "</p>")


class Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def handler(*args, **kwargs):
    return Quiet(*args, directory=root, **kwargs)


server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
port = server.server_address[1]
threading.Thread(target=server.serve_forever, daemon=True).start()
print("server", os.getpid(), flush=True)
client = subprocess.Popen([sys.executable, "-c", f"""
import time, urllib.request
deadline = time.monotonic() + {seconds}
while time.monotonic() < deadline:
    urllib.request.urlopen("http://127.0.0.1:{port}/page.html").read()
    time.sleep(0.005)
"""])
print("client", client.pid, flush=True)
client.wait()
server.shutdown()
