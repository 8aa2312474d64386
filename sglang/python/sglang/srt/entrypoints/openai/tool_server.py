# SPDX-License-Identifier: Apache-2.0
# SPDX-FileCopyrightText: Copyright contributors to the vLLM project
import logging
from abc import ABC, abstractmethod
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

try:
    from mcp import ClientSession
    from mcp.client.sse import sse_client
    from mcp.types import ListToolsResult
except ImportError as e:
    ClientSession = sse_client = ListToolsResult = e


logger = logging.getLogger(__name__)


class ToolServer(ABC):

    @abstractmethod
    def has_tool(self, tool_name: str):
        pass

    @abstractmethod
    def get_tool_description(self, tool_name: str):
        pass

    @abstractmethod
    def get_tool_session(self, tool_name: str) -> AbstractAsyncContextManager[Any]: ...


class MCPToolServer(ToolServer):

    def __init__(self):
        self.harmony_tool_descriptions = {}

    def has_tool(self, tool_name: str):
        raise NotImplementedError('slim removed the body of MCPToolServer.has_tool: it never ran in any recording (see sglang/REMOVED.md)')

    def get_tool_description(self, tool_name: str):
        raise NotImplementedError('slim removed the body of MCPToolServer.get_tool_description: it never ran in any recording (see sglang/REMOVED.md)')

    @asynccontextmanager
    async def get_tool_session(self, tool_name: str):
        raise NotImplementedError('slim removed the body of MCPToolServer.get_tool_session: it never ran in any recording (see sglang/REMOVED.md)')


class DemoToolServer(ToolServer):

    def __init__(self, *, enable_python: bool = True):
        from sglang.srt.entrypoints.tool import (
            HarmonyBrowserTool,
            HarmonyPythonTool,
            Tool,
        )

        self.tools: dict[str, Tool] = {}
        browser_tool = HarmonyBrowserTool()
        if browser_tool.enabled:
            self.tools["browser"] = browser_tool
        if enable_python:
            python_tool = HarmonyPythonTool()
            if python_tool.enabled:
                self.tools["python"] = python_tool

    def has_tool(self, tool_name: str):
        raise NotImplementedError('slim removed the body of DemoToolServer.has_tool: it never ran in any recording (see sglang/REMOVED.md)')

    def get_tool_description(self, tool_name: str):
        raise NotImplementedError('slim removed the body of DemoToolServer.get_tool_description: it never ran in any recording (see sglang/REMOVED.md)')

    @asynccontextmanager
    async def get_tool_session(self, tool_name: str):
        raise NotImplementedError('slim removed the body of DemoToolServer.get_tool_session: it never ran in any recording (see sglang/REMOVED.md)')

class NativeToolServer(DemoToolServer):
    """Built-in SGLang hosted tools that do not require an external MCP server."""

    def __init__(self):
        super().__init__(enable_python=False)
