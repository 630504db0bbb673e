"""A third-party MCP client (the official Python SDK, 1.x or 2.x) driving keybridge-mcp over stdio.

Usage: mcp_client.py SERVER [ARGS...]; the steps come as JSON in KB_STEPS:
  ["call", name, arguments] | ["sleep", seconds] | ["list"]
With SDK 2.x, KB_MODE picks how it connects: "auto" (server/discover first, the default) or
"legacy" (initialize). Prints one JSON object: protocol, server name, tools, and a result per step.
"""

import asyncio
import contextlib
import json
import os
import sys

import mcp
from mcp import StdioServerParameters

SDK2 = hasattr(mcp, "Client")


def field(obj, snake, camel):
    """SDK 2.x names fields in snake case, 1.x as on the wire."""
    return getattr(obj, snake, None) if SDK2 else getattr(obj, camel, None)


async def run(session, list_tools, protocol, server_name, steps, changed) -> dict:
    tools = await list_tools(False)
    out = {
        "sdk": "2" if SDK2 else "1",
        "protocol": protocol,
        "server": server_name,
        "tools": [t.name for t in tools.tools],
        "tools_bytes": len(
            json.dumps([t.model_dump(mode="json", by_alias=True, exclude_none=True) for t in tools.tools])
        ),
        "steps": [],
    }
    for step in steps:
        if step[0] == "sleep":
            await asyncio.sleep(step[1])
        elif step[0] == "list":
            listed = await list_tools(True)
            out["steps"].append({"tools": [t.name for t in listed.tools]})
        else:
            progress = []

            async def on_progress(value, total, message) -> None:
                progress.append(message)

            result = await session.call_tool(step[1], step[2], progress_callback=on_progress)
            text = "".join(c.text for c in result.content if c.type == "text")
            out["steps"].append(
                {
                    "tool": step[1],
                    "isError": bool(field(result, "is_error", "isError")),
                    "text": text,
                    "structured": field(result, "structured_content", "structuredContent"),
                    "progress": progress,
                }
            )
    out["list_changed"] = len(changed)
    return out


async def main() -> None:
    server = StdioServerParameters(command=sys.argv[1], args=sys.argv[2:], env=dict(os.environ))
    steps = json.loads(os.environ.get("KB_STEPS", "[]"))
    changed = []

    async def on_message(message) -> None:
        root = getattr(message, "root", message)
        if getattr(root, "method", None) == "notifications/tools/list_changed":
            changed.append(True)

    if SDK2:
        mode = os.environ.get("KB_MODE", "auto")
        async with mcp.Client(server, mode=mode, message_handler=on_message) as client:

            async def list_tools(fresh):
                return await client.list_tools(cache_mode="refresh" if fresh else "use")

            out = await run(client, list_tools, client.protocol_version, client.server_info.name, steps, changed)
    else:
        from mcp import ClientSession
        from mcp.client.stdio import stdio_client

        async with contextlib.AsyncExitStack() as stack:
            read, write = await stack.enter_async_context(stdio_client(server))
            session = await stack.enter_async_context(ClientSession(read, write, message_handler=on_message))
            init = await session.initialize()

            async def list_tools(fresh):
                return await session.list_tools()

            out = await run(session, list_tools, init.protocolVersion, init.serverInfo.name, steps, changed)
    print(json.dumps(out), flush=True)


asyncio.run(main())
