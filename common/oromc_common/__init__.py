"""Shared pieces of the OroCommerce <-> Mailchimp connectors.

Modules:
    http:      URL security policy (HTTPS unless loopback), Retry-After parsing, secret redaction.
    report:    the run report every connector keeps (counters, rejects file, end summary).
    oro:       OroCommerce OAuth2 token client and JSON:API helpers.
    mailchimp: Mailchimp auth, base URL, client and error classification.
    governor:  process-wide limit on simultaneous Mailchimp connections per API key.
    retry:     the one retry policy (transient failures, waits with Retry-After, max tries).
    fanout:    the one bounded fan-out (many calls on at most n threads, results in order).
    dates:     the one date parser (ISO-8601, UTC field values, days, HTTP dates).
    emails:    the address to send (normalize_email) and the key to match on (email_key).
"""
