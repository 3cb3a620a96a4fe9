"""Triton access: the pooled asyncio gRPC client, the discovery cache, encoding, the health probe."""
