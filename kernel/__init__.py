"""The shared kernel: the few value types every LeadWarm package may import.

It holds the project's base exception, the clock port and the HTTP ``Retry-After`` reader, and
imports nothing of ours, so the leaf packages (``channels``, ``playbooks``, ``crm_sync``,
``prompts``) can share them without importing ``app`` or each other (import-linter keeps it so).
"""

from kernel.clock import Clock, ManualClock, SystemClock
from kernel.errors import LeadWarmError
from kernel.http import parse_retry_after

__all__ = ["Clock", "LeadWarmError", "ManualClock", "SystemClock", "parse_retry_after"]
