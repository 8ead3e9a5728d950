"""A slow SMTP sink for the fault tests: records every message it accepts (recipient and Message-ID) to a JSON-lines
file, one line per message, flushed before the server answers 250, so the file is the truth of what was delivered.

    python3 smtp_sink.py PORT LOG_FILE [DELAY_SECONDS] [--refuse]

With --refuse it answers 554 at the greeting and accepts nothing (a server that refuses the connection); with
--refuse-auth it requires AUTH and refuses every credential (535)."""
import asyncio
import json
import sys

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP


class Recorder:
    def __init__(self, path, delay):
        self.log = open(path, "a", buffering=1)
        self.delay = delay

    async def handle_DATA(self, server, session, envelope):
        await asyncio.sleep(self.delay)
        message_id = ""
        for line in envelope.content.decode("utf-8", "replace").splitlines():
            if line.lower().startswith("message-id:"):
                message_id = line.split(":", 1)[1].strip()
                break
            if not line:
                break
        for recipient in envelope.rcpt_tos:
            self.log.write(json.dumps({"to": recipient, "message_id": message_id}) + "\n")
        self.log.flush()
        return "250 2.0.0 Queued"


async def refuse(port):
    async def greet(reader, writer):
        writer.write(b"554 5.7.1 Service unavailable\r\n")
        await writer.drain()
        try:
            while await reader.readline():
                writer.write(b"554 5.7.1 Service unavailable\r\n")
                await writer.drain()
        finally:
            writer.close()
    server = await asyncio.start_server(greet, "127.0.0.1", port)
    async with server:
        await server.serve_forever()


def main():
    port, path = int(sys.argv[1]), sys.argv[2]
    delay = float(sys.argv[3]) if len(sys.argv) > 3 and not sys.argv[3].startswith("--") else 0.0
    if "--refuse" in sys.argv:
        asyncio.run(refuse(port))
        return
    server_kwargs = {"data_size_limit": 10_000_000}
    if "--refuse-auth" in sys.argv:
        from aiosmtpd.smtp import AuthResult
        server_kwargs.update(auth_required=True, auth_require_tls=False,
                             authenticator=lambda *args: AuthResult(success=False, handled=False))
    controller = Controller(Recorder(path, delay), hostname="127.0.0.1", port=port, decode_data=False,
                            server_kwargs=server_kwargs)
    controller.start()
    try:
        asyncio.run(asyncio.Event().wait())
    finally:
        controller.stop()


if __name__ == "__main__":
    main()
