"""Shared pieces of the OroCommerce <-> Mailchimp connectors.

Modules:
    http:      URL security policy (HTTPS unless loopback), Retry-After parsing, secret redaction.
    report:    the run report every connector keeps (counters, rejects file, end summary).
    oro:       OroCommerce OAuth2 token client and JSON:API helpers.
    mailchimp: Mailchimp auth, base URL, client and error classification.
    governor:  process-wide limit on simultaneous Mailchimp connections per API key.
"""
