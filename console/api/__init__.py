"""The JSON API v1: its queries, its payloads, its OpenAPI document."""
