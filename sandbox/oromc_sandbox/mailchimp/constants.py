"""Constants of the Mailchimp emulation that modules on both sides of the HTTP plumbing need.

A leaf module (it imports nothing of the package), so `schemas` can use the API prefix without
importing `common`, which calls `schemas.check_body` for every write.
"""

from __future__ import annotations

API_PREFIX = "/3.0"
