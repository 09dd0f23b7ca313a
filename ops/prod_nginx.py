"""The reverse proxy in front of the Rasa replicas and the console, as one nginx configuration.

The same function renders the file that docker compose mounts (docker/nginx.conf, committed and
checked by tests/ops) and the one `make run-prod` starts on loopback, so both topologies route
the same way:

- every request that belongs to a conversation goes to one Rasa replica, chosen by a consistent
  hash of the conversation id: the socket.io `session_id` query argument (the widget's persistent
  session id), or the id in `/conversations/<id>/...` without its channel namespace (`web:<session
  id>` hashes as `<session id>`: the console's agent replies reach the replica that holds the
  visitor's socket); requests without one hash on the client address, which keeps socket.io
  long-polling on one replica;
- WhatsApp webhooks go to the WhatsApp gateway (connectors/whatsapp/gateway.py), which acknowledges
  them off Rasa's event loop; the Rasa replicas serve the same webhook as backup servers (the
  connector stores deliveries in the durable inbox, unique by message id), so a failed gateway or
  replica is retried on the next one, POST included. The gateway's wake call to Rasa
  (`/webhooks/whatsapp/wake`) is not reachable through the proxy;
- Rasa's HTTP API (`/conversations`, `/model`, `/status`) answers only private networks;
- the documentation pages Atende publishes (`/docs/`) go to any Rasa replica, GET/HEAD only (the
  replicas serve them from the knowledge volume, connectors/website/docs.py);
- Rasa's REST channel (`/webhooks/rest/`) is answered 404: production has no REST channel (it
  takes the client's word for the sender), and the proxy refuses it even if one were configured;
- the public locations (socket.io, the widget, the webhooks) are limited per client address
  (`limit_req` with a burst, `limit_conn`); the excess is answered 429;
- no query string is ever logged (Z-API's `token=`, the widget's `session_id=`): the access log
  has its own format with the path only, and request-level errors, whose nginx message always
  carries the full request line, are not written to the error log (the access log records the
  upstream address, status and time of every request instead);
- the console (Streamlit, with its websocket) has its own listener.
"""
from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from pathlib import Path

from .paths import ROOT

DOCKER_CONF = ROOT / "docker" / "nginx.conf"
PRIVATE_NETS = ("127.0.0.0/8", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "::1")


@dataclass(frozen=True)
class ProxyLayout:
    rasa: tuple[str, ...]            # host:port of each Rasa replica
    console: str                     # host:port of the console
    whatsapp: tuple[str, ...] = ()   # host:port of each WhatsApp gateway (none: the replicas serve it)
    listen: str = "80"               # chat, widget, webhooks, Rasa API (private networks only)
    console_listen: str = "8501"
    pid: str = "/var/run/nginx.pid"
    error_log: str = "/dev/stderr"
    access_log: str = "/dev/stdout"
    temp_dir: str | None = None      # client body / proxy temp files (loopback runs, non-default prefix)
    daemon: bool = True
    worker_processes: str = "auto"
    fail_timeout_s: int = 10
    # Per client address: requests per second (burst on top, then 429) and concurrent requests
    # (a websocket counts for as long as it is open). Chat: socket.io, the widget, the other pages.
    chat_rate: int = 20
    chat_burst: int = 100
    chat_conn: int = 100
    # Webhooks come from a few provider addresses (Meta, Z-API): generous, they must not be lost.
    webhook_rate: int = 100
    webhook_burst: int = 500
    webhook_conn: int = 200
    extra_http: list[str] = field(default_factory=list)


def docker_layout() -> ProxyLayout:
    return ProxyLayout(rasa=("rasa1:5005", "rasa2:5005"), console="console:8501",
                       whatsapp=("whatsapp-gateway:5006",))


