"""The proxy's `/docs/` location (ops/prod_nginx.py): the pages Atende publishes reach a Rasa
replica (connectors/website/docs.py serves them, tests/connectors/test_website_docs.py), reads
only; a path that leaves `/docs/` once normalised is routed as what it really is."""
from __future__ import annotations

import http.client
from pathlib import Path

from tests.ops.test_proxy import UNLIMITED, Nginx, nginx_or_skip


def _raw(nginx: Nginx, method: str, path: str) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", nginx.port, timeout=10)
    try:
        conn.putrequest(method, path, skip_accept_encoding=True)
        conn.putheader("Content-Length", "0")
        conn.endheaders()
        return conn.getresponse().status
    finally:
        conn.close()


def test_published_pages_reach_a_replica_for_reads_only(tmp_path: Path) -> None:
    nginx_or_skip()
    with Nginx(tmp_path, **UNLIMITED) as nginx:
        assert nginx.status("/docs/erp-demo/pdv/caixa.html") == 200
        # HEAD goes through too (the stand-in replica has no HEAD handler: its 501, not nginx's 403)
        assert _raw(nginx, "HEAD", "/docs/erp-demo/pdv/caixa.html") == 501
        for method in ("POST", "PUT", "DELETE"):
            assert _raw(nginx, method, "/docs/erp-demo/pdv/caixa.html") == 403, method
        # normalised by nginx before routing: this is the REST channel, refused as always
        assert _raw(nginx, "GET", "/docs/../webhooks/rest/webhook") == 404
        assert _raw(nginx, "GET", "/docs/%2e%2e/webhooks/rest/webhook") == 404
        seen = [s for b in nginx.backends for s in b.seen]
    assert seen.count("GET /docs/erp-demo/pdv/caixa.html") == 1, seen
    assert not any(s.startswith(("POST", "PUT", "DELETE")) or "rest" in s for s in seen), seen
