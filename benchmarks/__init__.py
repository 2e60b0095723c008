"""Benchmarks of feishu_vc_async against the official SDK (lark-oapi); see run.py."""
