"""Rollout policies: which of a data type's loaded versions serve its records, and which shadow them."""

from modelstream.policies.plan import Plan, PolicyError, from_message, kept, resolve, single_version
from modelstream.policies.routing import BUCKETS, Router, buckets

__all__ = [
    "BUCKETS",
    "Plan",
    "PolicyError",
    "Router",
    "buckets",
    "from_message",
    "kept",
    "resolve",
    "single_version",
]
