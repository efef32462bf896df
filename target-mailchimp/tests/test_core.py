"""The SDK's standard target tests.

Their fixture streams are not ``contacts``/``ecommerce_*``, so the target must read them cleanly, count
them as ignored and never call Mailchimp (the API URL below is unroutable on purpose: any call fails).
"""

from __future__ import annotations

from singer_sdk.testing import get_target_test_class
from target_mailchimp.target import TargetMailchimp

SAMPLE_CONFIG = {
    "api_key": "0123456789abcdef0123456789abcdef-us1",
    "api_url": "http://127.0.0.1:9/3.0",
    "list_id": "abc123",
    "rejects_path": "/tmp/target-mailchimp-standard-tests-rejects.jsonl",
    "max_tries": 1,
}

TestTargetMailchimpStandard = get_target_test_class(TargetMailchimp, config=SAMPLE_CONFIG)
