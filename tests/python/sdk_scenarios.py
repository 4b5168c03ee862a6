"""Scenarios run by the official MCP Python SDK against a running `warden serve`.

Invoked by the Rust integration test `crates/warden-cli/tests/python_sdk.rs`, which starts the
gateway and issues the keys. Each scenario runs under both MCP revisions: the 2025-11-25
handshake (`initialize`) and the stateless 2026-07-28 one (`server/discover`).

Usage: python3 sdk_scenarios.py --url URL --support-key K --refund-key K [--git-tool NAME --git-repo DIR] [--warden BIN]
Prints one line per scenario and a closing "N passed, M failed"; exits 1 on any failure.
"""

import argparse
import asyncio
import json
import sys
import traceback
import uuid

from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client

REVISIONS = ("handshake", "discover")


async def session(url, key, revision, body):
    async with create_mcp_http_client(headers={"Authorization": f"Bearer {key}"}) as http:
        async with streamable_http_client(url, http_client=http) as (read, write):
            async with ClientSession(read, write) as s:
                if revision == "handshake":
                    await s.initialize()
                else:
                    await s.discover()
                return await body(s)


def text_of(result):
    return " ".join(c.text for c in result.content if getattr(c, "type", "") == "text")


def warden_meta(result):
    meta = result.meta or {}
    return meta.get("warden", {})


def check(cond, message):
    if not cond:
        raise AssertionError(message)


async def support_lists_only_what_it_may_call(args, revision):
    async def body(s):
        names = {t.name for t in (await s.list_tools()).tools}
        check("crm.get_customer" in names, f"crm.get_customer missing from {sorted(names)}")
        check("payments.refund" not in names, f"payments.refund is listed for support: {sorted(names)}")
        return names

    await session(args.url, args.support_key, revision, body)


async def support_reads_a_customer(args, revision):
    async def body(s):
        r = await s.call_tool("crm.get_customer", {"customer_id": "C001"})
        check(not r.is_error, f"expected success, got error: {text_of(r)}")
        check(r.structured_content and r.structured_content.get("id") == "C001", f"unexpected result {r.structured_content}")
        meta = warden_meta(r)
        check(meta.get("outcome") == "ok" and meta.get("event_id"), f"no warden metadata: {meta}")

    await session(args.url, args.support_key, revision, body)


async def support_is_denied_a_refund_by_policy(args, revision):
    async def body(s):
        r = await s.call_tool("payments.refund", {"amount": 100, "currency": "EUR", "customer_id": "C001"})
        check(r.is_error, "a refund by support must be denied")
        t = text_of(r)
        check("denied" in t and "event" in t, f"the denial must name the reason and event: {t}")

    await session(args.url, args.support_key, revision, body)


async def a_refund_over_the_limit_is_denied_naming_the_policy(args, revision):
    async def body(s):
        ok = await s.call_tool("payments.refund", {"amount": 1200, "currency": "EUR", "customer_id": "C002"})
        check(not ok.is_error, f"a small refund should pass: {text_of(ok)}")
        big = await s.call_tool("payments.refund", {"amount": 90000, "currency": "EUR", "customer_id": "C002"})
        check(big.is_error, "a refund over the limit must be denied")
        check("refund-limit" in text_of(big), f"the denial must name refund-limit: {text_of(big)}")
        check(warden_meta(big).get("policies") == ["refund-limit"], f"policies: {warden_meta(big)}")

    await session(args.url, args.refund_key, revision, body)


async def a_call_waiting_for_approval_reports_progress(args, revision):
    """A refund over 100.00 parks for finance; while it waits, the client hears progress."""
    reports = []

    async def on_progress(progress, total, message):
        reports.append((progress, total, message))

    async def body(s):
        parked = await s.call_tool(
            "payments.refund",
            {"amount": 20000, "currency": "EUR", "customer_id": "C002"},
            progress_callback=on_progress,
        )
        approval_id = warden_meta(parked).get("approval_id")
        check(approval_id, f"the refund must be parked for approval: {text_of(parked)}")
        check(approval_id in text_of(parked), f"the answer names the approval: {text_of(parked)}")
        check(reports, "no progress notification arrived while the call waited")
        check(all(approval_id in (m or "") for _, _, m in reports), f"progress messages: {reports}")
        check(all(t and p <= t for p, t, _ in reports), f"progress must stay within its total: {reports}")

    await session(args.url, args.refund_key, revision, body)


