"""Store webhook sources: Shopify, Stripe and Standard Webhooks deliveries into the ledger."""
