"""The example Django site (examples/django_site) on the dev stack: migrated as the owner role,
served through Django's test client, and under 5 s / 15 s credentials across two rotations."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.test import Client

from tests.django.conftest import ROLE
from tests.support.pools import run_queries, watch_dropped_sessions
from vault_async.devstack import DevStack

pytestmark = pytest.mark.integration

CONCURRENCY = 8
MAX_SECONDS = 50.0


async def test_migrations_made_the_owner_role_own_the_tables(django_site: DevStack) -> None:
    async with django_site.admin_connection() as conn:
        owners = dict(
            await conn.fetch(
                "SELECT tablename, tableowner FROM pg_tables "
                "WHERE tablename IN ('notes_note', 'django_migrations')"
            )
        )
    assert owners == {"notes_note": "app_owner", "django_migrations": "app_owner"}


def test_the_views_answer_on_a_vault_login(django_site: DevStack) -> None:
    client = Client()
    who = client.get("/whoami/").json()
    assert who["session_user"].startswith(f"v-approle-{ROLE}-")
    assert who["current_user"] == who["session_user"]
    created = client.post("/notes/", {"title": "hello"}, content_type="application/json")
    assert created.status_code == 201
    read = client.get(f"/notes/{created.json()['id']}/")
    assert read.json()["title"] == "hello"


@pytest.mark.slow
async def test_rotations_under_load_fail_no_request(django_site: DevStack) -> None:
    from django.db import connections

    from vault_async.django import shutdown

    entry = await asyncio.to_thread(lambda: connections["default"].vault_entry)
    first = entry.credentials.current().generation
    pattern = f"v-%-{ROLE}-%"
    stop = asyncio.Event()
    watcher = asyncio.create_task(watch_dropped_sessions(django_site, pattern, stop))
    local = threading.local()

    def get(note_id: int) -> object:
        client = getattr(local, "client", None) or Client()
        local.client = client
        response = client.get(f"/notes/{note_id}/")
        if response.status_code != 200:
            raise RuntimeError(f"HTTP {response.status_code}")
        return response.json()

    loop = asyncio.get_running_loop()
    with ThreadPoolExecutor(CONCURRENCY, thread_name_prefix="django-load") as pool:

        def query(note_id: int) -> asyncio.Future[object]:
            return loop.run_in_executor(pool, get, note_id)

        stats = await run_queries(
            query, concurrency=CONCURRENCY, seconds=MAX_SECONDS,
            until=lambda: entry.credentials.current().generation >= first + 2,
        )
        # A little more load after the second rotation: its old lease is drained too.
        stats_after = await run_queries(query, concurrency=CONCURRENCY, seconds=2.0)
        rotations = entry.credentials.current().generation - first
        await asyncio.to_thread(shutdown)
    stop.set()
    orphans = await asyncio.wait_for(watcher, timeout=10)
    print(
        f"\n[django] {stats.summary()}; rotations {rotations}; {entry.stats}; "
        f"parked closed {entry.parking.closed_parked}"
    )
    assert stats.failures == [], stats.failures[:5]
    assert stats_after.failures == []
    assert rotations >= 2
    assert len(stats.latencies) > 300
    assert entry.stats.stale_closed + entry.parking.closed_parked >= 2
    assert orphans == [], "sessions left open after their login was dropped"
    assert not [r for r in await django_site.v_roles() if f"-{ROLE}-" in r]
    async with django_site.admin_connection() as conn:
        assert await conn.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE usename LIKE $1", pattern
        ) == 0