def render(layout: ProxyLayout) -> str:
    if not layout.rasa:
        raise ValueError("the proxy needs at least one Rasa server")
    servers = "\n".join(f"        server {addr} max_fails=1 fail_timeout={layout.fail_timeout_s}s;"
                        for addr in layout.rasa)
    wa_servers = "\n".join(
        [f"        server {addr} max_fails=1 fail_timeout={layout.fail_timeout_s}s;" for addr in layout.whatsapp]
        + [f"        server {addr} max_fails=1 fail_timeout={layout.fail_timeout_s}s{' backup' if layout.whatsapp else ''};"
           for addr in layout.rasa])
    allow = "\n".join(f"            allow {net};" for net in PRIVATE_NETS)
    temp = ""
    if layout.temp_dir:
        t = layout.temp_dir.rstrip("/")
        temp = "".join(f"    {name}_temp_path {t}/{name};\n"
                       for name in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    extra = "".join(f"    {line}\n" for line in layout.extra_http)
    chat_limits = f"""            limit_req zone=atende_chat burst={layout.chat_burst} nodelay;
            limit_conn atende_chat_conn {layout.chat_conn};"""
    webhook_limits = f"""            limit_req zone=atende_webhooks burst={layout.webhook_burst} nodelay;
            limit_conn atende_webhooks_conn {layout.webhook_conn};"""
    proxied = """            proxy_http_version 1.1;
            proxy_set_header Host $host;
            proxy_set_header X-Real-IP $remote_addr;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection $connection_upgrade;"""
    return f"""# Generated by ops/prod_nginx.py: edit that file, then `python -m ops.prod_nginx --docker`.
worker_processes {layout.worker_processes};
pid {layout.pid};
error_log {layout.error_log} warn;
{"" if layout.daemon else "daemon off;"}
events {{
    worker_connections 4096;
}}

http {{
    # No query strings in the logs (Z-API's `token=`, the widget's `session_id=`): the path only.
    log_format atende '$remote_addr [$time_iso8601] "$request_method $uri $server_protocol" $status '
                      '$body_bytes_sent $request_time upstream=$upstream_addr status=$upstream_status '
                      'time=$upstream_response_time "$http_user_agent"';
    access_log {layout.access_log} atende;
    # nginx writes the full request line (query string included) into every request-level error
    # message: those stay out (the access log has the upstream's address, status and time).
    error_log {layout.error_log} crit;
{temp}    client_max_body_size 2m;
    server_tokens off;
{extra}
    # Abuse limits per client address; the excess gets 429 (see the locations below).
    limit_req_zone $binary_remote_addr zone=atende_chat:10m rate={layout.chat_rate}r/s;
    limit_req_zone $binary_remote_addr zone=atende_webhooks:10m rate={layout.webhook_rate}r/s;
    limit_conn_zone $binary_remote_addr zone=atende_chat_conn:10m;
    limit_conn_zone $binary_remote_addr zone=atende_webhooks_conn:10m;
    limit_req_status 429;
    limit_conn_status 429;

    map $http_upgrade $connection_upgrade {{
        default upgrade;
        ""      close;
    }}

    # The conversation a request belongs to: the socket.io session id, else the id in the Rasa
    # API path, else the client address (long-polling before the widget knows its session).
    map $arg_session_id $atende_session {{
        ""      $remote_addr;
        default $arg_session_id;
    }}
    # A conversation id is `<channel namespace>:<local id>` (`web:<session id>`): the local id is
    # what the socket.io URL carries, so both hash alike.
    map $uri $atende_conversation {{
        "~^/conversations/(?:[a-z]+:)?(?<conv>[^/]+)/" $conv;
        default                                        $atende_session;
    }}

    upstream rasa {{
        hash $atende_conversation consistent;
{servers}
        keepalive 32;
    }}

    # WhatsApp webhooks: the gateway, with the Rasa replicas (same webhook) as backups.
    upstream whatsapp {{
{wa_servers}
        keepalive 16;
    }}

    upstream console {{
        server {layout.console};
    }}

    server {{
        listen {layout.listen};
        server_name _;

        location = /healthz {{
            access_log off;
            default_type text/plain;
            return 200 "ok\\n";
        }}

        # socket.io: websocket or long-polling, pinned to one replica per conversation.
        location /socket.io/ {{
{chat_limits}
            proxy_pass http://rasa;
{proxied}
            proxy_buffering off;
            proxy_read_timeout 3600s;
            proxy_send_timeout 3600s;
            proxy_next_upstream error timeout;
        }}

        # The gateway's call to the Rasa replicas, never from outside.
        location = /webhooks/whatsapp/wake {{
            return 404;
        }}

        # WhatsApp Cloud API: the inbox makes a repeated POST a no-op, so retry on the next server.
        location /webhooks/whatsapp/ {{
{webhook_limits}
            proxy_pass http://whatsapp;
{proxied}
            proxy_next_upstream error timeout http_502 http_503 non_idempotent;
            proxy_next_upstream_tries 3;
        }}

        # Rasa's HTTP API (console hand-off, model management): private networks only.
        location ~ ^/(conversations|model|status|version|domain) {{
{allow}
            deny all;
            proxy_pass http://rasa;
{proxied}
            proxy_read_timeout 120s;
            proxy_next_upstream error timeout;
        }}

        # Rasa's REST channel takes the sender from the client: never from outside.
        location ^~ /webhooks/rest {{
            return 404;
        }}

        # Documentation pages Atende publishes (connectors/website/docs.py): read-only, any replica.
        location ^~ /docs/ {{
            limit_except GET {{
                deny all;
            }}
{chat_limits}
            proxy_pass http://rasa;
{proxied}
            proxy_next_upstream error timeout http_502 http_503;
        }}

        # Widget script, health and the other webhooks.
        location / {{
{chat_limits}
            proxy_pass http://rasa;
{proxied}
            proxy_next_upstream error timeout http_502 http_503;
        }}
    }}

    server {{
        listen {layout.console_listen};
        server_name _;

        location / {{
            proxy_pass http://console;
{proxied}
            proxy_buffering off;
            proxy_read_timeout 86400s;
        }}
    }}
}}
"""


def write(path: Path, layout: ProxyLayout) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render(layout), encoding="utf-8")
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ops.prod_nginx",
                                     description="Render the proxy configuration of the production topology")
    parser.add_argument("--docker", action="store_true", help=f"write {DOCKER_CONF.relative_to(ROOT)}")
    args = parser.parse_args(argv)
    if args.docker:
        print(write(DOCKER_CONF, docker_layout()))
    else:
        print(render(docker_layout()), end="")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
