"""A third-party MCP client (the official Python SDK) driving keybridge-mcp over stdio.

Usage: mcp_client.py SERVER [ARGS...]; the steps come as JSON in KB_STEPS:
  ["call", name, arguments] | ["sleep", seconds] | ["list"]
Prints one JSON object: protocol, server name, tools, and a result per step.
"""

import asyncio
import json
import os
import sys

from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client


async def main() -> None:
    server = StdioServerParameters(command=sys.argv[1], args=sys.argv[2:], env=dict(os.environ))
    steps = json.loads(os.environ.get("KB_STEPS", "[]"))
    changed = []

    async def on_message(message) -> None:
        root = getattr(message, "root", None)
        if getattr(root, "method", None) == "notifications/tools/list_changed":
            changed.append(True)

    async with stdio_client(server) as (read, write):
        async with ClientSession(read, write, message_handler=on_message) as session:
            init = await session.initialize()
            tools = await session.list_tools()
            out = {
                "protocol": init.protocolVersion,
                "server": init.serverInfo.name,
                "tools": [t.name for t in tools.tools],
                "tools_bytes": len(json.dumps([t.model_dump(mode="json", exclude_none=True) for t in tools.tools])),
                "steps": [],
            }
            for step in steps:
                if step[0] == "sleep":
                    await asyncio.sleep(step[1])
                elif step[0] == "list":
                    listed = await session.list_tools()
                    out["steps"].append({"tools": [t.name for t in listed.tools]})
                else:
                    progress = []

                    async def on_progress(value, total, message) -> None:
                        progress.append(message)

                    result = await session.call_tool(step[1], step[2], progress_callback=on_progress)
                    text = "".join(c.text for c in result.content if c.type == "text")
                    out["steps"].append({"tool": step[1], "isError": result.isError, "text": text, "progress": progress})
            out["list_changed"] = len(changed)
            print(json.dumps(out), flush=True)


asyncio.run(main())
