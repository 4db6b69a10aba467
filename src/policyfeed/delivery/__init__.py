"""Delivery: the ledger that hands each message over at most once, the transports (Maildir
outbox, SMTP relay), DKIM signatures and test sends. Imports model, config, output, store, audience
and digest (a test copy's rendering); never site, publish, web or cli."""
