"""The Kannel configuration operators deploy starts the real Kannel, for development and for an SMPP link."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import aiohttp
import pytest

from soro.ports import free_port
from tests.support.kannel import REPO_ROOT
from tests.support.stack import eventually

pytestmark = pytest.mark.slow

ENTRYPOINT = REPO_ROOT / "deploy" / "kannel" / "entrypoint.sh"


async def status(admin_port: int) -> str:
    try:
        async with (
            aiohttp.ClientSession() as http,
            http.get(f"http://127.0.0.1:{admin_port}/status.txt?password=admin") as response,
        ):
            return await response.text()
    except aiohttp.ClientConnectionError:
        return ""


@pytest.mark.parametrize(("smsc", "line"), [("fake", "fake[fake]"), ("smpp", "operator[operator]")])
async def test_the_entrypoint_renders_a_config_bearerbox_and_smsbox_run(tmp_path: Path, smsc: str, line: str) -> None:
    admin, sendsms = free_port(), free_port()
    env = {
        "PATH": os.environ["PATH"],
        "KANNEL_SMSC": smsc,
        "KANNEL_TEMPLATES": str(ENTRYPOINT.parent),
        "KANNEL_RENDERED": str(tmp_path / "etc"),
        "KANNEL_LOG_DIR": str(tmp_path / "log"),
        "KANNEL_STORE_DIR": str(tmp_path / "store"),
        "KANNEL_ADMIN_PORT": str(admin),
        "KANNEL_ADMIN_PASSWORD": "admin",
        "KANNEL_SMSBOX_PORT": str(free_port()),
        "KANNEL_SENDSMS_PORT": str(sendsms),
        "KANNEL_BEARERBOX_HOST": "127.0.0.1",
        "SORO_SMS_KANNEL_PASSWORD": "secret-password",
        "SORO_SMS_MO_SECRET": "0123456789abcdef0123",
        # An SMSC that refuses connections: the link is configured and keeps trying, as with an operator down.
        "KANNEL_SMPP_HOST": "127.0.0.1",
        "KANNEL_SMPP_PORT": str(free_port()),
        "KANNEL_SMPP_SYSTEM_ID": "soro",
        "KANNEL_SMPP_PASSWORD": "pw",
    }
    log = (tmp_path / "boxes.out").open("wb")
    boxes = []
    try:
        for box in ("bearerbox", "smsbox"):
            boxes.append(await asyncio.create_subprocess_exec("sh", ENTRYPOINT, box, env=env, stdout=log, stderr=log))
            if box == "bearerbox":
                await eventually(lambda: _lists(admin, line), 20)
        await eventually(lambda: _sendsms_answers(sendsms), 20)
        rendered = (tmp_path / "etc" / "kannel.conf").read_text()
        assert "$" not in rendered, "a placeholder was left unfilled"
        assert 'post-url = "http://kannel:0123456789abcdef0123@bot:8080/sms/kannel?id=%I&' in rendered
        assert "secret=" not in rendered, "the secret in a request line"
    finally:
        for process in reversed(boxes):
            process.terminate()
            await process.wait()
        log.close()


async def _lists(admin_port: int, line: str) -> bool:
    return line in await status(admin_port)


async def _sendsms_answers(port: int) -> bool:
    try:
        async with aiohttp.ClientSession() as http, http.get(f"http://127.0.0.1:{port}/cgi-bin/sendsms") as response:
            return response.status == 403  # no user given: refused, but smsbox is up and bound to bearerbox
    except aiohttp.ClientConnectionError:
        return False
