"""Inbound mail: bounces and replies that come back for letters, by LMTP/SMTP from the
site's MTA, from an IMAP mailbox, or as relays' webhooks."""
