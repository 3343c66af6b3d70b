"""Sends GET /services/{id} over one keep-alive connection, cycling through the ids in a file
(or GET PATH, when IDS_FILE is a path such as /status/live); fails on any answer but 200. Used
by bench/instructions.sh.

    python3 bench/keepalive_client.py PORT REQUESTS TOKEN|- IDS_FILE|/PATH
"""
import http.client
import sys

port, count, token, ids_file = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
if ids_file.startswith("/status/"):
    paths = [ids_file]
else:
    paths = ["/services/" + line.strip() for line in open(ids_file) if line.strip()]
headers = {"Authorization": "Bearer " + token} if token != "-" else {}
connection = http.client.HTTPConnection("127.0.0.1", port)
for i in range(count):
    path = paths[i % len(paths)]
    connection.request("GET", path, headers=headers)
    response = connection.getresponse()
    response.read()
    if response.status != 200:
        sys.exit(f"GET {path}: {response.status}")
