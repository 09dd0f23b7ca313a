"""Closing a python-socketio client without the long-poll wait.

A client on the polling transport waits in `disconnect()` for its pending long-poll GET, which the
server holds until its next ping (about 25 s; measured 29 s per visit against the real stack). The
test has its answers by then: this sends the close (Engine.IO CLOSE, which ends every namespace on
the server), waits for it to be written, and does not wait for the pending poll, as
tests/connectors/test_website.py does for its async clients.
"""
from __future__ import annotations

import asyncio
import contextlib
from typing import Any

WRITE_WAIT_S = 1.0  # the CLOSE request is sent at once; its answer may wait on the poll


def close_now(sio: Any) -> None:
    """Disconnect a `socketio.Client` without waiting for its pending poll."""
    eio = sio.eio
    if eio.state != "connected":
        sio.disconnect()
        return
    writer = eio.write_loop_task
    eio.disconnect(abort=True)
    if writer is not None:
        writer.join(WRITE_WAIT_S)  # the CLOSE packet is on the wire


async def close_now_async(sio: Any) -> None:
    """Disconnect a `socketio.AsyncClient` without waiting for its pending poll."""
    eio = sio.eio
    if eio.state != "connected":
        await sio.disconnect()
        return
    writer = eio.write_loop_task
    await eio.disconnect(abort=True)
    if writer is not None:
        with contextlib.suppress(asyncio.TimeoutError, asyncio.CancelledError):
            await asyncio.wait_for(asyncio.shield(writer), WRITE_WAIT_S)
