"""Test helper: sign deliveries exactly as each platform documents it, and realistic payloads."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from datetime import UTC, datetime

import stripe
from standardwebhooks.webhooks import Webhook


def shopify_headers(secret: str, body: bytes, **extra: str) -> dict[str, str]:
    """Shopify: X-Shopify-Hmac-Sha256 = base64(HMAC-SHA256(app secret, raw body))."""
    mac = hmac.new(secret.encode(), body, hashlib.sha256).digest()
    headers = {
        "X-Shopify-Hmac-Sha256": base64.b64encode(mac).decode(),
        "X-Shopify-Topic": "orders/create",
        "X-Shopify-Shop-Domain": "acme-store.myshopify.com",
        "X-Shopify-API-Version": "2025-07",
        "X-Shopify-Webhook-Id": "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043",
        "X-Shopify-Event-Id": "98880550-7158-44d4-b7cd-2c97c8a091b5",
        "X-Shopify-Triggered-At": "2026-03-29T18:00:27.877041743Z",
    }
    headers.update(extra)
    return headers


def stripe_header_documented(secret: str, body: bytes, timestamp: int | None = None) -> str:
    """Stripe's documented scheme: t=<ts>,v1=hex(HMAC-SHA256(secret, "<ts>.<raw body>"))."""
    ts = int(time.time()) if timestamp is None else timestamp
    mac = hmac.new(secret.encode(), f"{ts}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={ts},v1={mac}"


def stripe_header_library(secret: str, body: bytes, timestamp: int | None = None) -> str:
    """The stripe library's own test signer."""
    return stripe.WebhookSignature.generate_signature_header(
        body.decode(), secret, timestamp=timestamp
    )


def standard_headers(secret: str, body: bytes, msg_id: str, timestamp: int | None = None) -> dict:
    """The standardwebhooks library's signer."""
    ts = int(time.time()) if timestamp is None else timestamp
    signature = Webhook(secret).sign(
        msg_id=msg_id, timestamp=datetime.fromtimestamp(ts, UTC), data=body.decode()
    )
    return {"webhook-id": msg_id, "webhook-timestamp": str(ts), "webhook-signature": signature}


def shopify_order(**overrides) -> dict:
    """An orders/create body shaped like Shopify's documented example (trimmed)."""
    order = {
        "id": 820982911946154508,
        "admin_graphql_api_id": "gid://shopify/Order/820982911946154508",
        "email": "jon@example.com",
        "created_at": "2026-03-29T14:00:27-04:00",
        "updated_at": "2026-03-29T14:00:27-04:00",
        "number": 234,
        "order_number": 1234,
        "name": "#9999",
        "currency": "USD",
        "presentment_currency": "USD",
        "financial_status": "voided",
        "fulfillment_status": "pending",
        "subtotal_price": "388.00",
        "total_discounts": "20.00",
        "total_line_items_price": "398.00",
        "total_price": "403.00",
        "total_tax": "0.00",
        "taxes_included": False,
        "test": True,
        "customer": {
            "id": 115310627314723954,
            "email": "john@example.com",
            "first_name": "John",
            "last_name": "Smith",
        },
        "line_items": [
            {
                "id": 866550311766439020,
                "name": "IPod Nano - 8GB",
                "price": "199.00",
                "quantity": 1,
                "sku": "IPOD2008PINK",
                "product_id": 632910392,
            },
            {
                "id": 141249953214522974,
                "name": "IPod Nano - 8GB",
                "price": "199.00",
                "quantity": 1,
                "sku": "IPOD2008PINK",
                "product_id": 632910392,
            },
        ],
        "shipping_lines": [
            {"id": 271878346596884015, "title": "Generic Shipping", "price": "10.00"}
        ],
    }
    order.update(overrides)
    return order


def stripe_charge_event(event_id: str = "evt_3MmlLrLkdIwHu7ix0snN0B15", **overrides) -> dict:
    """A charge.succeeded event shaped like Stripe's documented Event and Charge objects."""
    event = {
        "id": event_id,
        "object": "event",
        "api_version": "2024-06-20",
        "created": int(time.time()) - 30,
        "data": {
            "object": {
                "id": "ch_3MmlLrLkdIwHu7ix0snN0B15",
                "object": "charge",
                "amount": 1099,
                "amount_captured": 1099,
                "amount_refunded": 0,
                "balance_transaction": "txn_3MmlLrLkdIwHu7ix0uke3Ezy",
                "billing_details": {"email": None, "name": None},
                "captured": True,
                "created": 1679090539,
                "currency": "usd",
                "customer": "cus_NffrFeUfNV2Hib",
                "description": None,
                "livemode": False,
                "paid": True,
                "payment_intent": "pi_3MmlLrLkdIwHu7ix0cQxHjwC",
                "payment_method": "pm_1MmlLrLkdIwHu7ixIJwEWSNR",
                "status": "succeeded",
            }
        },
        "livemode": False,
        "pending_webhooks": 1,
        "request": {"id": "req_wWjSjwFbBCqkzc", "idempotency_key": None},
        "type": "charge.succeeded",
    }
    event.update(overrides)
    return event


def encode(doc: dict) -> bytes:
    return json.dumps(doc).encode()