async def three_refunds_per_session_hold_for_a_real_client(args, revision):
    """The quickstart allows three refunds per session. A 2025-11-25 client is in the MCP session
    Warden opened at `initialize`; a 2026-07-28 client has no MCP session and names its own."""
    tag = f"{revision}-{uuid.uuid4().hex}"
    refund = {"amount": 700, "currency": "EUR", "customer_id": "C002"}

    def meta():
        return None if revision == "handshake" else {"session": tag}

    async def four_refunds(s):
        answers = [await s.call_tool("payments.refund", refund, meta=meta()) for _ in range(4)]
        for r in answers[:3]:
            check(not r.is_error, f"the first three refunds run: {text_of(r)}")
        fourth = answers[3]
        check(fourth.is_error, f"the fourth refund in one session must be denied: {text_of(fourth)}")
        check(warden_meta(fourth).get("policies") == ["three-refunds-per-session"], f"{warden_meta(fourth)}")

    await session(args.url, args.refund_key, revision, four_refunds)

    async def a_new_session_may_refund(s):
        r = await s.call_tool("payments.refund", refund, meta=None if revision == "handshake" else {"session": tag + "-2"})
        check(not r.is_error, f"a new session starts with no refunds: {text_of(r)}")

    await session(args.url, args.refund_key, revision, a_new_session_may_refund)


async def an_unknown_tool_is_a_clear_error(args, revision):
    async def body(s):
        r = await s.call_tool("crm.drop_database", {})
        check(r.is_error and "unknown tool" in text_of(r), f"got: {text_of(r)}")

    await session(args.url, args.support_key, revision, body)


async def arguments_of_the_wrong_type_are_refused(args, revision):
    async def body(s):
        r = await s.call_tool("payments.refund", {"amount": "lots", "currency": "EUR", "customer_id": "C002"})
        check(r.is_error, "a string amount must not pass")

    await session(args.url, args.refund_key, revision, body)


async def a_third_party_upstream_is_governed(args, revision):
    if not args.git_tool:
        raise AssertionError("--git-tool not given")

    async def body(s):
        names = {t.name for t in (await s.list_tools()).tools}
        check(args.git_tool in names, f"{args.git_tool} not listed: {sorted(names)}")
        r = await s.call_tool(args.git_tool, {"repo_path": args.git_repo})
        check(not r.is_error, f"git status failed: {text_of(r)}")
        check("branch" in text_of(r).lower(), f"unexpected git status output: {text_of(r)}")

    await session(args.url, args.support_key, revision, body)


async def the_stdio_bridge_carries_calls_and_denials(args, revision):
    """`warden connect` lets a stdio-only client use the gateway."""
    params = StdioServerParameters(command=args.warden, args=["connect", "--url", args.url, "--key", args.support_key])
    async with stdio_client(params) as (read, write):
        async with ClientSession(read, write) as s:
            if revision == "handshake":
                await s.initialize()
            else:
                await s.discover()
            names = {t.name for t in (await s.list_tools()).tools}
            check("crm.get_customer" in names, f"tools over the bridge: {sorted(names)}")
            r = await s.call_tool("crm.get_customer", {"customer_id": "C002"})
            check(not r.is_error and r.structured_content["id"] == "C002", f"got {text_of(r)}")
            denied = await s.call_tool("payments.refund", {"amount": 5, "currency": "EUR", "customer_id": "C002"})
            check(denied.is_error and "denied" in text_of(denied), f"got {text_of(denied)}")


async def a_bad_key_is_refused(args, revision):
    try:
        await session(args.url, "wdn_ak_not-a-real-key", revision, lambda s: s.list_tools())
    except BaseException as e:  # the SDK raises (possibly in an exception group) on HTTP 401
        check("401" in repr(e) or "Unauthorized" in repr(e) or "unknown credential" in repr(e), repr(e))
        return
    raise AssertionError("a bad key was accepted")


SCENARIOS = [
    support_lists_only_what_it_may_call,
    support_reads_a_customer,
    support_is_denied_a_refund_by_policy,
    a_refund_over_the_limit_is_denied_naming_the_policy,
    a_call_waiting_for_approval_reports_progress,
    three_refunds_per_session_hold_for_a_real_client,
    an_unknown_tool_is_a_clear_error,
    arguments_of_the_wrong_type_are_refused,
    a_third_party_upstream_is_governed,
    the_stdio_bridge_carries_calls_and_denials,
    a_bad_key_is_refused,
]


async def main():
    p = argparse.ArgumentParser()
    p.add_argument("--url", required=True)
    p.add_argument("--support-key", required=True)
    p.add_argument("--refund-key", required=True)
    p.add_argument("--git-tool", default="")
    p.add_argument("--git-repo", default="")
    p.add_argument("--warden", default="warden", help="the warden binary, for the stdio bridge")
    args = p.parse_args()
    passed = failed = 0
    for scenario in SCENARIOS:
        for revision in REVISIONS:
            name = f"{scenario.__name__} [{revision}]"
            try:
                await asyncio.wait_for(scenario(args, revision), timeout=60)
                print(f"ok   {name}")
                passed += 1
            except BaseException as e:  # noqa: BLE001 - report every failure and go on
                print(f"FAIL {name}: {e!r}")
                traceback.print_exc(file=sys.stdout)
                failed += 1
    print(f"{passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    asyncio.run(main())
