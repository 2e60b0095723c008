"""feishu_vc_async: asyncio client for Feishu / Lark VC participant data."""
