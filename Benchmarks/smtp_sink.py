"""A local SMTP sink for the phishing benchmark: accepts every message and counts them.

Usage: python3 smtp_sink.py PORT COUNT_FILE   (runs until killed; the count file is rewritten every second)"""
import asyncio
import sys
import time

from aiosmtpd.controller import Controller


class Counter:
    def __init__(self):
        self.count = 0

    async def handle_DATA(self, server, session, envelope):
        self.count += 1
        return "250 OK"


def main():
    port, count_file = int(sys.argv[1]), sys.argv[2]
    handler = Counter()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        while True:
            with open(count_file, "w") as f:
                f.write(str(handler.count))
            time.sleep(1)
    finally:
        controller.stop()


if __name__ == "__main__":
    main()
