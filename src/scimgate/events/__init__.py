"""Telling the host app: the event outbox and feed, the in-process bus, webhooks."""
